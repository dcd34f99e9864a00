//! The seal stage: turns a message into what one recipient can open —
//! PGP/MIME (RFC 3156) or S/MIME (RFC 8551) — keeping the outside header
//! fields. Which seal a recipient gets is the policy stage's verdict.

pub mod armour;
pub mod entity;
pub mod notice;
pub mod pgp;
pub mod portal;
pub mod smime;
pub mod worker;
