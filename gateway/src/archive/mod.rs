//! The archive: every relayed message journaled once its last recipient
//! is final — the bytes as received, the envelope (the only place Bcc
//! recipients exist), the session, DLP findings and per recipient the
//! verdict, seal and delivery evidence — in an encrypted, content-addressed
//! store whose events form a hash chain with signed checkpoints.
//!
//! The last stage: deliver hands each finished message here before the
//! spool lets it go, so nothing relayed escapes the archive.

pub mod chain;
pub mod event;
pub mod export;
pub mod journal_report;
pub mod query;
pub mod retention;
pub mod search;
pub mod store;
pub mod worker;

pub use event::{Capture, Event, HeaderFacts, Outcome};
pub use search::{Hits, SearchError, SearchIndex};
pub use store::{Archive, ArchiveError, Item, Journaled, PurgeReport, VerifyReport};
