//! Keys from inbound mail ("harvesting"): the OpenPGP key of an
//! `Autocrypt:` header (Autocrypt Level 1) and the certificates an S/MIME
//! signature carries. They are stored as source `harvested`: policy uses
//! them only with `[seal] use_harvested` (off by default), and pinning
//! applies, so a key that differs from the one known for an address waits
//! for `sealgate keys approve`.
//!
//! Only keys for the message's one RFC 5322 From address are taken, only
//! keys that could seal for that address now (alive, an encryption subkey
//! or key usage, the address in a user ID or the certificate), and each is
//! filed under that address alone ([`Keystore::import_for`]), whatever
//! other addresses it names.
//!
//! What is *not* checked: the S/MIME signature is not verified (nor its
//! chain), and the From address is taken as the message gives it (the
//! policy stage skips mail whose DMARC check failed, when inbound sender
//! authentication is on, but DMARC "none" still harvests). A verified signature would prove only that the sender
//! holds the certificate's key, not that the address is theirs: anyone can
//! make a self-signed certificate for any address and sign with it. What
//! protects recipients is that harvested keys are low trust and unused
//! unless allowed, that a certificate must still chain to
//! `smime_roots_file` (when set) at sealing time, and pinning.
//!
//! The parsers are pure and bounded: malformed input yields nothing, never
//! a panic.

use super::pgp_key::RecipientKey;
use super::smime_cert::RecipientCert;
use super::{ImportReport, Keystore};
use crate::model::address::Mailbox;
use crate::model::header_fields;
use crate::model::key::KeySource;
use crate::spool::QueueId;
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::AnyRef;
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use mail_parser::{ContentType, MessageParser, MimeHeaders};
use std::time::SystemTime;

/// Decoded Autocrypt key data larger than this is ignored (a minimal
/// Autocrypt key is a few KiB; RSA-4096 with subkey under 3 KiB).
pub const MAX_KEYDATA: usize = 64 * 1024;
/// Signed messages larger than this are not read for certificates.
pub const MAX_SIGNED_MESSAGE: u64 = 32 * 1024 * 1024;
/// A CMS signature larger than this is not parsed.
pub const MAX_CMS: usize = 1024 * 1024;
/// At most this many certificates are taken from one signature.
pub const MAX_CERTIFICATES: usize = 16;
/// id-signedData (RFC 5652 §5.1).
const ID_SIGNED_DATA: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");

/// The name of a raw header field (before the colon), trimmed.
fn field_name(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    field[..end].trim_ascii()
}

/// The value of a raw header field (after the colon), folds included.
fn field_value(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == b':') {
        Some(i) => &field[i + 1..],
        None => b"",
    }
}

/// `address` in the form keys are filed under (lower case, ASCII domain).
fn filed(address: &str) -> Option<String> {
    Mailbox::parse(address.trim())
        .ok()
        .map(|m| super::filed_as(&m))
}

/// The message's one RFC 5322 From address, in filed form; `None` when the
/// message has no From field, several, or one with several addresses.
pub fn from_address(head: &[u8]) -> Option<String> {
    let (fields, _) = header_fields::split(head);
    let froms = fields
        .iter()
        .filter(|f| field_name(f).eq_ignore_ascii_case(b"from"))
        .count();
    if froms != 1 {
        return None;
    }
    let parsed = MessageParser::default().parse_headers(head)?;
    let mut addrs = parsed.from()?.iter();
    let one = addrs.next()?.address()?;
    if addrs.next().is_some() {
        return None;
    }
    filed(one)
}

/// The `Autocrypt:` key of a message (Autocrypt Level 1, §2.1 and §2.3):
/// the one valid header whose `addr` is the From address, as (address in
/// filed form, key bytes). Nothing when there is no such header or more
/// than one, when the message is a `multipart/report` (bounces are not
/// the sender's), or when the From address is not a single mailbox.
///
/// A header is valid with exactly one `addr` and one `keydata` (base64,
/// folded lines and spaces allowed), an optional `prefer-encrypt`, and any
/// attributes whose names start with `_`; any other attribute makes it
/// invalid. The last field is not used if `head` ends before the header
/// block does (it may be cut short).
pub fn autocrypt(head: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Some(from) = from_address(head) else {
        return Vec::new();
    };
    if content_type_is(head, "multipart", "report") {
        return Vec::new();
    }
    let (fields, rest) = header_fields::split(head);
    let complete = if rest.is_empty() {
        fields.len().saturating_sub(1)
    } else {
        fields.len()
    };
    let found: Vec<(String, Vec<u8>)> = fields[..complete]
        .iter()
        .filter(|f| field_name(f).eq_ignore_ascii_case(b"autocrypt"))
        .filter_map(|f| autocrypt_value(field_value(f)))
        .filter(|(addr, _)| *addr == from)
        .collect();
    if found.len() == 1 {
        found
    } else {
        Vec::new()
    }
}

/// One `Autocrypt:` field value: (addr in filed form, decoded keydata).
fn autocrypt_value(value: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(value).ok()?;
    let (mut addr, mut keydata) = (None, None);
    for attribute in text.split(';') {
        let attribute = attribute.trim();
        if attribute.is_empty() {
            continue;
        }
        let (name, value) = attribute.split_once('=')?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        match name.as_str() {
            "addr" => {
                if addr.replace(value).is_some() {
                    return None;
                }
            }
            "keydata" => {
                if keydata.replace(value).is_some() {
                    return None;
                }
            }
            // `mutual` or anything else (no preference): sealing does not depend on it.
            "prefer-encrypt" => {}
            n if n.starts_with('_') => {}
            _ => return None,
        }
    }
    let addr = filed(addr?)?;
    let keydata = keydata?;
    // Base64 is 4/3 of the data; folding adds a little.
    if keydata.is_empty() || keydata.len() > MAX_KEYDATA * 2 {
        return None;
    }
    let key = mail_parser::decoders::base64::base64_decode(keydata.as_bytes())?;
    if key.is_empty() || key.len() > MAX_KEYDATA {
        return None;
    }
    Some((addr, key))
}

/// How a message is S/MIME-signed, by its top-level Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signed {
    /// `multipart/signed` with a PKCS #7 signature part (RFC 8551 §3.5.3).
    Detached,
    /// `application/pkcs7-mime; smime-type=signed-data` (RFC 8551 §3.5.2).
    Opaque,
}

fn is_pkcs7_signature(media_type: &str) -> bool {
    let t = media_type.trim();
    t.eq_ignore_ascii_case("application/pkcs7-signature")
        || t.eq_ignore_ascii_case("application/x-pkcs7-signature")
}

fn signed_kind(ct: &ContentType<'_>) -> Option<Signed> {
    match (ct.ctype(), ct.subtype().unwrap_or("")) {
        ("multipart", "signed") => ct
            .attribute("protocol")
            .is_some_and(is_pkcs7_signature)
            .then_some(Signed::Detached),
        ("application", "pkcs7-mime" | "x-pkcs7-mime") => ct
            .attribute("smime-type")
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("signed-data"))
            .then_some(Signed::Opaque),
        _ => None,
    }
}

fn content_type_is(head: &[u8], ctype: &str, subtype: &str) -> bool {
    MessageParser::default()
        .parse_headers(head)
        .and_then(|m| {
            m.content_type()
                .map(|ct| ct.ctype() == ctype && ct.subtype() == Some(subtype))
        })
        .unwrap_or(false)
}

/// True when the header block says the message is S/MIME-signed: only then
/// is the body worth reading for certificates.
pub fn is_smime_signed(head: &[u8]) -> bool {
    MessageParser::default()
        .parse_headers(head)
        .and_then(|m| m.content_type().and_then(signed_kind))
        .is_some()
}

/// The certificates (DER, as they were sent) carried by the S/MIME
/// signature of `message`: the `application/pkcs7-signature` part of a
/// top-level `multipart/signed`, or the body of an
/// `application/pkcs7-mime; smime-type=signed-data` message. Nothing for
/// other or malformed messages. The signature is not verified (see the
/// module documentation).
pub fn smime_certificates(message: &[u8]) -> Vec<Vec<u8>> {
    let Some(parsed) = MessageParser::default().parse(message) else {
        return Vec::new();
    };
    let root = parsed.root_part();
    let Some(kind) = root.content_type().and_then(signed_kind) else {
        return Vec::new();
    };
    let cms: &[u8] = match kind {
        Signed::Opaque => root.contents(),
        Signed::Detached => {
            let signature = root.sub_parts().and_then(|ids| {
                ids.iter().filter_map(|&i| parsed.part(i)).find(|p| {
                    p.content_type().is_some_and(|ct| {
                        is_pkcs7_signature(&format!(
                            "{}/{}",
                            ct.ctype(),
                            ct.subtype().unwrap_or("")
                        ))
                    })
                })
            });
            match signature {
                Some(part) => part.contents(),
                None => return Vec::new(),
            }
        }
    };
    cms_certificates(cms)
}

/// The certificates of a CMS ContentInfo holding SignedData (RFC 5652),
/// DER or BER (streaming encoders such as NSS write indefinite lengths),
/// as their original DER bytes.
pub fn cms_certificates(ber: &[u8]) -> Vec<Vec<u8>> {
    if ber.is_empty() || ber.len() > MAX_CMS {
        return Vec::new();
    }
    let Some((der, _)) = super::ber::to_der(ber) else {
        return Vec::new();
    };
    // The structure, checked by the cms crate.
    let Ok(info) = ContentInfo::from_der(&der) else {
        return Vec::new();
    };
    if info.content_type != ID_SIGNED_DATA {
        return Vec::new();
    }
    let Ok(signed) = info.content.decode_as::<SignedData>() else {
        return Vec::new();
    };
    if signed.certificates.is_none() {
        return Vec::new();
    }
    // The bytes: decoding and encoding again could change them (and with
    // them the fingerprint and the signature over the TBS part).
    raw_certificates(&der).unwrap_or_default()
}

/// The `certificates` field of DER SignedData in a ContentInfo: each
/// certificate's TLV as it is encoded (other certificate choices skipped).
fn raw_certificates(der: &[u8]) -> Option<Vec<Vec<u8>>> {
    let info = AnyRef::from_der(der).ok()?;
    let mut r = SliceReader::new(info.value()).ok()?;
    AnyRef::decode(&mut r).ok()?; // contentType
    let explicit = AnyRef::decode(&mut r).ok()?; // [0] EXPLICIT content
    let signed = AnyRef::from_der(explicit.value()).ok()?;
    let mut r = SliceReader::new(signed.value()).ok()?;
    for _ in 0..3 {
        // version, digestAlgorithms, encapContentInfo
        AnyRef::decode(&mut r).ok()?;
    }
    let certs = AnyRef::decode(&mut r).ok()?;
    let tag = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N0,
    };
    if certs.tag() != tag {
        return Some(Vec::new());
    }
    let mut r = SliceReader::new(certs.value()).ok()?;
    let mut out = Vec::new();
    while !r.is_finished() && out.len() < MAX_CERTIFICATES {
        let tlv = r.tlv_bytes().ok()?;
        // A Certificate is a SEQUENCE; [0]..[3] are other choices.
        if tlv.first() == Some(&0x30) {
            out.push(tlv.to_vec());
        }
    }
    Some(out)
}

/// A key an inbound message offers for its sender, checked usable for it.
#[derive(Debug, Clone)]
pub struct Offer {
    /// Where it came from: `autocrypt` or `smime`.
    pub via: &'static str,
    /// The key or certificate.
    pub bytes: Vec<u8>,
    /// The sender's address it is for.
    pub address: String,
}

/// The keys an inbound message offers for its From address (see the
/// module documentation), each checked usable for it; parsing only, no
/// store, so it runs off the async workers. `head` is the start of the
/// message (at least its header block); `body` reads the whole message, and
/// is called only when the header block says the message is S/MIME-signed
/// and it is at most [`MAX_SIGNED_MESSAGE`] long (`size`).
pub fn offered<E: std::fmt::Display>(
    id: QueueId,
    head: &[u8],
    size: u64,
    body: impl FnOnce() -> Result<Vec<u8>, E>,
) -> Vec<Offer> {
    let mut offers = Vec::new();
    let Some(from) = from_address(head) else {
        return offers;
    };
    let now = SystemTime::now();
    for (addr, keydata) in autocrypt(head) {
        match RecipientKey::parse(&keydata).map(|k| k.usable_for(&addr, now)) {
            Ok(Ok(())) => offers.push(Offer {
                via: "autocrypt",
                bytes: keydata,
                address: addr,
            }),
            Ok(Err(problem)) => {
                tracing::debug!(id = %id, via = "autocrypt", reason = %problem, "key not harvested")
            }
            Err(e) => {
                tracing::debug!(id = %id, via = "autocrypt", reason = %e, "key not harvested")
            }
        }
    }
    if !is_smime_signed(head) {
        return offers;
    }
    if size > MAX_SIGNED_MESSAGE {
        tracing::debug!(id = %id, size, "signed message too large to harvest");
        return offers;
    }
    let message = match body() {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(id = %id, error = %e, "message not read for key harvesting");
            return offers;
        }
    };
    for der in smime_certificates(&message) {
        let Ok(cert) = RecipientCert::parse(&der) else {
            continue;
        };
        // Also how a CA certificate in the chain is left out: it names no
        // address, or not the sender's.
        match cert.usable_for(&from, now, &[]) {
            Ok(()) => offers.push(Offer {
                via: "smime",
                bytes: der,
                address: from.clone(),
            }),
            Err(problem) => {
                tracing::debug!(id = %id, via = "smime", reason = %problem, "certificate not harvested")
            }
        }
    }
    offers
}

/// Stores what [`offered`] found as harvested keys, each under its address;
/// returns what was stored. Outcomes are logged with the queue id and the
/// key id, never an address or content; failures are logged and otherwise
/// ignored.
pub async fn keep(store: &Keystore, id: QueueId, offers: Vec<Offer>) -> Vec<ImportReport> {
    let mut stored = Vec::new();
    for Offer {
        via,
        bytes,
        address,
    } in offers
    {
        match store
            .import_for(&bytes, KeySource::Harvested, &address)
            .await
        {
            Ok(reports) => {
                for r in reports {
                    tracing::info!(id = %id, via, key = %r.entry.id, outcome = r.outcome, "key harvested");
                    stored.push(r);
                }
            }
            Err(e) => {
                // Store errors name paths and key ids; a parse error could
                // quote a certificate's subject, so it is not repeated.
                let reason = match &e {
                    super::KeyStoreError::Io { .. } | super::KeyStoreError::Backend(_) => {
                        e.to_string()
                    }
                    _ => "unreadable key".to_string(),
                };
                tracing::warn!(id = %id, via, error = %reason, "harvested key not stored")
            }
        }
    }
    stored
}

/// [`offered`] then [`keep`]: what one inbound message gives the keystore.
pub async fn harvest<E: std::fmt::Display>(
    store: &Keystore,
    id: QueueId,
    head: &[u8],
    size: u64,
    body: impl FnOnce() -> Result<Vec<u8>, E>,
) -> Vec<ImportReport> {
    keep(store, id, offered(id, head, size, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    /// A keystore over key files in `dir`.
    fn store_at(dir: &std::path::Path) -> Keystore {
        Keystore::new(Arc::new(crate::store::rocksdb::key_files::KeyFiles::new(
            dir,
        )))
    }
    use crate::model::key::{KeyKind, KeyState};
    use openpgp::cert::CertBuilder;
    use openpgp::serialize::SerializeInto;
    use sequoia_openpgp as openpgp;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    fn pgp_key(uid: &str) -> Vec<u8> {
        let (cert, _) = CertBuilder::general_purpose(Some(uid)).generate().unwrap();
        cert.to_vec().unwrap()
    }

    fn base64(data: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(data)
    }

    /// An `Autocrypt:` field as a mail client writes it: keydata folded
    /// over lines of 76 characters, each continuation starting with a space.
    fn autocrypt_field(attrs: &str, key: &[u8]) -> String {
        let b64 = base64(key);
        let folded: Vec<&str> = b64
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "Autocrypt: {attrs} keydata=\r\n {}\r\n",
            folded.join("\r\n ")
        )
    }

    fn message(from: &str, fields: &str) -> Vec<u8> {
        format!(
            "From: Ann <{from}>\r\nTo: bob@hospital.test\r\nSubject: hi\r\n{fields}\r\nHello.\r\n"
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn an_autocrypt_key_for_the_from_address_is_found() {
        let key = pgp_key("Ann <ann@remote.test>");
        let field = autocrypt_field("addr=Ann@Remote.TEST; prefer-encrypt=mutual;", &key);
        let m = message("ann@remote.test", &field);
        let found = autocrypt(&m);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "ann@remote.test");
        assert_eq!(found[0].1, key, "the folded base64 decodes to the key");
        let k = RecipientKey::parse(&found[0].1).unwrap();
        assert_eq!(k.email_addresses(), ["ann@remote.test"]);
        // Non-critical attributes are ignored; attribute order does not matter.
        let field = autocrypt_field("_comment=hi; addr=ann@remote.test;", &key);
        assert_eq!(autocrypt(&message("ann@remote.test", &field)).len(), 1);
    }

    #[tokio::test]
    async fn mismatched_invalid_duplicate_and_report_headers_are_ignored() {
        let key = pgp_key("<ann@remote.test>");
        // addr is not the From address.
        let field = autocrypt_field("addr=eve@remote.test;", &key);
        assert!(autocrypt(&message("ann@remote.test", &field)).is_empty());
        // An unknown critical attribute invalidates the header.
        let field = autocrypt_field("addr=ann@remote.test; type=1;", &key);
        assert!(autocrypt(&message("ann@remote.test", &field)).is_empty());
        // A repeated attribute, no keydata, keydata that is not base64.
        for bad in [
            "Autocrypt: addr=ann@remote.test; addr=ann@remote.test; keydata=AAAA\r\n",
            "Autocrypt: addr=ann@remote.test\r\n",
            "Autocrypt: addr=ann@remote.test; keydata=*not*base64*\r\n",
            "Autocrypt: addr=ann@remote.test; keydata=\r\n",
            "Autocrypt: addr=ann@remote.test; keydata\r\n",
            "Autocrypt: addr=not an address; keydata=AAAA\r\n",
        ] {
            assert!(
                autocrypt(&message("ann@remote.test", bad)).is_empty(),
                "{bad}"
            );
        }
        // Two valid headers for the address: both discarded.
        let one = autocrypt_field("addr=ann@remote.test;", &key);
        let two = autocrypt_field("addr=ann@remote.test;", &pgp_key("<ann@remote.test>"));
        assert!(autocrypt(&message("ann@remote.test", &(one.clone() + &two))).is_empty());
        // A valid one next to an invalid one counts.
        let bad = "Autocrypt: addr=ann@remote.test; x=1; keydata=AAAA\r\n";
        assert_eq!(
            autocrypt(&message("ann@remote.test", &(one.clone() + bad))).len(),
            1
        );
        // A bounce is not the sender's.
        let report = format!(
            "{one}Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n"
        );
        assert!(autocrypt(&message("ann@remote.test", &report)).is_empty());
        // Two From fields, or two addresses in one: no From address.
        let m = format!("From: ann@remote.test\r\nFrom: eve@remote.test\r\n{one}\r\n");
        assert!(autocrypt(m.as_bytes()).is_empty());
        let m = format!("From: ann@remote.test, eve@remote.test\r\n{one}\r\n");
        assert!(autocrypt(m.as_bytes()).is_empty());
        // A head cut inside the header block: its last field is not used.
        let m = format!("From: ann@remote.test\r\n{one}");
        assert!(autocrypt(&m.as_bytes()[..m.len() - 10]).is_empty());
    }

    /// Runs openssl in `dir`; panics with its stderr when it fails.
    fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A CA and a certificate for `email` it issued (RSA-2048, for signing
    /// and encryption); returns (ca.pem, cert.pem, key.pem).
    fn issued_cert(dir: &Path, email: &str) -> (PathBuf, PathBuf, PathBuf) {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "30",
                "-subj",
                "/CN=Test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
            ],
        );
        openssl(
            dir,
            &[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "user.key", "-out", "user.csr",
                "-subj", "/CN=Ann",
            ],
        );
        std::fs::write(
            dir.join("user.ext"),
            format!(
                "subjectAltName=email:{email}\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\n"
            ),
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "user.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "user.pem",
                "-days",
                "30",
                "-extfile",
                "user.ext",
            ],
        );
        (
            dir.join("ca.pem"),
            dir.join("user.pem"),
            dir.join("user.key"),
        )
    }

    fn der_of(pem: &Path) -> Vec<u8> {
        RecipientCert::parse(&std::fs::read(pem).unwrap())
            .unwrap()
            .der()
            .to_vec()
    }

    /// Signs a small text entity with `openssl cms -sign` plus `extra`
    /// options and puts From/To/Subject on top.
    fn signed(dir: &Path, from: &str, extra: &[&str]) -> Vec<u8> {
        std::fs::write(
            dir.join("entity.txt"),
            "Content-Type: text/plain\r\n\r\nSigned hello.\r\n",
        )
        .unwrap();
        let mut args = vec![
            "cms",
            "-sign",
            "-in",
            "entity.txt",
            "-signer",
            "user.pem",
            "-inkey",
            "user.key",
            "-certfile",
            "ca.pem",
            "-from",
            from,
            "-to",
            "bob@hospital.test",
            "-subject",
            "s",
        ];
        args.extend_from_slice(extra);
        openssl(dir, &args)
    }

    #[tokio::test]
    async fn the_signers_certificate_is_taken_from_openssl_signatures() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, user, _) = issued_cert(dir.path(), "ann@remote.test");
        let (ca_der, user_der) = (der_of(&ca), der_of(&user));
        // multipart/signed (detached), opaque signed-data, and opaque
        // signed-data streamed as BER with indefinite lengths.
        for extra in [&[][..], &["-nodetach"][..], &["-nodetach", "-stream"][..]] {
            let m = signed(dir.path(), "ann@remote.test", extra);
            assert!(is_smime_signed(&m), "{extra:?}");
            let certs = smime_certificates(&m);
            assert!(certs.contains(&user_der), "{extra:?}: signer missing");
            assert!(certs.contains(&ca_der), "{extra:?}: -certfile missing");
            let parsed = RecipientCert::parse(&user_der).unwrap();
            assert_eq!(parsed.email_addresses(), ["ann@remote.test"]);
        }
        let m = signed(dir.path(), "ann@remote.test", &["-nodetach", "-stream"]);
        let s = String::from_utf8_lossy(&m);
        assert!(s.contains("smime-type=signed-data"), "{s}");
        // The legacy x-pkcs7-signature protocol of `openssl smime`.
        let old = openssl(
            dir.path(),
            &[
                "smime",
                "-sign",
                "-in",
                "entity.txt",
                "-signer",
                "user.pem",
                "-inkey",
                "user.key",
                "-from",
                "ann@remote.test",
            ],
        );
        assert!(smime_certificates(&old).contains(&user_der));
        // Not signed: nothing, and the head says so.
        let plain = b"From: ann@remote.test\r\nContent-Type: text/plain\r\n\r\nhi\r\n";
        assert!(!is_smime_signed(plain));
        assert!(smime_certificates(plain).is_empty());
    }

    #[tokio::test]
    async fn garbage_and_truncated_input_yields_nothing() {
        let dir = tempfile::tempdir().unwrap();
        issued_cert(dir.path(), "ann@remote.test");
        let m = signed(
            dir.path(),
            "ann@remote.test",
            &["-nodetach", "-stream", "-outform", "DER"],
        );
        assert!(
            !cms_certificates(&m).is_empty(),
            "the BER structure parses whole"
        );
        for cut in (0..m.len()).step_by(7) {
            // Cut anywhere, it is never a panic; cut before the certificates end, nothing.
            let _ = cms_certificates(&m[..cut]);
        }
        assert!(cms_certificates(&m[..m.len() / 2]).is_empty());
        let mut flipped = m.clone();
        for i in (0..flipped.len()).step_by(13) {
            flipped[i] ^= 0x5a;
            let _ = cms_certificates(&flipped);
        }
        for junk in [
            &b""[..],
            b"\x30",
            b"\x30\x80",
            b"\x30\x80\x00",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x24\x80\x30\x00\x00\x00",
            b"\x1f\xff\xff\xff\xff\xff\x01",
            &[0x30u8; 4096],
            &[0x30u8, 0x80].repeat(2000),
        ] {
            assert!(cms_certificates(junk).is_empty(), "{junk:?}");
        }
        // Messages: garbage, a signed type with a garbage signature, an
        // Autocrypt header with garbage.
        assert!(smime_certificates(b"\x00\xff garbage").is_empty());
        let fake = b"From: a@b.test\r\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHAqCAMIACAQEx\r\n--x--\r\n";
        assert!(is_smime_signed(fake));
        assert!(smime_certificates(fake).is_empty());
        let opaque = b"Content-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n";
        assert!(smime_certificates(opaque).is_empty());
        assert!(autocrypt(b"From: a@b.test\r\nAutocrypt: \xff\xfe;;;==\r\n\r\n").is_empty());
        assert!(autocrypt(b"").is_empty());
        assert!(from_address(b"From: <>\r\n\r\n").is_none());
    }

    #[tokio::test]
    async fn harvest_stores_keys_for_the_sender_only_and_pins() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_at(&dir.path().join("ks"));
        let id = QueueId::generate();
        let never =
            || -> Result<Vec<u8>, String> { panic!("an unsigned message's body is not read") };
        // A key naming the sender and another address: filed under the sender only.
        let key = pgp_key("Ann <ann@remote.test>");
        let (cert, _) = CertBuilder::new()
            .add_userid("Ann <ann@remote.test>")
            .add_userid("Boss <boss@hospital.test>")
            .add_transport_encryption_subkey()
            .generate()
            .unwrap();
        let both = cert.to_vec().unwrap();
        let m = message(
            "ann@remote.test",
            &autocrypt_field("addr=ann@remote.test;", &both),
        );
        let r = harvest(&store, id, &m, m.len() as u64, never).await;
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].outcome, "added");
        assert_eq!(r[0].entry.addresses, ["ann@remote.test"]);
        assert_eq!(r[0].entry.source, KeySource::Harvested);
        assert!(store.for_address("boss@hospital.test").unwrap().is_empty());
        // The same key again: updated. A different one: pending.
        let r = harvest(&store, id, &m, m.len() as u64, never).await;
        assert_eq!(r[0].outcome, "updated");
        let m2 = message(
            "ann@remote.test",
            &autocrypt_field("addr=ann@remote.test;", &key),
        );
        let r = harvest(&store, id, &m2, m2.len() as u64, never).await;
        assert_eq!(r[0].outcome, "pending");
        assert_eq!(r[0].entry.state, KeyState::Pending);
        // A key that cannot encrypt is not stored.
        let (sign_only, _) = CertBuilder::new()
            .add_userid("<cy@remote.test>")
            .add_signing_subkey()
            .generate()
            .unwrap();
        let m3 = message(
            "cy@remote.test",
            &autocrypt_field("addr=cy@remote.test;", &sign_only.to_vec().unwrap()),
        );
        assert!(harvest(&store, id, &m3, 0, never).await.is_empty());
        assert_eq!(store.list().unwrap().len(), 2);

        // S/MIME: the signer's certificate, not the CA's, and the body is
        // read only for a signed message under the size limit.
        let certs = tempfile::tempdir().unwrap();
        issued_cert(certs.path(), "dee@remote.test");
        let s = signed(certs.path(), "Dee <dee@remote.test>", &[]);
        let head = s.clone();
        let too_big = harvest(
            &store,
            id,
            &head,
            MAX_SIGNED_MESSAGE + 1,
            || -> Result<Vec<u8>, String> { panic!("too large to read") },
        )
        .await;
        assert!(too_big.is_empty());
        let r = harvest(&store, id, &head, s.len() as u64, || {
            Ok::<_, String>(s.clone())
        })
        .await;
        assert_eq!(
            r.len(),
            1,
            "{:?}",
            r.iter().map(|r| &r.entry).collect::<Vec<_>>()
        );
        assert_eq!(r[0].entry.kind, KeyKind::Smime);
        assert_eq!(r[0].entry.addresses, ["dee@remote.test"]);
        assert_eq!(r[0].outcome, "added");
        // Signed by someone else's certificate: nothing.
        let s = signed(certs.path(), "eve@remote.test", &[]);
        assert!(harvest(&store, id, &s, s.len() as u64, || Ok::<_, String>(
            s.clone()
        ))
        .await
        .is_empty());
        // A failing body read is logged, not fatal.
        let s = signed(certs.path(), "dee@remote.test", &[]);
        assert!(harvest(&store, id, &s, 10, || Err("gone".to_string()))
            .await
            .is_empty());
    }
}
