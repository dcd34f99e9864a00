//! The keystore: recipients' OpenPGP keys and S/MIME certificates, one
//! JSON file per key under `<data_dir>/keys`. Files, not the spool
//! database, so `sealgate keys ...` works while the gateway runs (RocksDB
//! allows one writer) and an admin can back the directory up as is.
//!
//! Policy asks it which key can seal for a recipient (`lookup`); the seal
//! stage loads exactly the key policy named. A key that would replace a
//! known one for an address, when it did not come from an admin, waits as
//! `pending` until `sealgate keys approve` (pinning).

pub mod harvest;
mod lookup;
pub mod pgp_key;
pub mod signing;
pub mod smime_cert;
mod store;
pub mod wkd;

// BER to DER for harvested CMS: pure, in sealgate-parse (fuzzed there).
use sealgate_parse::ber;

pub use lookup::{Found, Keys, Parsed, Unusable};
pub use store::{ImportReport, Keystore};

/// The form of an address keys are filed under: lower case, the domain
/// in ASCII (punycode).
pub fn filed_as(m: &crate::model::address::Mailbox) -> String {
    format!("{}@{}", m.local(), m.domain_ascii()).to_ascii_lowercase()
}

/// Errors from the keystore.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// A file beside the records (S/MIME roots, the signing identity) cannot be read.
    #[error("keystore {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The key records' store failed (a record that does not parse included).
    #[error(transparent)]
    Backend(#[from] crate::store::BackendError),
    /// The file to import holds neither OpenPGP keys nor X.509 certificates.
    #[error("{0}")]
    Unreadable(String),
    /// The key or certificate names no e-mail address to file it under.
    #[error("{0} names no e-mail address")]
    NoAddress(String),
    /// An OpenPGP key an admin imports names no e-mail address, and none was bound.
    #[error(
        "OpenPGP key {0} names no e-mail address; bind it to one with \
         `sealgate keys import FILE --address ADDRESS`"
    )]
    Unbound(String),
    /// An address to bind a key to does not parse.
    #[error("cannot bind a key to `{address}`: {reason}")]
    BadAddress {
        /// As given.
        address: String,
        /// Why it is not a mailbox.
        reason: crate::model::address::AddressError,
    },
    /// Only OpenPGP keys are bound to addresses: an S/MIME certificate's
    /// addresses are the ones its issuer vouched for.
    #[error("only an OpenPGP key can be bound to an address; this file holds X.509 certificates")]
    BindNotPgp,
    /// Binding names one key; the file holds several.
    #[error("an address is bound to one OpenPGP key at a time; the file holds {0}")]
    BindMany(usize),
    /// No entry has this id.
    #[error("no key with id {0}")]
    NotFound(String),
    /// An id prefix matches more than one entry.
    #[error("key id {0} is ambiguous; give more of it")]
    Ambiguous(String),
}
