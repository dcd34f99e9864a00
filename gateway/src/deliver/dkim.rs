//! DKIM signing of outbound mail (RFC 6376, RFC 8463), after sealing.
//!
//! Sealing and subject-tag removal rewrite the message, so the tenant's own
//! DKIM signature breaks; Sealgate signs each outgoing copy itself with the
//! `[[dkim]]` key of the RFC 5322 From domain (or of its closest configured
//! parent domain). Keys are loaded once at start; a key that does not load
//! stops the start. Canonicalisation is relaxed/relaxed, so the headers a
//! receiving MTA adds on top and LF line endings in a mailbox still verify.
//! The signatures are made by `mail-auth` with its `ring` backend.

use crate::config::{DkimAlgorithm, DkimConfig};
use crate::model::address::ascii_domain;
use crate::spool::QueueId;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use std::path::{Path, PathBuf};

/// A `[[dkim]]` key file that does not load, and why.
#[derive(Debug, thiserror::Error)]
#[error("DKIM key file {}: {reason}", path.display())]
pub struct KeyError {
    /// The file.
    pub path: PathBuf,
    /// Why it does not load.
    pub reason: String,
}

/// A `[[dkim]]` entry that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("dkim[{index}] (domain {domain}, selector {selector}): {source}")]
pub struct SetupError {
    /// Position in the config.
    pub index: usize,
    /// Its signing domain.
    pub domain: String,
    /// Its selector.
    pub selector: String,
    /// The key problem.
    pub source: KeyError,
}

/// A loaded private key, ready for the signer of its algorithm.
pub enum Key {
    /// RSA (2048 to 4096 bits), `rsa-sha256`.
    Rsa(RsaKey<Sha256>),
    /// Ed25519, `ed25519-sha256`.
    Ed25519(Ed25519Key),
}

/// Loads the PEM private key at `path` for `algorithm`: PKCS#8 for either
/// algorithm, PKCS#1 for RSA. The error names the file and says why.
pub fn load_key(path: &Path, algorithm: DkimAlgorithm) -> Result<Key, KeyError> {
    let fail = |reason: String| KeyError {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    crate::secret_file::check_key(path).map_err(|e| fail(e.to_string()))?;
    let der = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        fail(
            "no unencrypted PEM private key (BEGIN PRIVATE KEY, or BEGIN RSA PRIVATE KEY for RSA)"
                .into(),
        )
    })?;
    match algorithm {
        DkimAlgorithm::RsaSha256 => {
            if matches!(der, PrivateKeyDer::Sec1(_)) {
                return Err(fail("an EC key, not an RSA key (algorithm = \"rsa-sha256\")".into()));
            }
            RsaKey::<Sha256>::from_key_der(der).map(Key::Rsa).map_err(|e| {
                fail(format!(
                    "not an RSA private key of 2048 to 4096 bits (algorithm = \"rsa-sha256\"): {e}"
                ))
            })
        }
        DkimAlgorithm::Ed25519Sha256 => match der {
            PrivateKeyDer::Pkcs8(k) => Ed25519Key::from_pkcs8_maybe_unchecked_der(
                k.secret_pkcs8_der(),
            )
            .map(Key::Ed25519)
            .map_err(|e| {
                fail(format!(
                    "not an Ed25519 PKCS#8 key (algorithm = \"ed25519-sha256\"): {e}"
                ))
            }),
            _ => Err(fail(
                "an Ed25519 key must be PKCS#8 (BEGIN PRIVATE KEY) (algorithm = \"ed25519-sha256\")"
                    .into(),
            )),
        },
    }
}

/// One configured signer.
enum Signer {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

impl Signer {
    /// The `DKIM-Signature:` field for `message`, CRLF-terminated.
    fn field(&self, message: &[u8]) -> mail_auth::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(600);
        match self {
            Signer::Rsa(s) => s.sign(message)?.write_header(&mut out),
            Signer::Ed25519(s) => s.sign(message)?.write_header(&mut out),
        }
        Ok(out)
    }
}

struct Entry {
    /// Signing domain in lower-case IDNA ASCII form, no trailing dot.
    domain: String,
    signer: Signer,
}

/// The `[[dkim]]` signers, built once at start.
#[derive(Default)]
pub struct DkimSigners {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for DkimSigners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.domain))
            .finish()
    }
}

/// A domain as compared here: IDNA ASCII, lower case, no trailing dot.
fn normal(domain: &str) -> String {
    ascii_domain(domain.trim().trim_end_matches('.')).to_ascii_lowercase()
}

impl DkimSigners {
    /// Loads every configured key; the first that does not load is the error.
    pub fn new(config: &[DkimConfig]) -> Result<Self, SetupError> {
        let mut entries = Vec::with_capacity(config.len());
        for (index, c) in config.iter().enumerate() {
            let key = load_key(&c.key_file, c.algorithm).map_err(|source| SetupError {
                index,
                domain: c.domain.clone(),
                selector: c.selector.clone(),
                source,
            })?;
            let domain = normal(&c.domain);
            let headers = c.headers.iter().map(|h| h.trim().to_string());
            let signer = match key {
                Key::Rsa(k) => Signer::Rsa(
                    DkimSigner::from_key(k)
                        .domain(domain.clone())
                        .selector(c.selector.clone())
                        .headers(headers)
                        .header_canonicalization(Canonicalization::Relaxed)
                        .body_canonicalization(Canonicalization::Relaxed),
                ),
                Key::Ed25519(k) => Signer::Ed25519(
                    DkimSigner::from_key(k)
                        .domain(domain.clone())
                        .selector(c.selector.clone())
                        .headers(headers)
                        .header_canonicalization(Canonicalization::Relaxed)
                        .body_canonicalization(Canonicalization::Relaxed),
                ),
            };
            tracing::info!(
                domain = %domain,
                selector = %c.selector,
                algorithm = c.algorithm.as_str(),
                "DKIM signing key loaded"
            );
            entries.push(Entry { domain, signer });
        }
        Ok(DkimSigners { entries })
    }

    /// True when no domain is configured for signing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The signers for mail from `from`: those whose domain is `from` or
    /// its closest configured parent (several when they share that domain).
    fn matching<'a>(&'a self, from: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        let covers = move |d: &str| {
            from == d
                || (from.len() > d.len()
                    && from.ends_with(d)
                    && from.as_bytes()[from.len() - d.len() - 1] == b'.')
        };
        let best = self
            .entries
            .iter()
            .filter(|e| covers(&e.domain))
            .map(|e| e.domain.len())
            .max();
        self.entries
            .iter()
            .filter(move |e| Some(e.domain.len()) == best && covers(&e.domain))
    }

    /// `message` with a `DKIM-Signature:` field in front for each signer of
    /// its From domain; returned as it was when none applies, the From field
    /// cannot be read, or signing fails (logged with `id` only: never an
    /// address, subject or content).
    ///
    /// This is CPU work over the whole message (the body hash), done on the
    /// caller's thread.
    pub fn sign(&self, message: Vec<u8>, id: QueueId) -> Vec<u8> {
        if self.entries.is_empty() {
            return message;
        }
        let from = match from_domain(&message) {
            Ok(d) => d,
            Err(why) => {
                tracing::debug!(id = %id, reason = why, "not DKIM-signed");
                return message;
            }
        };
        let mut fields = Vec::new();
        for e in self.matching(&from) {
            match e.signer.field(&message) {
                Ok(f) => fields.extend_from_slice(&f),
                Err(err) => {
                    tracing::warn!(id = %id, domain = %e.domain, error = %err, "DKIM signing failed; this signature is left out")
                }
            }
        }
        if fields.is_empty() {
            tracing::debug!(id = %id, "not DKIM-signed: no [[dkim]] key for the From domain");
            return message;
        }
        let mut out = Vec::with_capacity(fields.len() + message.len());
        out.extend_from_slice(&fields);
        out.extend_from_slice(&message);
        out
    }
}

/// The domain of the message's RFC 5322 From (normalised as [`normal`]),
/// or why there is none to sign for.
fn from_domain(message: &[u8]) -> Result<String, &'static str> {
    let (fields, _) = crate::model::header_fields::split(message);
    let mut from = fields.iter().filter(|f| {
        let name_end = f.iter().position(|&b| b == b':').unwrap_or(f.len());
        f[..name_end].trim_ascii().eq_ignore_ascii_case(b"from")
    });
    let field = from.next().ok_or("no From field")?;
    if from.next().is_some() {
        return Err("more than one From field");
    }
    let parsed = mail_parser::MessageParser::default()
        .parse_headers(*field)
        .ok_or("From field cannot be parsed")?;
    let addresses = parsed.from().ok_or("From field cannot be parsed")?;
    let mut domain: Option<String> = None;
    for a in addresses.iter() {
        let d = a
            .address()
            .and_then(|a| a.rsplit_once('@'))
            .map(|(_, d)| normal(d))
            .filter(|d| !d.is_empty())
            .ok_or("a From mailbox has no domain")?;
        match &domain {
            Some(prev) if *prev != d => return Err("From mailboxes in different domains"),
            _ => domain = Some(d),
        }
    }
    domain.ok_or("From has no mailbox")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a key file as an admin would: readable by its owner only.
    fn write_key(path: &Path, pem: impl AsRef<[u8]>) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, pem).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::common::verify::DomainKey;
    use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
    use mail_auth::{
        AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
    };
    use std::borrow::Borrow;
    use std::collections::HashMap;
    use std::hash::Hash;
    use std::sync::Mutex;

    /// A TXT cache filled with the test's key records: mail-auth consults
    /// it before DNS, so verification never leaves the process.
    struct Records(Mutex<HashMap<Box<str>, Txt>>);

    impl ResolverCache<Box<str>, Txt> for Records {
        fn get<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            crate::locks::lock(&self.0).get(name).cloned()
        }

        fn remove<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            crate::locks::lock(&self.0).remove(name)
        }

        fn insert(&self, key: Box<str>, value: Txt, _: std::time::Instant) {
            crate::locks::lock(&self.0).insert(key, value);
        }
    }

    /// The DKIM results mail-auth's verifier gives `message`, with the key
    /// records `(name, TXT)` standing in for DNS.
    async fn verify(message: &[u8], records: &[(&str, String)]) -> Vec<DkimResult> {
        // No name servers: a lookup the records do not answer fails at once.
        let auth = MessageAuthenticator::new(
            ResolverConfig::from_parts(None, vec![], vec![]),
            ResolverOpts::default(),
        )
        .unwrap();
        let cache = Records(Mutex::new(HashMap::new()));
        for (name, txt) in records {
            let key = DomainKey::parse(txt.as_bytes()).expect("key record parses");
            cache.insert(
                format!("{name}.").into_boxed_str(),
                Txt::from(key),
                std::time::Instant::now() + std::time::Duration::from_secs(3600),
            );
        }
        let msg = AuthenticatedMessage::parse(message).expect("message parses");
        auth.verify_dkim(Parameters::new(&msg).with_txt_cache(&cache))
            .await
            .iter()
            .map(|o| o.result().clone())
            .collect()
    }

    /// Base64 of `bytes` (the body of a PEM block is exactly that).
    fn b64(bytes: &[u8]) -> String {
        der::pem::encode_string("K", der::pem::LineEnding::LF, bytes)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect()
    }

    /// A fresh RSA key as (PKCS#8 PEM, PKCS#1 PEM, DKIM TXT record).
    fn rsa_key() -> (String, String, String) {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string();
        let spki = key.to_public_key().to_public_key_der().unwrap();
        let txt = format!("v=DKIM1; k=rsa; p={}", b64(spki.as_bytes()));
        (pkcs8, pkcs1, txt)
    }

    /// A fresh Ed25519 key as (PKCS#8 PEM, DKIM TXT record).
    fn ed25519_key() -> (String, String) {
        let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
        let public = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap().public_key();
        let pem = der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &pkcs8).unwrap();
        (pem, format!("v=DKIM1; k=ed25519; p={}", b64(&public)))
    }

    fn entry(
        dir: &Path,
        domain: &str,
        selector: &str,
        pem: &str,
        algorithm: DkimAlgorithm,
    ) -> DkimConfig {
        let key_file = dir.join(format!("{selector}.{domain}.pem"));
        write_key(&key_file, pem);
        DkimConfig {
            domain: domain.into(),
            selector: selector.into(),
            key_file,
            algorithm,
            headers: DkimConfig::default_headers(),
        }
    }

    /// An outgoing message as deliver hands it over: our Received first, CRLF.
    fn message(from: &str, body: &str) -> Vec<u8> {
        format!(
            "Received: from client.hospital.test (127.0.0.1) by gw.sealgate.test (Sealgate) id 1;\r\n\
             \tSun, 22 Nov 2026 10:00:00 +0000\r\n\
             From: \"Nurse\" <{from}>\r\n\
             To: Dr Who <doctor@clinic.test>\r\n\
             Subject: Lab  results\r\n\
             Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n\
             Message-ID: <dkim-unit@hospital.test>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             \r\n\
             {body}"
        )
        .into_bytes()
    }

    fn id() -> QueueId {
        QueueId::generate()
    }

    #[tokio::test]
    async fn rsa_and_ed25519_signatures_verify_and_a_tampered_body_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (rsa_pem, _, rsa_txt) = rsa_key();
        let (ed_pem, ed_txt) = ed25519_key();
        let signers = DkimSigners::new(&[
            entry(
                dir.path(),
                "hospital.test",
                "rsa",
                &rsa_pem,
                DkimAlgorithm::RsaSha256,
            ),
            entry(
                dir.path(),
                "hospital.test",
                "ed",
                &ed_pem,
                DkimAlgorithm::Ed25519Sha256,
            ),
        ])
        .unwrap();
        let records = [
            ("rsa._domainkey.hospital.test", rsa_txt),
            ("ed._domainkey.hospital.test", ed_txt),
        ];
        let original = message("nurse@hospital.test", "The results are in.\r\nSee you.\r\n");
        let signed = signers.sign(original.clone(), id());
        assert!(
            signed.ends_with(&original),
            "the message follows the signatures"
        );
        let head = String::from_utf8_lossy(&signed[..signed.len() - original.len()]).into_owned();
        assert_eq!(head.matches("DKIM-Signature:").count(), 2, "{head}");
        assert!(
            head.contains("a=rsa-sha256") && head.contains("a=ed25519-sha256"),
            "{head}"
        );
        assert!(
            head.contains("d=hospital.test") && head.contains("c=relaxed/relaxed"),
            "{head}"
        );
        assert!(
            !head.to_ascii_lowercase().contains("received"),
            "Received is not signed: {head}"
        );
        assert!(head.ends_with("\r\n"), "{head:?}");

        let results = verify(&signed, &records).await;
        assert_eq!(results, vec![DkimResult::Pass, DkimResult::Pass]);

        // Relaxed canonicalisation: a mailbox copy with LF line endings and
        // a receiving MTA's fields on top still verifies.
        let mailbox = [
            b"Return-Path: <nurse@hospital.test>\nDelivered-To: doctor@clinic.test\n".as_slice(),
            &String::from_utf8_lossy(&signed)
                .replace("\r\n", "\n")
                .into_bytes(),
        ]
        .concat();
        assert_eq!(
            verify(&mailbox, &records).await,
            vec![DkimResult::Pass, DkimResult::Pass]
        );

        // One changed body byte: neither verifies (mail-auth calls a body
        // hash mismatch "neutral"; either way it is not a pass).
        let text = String::from_utf8_lossy(&signed).replace("results are in", "results are IN");
        let results = verify(text.as_bytes(), &records).await;
        let bad_body = DkimResult::Neutral(mail_auth::Error::Dkim(
            mail_auth::dkim::DkimError::FailedBodyHashMatch,
        ));
        assert_eq!(results, vec![bad_body.clone(), bad_body]);
        // A changed signed header: fails too.
        let text = String::from_utf8_lossy(&signed)
            .replace("Subject: Lab  results", "Subject: Lab results!");
        let results = verify(text.as_bytes(), &records).await;
        assert!(
            results.iter().all(|r| matches!(r, DkimResult::Fail(_))),
            "{results:?}"
        );
    }

    #[tokio::test]
    async fn pkcs1_rsa_key_signs_for_a_subdomain_and_the_most_specific_domain_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (_, parent_pkcs1, parent_txt) = rsa_key();
        let (lab_pem, lab_txt) = ed25519_key();
        let signers = DkimSigners::new(&[
            entry(
                dir.path(),
                "Hospital.Test.",
                "sel",
                &parent_pkcs1,
                DkimAlgorithm::RsaSha256,
            ),
            entry(
                dir.path(),
                "lab.hospital.test",
                "lab",
                &lab_pem,
                DkimAlgorithm::Ed25519Sha256,
            ),
        ])
        .unwrap();
        let records = [
            ("sel._domainkey.hospital.test", parent_txt),
            ("lab._domainkey.lab.hospital.test", lab_txt),
        ];

        // mail.hospital.test has no key of its own: the parent signs.
        let signed = signers.sign(message("nurse@MAIL.hospital.test", "Hi\r\n"), id());
        let text = String::from_utf8_lossy(&signed).into_owned();
        assert_eq!(text.matches("DKIM-Signature:").count(), 1, "{text}");
        assert!(
            text.contains("d=hospital.test") && text.contains("s=sel"),
            "{text}"
        );
        assert_eq!(verify(&signed, &records).await, vec![DkimResult::Pass]);

        // x.lab.hospital.test: lab.hospital.test is closer than hospital.test.
        let signed = signers.sign(message("tech@x.lab.hospital.test", "Hi\r\n"), id());
        let text = String::from_utf8_lossy(&signed).into_owned();
        assert_eq!(text.matches("DKIM-Signature:").count(), 1, "{text}");
        assert!(text.contains("d=lab.hospital.test"), "{text}");
        assert_eq!(verify(&signed, &records).await, vec![DkimResult::Pass]);
    }

    #[test]
    fn messages_without_a_signer_or_a_readable_from_are_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let (pem, _) = ed25519_key();
        let signers = DkimSigners::new(&[entry(
            dir.path(),
            "hospital.test",
            "ed",
            &pem,
            DkimAlgorithm::Ed25519Sha256,
        )])
        .unwrap();
        for m in [
            message("someone@clinic.test", "Hi\r\n"),
            // A look-alike, not a subdomain.
            message("someone@evilhospital.test", "Hi\r\n"),
            b"Subject: no From\r\n\r\nHi\r\n".to_vec(),
            b"From: a@hospital.test\r\nFrom: b@hospital.test\r\n\r\nHi\r\n".to_vec(),
            b"From: undisclosed\r\n\r\nHi\r\n".to_vec(),
            b"From: a@hospital.test, b@clinic.test\r\n\r\nHi\r\n".to_vec(),
        ] {
            assert_eq!(signers.sign(m.clone(), id()), m);
        }
        // No [[dkim]] at all: nothing to do.
        let m = message("nurse@hospital.test", "Hi\r\n");
        assert_eq!(DkimSigners::default().sign(m.clone(), id()), m);
    }

    #[test]
    fn from_domain_reads_display_names_groups_and_idn() {
        let d = |h: &str| from_domain(format!("{h}\r\nTo: x@y.test\r\n\r\nbody\r\n").as_bytes());
        assert_eq!(
            d("From: \"Doe, Jane\" <jane@Hospital.Test>").unwrap(),
            "hospital.test"
        );
        assert_eq!(d("FROM :jane@hospital.test").unwrap(), "hospital.test");
        assert_eq!(
            d("From: Ward <a@hospital.test>,\r\n b@hospital.test").unwrap(),
            "hospital.test"
        );
        assert_eq!(d("From: nurse@bücher.test").unwrap(), "xn--bcher-kva.test");
        assert!(d("From: a@hospital.test, b@clinic.test").is_err());
        assert!(d("Sender: a@hospital.test").is_err());
    }

    #[test]
    fn key_errors_name_the_file_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = load_key(&missing, DkimAlgorithm::RsaSha256)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("missing.pem") && e.contains("cannot read"),
            "{e}"
        );

        let junk = dir.path().join("junk.pem");
        write_key(&junk, "not a key");
        let e = load_key(&junk, DkimAlgorithm::RsaSha256)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("junk.pem") && e.contains("no unencrypted PEM private key"),
            "{e}"
        );

        // An Ed25519 key where RSA is configured, and the other way round.
        let (ed_pem, _) = ed25519_key();
        let ed = dir.path().join("ed.pem");
        write_key(&ed, &ed_pem);
        let e = load_key(&ed, DkimAlgorithm::RsaSha256)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("ed.pem") && e.contains("not an RSA private key"),
            "{e}"
        );
        let (_, pkcs1, _) = rsa_key();
        let rsa = dir.path().join("rsa.pem");
        write_key(&rsa, &pkcs1);
        let e = load_key(&rsa, DkimAlgorithm::Ed25519Sha256)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("rsa.pem") && e.contains("must be PKCS#8"), "{e}");

        let e = DkimSigners::new(&[DkimConfig {
            domain: "hospital.test".into(),
            selector: "s1".into(),
            key_file: missing,
            algorithm: DkimAlgorithm::RsaSha256,
            headers: vec!["From".into()],
        }])
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.starts_with("dkim[0] (domain hospital.test, selector s1): DKIM key file "),
            "{e}"
        );
    }
}
