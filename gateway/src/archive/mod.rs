//! The archive: every relayed message journaled once its last recipient
//! is final — the bytes as received, the envelope (the only place Bcc
//! recipients exist), the session, DLP findings and per recipient the
//! verdict, seal and delivery evidence — in an encrypted, content-addressed
//! store whose events form a hash chain with signed checkpoints.
//!
//! The last stage: deliver hands each finished message here before the
//! spool lets it go, so nothing relayed escapes the archive.
//!
//! The store itself is `store::archive::ArchiveStore` (its RocksDB backend
//! and openers in `store::rocksdb::archive`); this stage decides what is
//! journaled, indexes, searches, exports and applies retention.

pub mod event;
pub mod export;
pub mod journal_report;
pub mod query;
pub mod retention;
pub mod sealed_file;
pub mod search;
pub mod worker;

pub use crate::store::archive::{
    ArchiveError, ArchiveStore, Item, Journaled, PurgeReport, VerifyReport,
};
pub use crate::store::rocksdb::archive::signer;
pub use event::{Capture, Event, HeaderFacts, Outcome};
pub use search::{Hits, SearchError, SearchIndex};
