//! OpenPGP sealing as PGP/MIME (RFC 3156) with sequoia-openpgp.
//!
//! The MIME entity of the message (`seal::entity::split`) is encrypted, as
//! one binary literal packet, to every valid transport-encryption subkey of
//! every recipient, ASCII-armoured, and wrapped in `multipart/encrypted`
//! with the outside header fields kept. With an organisation signer the
//! entity is signed and then encrypted in the same OpenPGP message
//! (RFC 3156 §6.2, combined method).
//!
//! The packet format follows the recipients' keys (RFC 9580): SEIPDv2 with
//! an AEAD ciphersuite every recipient lists (AES-128/OCB, mandatory to
//! implement, when none is listed) if all of them announce SEIPDv2, else
//! SEIPDv1 with a cipher they all list. OCB needs sequoia's OpenSSL backend;
//! Debian's Nettle 3.8 has none, and sequoia then silently used GCM.
//!
//! Compression is deliberately off (no Compressor in the writer stack and
//! sequoia's `compression` feature not built): compressing before
//! encrypting lets message length leak content (CRIME-style), gives
//! recipients a decompression-bomb surface, and pulls zlib/bzip2 code into
//! a process that handles untrusted input; most attachments (PDF, Office,
//! images) are compressed already, so the size gain is small.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::cert::Preferences;
use openpgp::policy::{Policy, StandardPolicy};
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::types::{AEADAlgorithm, DataFormat, Features, RevocationStatus, SymmetricAlgorithm};
use openpgp::KeyHandle;

use super::armour::armoured;
use super::entity::{split, Split};
use crate::keys::pgp_key::{crypto, parse_cert, transport_keys};
pub use crate::keys::pgp_key::{KeyProblem, PgpError, RecipientKey};

/// How a PGP seal is made.
#[derive(Debug, Clone, Default)]
pub struct PgpOptions {
    /// Protected headers: the outer Subject becomes "...", the real one goes inside.
    pub protect_subject: bool,
    /// Organisation key that signs the entity before it is encrypted.
    pub signer: Option<Arc<PgpSigner>>,
}

/// An organisation key (with unencrypted secret material) that signs seals.
#[derive(Clone)]
pub struct PgpSigner {
    cert: Cert,
}

impl fmt::Debug for PgpSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material, only which key it is.
        f.debug_struct("PgpSigner")
            .field("fingerprint", &self.cert.fingerprint().to_hex())
            .finish()
    }
}

impl PgpSigner {
    /// Reads a transferable secret key (armoured or binary) that can sign now.
    pub fn from_tsk(bytes: &[u8]) -> Result<Self, PgpError> {
        let cert = parse_cert(bytes)?;
        if !cert.is_tsk() {
            return Err(PgpError::NoSecretKey);
        }
        let signer = PgpSigner { cert };
        // Fail at start-up rather than on the first message.
        signer.keypair(SystemTime::now())?;
        Ok(signer)
    }

    /// The signing key's certificate fingerprint (hex, upper-case).
    pub fn fingerprint(&self) -> String {
        self.cert.fingerprint().to_hex()
    }

    /// The signing key pair valid at `now`.
    fn keypair(&self, now: SystemTime) -> Result<openpgp::crypto::KeyPair, PgpError> {
        let policy = StandardPolicy::new();
        let vc = self
            .cert
            .with_policy(&policy, now)
            .map_err(|e| PgpError::CannotSign(format!("{e:#}")))?;
        if let RevocationStatus::Revoked(_) = vc.revocation_status() {
            return Err(PgpError::CannotSign(KeyProblem::Revoked.to_string()));
        }
        if vc.alive().is_err() {
            return Err(PgpError::CannotSign(KeyProblem::Expired.to_string()));
        }
        let ka = vc
            .keys()
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .unencrypted_secret()
            .next()
            .ok_or_else(|| {
                PgpError::CannotSign("no valid signing key with unencrypted secret material".into())
            })?;
        ka.key()
            .clone()
            .into_keypair()
            .map_err(|e| PgpError::CannotSign(format!("{e:#}")))
    }
}

/// The name of a header field (before the colon), as bytes.
fn field_name(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    let name = &field[..end];
    let trimmed = name.len()
        - name
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    &name[..trimmed]
}

/// Outside fields copied into the entity for protected headers: what a
/// reader sees, so the client shows the authentic (signed, encrypted) values.
const PROTECTED: &[&str] = &[
    "Subject",
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Date",
    "Message-ID",
];

/// Applies protected headers (draft-ietf-lamps-header-protection, the
/// `protected-headers="v1"` form Thunderbird and Enigmail read): copies the
/// user-facing outside fields into the entity header, marks its
/// Content-Type, and replaces the outer Subject with "...". The entity body
/// is not touched.
fn protect_headers(split: &mut Split) -> Vec<u8> {
    let entity = &split.entity;
    let mut fields: Vec<Vec<u8>> = Vec::new();
    let mut pos = 0;
    // The entity made by `split` is CRLF-only: fields, an empty line, the body.
    while pos < entity.len() {
        let end = entity[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(entity.len(), |i| pos + i + 2);
        let line = &entity[pos..end];
        if line == b"\r\n" {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) && !fields.is_empty() {
            if let Some(last) = fields.last_mut() {
                last.extend_from_slice(line);
            }
        } else {
            fields.push(line.to_vec());
        }
        pos = end;
    }
    let body = &entity[pos.min(entity.len())..];

    let mut out: Vec<u8> = Vec::with_capacity(entity.len() + 512);
    for f in &split.outer {
        if PROTECTED
            .iter()
            .any(|n| field_name(f).eq_ignore_ascii_case(n.as_bytes()))
        {
            out.extend_from_slice(f);
        }
    }
    for mut f in fields {
        if field_name(&f).eq_ignore_ascii_case(b"content-type") {
            // Drop the CRLF and any trailing ';' so the new parameter follows
            // cleanly, on its own folded line to keep lines short.
            while matches!(f.last(), Some(b'\r' | b'\n' | b' ' | b'\t' | b';')) {
                f.pop();
            }
            f.extend_from_slice(b";\r\n protected-headers=\"v1\"\r\n");
        }
        out.extend_from_slice(&f);
    }
    out.extend_from_slice(body);

    let mut replaced = false;
    split.outer.retain_mut(|f| {
        if !field_name(f).eq_ignore_ascii_case(b"subject") {
            return true;
        }
        if replaced {
            return false;
        }
        replaced = true;
        *f = b"Subject: ...\r\n".to_vec();
        true
    });
    out
}

/// How a message is encrypted: one packet format and algorithms that every
/// recipient accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// SEIPDv1 (CFB with MDC, v3 PKESKs) with this cipher: some recipient
    /// does not announce SEIPDv2 (every GnuPG 2.2 key, for one).
    V1(SymmetricAlgorithm),
    /// SEIPDv2 (AEAD, v6 PKESKs) with this ciphersuite.
    V2(SymmetricAlgorithm, AEADAlgorithm),
}

/// RFC 9580 makes AES-128 and OCB mandatory to implement, so every key
/// that announces SEIPDv2 accepts this suite, listed or not.
const IMPLICIT_SUITE: (SymmetricAlgorithm, AEADAlgorithm) =
    (SymmetricAlgorithm::AES128, AEADAlgorithm::OCB);

/// Likewise for SEIPDv1: AES-128 is implicitly on every cipher list.
const IMPLICIT_CIPHER: SymmetricAlgorithm = SymmetricAlgorithm::AES128;

/// The mode for one message to all of `certs`. SEIPDv2 only if every
/// recipient announces it, with the first ciphersuite of the first
/// recipient's list that the others list too and we can use; else SEIPDv1
/// with a cipher chosen the same way. Preferences are those of the primary
/// user ID, or of the direct-key signature (v6 keys, keys without user IDs).
fn choose_mode(certs: &[ValidCert<'_>], policy: &dyn Policy) -> Mode {
    let all_v2 = !certs.is_empty()
        && certs
            .iter()
            .all(|vc| vc.features().is_some_and(|f| f.supports_seipdv2()));
    if all_v2 {
        let lists: Vec<_> = certs
            .iter()
            .map(|vc| with_implicit(vc.preferred_aead_ciphersuites(), IMPLICIT_SUITE))
            .collect();
        // None only if this OpenSSL cannot do AES-128/OCB (FIPS mode): SEIPDv1 then.
        if let Some(&(cipher, aead)) = first_common(&lists, |&(c, a)| suite_ok(c, a, policy)) {
            return Mode::V2(cipher, aead);
        }
    }
    let lists: Vec<_> = certs
        .iter()
        .map(|vc| with_implicit(vc.preferred_symmetric_algorithms(), IMPLICIT_CIPHER))
        .collect();
    let cipher = first_common(&lists, |&c| cipher_ok(c, policy)).map_or(IMPLICIT_CIPHER, |&c| c);
    Mode::V1(cipher)
}

/// A recipient's preference list with the implicit entry at its end.
fn with_implicit<T: Copy + PartialEq>(listed: Option<&[T]>, implicit: T) -> Vec<T> {
    let mut list = listed.unwrap_or_default().to_vec();
    if !list.contains(&implicit) {
        list.push(implicit);
    }
    list
}

/// The first entry of the first list that is `ok` and in every other list.
fn first_common<T: PartialEq>(lists: &[Vec<T>], ok: impl Fn(&T) -> bool) -> Option<&T> {
    let (first, rest) = lists.split_first()?;
    first
        .iter()
        .find(|c| ok(c) && rest.iter().all(|l| l.contains(c)))
}

/// Whether we can encrypt with `cipher`: the backend has it, the policy allows it.
fn cipher_ok(cipher: SymmetricAlgorithm, policy: &dyn Policy) -> bool {
    cipher.is_supported() && policy.symmetric_algorithm(cipher).is_ok()
}

/// Whether we can encrypt with the ciphersuite; OpenSSL does OCB and GCM with AES only.
fn suite_ok(cipher: SymmetricAlgorithm, aead: AEADAlgorithm, policy: &dyn Policy) -> bool {
    matches!(
        cipher,
        SymmetricAlgorithm::AES128 | SymmetricAlgorithm::AES192 | SymmetricAlgorithm::AES256
    ) && cipher_ok(cipher, policy)
        && aead.is_supported()
        && policy.aead_algorithm(aead).is_ok()
}

/// Encrypts (and optionally signs) `entity` for `recipients` at `now`,
/// appending the ASCII-armoured OpenPGP message, CRLF lines, to `out`.
fn encrypt(
    entity: &[u8],
    recipients: &[&RecipientKey],
    signer: Option<&PgpSigner>,
    now: SystemTime,
    out: &mut Vec<u8>,
) -> Result<(), PgpError> {
    let policy = StandardPolicy::new();
    let mut valid = Vec::with_capacity(recipients.len());
    for r in recipients {
        let vc = r
            .valid(&policy, now)
            .map_err(|problem| PgpError::Unusable {
                fingerprint: r.fingerprint(),
                problem,
            })?;
        valid.push(vc);
    }
    let mode = choose_mode(&valid, &policy);
    // Sequoia would pick the packet versions from the keys' features and the
    // AEAD mode from its backend alone; the features handed over here make
    // it follow `mode`. v6 PKESKs name the key by fingerprint, v3 by key ID.
    let (features, by_fingerprint) = match mode {
        Mode::V1(_) => (Features::empty().set_seipdv1(), false),
        Mode::V2(..) => (Features::empty().set_seipdv2(), true),
    };
    // Every valid transport subkey of every recipient: a recipient with
    // several (e.g. during a rollover) can open it with any of them.
    let keys: Vec<Recipient> = valid
        .iter()
        .flat_map(transport_keys)
        .map(|ka| {
            let key = ka.key();
            let handle: KeyHandle = if by_fingerprint {
                key.fingerprint().into()
            } else {
                key.keyid().into()
            };
            Recipient::new(features.clone(), handle, key)
        })
        .collect();
    let keypair = signer.map(|s| s.keypair(now)).transpose()?;

    // The armour runs beside the encryption for a big entity (armour.rs).
    armoured(out, entity.len(), |sink| -> Result<(), PgpError> {
        let message = Message::new(sink);
        let encryptor = match mode {
            Mode::V1(cipher) => Encryptor::for_recipients(message, keys).symmetric_algo(cipher),
            Mode::V2(cipher, aead) => Encryptor::for_recipients(message, keys)
                .symmetric_algo(cipher)
                .aead_algo(aead),
        };
        let mut message = encryptor.build().map_err(crypto)?;
        if let Some(kp) = keypair {
            let mut s = Signer::new(message, kp).map_err(crypto)?;
            // Intended-recipient fingerprints stop the signed plaintext
            // from being re-encrypted to someone else as if we sent it.
            for r in recipients {
                s = s.add_intended_recipient(&r.cert);
            }
            message = s.build().map_err(crypto)?;
        }
        // Binary literal data: the recipient gets the entity back byte for
        // byte, with no line-ending conversion.
        let mut w = LiteralWriter::new(message)
            .format(DataFormat::Binary)
            .build()
            .map_err(crypto)?;
        w.write_all(entity).map_err(crypto)?;
        w.finalize().map_err(crypto)?;
        Ok(())
    })
}

/// A fresh boundary; "=_" cannot occur in armour (base64 lines, "=" only
/// before the checksum) so no line of the body can look like it.
fn boundary() -> String {
    let r: [u8; 16] = rand::random();
    format!("=_sealgate-pgp-{}", hex::encode(r))
}

/// Seals `message` (a whole RFC 5322 message, CRLF) for `recipients` as PGP/MIME.
///
/// The MIME entity (`seal::entity::split`) is encrypted to every recipient's
/// valid transport-encryption subkeys and wrapped as `multipart/encrypted;
/// protocol="application/pgp-encrypted"` with the two parts of RFC 3156 §4;
/// the outside fields are kept. With a signer: sign-then-encrypt in one
/// OpenPGP message (RFC 3156 §6.2). Returns CRLF bytes, lines ≤ 998.
pub fn seal(
    message: &[u8],
    recipients: &[&RecipientKey],
    opts: &PgpOptions,
) -> Result<Vec<u8>, PgpError> {
    seal_at(message, recipients, opts, SystemTime::now())
}

/// `seal` with the key-validity time given (tests, re-sealing held mail).
fn seal_at(
    message: &[u8],
    recipients: &[&RecipientKey],
    opts: &PgpOptions,
    now: SystemTime,
) -> Result<Vec<u8>, PgpError> {
    if recipients.is_empty() {
        return Err(PgpError::NoRecipients);
    }
    let mut parts = split(message);
    let entity = if opts.protect_subject {
        protect_headers(&mut parts)
    } else {
        std::mem::take(&mut parts.entity)
    };
    let b = boundary();
    let fields = [format!(
        "Content-Type: multipart/encrypted;\r\n protocol=\"application/pgp-encrypted\";\r\n boundary=\"{b}\"\r\n"
    )];
    // Room for the armour (4/3 of the entity and some packets, 66 bytes a
    // line for 48 in) and the MIME parts around it: the message is built in
    // one buffer, with no copy of the armour.
    let mut out = parts.head(&fields, entity.len() / 48 * 66 + 2048);
    out.extend_from_slice(b"This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n");
    out.extend_from_slice(format!("--{b}\r\n").as_bytes());
    out.extend_from_slice(b"Content-Type: application/pgp-encrypted\r\n");
    out.extend_from_slice(b"Content-Description: PGP/MIME version identification\r\n\r\n");
    out.extend_from_slice(b"Version: 1\r\n\r\n");
    out.extend_from_slice(format!("--{b}\r\n").as_bytes());
    out.extend_from_slice(b"Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n");
    out.extend_from_slice(b"Content-Description: OpenPGP encrypted message\r\n");
    out.extend_from_slice(b"Content-Disposition: inline; filename=\"encrypted.asc\"\r\n");
    out.extend_from_slice(b"Content-Transfer-Encoding: 7bit\r\n\r\n");
    encrypt(&entity, recipients, opts.signer.as_deref(), now, &mut out)?;
    out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders, PartType};
    use openpgp::parse::Parse;
    use std::process::{Command, Output, Stdio};
    use std::time::Duration;

    fn have_gpg() -> bool {
        Command::new("gpg")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Skips the test (with a message saying how to get gpg) if gpg is missing.
    macro_rules! require_gpg {
        () => {
            if !have_gpg() {
                eprintln!("SKIPPED: the gpg binary is missing; `scripts/install-deps test` installs gnupg");
                return;
            }
        };
    }

    /// A throw-away GNUPGHOME; its agent is stopped on drop.
    struct Gpg {
        home: tempfile::TempDir,
    }

    impl Gpg {
        fn new() -> Self {
            let home = tempfile::Builder::new().prefix("sg-gpg").tempdir().unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700))
                    .unwrap();
            }
            Gpg { home }
        }

        fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
            let mut child = Command::new("gpg")
                .env("GNUPGHOME", self.home.path())
                .args(["--batch", "--no-tty", "--pinentry-mode", "loopback"])
                .args(["--passphrase", ""])
                .args(args)
                .stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run gpg");
            if let Some(input) = stdin {
                child.stdin.take().unwrap().write_all(input).unwrap();
            }
            child.wait_with_output().unwrap()
        }

        fn ok(&self, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
            let out = self.run(args, stdin);
            assert!(
                out.status.success(),
                "gpg {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }

        /// Makes a key with `--quick-gen-key` (plus `extra` options) and returns its fingerprint.
        /// A key pair for "Patient <p@example.test>" with `algo`, never
        /// expiring: its fingerprint and the parsed public key.
        fn patient(&self, algo: &str) -> (String, RecipientKey) {
            let fpr = self.gen(&[], "Patient <p@example.test>", algo, "default", "never");
            let key = RecipientKey::parse(&self.export(&fpr)).unwrap();
            (fpr, key)
        }

        fn gen(&self, extra: &[&str], uid: &str, algo: &str, usage: &str, expire: &str) -> String {
            let mut args = extra.to_vec();
            args.extend(["--quick-gen-key", uid, algo, usage, expire]);
            self.ok(&args, None);
            let listing = self.ok(&["--with-colons", "--list-keys", "--", uid], None);
            String::from_utf8_lossy(&listing)
                .lines()
                .find_map(|l| {
                    l.strip_prefix("fpr:")
                        .map(|r| r.trim_matches(':').to_string())
                })
                .expect("fingerprint in listing")
        }

        fn export(&self, fpr: &str) -> Vec<u8> {
            self.ok(&["--armor", "--export", fpr], None)
        }

        fn export_secret(&self, fpr: &str) -> Vec<u8> {
            self.ok(&["--export-secret-keys", fpr], None)
        }

        /// Decrypts `armoured`; returns the plaintext and the `--status-fd` lines.
        fn decrypt(&self, armoured: &[u8]) -> (Vec<u8>, String) {
            let input = self.home.path().join("in.asc");
            let output = self.home.path().join("out.bin");
            std::fs::write(&input, armoured).unwrap();
            let _ = std::fs::remove_file(&output);
            let status = self.ok(
                &[
                    "--status-fd",
                    "1",
                    "--output",
                    output.to_str().unwrap(),
                    "--decrypt",
                    input.to_str().unwrap(),
                ],
                None,
            );
            (
                std::fs::read(&output).unwrap(),
                String::from_utf8_lossy(&status).into_owned(),
            )
        }
    }

    impl Drop for Gpg {
        fn drop(&mut self) {
            // Stop the gpg-agent this home started, so tests leave nothing behind.
            let _ = Command::new("gpgconf")
                .env("GNUPGHOME", self.home.path())
                .args(["--kill", "all"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    fn base64_lines(data: &[u8]) -> String {
        String::from_utf8(crate::seal::entity::base64_lines(data)).unwrap()
    }

    fn random_bytes(n: usize) -> Vec<u8> {
        (0..n).map(|_| rand::random::<u8>()).collect()
    }

    /// A multipart/mixed message with a text part and a base64 attachment.
    fn sample_message(attachment: &[u8]) -> Vec<u8> {
        format!(
            "Received: from client.clinic.test by gw.clinic.test;\r\n\tMon, 6 May 2024 07:08:10 +0000\r\n\
             From: Doctor <d@clinic.test>\r\n\
             To: Patient <p@example.test>\r\n\
             Subject: Lab results\r\n\
             Date: Mon, 6 May 2024 07:08:09 +0000\r\n\
             Message-ID: <m1@clinic.test>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed;\r\n boundary=\"mix\"\r\n\
             \r\n\
             --mix\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\
             \r\n\
             Your results are attached. Grüße\r\n\
             \r\n\
             --mix\r\n\
             Content-Type: application/octet-stream; name=\"scan.bin\"\r\n\
             Content-Disposition: attachment; filename=\"scan.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             \r\n\
             {}--mix--\r\n",
            base64_lines(attachment)
        )
        .into_bytes()
    }

    fn assert_crlf_and_short_lines(m: &[u8]) {
        for (i, &b) in m.iter().enumerate() {
            if b == b'\n' {
                assert!(i > 0 && m[i - 1] == b'\r', "bare LF at {i}");
            }
        }
        for line in m.split(|&b| b == b'\n') {
            assert!(line.len() <= 999, "line longer than 998: {}", line.len());
        }
    }

    /// Checks the outer PGP/MIME structure and returns the armoured part.
    fn armoured_part(sealed: &[u8], subject: &str) -> Vec<u8> {
        assert_crlf_and_short_lines(sealed);
        let msg = MessageParser::default()
            .parse(sealed)
            .expect("parse sealed");
        let ct = msg.content_type().expect("content type");
        assert_eq!(ct.ctype(), "multipart");
        assert_eq!(ct.subtype(), Some("encrypted"));
        assert_eq!(ct.attribute("protocol"), Some("application/pgp-encrypted"));
        assert_eq!(
            msg.from().unwrap().first().unwrap().address(),
            Some("d@clinic.test")
        );
        assert_eq!(
            msg.to().unwrap().first().unwrap().address(),
            Some("p@example.test")
        );
        assert!(msg.date().is_some());
        assert_eq!(msg.message_id(), Some("m1@clinic.test"));
        assert_eq!(msg.subject(), Some(subject));
        assert!(sealed.starts_with(b"Received: from client.clinic.test"));
        let PartType::Multipart(ids) = &msg.parts[0].body else {
            panic!("not multipart")
        };
        assert_eq!(ids.len(), 2);
        let first = &msg.parts[ids[0] as usize];
        let second = &msg.parts[ids[1] as usize];
        let ct1 = first.content_type().unwrap();
        assert_eq!(
            (ct1.ctype(), ct1.subtype()),
            ("application", Some("pgp-encrypted"))
        );
        assert!(String::from_utf8_lossy(first.contents()).contains("Version: 1"));
        let ct2 = second.content_type().unwrap();
        assert_eq!(
            (ct2.ctype(), ct2.subtype()),
            ("application", Some("octet-stream"))
        );
        let armoured = second.contents().to_vec();
        assert!(armoured.starts_with(b"-----BEGIN PGP MESSAGE-----"));
        assert!(!String::from_utf8_lossy(sealed).contains("Your results"));
        armoured
    }

    /// The attachment part of a decrypted entity, decoded.
    fn attachment_of(entity: &[u8]) -> Vec<u8> {
        let m = MessageParser::default()
            .parse(entity)
            .expect("parse entity");
        let part = m.attachments().next().expect("an attachment");
        part.contents().to_vec()
    }

    #[test]
    fn seals_a_multipart_message_that_gpg_decrypts_byte_for_byte() {
        require_gpg!();
        let gpg = Gpg::new();
        let (fpr, key) = gpg.patient("default");
        assert_eq!(key.fingerprint(), fpr);
        assert_eq!(key.user_ids(), vec!["Patient <p@example.test>".to_string()]);
        assert_eq!(key.usable_for("p@example.test", SystemTime::now()), Ok(()));

        let attachment = random_bytes(50_001);
        let message = sample_message(&attachment);
        let sealed = seal(&message, &[&key], &PgpOptions::default()).unwrap();
        let armoured = armoured_part(&sealed, "Lab results");
        let (plain, status) = gpg.decrypt(&armoured);
        assert!(status.contains("DECRYPTION_OKAY"), "{status}");
        assert!(!status.contains("GOODSIG"));
        assert_eq!(plain, split(&message).entity, "decrypted entity differs");
        assert_eq!(attachment_of(&plain), attachment);

        // A fresh boundary per seal, and a different ciphertext.
        let again = seal(&message, &[&key], &PgpOptions::default()).unwrap();
        assert_ne!(again, sealed);
    }

    #[test]
    fn protected_subject_goes_inside_and_the_body_is_untouched() {
        require_gpg!();
        let gpg = Gpg::new();
        let (_, key) = gpg.patient("future-default");
        let attachment = random_bytes(3_000);
        let message = sample_message(&attachment);
        let opts = PgpOptions {
            protect_subject: true,
            signer: None,
        };
        let sealed = seal(&message, &[&key], &opts).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("Lab results"));
        let armoured = armoured_part(&sealed, "...");
        let (plain, _) = gpg.decrypt(&armoured);

        let entity = split(&message).entity;
        let body_at = entity.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
        assert!(plain.ends_with(&entity[body_at..]), "entity body changed");
        let inner = MessageParser::default().parse(&plain).unwrap();
        assert_eq!(inner.subject(), Some("Lab results"));
        assert_eq!(
            inner.from().unwrap().first().unwrap().address(),
            Some("d@clinic.test")
        );
        let ct = inner.content_type().unwrap();
        assert_eq!(ct.subtype(), Some("mixed"));
        assert_eq!(ct.attribute("protected-headers"), Some("v1"));
        assert_eq!(ct.attribute("boundary"), Some("mix"));
        assert_eq!(attachment_of(&plain), attachment);
        assert!(!String::from_utf8_lossy(&plain).contains("Received:"));
    }

    #[test]
    fn signed_seal_gives_a_good_signature_from_the_organisation_key() {
        require_gpg!();
        let gpg = Gpg::new();
        let patient = gpg.gen(
            &[],
            "Patient <p@example.test>",
            "future-default",
            "default",
            "never",
        );
        let org = gpg.gen(
            &[],
            "Clinic <seal@clinic.test>",
            "future-default",
            "default",
            "never",
        );
        let key = RecipientKey::parse(&gpg.export(&patient)).unwrap();
        let signer = PgpSigner::from_tsk(&gpg.export_secret(&org)).unwrap();
        assert_eq!(signer.fingerprint(), org);
        let message = sample_message(&random_bytes(1_000));
        let opts = PgpOptions {
            protect_subject: false,
            signer: Some(Arc::new(signer)),
        };
        let sealed = seal(&message, &[&key], &opts).unwrap();
        let (plain, status) = gpg.decrypt(&armoured_part(&sealed, "Lab results"));
        assert_eq!(plain, split(&message).entity);
        let goodsig = status
            .lines()
            .find(|l| l.starts_with("[GNUPG:] GOODSIG "))
            .unwrap_or_else(|| panic!("no GOODSIG in {status}"));
        assert!(
            org.ends_with(goodsig.split(' ').nth(2).unwrap()),
            "{goodsig}"
        );
        assert!(status.contains("[GNUPG:] VALIDSIG "), "{status}");
    }

    #[test]
    fn every_recipient_can_open_a_seal_for_several() {
        require_gpg!();
        let (a, b) = (Gpg::new(), Gpg::new());
        let fa = a.gen(
            &[],
            "A <a@example.test>",
            "future-default",
            "default",
            "never",
        );
        // An RSA key whose only encryption key is a separately added subkey.
        let fb = b.gen(&[], "B <b@example.test>", "rsa2048", "cert,sign", "never");
        b.ok(&["--quick-add-key", &fb, "rsa2048", "encr", "never"], None);
        let ka = RecipientKey::parse(&a.export(&fa)).unwrap();
        let kb = RecipientKey::parse(&b.export(&fb)).unwrap();
        let message = sample_message(&random_bytes(777));
        let sealed = seal(&message, &[&ka, &kb], &PgpOptions::default()).unwrap();
        let armoured = armoured_part(&sealed, "Lab results");
        assert_eq!(a.decrypt(&armoured).0, split(&message).entity);
        assert_eq!(b.decrypt(&armoured).0, split(&message).entity);
    }

    #[test]
    fn address_match_is_case_insensitive_and_exact() {
        require_gpg!();
        let gpg = Gpg::new();
        let (_, key) = gpg.patient("future-default");
        let now = SystemTime::now();
        assert_eq!(key.usable_for("P@Example.TEST", now), Ok(()));
        assert_eq!(key.usable_for("<p@example.test>", now), Ok(()));
        for other in [
            "q@example.test",
            "xp@example.test",
            "p@example.test.evil",
            "",
            "@",
        ] {
            assert_eq!(
                key.usable_for(other, now),
                Err(KeyProblem::NoMatchingUserId),
                "{other}"
            );
        }
        // Before the key existed there is no valid binding signature.
        let past = now - Duration::from_secs(10 * 365 * 86_400);
        assert!(matches!(
            key.usable_for("p@example.test", past),
            Err(KeyProblem::Invalid(_))
        ));
    }

    #[test]
    fn an_expired_key_is_refused() {
        require_gpg!();
        let gpg = Gpg::new();
        let fpr = gpg.gen(
            &["--faked-system-time", "20200101T000000"],
            "Old <old@example.test>",
            "future-default",
            "default",
            "1d",
        );
        let key = RecipientKey::parse(&gpg.export(&fpr)).unwrap();
        assert_eq!(
            key.usable_for("old@example.test", SystemTime::now()),
            Err(KeyProblem::Expired)
        );
        // The same key was fine while it lived.
        let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800 + 3_600);
        assert_eq!(key.usable_for("old@example.test", then), Ok(()));
        let err = seal(&sample_message(b"x"), &[&key], &PgpOptions::default()).unwrap_err();
        assert!(
            matches!(&err, PgpError::Unusable { problem: KeyProblem::Expired, fingerprint } if *fingerprint == fpr),
            "{err}"
        );
        assert!(err.to_string().contains("expired"));
    }

    #[test]
    fn a_revoked_key_is_refused() {
        require_gpg!();
        let gpg = Gpg::new();
        let fpr = gpg.gen(
            &[],
            "Gone <gone@example.test>",
            "future-default",
            "default",
            "never",
        );
        // gpg leaves a revocation certificate, its armour line guarded by ':'.
        let rev = std::fs::read_to_string(
            gpg.home
                .path()
                .join("openpgp-revocs.d")
                .join(format!("{fpr}.rev")),
        )
        .unwrap()
        .replace(
            ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
            "-----BEGIN PGP PUBLIC KEY BLOCK-----",
        );
        gpg.ok(&["--import"], Some(rev.as_bytes()));
        let key = RecipientKey::parse(&gpg.export(&fpr)).unwrap();
        assert_eq!(
            key.usable_for("gone@example.test", SystemTime::now()),
            Err(KeyProblem::Revoked)
        );
        let err = seal(&sample_message(b"x"), &[&key], &PgpOptions::default()).unwrap_err();
        assert!(matches!(
            err,
            PgpError::Unusable {
                problem: KeyProblem::Revoked,
                ..
            }
        ));
    }

    #[test]
    fn a_sign_only_key_has_no_encryption_subkey() {
        require_gpg!();
        let gpg = Gpg::new();
        let fpr = gpg.gen(&[], "Sig <sig@example.test>", "ed25519", "sign", "never");
        let key = RecipientKey::parse(&gpg.export(&fpr)).unwrap();
        assert_eq!(
            key.usable_for("sig@example.test", SystemTime::now()),
            Err(KeyProblem::NoEncryptionSubkey)
        );
        assert_eq!(
            KeyProblem::NoEncryptionSubkey.to_string(),
            "the OpenPGP key has no valid encryption subkey"
        );
        let err = seal(&sample_message(b"x"), &[&key], &PgpOptions::default()).unwrap_err();
        assert!(matches!(
            err,
            PgpError::Unusable {
                problem: KeyProblem::NoEncryptionSubkey,
                ..
            }
        ));
        // It can sign, though: a sign-only key is a fine organisation signer.
        assert!(PgpSigner::from_tsk(&gpg.export_secret(&fpr)).is_ok());
    }

    #[test]
    fn bad_key_bytes_are_errors_never_panics() {
        require_gpg!();
        let gpg = Gpg::new();
        let a = gpg.gen(
            &[],
            "A <a@example.test>",
            "future-default",
            "default",
            "never",
        );
        let b = gpg.gen(
            &[],
            "B <b@example.test>",
            "future-default",
            "default",
            "never",
        );
        let binary = gpg.ok(&["--export", &a], None);

        for garbage in [
            Vec::new(),
            b"not a key".to_vec(),
            b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n"
                .to_vec(),
            random_bytes(4096),
        ] {
            assert!(matches!(RecipientKey::parse(&garbage), Err(PgpError::Parse(_))));
            assert!(matches!(PgpSigner::from_tsk(&garbage), Err(PgpError::Parse(_))));
        }
        // Truncated and bit-flipped certificates: any answer but a panic.
        let now = SystemTime::now();
        for cut in (0..binary.len()).step_by(7) {
            if let Ok(k) = RecipientKey::parse(&binary[..cut]) {
                let _ = k.usable_for("a@example.test", now);
            }
        }
        for i in (0..binary.len()).step_by(5) {
            let mut flipped = binary.clone();
            flipped[i] ^= 0x5a;
            if let Ok(k) = RecipientKey::parse(&flipped) {
                let _ = k.usable_for("a@example.test", now);
                let _ = seal(b"Subject: x\r\n\r\nbody\r\n", &[&k], &PgpOptions::default());
            }
        }
        // Two certificates are not one.
        let both = gpg.ok(&["--export", &a, &b], None);
        assert!(matches!(
            RecipientKey::parse(&both),
            Err(PgpError::Parse(_))
        ));
        // A public key cannot sign.
        assert!(matches!(
            PgpSigner::from_tsk(&binary),
            Err(PgpError::NoSecretKey)
        ));
    }

    #[test]
    fn sealing_needs_recipients() {
        let err = seal(b"Subject: x\r\n\r\nbody\r\n", &[], &PgpOptions::default()).unwrap_err();
        assert!(matches!(err, PgpError::NoRecipients));
    }

    #[test]
    fn protect_headers_marks_the_content_type_and_replaces_the_subject() {
        let mut s = split(
            b"From: a@x.test\r\nSubject: Secret\r\n plans\r\nX-Other: 1\r\nContent-Type: text/plain;\r\n charset=utf-8;\r\n\r\nbody\r\n",
        );
        let entity = protect_headers(&mut s);
        assert_eq!(
            entity,
            b"From: a@x.test\r\nSubject: Secret\r\n plans\r\nContent-Type: text/plain;\r\n charset=utf-8;\r\n protected-headers=\"v1\"\r\n\r\nbody\r\n"
        );
        assert_eq!(s.field("subject").as_deref(), Some("..."));
        assert_eq!(s.field("x-other").as_deref(), Some("1"));
    }

    // RFC 9580 Appendix A.3 and A.4: the v6 sample key, public test fixtures.
    const RFC9580_V6_CERT: &[u8] = include_bytes!("testdata/rfc9580-a3-v6-cert.asc");
    const RFC9580_V6_SECRET: &[u8] = include_bytes!("testdata/rfc9580-a4-v6-secret.asc");
    const RFC9580_V6_FPR: &str = "CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9";

    use AEADAlgorithm::{GCM, OCB};
    use SymmetricAlgorithm::{Camellia256, AES128, AES256};

    /// The encryption layer of a message, as its packets say.
    #[derive(Debug, PartialEq, Eq)]
    struct Layer {
        /// The PKESK packets' versions.
        pkesks: Vec<u8>,
        /// The SEIPD packet's version.
        seipd: u8,
        /// SEIPDv2's ciphersuite (SEIPDv1 names its cipher only inside the PKESKs).
        suite: Option<(SymmetricAlgorithm, AEADAlgorithm)>,
    }

    fn layer(armoured: &[u8]) -> Layer {
        use openpgp::packet::{Packet, SEIP};
        use openpgp::parse::{PacketParser, PacketParserResult};
        let mut pkesks = Vec::new();
        let mut seipd = None;
        let mut ppr = PacketParser::from_bytes(armoured).unwrap();
        while let PacketParserResult::Some(pp) = ppr {
            match &pp.packet {
                Packet::PKESK(p) => pkesks.push(p.version()),
                Packet::SEIP(SEIP::V1(_)) => seipd = Some((1, None)),
                Packet::SEIP(SEIP::V2(s)) => {
                    seipd = Some((2, Some((s.symmetric_algo(), s.aead()))))
                }
                p => panic!("unexpected packet {p:?}"),
            }
            ppr = pp.next().unwrap().1;
        }
        let (seipd, suite) = seipd.expect("no SEIPD packet");
        Layer {
            pkesks,
            seipd,
            suite,
        }
    }

    /// Decrypts `armoured` with Sequoia and the secret key `tsk`: the
    /// plaintext, and the cipher a v3 PKESK named (None for SEIPDv2).
    fn sequoia_decrypt(armoured: &[u8], tsk: &Cert) -> (Vec<u8>, Option<SymmetricAlgorithm>) {
        use openpgp::crypto::SessionKey;
        use openpgp::packet::{PKESK, SKESK};
        use openpgp::parse::stream::{
            DecryptionHelper, DecryptorBuilder, MessageStructure, VerificationHelper,
        };
        struct Helper<'a> {
            tsk: &'a Cert,
            cipher: Option<SymmetricAlgorithm>,
        }
        impl VerificationHelper for Helper<'_> {
            fn get_certs(&mut self, _: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
                Ok(Vec::new())
            }
            fn check(&mut self, _: MessageStructure) -> openpgp::Result<()> {
                Ok(())
            }
        }
        impl DecryptionHelper for Helper<'_> {
            fn decrypt(
                &mut self,
                pkesks: &[PKESK],
                _: &[SKESK],
                hint: Option<SymmetricAlgorithm>,
                decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
            ) -> openpgp::Result<Option<Cert>> {
                let policy = StandardPolicy::new();
                for ka in self
                    .tsk
                    .keys()
                    .with_policy(&policy, None)
                    .for_transport_encryption()
                    .secret()
                {
                    let mut pair = ka.key().clone().into_keypair()?;
                    for p in pkesks {
                        let opened: Option<(Option<SymmetricAlgorithm>, SessionKey)> =
                            p.decrypt(&mut pair, hint);
                        if let Some((cipher, sk)) = opened {
                            if decrypt(cipher, &sk) {
                                self.cipher = cipher;
                                return Ok(Some(self.tsk.clone()));
                            }
                        }
                    }
                }
                Err(anyhow::anyhow!("no key of the test opens the message"))
            }
        }
        let policy = StandardPolicy::new();
        let helper = Helper { tsk, cipher: None };
        let mut d = DecryptorBuilder::from_bytes(armoured)
            .unwrap()
            .with_policy(&policy, None, helper)
            .unwrap();
        let mut plain = Vec::new();
        std::io::copy(&mut d, &mut plain).unwrap();
        assert!(d.message_processed());
        (plain, d.helper_ref().cipher)
    }

    /// A v4 key made by Sequoia for "Patient <p@example.test>" announcing
    /// `features`, with AEAD preferences `suites` if given; the secret key.
    fn v4_key(features: Features, suites: Option<&[(SymmetricAlgorithm, AEADAlgorithm)]>) -> Cert {
        use openpgp::packet::signature::SignatureBuilder;
        // An hour old, so the re-binding below is the newer self-signature.
        let created = SystemTime::now() - Duration::from_secs(3_600);
        let (cert, _) = CertBuilder::new()
            .set_profile(openpgp::Profile::RFC4880)
            .unwrap()
            .set_creation_time(created)
            .set_features(features)
            .unwrap()
            .add_userid("Patient <p@example.test>")
            .add_transport_encryption_subkey()
            .generate()
            .unwrap();
        let Some(suites) = suites else {
            return cert;
        };
        let policy = StandardPolicy::new();
        let mut primary = cert
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .unwrap()
            .into_keypair()
            .unwrap();
        let vc = cert.with_policy(&policy, None).unwrap();
        let uid = vc.primary_userid().unwrap();
        let template = SignatureBuilder::from(uid.binding_signature().clone())
            .set_signature_creation_time(SystemTime::now())
            .unwrap()
            .set_preferred_aead_ciphersuites(suites.to_vec())
            .unwrap();
        let sig = uid.userid().bind(&mut primary, &cert, template).unwrap();
        cert.clone().insert_packets(sig).unwrap().0
    }

    fn public(tsk: &Cert) -> RecipientKey {
        use openpgp::serialize::SerializeInto;
        RecipientKey::parse(&tsk.armored().to_vec().unwrap()).unwrap()
    }

    /// The cipher gpg reports in DECRYPTION_INFO (mdc method, cipher, AEAD mode).
    fn gpg_decryption_info(status: &str) -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix("[GNUPG:] DECRYPTION_INFO "))
            .unwrap_or_else(|| panic!("no DECRYPTION_INFO in {status}"))
            .to_string()
    }

    #[test]
    fn the_rfc9580_v6_sample_key_gets_seipdv2_with_aes256_ocb() {
        let key = RecipientKey::parse(RFC9580_V6_CERT).unwrap();
        let tsk = Cert::from_bytes(RFC9580_V6_SECRET).unwrap();
        assert_eq!(key.fingerprint(), RFC9580_V6_FPR);
        assert_eq!(tsk.fingerprint().to_hex(), RFC9580_V6_FPR);
        // No user ID at all: usable, but only for an address an admin binds.
        let now = SystemTime::now();
        assert!(key.email_addresses().is_empty());
        assert_eq!(key.usable_at(now), Ok(()));
        assert_eq!(
            key.usable_for("p@example.test", now),
            Err(KeyProblem::NoMatchingUserId)
        );
        let message = sample_message(&random_bytes(20_000));
        let sealed = seal(&message, &[&key], &PgpOptions::default()).unwrap();
        let armoured = armoured_part(&sealed, "Lab results");
        // Its preferences: AES-256/OCB, then AES-128/OCB.
        assert_eq!(
            layer(&armoured),
            Layer {
                pkesks: vec![6],
                seipd: 2,
                suite: Some((AES256, OCB)),
            }
        );
        let (plain, cipher) = sequoia_decrypt(&armoured, &tsk);
        assert_eq!(plain, split(&message).entity);
        assert_eq!(cipher, None, "v6 PKESKs name no cipher");
    }

    #[test]
    fn the_backend_opens_the_rfc9580_ocb_sample_message() {
        // A.8: made by another implementation, so our OCB is the RFC's OCB.
        let sample = include_bytes!("testdata/rfc9580-a8-x25519-aead-ocb.asc");
        assert_eq!(
            layer(sample),
            Layer {
                pkesks: vec![6],
                seipd: 2,
                suite: Some((AES128, OCB)),
            }
        );
        let tsk = Cert::from_bytes(RFC9580_V6_SECRET).unwrap();
        assert_eq!(sequoia_decrypt(sample, &tsk).0, b"Hello, world!");
    }

    #[test]
    fn seipdv2_without_aead_preferences_means_aes128_ocb() {
        let tsk = v4_key(Features::empty().set_seipdv1().set_seipdv2(), None);
        let key = public(&tsk);
        let message = sample_message(&random_bytes(9_000));
        let sealed = seal(&message, &[&key], &PgpOptions::default()).unwrap();
        let armoured = armoured_part(&sealed, "Lab results");
        assert_eq!(
            layer(&armoured),
            Layer {
                pkesks: vec![6],
                seipd: 2,
                suite: Some((AES128, OCB)),
            }
        );
        assert_eq!(sequoia_decrypt(&armoured, &tsk).0, split(&message).entity);
    }

    #[test]
    fn the_first_listed_ciphersuite_we_can_use_is_taken() {
        // Camellia with OCB is listed first, but OpenSSL does AEAD with AES only.
        let tsk = v4_key(
            Features::empty().set_seipdv1().set_seipdv2(),
            Some(&[(Camellia256, OCB), (AES256, GCM)]),
        );
        let key = public(&tsk);
        let message = sample_message(&random_bytes(4_000));
        let sealed = seal(&message, &[&key], &PgpOptions::default()).unwrap();
        let armoured = armoured_part(&sealed, "Lab results");
        assert_eq!(layer(&armoured).suite, Some((AES256, GCM)));
        assert_eq!(sequoia_decrypt(&armoured, &tsk).0, split(&message).entity);

        // Several recipients: a suite all of them accept.
        let v6 = RecipientKey::parse(RFC9580_V6_CERT).unwrap();
        let v1_only = public(&v4_key(Features::empty().set_seipdv1(), None));
        let policy = StandardPolicy::new();
        let now = SystemTime::now();
        let mode = |keys: &[&RecipientKey]| {
            let valid: Vec<_> = keys
                .iter()
                .map(|k| k.valid(&policy, now).unwrap())
                .collect();
            choose_mode(&valid, &policy)
        };
        assert_eq!(mode(&[&key]), Mode::V2(AES256, GCM));
        assert_eq!(mode(&[&v6]), Mode::V2(AES256, OCB));
        assert_eq!(mode(&[&key, &v6]), Mode::V2(AES128, OCB));
        assert_eq!(mode(&[&v6, &key]), Mode::V2(AES128, OCB));
        assert_eq!(mode(&[&v6, &key, &v1_only]), Mode::V1(AES256));
        assert_eq!(mode(&[&v1_only]), Mode::V1(AES256));
    }

    #[test]
    fn keys_without_seipdv2_get_seipdv1_that_gpg_opens() {
        require_gpg!();
        // GnuPG 2.2's keys announce no SEIPDv2.
        let gpg = Gpg::new();
        let (_, key) = gpg.patient("future-default");
        let message = sample_message(&random_bytes(7_000));
        let sealed = seal(&message, &[&key], &PgpOptions::default()).unwrap();
        let armoured = armoured_part(&sealed, "Lab results");
        assert_eq!(
            layer(&armoured),
            Layer {
                pkesks: vec![3],
                seipd: 1,
                suite: None,
            }
        );
        let (plain, status) = gpg.decrypt(&armoured);
        assert_eq!(plain, split(&message).entity);
        // MDC (2), AES-256 (9), no AEAD.
        assert!(gpg_decryption_info(&status).starts_with("2 9"), "{status}");

        // A Sequoia v4 key announcing SEIPDv1 only, opened by gpg with its secret key.
        use openpgp::serialize::SerializeInto;
        let tsk = v4_key(Features::empty().set_seipdv1(), None);
        let other = Gpg::new();
        other.ok(
            &["--import"],
            Some(&tsk.as_tsk().armored().to_vec().unwrap()),
        );
        let sealed = seal(&message, &[&public(&tsk)], &PgpOptions::default()).unwrap();
        let armoured = armoured_part(&sealed, "Lab results");
        assert_eq!(layer(&armoured).seipd, 1);
        let (plain, status) = other.decrypt(&armoured);
        assert_eq!(plain, split(&message).entity);
        assert!(gpg_decryption_info(&status).starts_with("2 9"), "{status}");
    }

    #[test]
    fn a_v6_key_sealed_together_with_a_gnupg_key_gets_seipdv1_both_open() {
        require_gpg!();
        let gpg = Gpg::new();
        let (_, v4) = gpg.patient("future-default");
        let v6 = RecipientKey::parse(RFC9580_V6_CERT).unwrap();
        let tsk = Cert::from_bytes(RFC9580_V6_SECRET).unwrap();
        let message = sample_message(&random_bytes(3_000));
        let sealed = seal(&message, &[&v6, &v4], &PgpOptions::default()).unwrap();
        let armoured = armoured_part(&sealed, "Lab results");
        assert_eq!(
            layer(&armoured),
            Layer {
                pkesks: vec![3, 3],
                seipd: 1,
                suite: None,
            }
        );
        let (plain, status) = gpg.decrypt(&armoured);
        assert_eq!(plain, split(&message).entity);
        assert!(gpg_decryption_info(&status).starts_with("2 9"), "{status}");
        let (plain, cipher) = sequoia_decrypt(&armoured, &tsk);
        assert_eq!(plain, split(&message).entity);
        assert_eq!(cipher, Some(AES256));
    }
}
