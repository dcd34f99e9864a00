//! Recipients' S/MIME certificates: parsed once, and judged usable for an
//! address or not (key type and size, key usage, validity, and a chain of
//! any length to a configured root, built by webpki), with the reason —
//! what the keystore files and policy and seal look up. Sealing to them is
//! `seal::smime`'s.

use std::time::SystemTime;

use cms::cert::IssuerAndSerialNumber;
use const_oid::ObjectIdentifier;
use der::asn1::Ia5StringRef;
use der::{Decode, Reader, SliceReader};
use rustls::pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, SubjectAltName};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

/// Object identifiers used here; the `db` names are long, these say what they are.
pub(crate) mod oid {
    use const_oid::ObjectIdentifier as Oid;
    pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
    pub const RSAES_OAEP: Oid = Oid::new_unwrap("1.2.840.113549.1.1.7");
    // Signature algorithms with a broken hash, refused on chains and named as such.
    pub const MD2_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.2");
    pub const MD5_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.4");
    pub const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
    pub const SHA1_WITH_RSA_OIW: Oid = Oid::new_unwrap("1.3.14.3.2.29");
    pub const ECDSA_SHA1: Oid = Oid::new_unwrap("1.2.840.10045.4.1");
    pub const DSA_SHA1: Oid = Oid::new_unwrap("1.2.840.10040.4.3");
    pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
    pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
    pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
    pub const SECP521R1: Oid = Oid::new_unwrap("1.3.132.0.35");
    pub const ED25519: Oid = Oid::new_unwrap("1.3.101.112");
    pub const X25519: Oid = Oid::new_unwrap("1.3.101.110");
    pub const DH_SINGLE_PASS_STD_DH_SHA256KDF: Oid = Oid::new_unwrap("1.3.132.1.11.1");
    pub const DH_SINGLE_PASS_STD_DH_SHA384KDF: Oid = Oid::new_unwrap("1.3.132.1.11.2");
    pub const AES256_WRAP: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.45");
    pub const ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.3");
    pub const AUTH_ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.23");
    pub const AES256_GCM: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.46");
    pub const SMIME_CAPABILITIES: Oid = Oid::new_unwrap("1.2.840.113549.1.9.15");
    pub const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
    pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
    pub const EMAIL_ADDRESS: Oid = Oid::new_unwrap("1.2.840.113549.1.9.1");
    pub const KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
    pub const SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
    pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
    pub const ANY_EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37.0");
    pub const EMAIL_PROTECTION: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.4");
}

/// Why a certificate cannot be used to seal mail for an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertProblem {
    /// The validity period ended before now.
    #[error("certificate has expired")]
    Expired,
    /// The validity period starts after now.
    #[error("certificate is not valid yet")]
    NotYetValid,
    /// keyUsage is present and allows neither keyEncipherment nor keyAgreement for this key.
    #[error("certificate key usage does not allow encryption")]
    NoEncryptionKeyUsage,
    /// extendedKeyUsage is present and does not include emailProtection.
    #[error("certificate is not for email protection (extended key usage)")]
    NotForEmail,
    /// The address is neither a subjectAltName rfc822Name nor the subject's emailAddress.
    #[error("certificate is not issued for this address")]
    AddressMismatch,
    /// The public key is of a type Sealgate cannot encrypt to.
    #[error("unsupported certificate key type: {0}")]
    UnsupportedKey(String),
    /// No path leads to a configured root (self-signed, unknown issuer or bad signature).
    #[error("certificate does not chain to a configured root")]
    Untrusted,
    /// The certificate, or a CA certificate above it, is signed with a hash
    /// too weak to trust (SHA-1, MD5, MD2).
    #[error("{} is signed with {algorithm}, which is not accepted", signed_by_name(.ca))]
    WeakSignature {
        /// Subject of the CA certificate that carries the signature; None for the certificate itself.
        ca: Option<String>,
        /// The hash, e.g. "SHA-1".
        algorithm: String,
    },
    /// The certificate, or a CA certificate above it, is signed with an
    /// algorithm that is not verified here (DSA, P-521, ECDSA with SHA-512...).
    #[error("{} is signed with an unsupported algorithm: {algorithm}", signed_by_name(.ca))]
    UnsupportedSignature {
        /// Subject of the CA certificate that carries the signature; None for the certificate itself.
        ca: Option<String>,
        /// The signature algorithm, by name and OID.
        algorithm: String,
    },
    /// A CA certificate on the path (intermediate or configured root) has expired.
    #[error("issuing CA certificate {0} has expired")]
    CaExpired(String),
    /// A CA certificate on the path (intermediate or configured root) is not valid yet.
    #[error("issuing CA certificate {0} is not valid yet")]
    CaNotYetValid(String),
    /// The path to a root breaks a rule of RFC 5280 (basic constraints, path
    /// length, name constraints, a CA's extended key usage...).
    #[error("certificate chain is not valid: {0}")]
    BadChain(String),
    /// The certificate could not be read.
    #[error("invalid certificate: {0}")]
    Invalid(String),
}

/// How a signature problem names the signed certificate: itself, or the CA by subject.
fn signed_by_name(ca: &Option<String>) -> String {
    match ca {
        Some(subject) => format!("issuing CA certificate {subject}"),
        None => "certificate".to_string(),
    }
}

/// Errors from reading certificates or sealing.
#[derive(Debug, thiserror::Error)]
pub enum SmimeError {
    /// The bytes are not a PEM or DER X.509 certificate.
    #[error("not a certificate: {0}")]
    Certificate(String),
    /// `seal` was given no recipients.
    #[error("no recipients to seal for")]
    NoRecipients,
    /// A recipient's certificate cannot be encrypted to.
    #[error("recipient {subject}: {problem}")]
    Recipient {
        /// Subject of the certificate, to name it in the reason.
        subject: String,
        /// What is wrong with it.
        problem: CertProblem,
    },
    /// Building or encoding the CMS structure failed.
    #[error("CMS: {0}")]
    Cms(String),
    /// The organisation's signing certificate or key does not load.
    #[error("S/MIME signer: {0}")]
    Signer(String),
}

/// A recipient's X.509 certificate, parsed once.
#[derive(Debug, Clone)]
pub struct RecipientCert {
    pub(crate) cert: Certificate,
    /// The DER as given: signatures are over the original TBS bytes, not a re-encoding.
    pub(crate) der: Vec<u8>,
}

/// The public key of a certificate: what mail is encrypted to, or the signer's key.
pub(crate) enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    P256(p256::PublicKey),
    P384(p384::PublicKey),
}

/// RSA moduli above this are refused rather than spending seconds on them.
const MAX_RSA_BITS: usize = 16384;
/// RSA moduli below this are too weak to seal health data to.
const MIN_RSA_BITS: usize = 2048;

impl RecipientCert {
    /// Reads one certificate from PEM (the first CERTIFICATE block) or DER.
    pub fn parse(bytes: &[u8]) -> Result<Self, SmimeError> {
        let der = match find(bytes, b"-----BEGIN CERTIFICATE-----") {
            Some(start) => {
                let rest = &bytes[start..];
                let end_marker = b"-----END CERTIFICATE-----";
                let end = find(rest, end_marker)
                    .ok_or_else(|| SmimeError::Certificate("PEM block has no END line".into()))?;
                let block = &rest[..end + end_marker.len()];
                let (_label, der) = der::pem::decode_vec(block)
                    .map_err(|e| SmimeError::Certificate(format!("PEM: {e}")))?;
                der
            }
            None => bytes.to_vec(),
        };
        let cert =
            Certificate::from_der(&der).map_err(|e| SmimeError::Certificate(e.to_string()))?;
        Ok(Self { cert, der })
    }

    /// Reads every certificate of a PEM bundle, or one DER certificate.
    pub fn parse_all(bytes: &[u8]) -> Result<Vec<Self>, SmimeError> {
        let marker = b"-----BEGIN CERTIFICATE-----";
        if find(bytes, marker).is_none() {
            return Ok(vec![Self::parse(bytes)?]);
        }
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Some(start) = find(rest, marker) {
            out.push(Self::parse(&rest[start..])?);
            rest = &rest[start + marker.len()..];
        }
        Ok(out)
    }

    /// The certificate as one PEM block.
    pub fn to_pem(&self) -> String {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.der)
            .unwrap_or_default()
    }

    /// End of the validity period.
    pub fn not_after(&self) -> SystemTime {
        self.cert
            .tbs_certificate
            .validity
            .not_after
            .to_system_time()
    }

    /// Serial number in upper-case hex, without a sign byte (as `openssl x509 -serial`).
    pub fn serial_hex(&self) -> String {
        let mut b = self.cert.tbs_certificate.serial_number.as_bytes();
        while b.len() > 1 && b[0] == 0 {
            b = &b[1..];
        }
        hex::encode_upper(b)
    }

    /// Issuer distinguished name (RFC 4514 string).
    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate.issuer.to_string()
    }

    /// Subject distinguished name (RFC 4514 string).
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    /// SHA-256 fingerprint of the DER certificate, lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.der))
    }

    /// The DER encoding of the certificate.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Addresses the certificate is for: rfc822Name SANs and emailAddress in the subject.
    pub fn email_addresses(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |s: &str| {
            let s = s.trim();
            if !s.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(s)) {
                out.push(s.to_string());
            }
        };
        if let Some(Ok(san)) = self.extension::<SubjectAltName>(oid::SUBJECT_ALT_NAME) {
            for name in &san.0 {
                if let GeneralName::Rfc822Name(n) = name {
                    push(n.as_str());
                }
            }
        }
        for rdn in &self.cert.tbs_certificate.subject.0 {
            for atv in rdn.0.iter() {
                if atv.oid == oid::EMAIL_ADDRESS {
                    // IA5String by RFC 5280; some CAs write UTF8String, so fall back to the raw value.
                    match atv.value.decode_as::<Ia5StringRef<'_>>() {
                        Ok(s) => push(s.as_str()),
                        Err(_) => {
                            if let Ok(s) = std::str::from_utf8(atv.value.value()) {
                                push(s)
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Checks that the certificate may be used to encrypt mail to `address` at `now`.
    ///
    /// Valid at `now`; keyUsage (if present) allows keyEncipherment (RSA) or
    /// keyAgreement (EC); extendedKeyUsage (if present) includes emailProtection
    /// or anyExtendedKeyUsage; `address` is among [`Self::email_addresses`]
    /// (ASCII case-insensitive); the key is RSA (2048..16384 bits), P-256 or P-384.
    /// When `roots` is non-empty the certificate must be one of them (same
    /// DER) or chain to one that is valid at `now` (see [`Self::usable_for_chain`]).
    pub fn usable_for(
        &self,
        address: &str,
        now: SystemTime,
        roots: &[RecipientCert],
    ) -> Result<(), CertProblem> {
        self.usable_for_chain(address, now, roots, &[])
    }

    /// As [`Self::usable_for`], with `intermediates`: CA certificates that
    /// came with this one, used to build the path but not trusted themselves.
    ///
    /// Every certificate in `roots` that is valid at `now` is a trust anchor
    /// (so an intermediate configured there is trusted directly, as before
    /// chains were built); an expired one only serves to name the problem.
    /// The path is checked by rustls-webpki: validity of every CA, basic
    /// constraints, path length and name constraints, extended key usage of
    /// every CA (absent, emailProtection or anyExtendedKeyUsage) and the
    /// signatures: RSA PKCS#1 v1.5 and PSS with SHA-256/384/512 (2048..8192
    /// bits), ECDSA on P-256 and P-384, Ed25519. SHA-1 is refused as
    /// [`CertProblem::WeakSignature`].
    pub fn usable_for_chain(
        &self,
        address: &str,
        now: SystemTime,
        roots: &[RecipientCert],
        intermediates: &[RecipientCert],
    ) -> Result<(), CertProblem> {
        self.valid_at(now)?;
        let key = self.encryption_key()?;
        if let Some(ku) = self.extension::<KeyUsage>(oid::KEY_USAGE) {
            let ku = ku.map_err(|e| CertProblem::Invalid(format!("keyUsage: {e}")))?;
            let ok = match key {
                EncKey::Rsa(_) => ku.key_encipherment(),
                EncKey::Ec(_) => ku.key_agreement(),
            };
            if !ok {
                return Err(CertProblem::NoEncryptionKeyUsage);
            }
        }
        if let Some(eku) = self.extension::<ExtendedKeyUsage>(oid::EXT_KEY_USAGE) {
            let eku = eku.map_err(|e| CertProblem::Invalid(format!("extendedKeyUsage: {e}")))?;
            if !eku
                .0
                .iter()
                .any(|o| *o == oid::EMAIL_PROTECTION || *o == oid::ANY_EXT_KEY_USAGE)
            {
                return Err(CertProblem::NotForEmail);
            }
        }
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        if !self
            .email_addresses()
            .iter()
            .any(|a| a.eq_ignore_ascii_case(address))
        {
            return Err(CertProblem::AddressMismatch);
        }
        if roots.is_empty() {
            return Ok(());
        }
        self.chains_to(now, roots, intermediates)
    }

    fn valid_at(&self, now: SystemTime) -> Result<(), CertProblem> {
        let v = &self.cert.tbs_certificate.validity;
        if now < v.not_before.to_system_time() {
            return Err(CertProblem::NotYetValid);
        }
        if now > v.not_after.to_system_time() {
            return Err(CertProblem::Expired);
        }
        Ok(())
    }

    /// Ok when the certificate is a configured root or a path leads from it
    /// to one valid at `now`; otherwise why not.
    fn chains_to(
        &self,
        now: SystemTime,
        roots: &[RecipientCert],
        intermediates: &[RecipientCert],
    ) -> Result<(), CertProblem> {
        if roots.iter().any(|r| r.der == self.der) {
            return Ok(());
        }
        let pool: Vec<&RecipientCert> = roots.iter().chain(intermediates).collect();
        // Nobody known even claims to be the issuer: plainly untrusted, and
        // webpki's complaints about the certificate itself (a self-signed CA,
        // version 1) would only hide that.
        if !pool
            .iter()
            .any(|c| c.cert.tbs_certificate.subject == self.cert.tbs_certificate.issuer)
        {
            return Err(CertProblem::Untrusted);
        }
        // webpki gives trust anchors no validity period, so expired roots are
        // not anchors; offered as intermediates, they make webpki report the
        // expiry rather than an unknown issuer.
        let (current, stale): (Vec<&RecipientCert>, Vec<&RecipientCert>) =
            roots.iter().partition(|r| r.valid_at(now).is_ok());
        let anchor_ders: Vec<CertificateDer<'_>> = current
            .iter()
            .map(|c| CertificateDer::from(c.der()))
            .collect();
        // A root webpki cannot read cannot vouch; x509-cert read it, so this is rare.
        let anchors: Vec<TrustAnchor<'_>> = anchor_ders
            .iter()
            .filter_map(|d| webpki::anchor_from_trusted_cert(d).ok())
            .collect();
        let others: Vec<CertificateDer<'_>> = stale
            .iter()
            .copied()
            .chain(intermediates)
            .map(|c| CertificateDer::from(c.der()))
            .collect();
        let leaf_der = CertificateDer::from(self.der());
        let verified = webpki::EndEntityCert::try_from(&leaf_der).and_then(|leaf| {
            leaf.verify_for_usage(
                CHAIN_SIG_ALGS,
                &anchors,
                &others,
                unix_time(now),
                EmailProtection,
                None,
                None,
            )
            .map(|_| ())
        });
        verified.map_err(|e| self.chain_problem(e, now, &pool))
    }

    /// A webpki path-building error as the problem an operator can act on.
    /// The leaf's own validity and extended key usage were checked before,
    /// so expiry and EKU errors are about a CA.
    fn chain_problem(
        &self,
        e: webpki::Error,
        now: SystemTime,
        pool: &[&RecipientCert],
    ) -> CertProblem {
        use webpki::Error as W;
        let bad = |s: &str| CertProblem::BadChain(s.to_string());
        match e {
            W::UnknownIssuer => CertProblem::Untrusted,
            // ring refuses RSA keys below 2048 bits as a failed signature; say
            // so when an issuer has one, rather than "untrusted".
            W::InvalidSignatureForPublicKey => {
                self.small_rsa_ca(pool).unwrap_or(CertProblem::Untrusted)
            }
            W::CertExpired { not_after, .. } => {
                CertProblem::CaExpired(self.stale_ca(now, pool, Some(not_after.as_secs())))
            }
            W::CertNotValidYet { .. } => CertProblem::CaNotYetValid(self.stale_ca(now, pool, None)),
            W::UnsupportedSignatureAlgorithmContext(cx) => {
                self.signature_problem(&cx.signature_algorithm_id, pool)
            }
            W::UnsupportedSignatureAlgorithmForPublicKeyContext(cx) => {
                self.signature_problem(&cx.signature_algorithm_id, pool)
            }
            W::CaUsedAsEndEntity => {
                bad("the certificate is a CA certificate (basicConstraints cA), not a person's")
            }
            W::EndEntityUsedAsCa => {
                bad("an issuing certificate is not a CA certificate (basicConstraints)")
            }
            W::PathLenConstraintViolated => bad("a CA's path length constraint is exceeded"),
            W::NameConstraintViolation => bad("a CA's name constraints exclude the certificate"),
            W::RequiredEkuNotFoundContext(_) | W::EmptyEkuExtension => {
                bad("an issuing CA certificate is not for email protection (extended key usage)")
            }
            W::UnsupportedCertVersion => bad("not an X.509 version 3 certificate"),
            W::UnsupportedCriticalExtension => {
                bad("a certificate on the path has a critical extension that is not understood")
            }
            W::CertDistrusted => bad("a certificate on the path has a distrusted key"),
            W::MaximumPathDepthExceeded => bad("the path has more than 6 intermediates"),
            W::MaximumSignatureChecksExceeded | W::MaximumPathBuildCallsExceeded => {
                bad("too many candidate paths to check")
            }
            // webpki's Display is its Debug: the variant names the reason.
            other => CertProblem::BadChain(format!("{other:?}")),
        }
    }

    /// Subject of the CA above this certificate that is not valid at `now`
    /// (with notAfter `not_after` when given, to pick the one webpki meant).
    fn stale_ca(&self, now: SystemTime, pool: &[&RecipientCert], not_after: Option<u64>) -> String {
        let unix = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        };
        self.ancestors(pool)
            .into_iter()
            .find(|c| {
                c.valid_at(now).is_err() && not_after.is_none_or(|t| unix(c.not_after()) == t)
            })
            .map(|c| c.subject())
            .unwrap_or_else(|| "on the path".to_string())
    }

    /// An issuer above this certificate whose RSA key is below 2048 bits, as a problem.
    fn small_rsa_ca(&self, pool: &[&RecipientCert]) -> Option<CertProblem> {
        use rsa::traits::PublicKeyParts as _;
        self.ancestors(pool).into_iter().find_map(|c| match c.public_key() {
            Ok(PublicKey::Rsa(k)) if k.n().bits() < MIN_RSA_BITS => {
                Some(CertProblem::BadChain(format!(
                    "issuing CA certificate {} has an RSA-{} key (at least {MIN_RSA_BITS} bits needed)",
                    c.subject(),
                    k.n().bits()
                )))
            }
            _ => None,
        })
    }

    /// Weak or unsupported signature, naming the certificate that carries it.
    fn signature_problem(&self, alg_id: &[u8], pool: &[&RecipientCert]) -> CertProblem {
        // The AlgorithmIdentifier's contents: the OID, then any parameters.
        let alg = SliceReader::new(alg_id)
            .ok()
            .and_then(|mut r| r.decode::<ObjectIdentifier>().ok());
        let ca = match alg {
            Some(a) if a == self.cert.signature_algorithm.oid => None,
            Some(a) => self
                .ancestors(pool)
                .into_iter()
                .find(|c| c.cert.signature_algorithm.oid == a)
                .map(|c| c.subject()),
            None => None,
        };
        match alg.and_then(weak_hash) {
            Some(hash) => CertProblem::WeakSignature {
                ca,
                algorithm: hash.to_string(),
            },
            None => CertProblem::UnsupportedSignature {
                ca,
                algorithm: match alg {
                    Some(a) => match const_oid::db::DB.by_oid(&a) {
                        Some(name) => format!("{name} ({a})"),
                        None => a.to_string(),
                    },
                    None => "unreadable algorithm identifier".to_string(),
                },
            },
        }
    }

    /// The certificates of `pool` above this one by name, nearest first
    /// (breadth-first, each once), to name the one a webpki error is about.
    fn ancestors<'p>(&self, pool: &[&'p RecipientCert]) -> Vec<&'p RecipientCert> {
        let mut out: Vec<&'p RecipientCert> = Vec::new();
        let mut next = 0;
        let mut issuer = &self.cert.tbs_certificate.issuer;
        loop {
            for &c in pool {
                if c.cert.tbs_certificate.subject == *issuer && !out.iter().any(|o| o.der == c.der)
                {
                    out.push(c);
                }
            }
            let Some(c) = out.get(next) else {
                return out;
            };
            issuer = &c.cert.tbs_certificate.issuer;
            next += 1;
        }
    }

    /// Decodes extension `id` if present: None when absent, Some(Err) when malformed.
    fn extension<'a, T: Decode<'a>>(&'a self, id: ObjectIdentifier) -> Option<der::Result<T>> {
        let exts = self.cert.tbs_certificate.extensions.as_ref()?;
        let ext = exts.iter().find(|e| e.extn_id == id)?;
        Some(T::from_der(ext.extn_value.as_bytes()))
    }

    /// True when the certificate's S/MIME capabilities extension (RFC 4262)
    /// lists AES-256-GCM: its holder's client opens AuthEnvelopedData.
    pub fn accepts_aes_gcm(&self) -> bool {
        matches!(
            self.extension::<Vec<AlgorithmIdentifierOwned>>(oid::SMIME_CAPABILITIES),
            Some(Ok(caps)) if caps.iter().any(|c| c.oid == oid::AES256_GCM)
        )
    }

    /// The subject public key, for RSA and the NIST curves this module knows.
    pub(crate) fn public_key(&self) -> Result<PublicKey, CertProblem> {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        let bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| CertProblem::Invalid("public key is not whole bytes".into()))?;
        let alg = spki.algorithm.oid;
        if alg == oid::RSA_ENCRYPTION {
            let k = rsa::pkcs1::RsaPublicKey::from_der(bits)
                .map_err(|e| CertProblem::Invalid(format!("RSA key: {e}")))?;
            let n = rsa::BigUint::from_bytes_be(k.modulus.as_bytes());
            let e = rsa::BigUint::from_bytes_be(k.public_exponent.as_bytes());
            // An even or tiny modulus is no RSA key; refusing it here keeps
            // the bignum code away from inputs it was not written for.
            if n.bits() < 1024 || (&n % 2u32) == rsa::BigUint::from(0u32) {
                return Err(CertProblem::UnsupportedKey(format!("RSA-{}", n.bits())));
            }
            let key = rsa::RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
                .map_err(|e| CertProblem::UnsupportedKey(format!("RSA: {e}")))?;
            return Ok(PublicKey::Rsa(key));
        }
        if alg == oid::EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            return match curve {
                Some(c) if c == oid::SECP256R1 => p256::PublicKey::from_sec1_bytes(bits)
                    .map(PublicKey::P256)
                    .map_err(|_| CertProblem::Invalid("bad P-256 point".into())),
                Some(c) if c == oid::SECP384R1 => p384::PublicKey::from_sec1_bytes(bits)
                    .map(PublicKey::P384)
                    .map_err(|_| CertProblem::Invalid("bad P-384 point".into())),
                Some(c) if c == oid::SECP521R1 => {
                    Err(CertProblem::UnsupportedKey("EC P-521".into()))
                }
                Some(c) => Err(CertProblem::UnsupportedKey(format!("EC curve {c}"))),
                None => Err(CertProblem::UnsupportedKey(
                    "EC without a named curve".into(),
                )),
            };
        }
        if alg == oid::ED25519 {
            return Err(CertProblem::UnsupportedKey("Ed25519".into()));
        }
        if alg == oid::X25519 {
            return Err(CertProblem::UnsupportedKey("X25519".into()));
        }
        Err(CertProblem::UnsupportedKey(format!("algorithm {alg}")))
    }

    /// The key mail can be sealed to: RSA of a sane size, P-256 or P-384.
    pub(crate) fn encryption_key(&self) -> Result<EncKey, CertProblem> {
        match self.public_key()? {
            PublicKey::Rsa(k) => {
                use rsa::traits::PublicKeyParts as _;
                let bits = k.n().bits();
                if bits < MIN_RSA_BITS {
                    return Err(CertProblem::UnsupportedKey(format!(
                        "RSA-{bits} (below {MIN_RSA_BITS} bits)"
                    )));
                }
                Ok(EncKey::Rsa(k))
            }
            PublicKey::P256(k) => Ok(EncKey::Ec(EcKey::P256(k))),
            PublicKey::P384(k) => Ok(EncKey::Ec(EcKey::P384(k))),
        }
    }

    pub(crate) fn issuer_and_serial(&self) -> IssuerAndSerialNumber {
        IssuerAndSerialNumber {
            issuer: self.cert.tbs_certificate.issuer.clone(),
            serial_number: self.cert.tbs_certificate.serial_number.clone(),
        }
    }
}

/// A key that content-encryption keys can be delivered to.
pub(crate) enum EncKey {
    Rsa(rsa::RsaPublicKey),
    Ec(EcKey),
}

/// An EC recipient key, on a curve this module does key agreement on.
#[derive(Clone)]
pub(crate) enum EcKey {
    P256(p256::PublicKey),
    P384(p384::PublicKey),
}

/// Signature algorithms accepted on a recipient's chain: webpki's *ring*
/// set (no SHA-1, no RSA below 2048 bits), named so the list is explicit.
static CHAIN_SIG_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    // Some CAs leave out the NULL parameters of the RSA algorithm identifier.
    webpki::ring::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
];

/// id-kp-emailProtection (1.3.6.1.5.5.7.3.4), the DER contents webpki compares.
pub(crate) static EMAIL_PROTECTION_DER: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];
/// anyExtendedKeyUsage (2.5.29.37.0), the DER contents webpki compares.
pub(crate) static ANY_EKU_DER: &[u8] = &[0x55, 0x1d, 0x25, 0x00];

/// Extended key usage on a chain: absent, emailProtection or
/// anyExtendedKeyUsage. webpki's `KeyUsage::required_if_present` would
/// refuse anyExtendedKeyUsage, which the leaf check accepts.
struct EmailProtection;

impl webpki::ExtendedKeyUsageValidator for EmailProtection {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let email = webpki::KeyPurposeId::new(EMAIL_PROTECTION_DER);
        let any = webpki::KeyPurposeId::new(ANY_EKU_DER);
        let mut present = Vec::new();
        for id in iter {
            let id = id?;
            if id == email || id == any {
                return Ok(());
            }
            present.push(id.to_decoded_oid());
        }
        // No extension at all: webpki passes an empty list (an empty
        // extension is refused before this is called).
        if present.is_empty() {
            return Ok(());
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(
            webpki::RequiredEkuNotFoundContext {
                required: webpki::KeyUsage::required_if_present(EMAIL_PROTECTION_DER),
                present,
            },
        ))
    }
}

/// `t` as webpki's time (before 1970 counts as 1970: only tests go there).
fn unix_time(t: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default())
}

/// The hash of a signature algorithm refused as weak, by name.
fn weak_hash(alg: ObjectIdentifier) -> Option<&'static str> {
    match alg {
        a if a == oid::SHA1_WITH_RSA
            || a == oid::SHA1_WITH_RSA_OIW
            || a == oid::ECDSA_SHA1
            || a == oid::DSA_SHA1 =>
        {
            Some("SHA-1")
        }
        a if a == oid::MD5_WITH_RSA => Some("MD5"),
        a if a == oid::MD2_WITH_RSA => Some("MD2"),
        _ => None,
    }
}

/// Position of `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
