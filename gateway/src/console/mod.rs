//! The web console admins, archivists and auditors work in, served at
//! `/console/` on the admin listener: server-rendered HTML, no scripts,
//! a strict Content-Security-Policy, sign-in with password and TOTP.
//!
//! `users` adds users and signs them in (shared with `sealgate user`),
//! `totp` is RFC 6238.

pub mod totp;
pub mod users;
