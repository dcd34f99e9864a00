//! The types the stages hand each other, and nothing else: ids,
//! addresses and envelope parameters, which way a message travels and where
//! it came from, TLS levels and facts, delivery evidence, inspection
//! records, verdicts and seals, the queue's per-message record, what is
//! stored about a recipient's key, what the portal keeps of a held
//! message, what the archive records of a relayed message (its events and
//! captures). Plain data
//! with serde; no I/O, no stage. Ground floor: every other module may name
//! these, and they name only each other and pure parsers (`sealgate-parse`,
//! and `mail-parser` for an archived message's header facts).

pub mod archive;
pub mod envelope;
pub mod escrow;
pub mod header_fields;
pub mod id;
pub mod inbound;
pub mod key;
pub mod record;
pub mod tls;
pub mod verdict;

/// RFC 5321 mailboxes and domains (the parser lives in `sealgate-parse`).
pub use sealgate_parse::smtp::address;
