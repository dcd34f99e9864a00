//! Recipients' OpenPGP certificates: parsed (never with secret parts), and
//! judged usable for a recipient address or not, with the reason — what
//! the keystore files and policy and seal look up. Sealing to them is
//! `seal::pgp`'s.

use std::fmt;
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::types::RevocationStatus;

/// Why a recipient's key cannot be used; `Display` is the reason in verdicts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    /// The certificate (its primary key) has expired.
    #[error("the OpenPGP key has expired")]
    Expired,
    /// The certificate is revoked.
    #[error("the OpenPGP key is revoked")]
    Revoked,
    /// No subkey that is valid, alive, not revoked and marked for transport encryption.
    #[error("the OpenPGP key has no valid encryption subkey")]
    NoEncryptionSubkey,
    /// No valid user ID of the certificate names the recipient address.
    #[error("no user ID of the OpenPGP key names the recipient address")]
    NoMatchingUserId,
    /// The certificate is not valid under the standard policy (weak algorithms, not yet valid...).
    #[error("the OpenPGP key is not valid: {0}")]
    Invalid(String),
}

/// Errors from parsing keys and sealing.
#[derive(Debug, thiserror::Error)]
pub enum PgpError {
    /// The bytes are not one OpenPGP certificate.
    #[error("cannot read the OpenPGP key: {0}")]
    Parse(String),
    /// The signer's key has no secret key material.
    #[error("the OpenPGP signing key has no secret key material")]
    NoSecretKey,
    /// The signer's key has no usable, unencrypted signing key.
    #[error("the OpenPGP signing key cannot sign: {0}")]
    CannotSign(String),
    /// `seal` was called without recipients.
    #[error("no recipients to seal for")]
    NoRecipients,
    /// A recipient key cannot be used for encryption.
    #[error("OpenPGP key {fingerprint}: {problem}")]
    Unusable {
        /// The certificate's fingerprint.
        fingerprint: String,
        /// Why it cannot be used.
        problem: KeyProblem,
    },
    /// Encryption, signing or serialisation failed inside sequoia.
    #[error("OpenPGP sealing failed: {0}")]
    Crypto(String),
}

/// Sequoia reports errors as `anyhow::Error`; keep the whole chain as text.
pub(crate) fn crypto(e: impl fmt::Display) -> PgpError {
    PgpError::Crypto(format!("{e:#}"))
}

/// Parses exactly one certificate. Parsing runs under `catch_unwind` so a
/// parser bug on hostile input (keys come from WKD, Autocrypt and admins)
/// becomes an error instead of taking the worker down.
pub(crate) fn parse_cert(bytes: &[u8]) -> Result<Cert, PgpError> {
    match std::panic::catch_unwind(|| Cert::from_bytes(bytes)) {
        Ok(Ok(cert)) => Ok(cert),
        Ok(Err(e)) => Err(PgpError::Parse(format!("{e:#}"))),
        Err(_) => Err(PgpError::Parse("the OpenPGP parser failed".into())),
    }
}

/// A recipient's public OpenPGP certificate.
#[derive(Debug, Clone)]
pub struct RecipientKey {
    pub(crate) cert: Cert,
}

impl RecipientKey {
    /// Reads one certificate, armoured or binary; secret parts are dropped.
    pub fn parse(bytes: &[u8]) -> Result<Self, PgpError> {
        let cert = parse_cert(bytes)?;
        Ok(RecipientKey {
            cert: cert.strip_secret_key_material(),
        })
    }

    /// Reads every certificate in a keyring (armoured or binary); secret parts are dropped.
    pub fn parse_all(bytes: &[u8]) -> Result<Vec<Self>, PgpError> {
        let parsed = std::panic::catch_unwind(|| {
            openpgp::cert::CertParser::from_bytes(bytes)
                .map(|p| p.collect::<openpgp::Result<Vec<Cert>>>())
        });
        match parsed {
            Ok(Ok(Ok(certs))) if !certs.is_empty() => Ok(certs
                .into_iter()
                .map(|c| RecipientKey {
                    cert: c.strip_secret_key_material(),
                })
                .collect()),
            Ok(Ok(Ok(_))) => Err(PgpError::Parse("no OpenPGP certificate found".into())),
            Ok(Ok(Err(e))) | Ok(Err(e)) => Err(PgpError::Parse(format!("{e:#}"))),
            Err(_) => Err(PgpError::Parse("the OpenPGP parser failed".into())),
        }
    }

    /// The public certificate, ASCII-armoured (for storage and export).
    pub fn armored(&self) -> Result<String, PgpError> {
        use openpgp::serialize::SerializeInto;
        let bytes = self.cert.armored().to_vec().map_err(crypto)?;
        String::from_utf8(bytes).map_err(crypto)
    }

    /// The e-mail addresses of the certificate's user IDs, lower-cased (domain in punycode).
    pub fn email_addresses(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for ua in self.cert.userids() {
            if let Ok(Some(e)) = ua.userid().email_normalized() {
                if !out.contains(&e) {
                    out.push(e);
                }
            }
        }
        out
    }

    /// The certificate's fingerprint: hex, upper-case, no spaces.
    pub fn fingerprint(&self) -> String {
        self.cert.fingerprint().to_hex()
    }

    /// Every user ID on the certificate (as text, lossily decoded), valid or not.
    pub fn user_ids(&self) -> Vec<String> {
        self.cert
            .userids()
            .map(|ua| String::from_utf8_lossy(ua.userid().value()).into_owned())
            .collect()
    }

    /// Checks the key can encrypt at `now` under the standard policy,
    /// whatever address its user IDs name: for a key an admin bound to an
    /// address (`keys import --address`), such as one with a name-only user ID.
    pub fn usable_at(&self, now: SystemTime) -> Result<(), KeyProblem> {
        let policy = StandardPolicy::new();
        self.valid(&policy, now).map(|_| ())
    }

    /// Checks the key can encrypt to `address` at `now` under the standard
    /// policy. The address check: some user ID that is valid and not revoked
    /// at `now` carries the address as its e-mail (`Name <addr>` or bare
    /// `addr`), compared case-insensitively with the domain in punycode; a
    /// user ID that is not in that form matches if it contains `<addr>`.
    pub fn usable_for(&self, address: &str, now: SystemTime) -> Result<(), KeyProblem> {
        let policy = StandardPolicy::new();
        let vc = self.valid(&policy, now)?;
        let want = normalize_address(address);
        let matches = vc.userids().revoked(false).any(|ua| {
            let uid = ua.userid();
            match uid.email_normalized() {
                Ok(Some(email)) => Some(email) == want,
                _ => {
                    let text = String::from_utf8_lossy(uid.value()).to_lowercase();
                    let addr = address.trim().trim_matches(['<', '>']).to_lowercase();
                    !addr.is_empty() && (text.trim() == addr || text.contains(&format!("<{addr}>")))
                }
            }
        });
        if matches {
            Ok(())
        } else {
            Err(KeyProblem::NoMatchingUserId)
        }
    }

    /// The certificate under `policy` at `now`, if alive, not revoked and
    /// with at least one encryption subkey.
    pub(crate) fn valid<'a>(
        &'a self,
        policy: &'a StandardPolicy<'a>,
        now: SystemTime,
    ) -> Result<ValidCert<'a>, KeyProblem> {
        let vc = self
            .cert
            .with_policy(policy, now)
            .map_err(|e| KeyProblem::Invalid(format!("{e:#}")))?;
        // `CouldBe` (an unverified third-party revocation) is not a revocation.
        if let RevocationStatus::Revoked(_) = vc.revocation_status() {
            return Err(KeyProblem::Revoked);
        }
        if vc.alive().is_err() {
            return Err(KeyProblem::Expired);
        }
        if transport_keys(&vc).next().is_none() {
            return Err(KeyProblem::NoEncryptionSubkey);
        }
        Ok(vc)
    }
}

/// The keys of `vc` that may encrypt mail in transit.
pub(crate) fn transport_keys<'a>(
    vc: &ValidCert<'a>,
) -> impl Iterator<Item = ValidErasedKeyAmalgamation<'a, openpgp::packet::key::PublicParts>> {
    vc.keys()
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
}

/// `address` as sequoia normalises e-mail addresses in user IDs: local part
/// lower-cased, domain lower-cased and in punycode.
pub(crate) fn normalize_address(address: &str) -> Option<String> {
    let a = address.trim().trim_matches(['<', '>']);
    let (local, domain) = a.rsplit_once('@')?;
    let domain = idna::domain_to_ascii(domain).ok()?;
    Some(format!(
        "{}@{}",
        local.to_lowercase(),
        domain.to_lowercase()
    ))
}
