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
pub mod sealed_file;
pub mod search;
pub mod store;
pub mod worker;

pub use event::{Capture, Event, HeaderFacts, Outcome};
pub use search::{Hits, SearchError, SearchIndex};
pub use store::{Archive, ArchiveError, Item, Journaled, PurgeReport, VerifyReport};

/// The archive's Ed25519 signing key named by `config`, created (mode
/// 0600) on first use.
pub fn signer(
    config: &crate::config::Config,
) -> Result<ring::signature::Ed25519KeyPair, ArchiveError> {
    let path = config.archive_signing_key_file();
    chain::load_or_create_signer(&path).map_err(|source| ArchiveError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Opens `config`'s archive for writing, with its key file (made on first
/// use when `create_keys`, as the gateway does; the CLI only reads one).
pub fn open_writable(
    config: &crate::config::Config,
    create_keys: bool,
) -> Result<Archive, ArchiveError> {
    let key_file = config.archive_key_file();
    let keys = if create_keys {
        crate::spool::Keyring::load_or_create(&key_file)?
    } else {
        crate::spool::Keyring::load(&key_file)?
    };
    Archive::open(
        &config.archive_dir(),
        keys,
        signer(config)?,
        config.archive.checkpoint_every,
    )
}
