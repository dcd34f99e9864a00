//! `[seal]`: the keystore and how PGP and S/MIME seals are made.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[seal]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SealConfig {
    /// Keystore directory; unset means `<data_dir>/keystore`.
    pub keystore_dir: Option<PathBuf>,
    /// Whether keys harvested from inbound mail may be used to seal.
    pub use_harvested: bool,
    /// PEM bundle of CAs that recipients' S/MIME certificates must chain to
    /// (one hop). Unset: certificates are trusted as imported.
    pub smime_roots_file: Option<PathBuf>,
    /// RSA key transport with RSAES-OAEP (SHA-256) instead of PKCS#1 v1.5.
    pub smime_oaep: bool,
    /// AES-256-GCM AuthEnvelopedData instead of AES-256-CBC: `auto` (when
    /// the certificate lists it among its S/MIME capabilities), `always`, `never`.
    pub smime_aead: Aead,
    /// PGP protected headers: the outer Subject becomes "...", the real one is inside.
    pub protect_subject: bool,
    /// The organisation's OpenPGP secret key (armoured, unencrypted) that signs PGP seals.
    pub pgp_signing_key: Option<PathBuf>,
    /// The organisation's S/MIME certificate (PEM) that signs S/MIME seals;
    /// unset: the identity `keys import FILE.p12` installed, if any.
    pub smime_signing_cert: Option<PathBuf>,
    /// Its RSA private key (PKCS#8 or PKCS#1 PEM, unencrypted).
    pub smime_signing_key: Option<PathBuf>,
    /// Look up a missing OpenPGP key in the recipient domain's Web Key
    /// Directory before giving up on an escalated recipient.
    pub wkd: bool,
    /// HTTPS port for WKD (443; other values are for tests).
    pub wkd_port: u16,
}

impl Default for SealConfig {
    fn default() -> Self {
        SealConfig {
            keystore_dir: None,
            use_harvested: false,
            smime_roots_file: None,
            smime_oaep: false,
            smime_aead: Aead::Auto,
            protect_subject: false,
            pgp_signing_key: None,
            smime_signing_cert: None,
            smime_signing_key: None,
            wkd: true,
            wkd_port: 443,
        }
    }
}

/// When S/MIME content is sealed with AES-256-GCM (AuthEnvelopedData, RFC
/// 5083/5084: tamper-evident) instead of AES-256-CBC (EnvelopedData, which
/// every client opens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aead {
    /// Only when every recipient's certificate lists AES-256-GCM among its
    /// S/MIME capabilities.
    #[default]
    Auto,
    /// Always (the recipients' clients are known to open it).
    Always,
    /// Never.
    Never,
}
