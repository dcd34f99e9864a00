//! `[[dkim]]`: domains whose outbound mail Sealgate DKIM-signs after sealing
//! (sealing and subject-tag removal rewrite the message, so the tenant's own
//! signature no longer verifies).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// DKIM signature algorithm (RFC 6376 `a=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum DkimAlgorithm {
    /// RSA PKCS#1 v1.5 with SHA-256: what every verifier knows.
    #[default]
    #[serde(rename = "rsa-sha256")]
    RsaSha256,
    /// Ed25519 over SHA-256 (RFC 8463): short keys, not yet checked by
    /// every receiver; usually published beside an RSA key.
    #[serde(rename = "ed25519-sha256")]
    Ed25519Sha256,
}

impl DkimAlgorithm {
    /// The name used in the config and in `a=`.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::RsaSha256 => "rsa-sha256",
            DkimAlgorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }
}

/// `[[dkim]]`: one signing key. Outbound mail is signed by the entries whose
/// `domain` is the From address's domain or its closest parent domain (all
/// of them when several share that domain, e.g. an RSA and an Ed25519 key).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    /// Signing domain (`d=`). Signs mail whose RFC 5322 From domain is this
    /// domain or a subdomain of it (`hospital.test` signs mail from
    /// `nurse@mail.hospital.test`); the most specific configured domain wins.
    pub domain: String,
    /// Selector (`s=`): the public key is published as a TXT record at
    /// `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// PEM private key, not passphrase-protected: PKCS#8 (`BEGIN PRIVATE
    /// KEY`) for RSA or Ed25519, or PKCS#1 (`BEGIN RSA PRIVATE KEY`) for
    /// RSA. RSA keys must be 2048 to 4096 bits. Loaded at start; a key that
    /// does not load stops the start.
    pub key_file: PathBuf,
    /// `rsa-sha256` or `ed25519-sha256`; must match the key. Default: `rsa-sha256`.
    #[serde(default)]
    pub algorithm: DkimAlgorithm,
    /// Header fields to sign (`h=`), those present in the message; must
    /// include `From`. Default: From, To, Cc, Subject, Date, Message-ID,
    /// MIME-Version, Content-Type, Content-Transfer-Encoding, Reply-To,
    /// In-Reply-To, References.
    #[serde(default = "DkimConfig::default_headers")]
    pub headers: Vec<String>,
}

impl DkimConfig {
    /// The header fields signed unless `headers` says otherwise.
    pub fn default_headers() -> Vec<String> {
        [
            "From",
            "To",
            "Cc",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
            "Content-Type",
            "Content-Transfer-Encoding",
            "Reply-To",
            "In-Reply-To",
            "References",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }
}
