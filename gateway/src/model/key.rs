//! One stored key or certificate and what is known about it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// An OpenPGP certificate (public key).
    Pgp,
    /// An X.509 certificate for S/MIME.
    Smime,
}

impl KeyKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Pgp => "pgp",
            KeyKind::Smime => "smime",
        }
    }
}

/// Where a key came from, which decides how far it is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    /// Imported by an admin (`sealgate keys import`).
    Imported,
    /// Fetched from the recipient domain's Web Key Directory.
    Wkd,
    /// Taken from inbound mail (Autocrypt header, S/MIME signature).
    Harvested,
}

impl KeySource {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Imported => "imported",
            KeySource::Wkd => "wkd",
            KeySource::Harvested => "harvested",
        }
    }
}

/// Whether the key may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Used for its addresses.
    Active,
    /// Differs from the key already known for an address and did not come
    /// from an admin: not used until `sealgate keys approve`.
    Pending,
}

/// A stored key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// OpenPGP fingerprint (upper-case hex) or the certificate's SHA-256 (lower-case hex).
    pub id: String,
    /// PGP or S/MIME.
    pub kind: KeyKind,
    /// The addresses it is filed under, lower-case.
    pub addresses: Vec<String>,
    /// Addresses an admin bound the key to (`keys import --address`), also in
    /// `addresses`: the key seals for them though no user ID names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bound: Vec<String>,
    /// Where it came from.
    pub source: KeySource,
    /// Active or pending approval.
    pub state: KeyState,
    /// When it was stored.
    pub added_at: DateTime<Utc>,
    /// For certificates: serial (hex) and issuer, to name it in evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// For certificates: the issuer's distinguished name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// For certificates: end of validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<DateTime<Utc>>,
    /// The key itself: an armoured OpenPGP certificate or a PEM certificate.
    pub data: String,
}

impl KeyEntry {
    /// How evidence and `explain` name this key: the fingerprint, or the
    /// certificate's serial and issuer.
    pub fn label(&self) -> String {
        match (self.kind, &self.serial, &self.issuer) {
            (KeyKind::Smime, Some(serial), Some(issuer)) => {
                format!("certificate serial {serial} issued by {issuer}")
            }
            _ => format!("{} key {}", self.kind.as_str(), self.id),
        }
    }

    /// True when `address` (any case) is one of the entry's addresses.
    pub fn covers(&self, address: &str) -> bool {
        let a = address.to_ascii_lowercase();
        self.addresses.contains(&a)
    }

    /// True when an admin bound the key to `address` (any case).
    pub fn binds(&self, address: &str) -> bool {
        let a = address.to_ascii_lowercase();
        self.bound.contains(&a)
    }
}
