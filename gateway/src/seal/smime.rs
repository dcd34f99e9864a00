//! S/MIME sealing (RFC 8551): the message's MIME entity becomes a CMS
//! EnvelopedData (RFC 5652) that only the listed recipients can open, sent as
//! `application/pkcs7-mime; smime-type=enveloped-data` with the outside header
//! fields kept.
//!
//! What is done: AES-256-CBC content encryption with a fresh key and IV;
//! RSA key transport with PKCS#1 v1.5 (default: every client and OpenSSL
//! open it) or RSAES-OAEP with SHA-256 and MGF1-SHA-256; P-256 and P-384
//! recipients with ECDH (`dhSinglePass-stdDH-sha256kdf-scheme`, resp.
//! `sha384kdf`, RFC 5753) and AES-256 key wrap (RFC 3394). Recipient certificates are checked for validity period,
//! key usage, extended key usage, address and a signature by a configured
//! trust anchor.
//!
//! Optionally the sealed entity is first signed by the organisation
//! (opaque signed-data, SHA-256 with RSA; the identity from PEM files or
//! PKCS#12).
//!
//! AES-256-GCM AuthEnvelopedData (RFC 5083/5084) replaces CBC when every
//! recipient's certificate lists it among its S/MIME capabilities
//! (`[seal] smime_aead`).
//!
//! Chains are built and verified by rustls-webpki, of any length up to a
//! configured root, through intermediates from the configured roots file
//! or given with the certificate. SHA-1 (and MD5) signatures are refused
//! and named as such.
//!
//! Not done yet: capabilities announced in signed mail (only the
//! certificate extension is read), ECDH on P-521 and X25519, and
//! revocation (no CRL or OCSP).

use cms::builder::{
    ContentEncryptionAlgorithm, EnvelopedDataBuilder, RecipientInfoBuilder, RecipientInfoType,
};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedKey, KeyAgreeRecipientIdentifier, KeyAgreeRecipientInfo, KeyTransRecipientInfo,
    OriginatorIdentifierOrKey, OriginatorPublicKey, RecipientEncryptedKey, RecipientIdentifier,
    RecipientInfo,
};
use der::asn1::{BitString, OctetString};
use der::Encode;
use rand_core::OsRng;
use sha2::{Digest, Sha256, Sha384};
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::entity::{base64_lines, push_base64_lines, split};
use crate::keys::smime_cert::{oid, EcKey, EncKey, PublicKey};
pub use crate::keys::smime_cert::{CertProblem, RecipientCert, SmimeError};

/// How S/MIME is sealed.
#[derive(Debug, Clone, Default)]
pub struct SmimeOptions {
    /// RSAES-OAEP (SHA-256) instead of PKCS#1 v1.5 for RSA recipients.
    pub rsa_oaep: bool,
    /// When content is encrypted with AES-256-GCM (AuthEnvelopedData).
    pub aead: Aead,
    /// The organisation's certificate that signs the entity before it is enveloped.
    pub signer: Option<std::sync::Arc<SmimeSigner>>,
}

pub use crate::config::Aead;

/// The organisation's certificate and RSA key that sign S/MIME seals
/// (sign, then encrypt: RFC 8551 §3.7), so recipients can tell the sealed
/// mail really comes from the organisation.
pub struct SmimeSigner {
    cert: RecipientCert,
    key: rsa::pkcs1v15::SigningKey<Sha256>,
}

impl std::fmt::Debug for SmimeSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key; only which certificate signs.
        f.debug_struct("SmimeSigner")
            .field("subject", &self.cert.subject())
            .field("serial", &self.cert.serial_hex())
            .finish()
    }
}

impl SmimeSigner {
    /// Reads the certificate (PEM or DER) and its RSA private key (PKCS#8
    /// or PKCS#1 PEM, unencrypted); the key must belong to the certificate.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, SmimeError> {
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        use rsa::pkcs8::DecodePrivateKey as _;
        let cert = RecipientCert::parse(cert)?;
        let text = std::str::from_utf8(key)
            .map_err(|_| SmimeError::Signer("the key file is not PEM".into()))?;
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(text)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(text))
            .map_err(|e| SmimeError::Signer(format!("the key does not load: {e}")))?;
        Self::from_parts(cert, private)
    }

    /// Reads a PKCS#12 (PFX) file, as CAs and Windows export an identity:
    /// its one private key (RSA) and the certificate that goes with it.
    pub fn from_pkcs12(p12: &[u8], password: &str) -> Result<Self, SmimeError> {
        use rsa::pkcs8::DecodePrivateKey as _;
        let store = p12_keystore::KeyStore::from_pkcs12(p12, password).map_err(|e| {
            SmimeError::Signer(format!(
                "not a PKCS#12 file this can open, or a wrong password ({e})"
            ))
        })?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or_else(|| SmimeError::Signer("the PKCS#12 file holds no private key".into()))?;
        let private = rsa::RsaPrivateKey::from_pkcs8_der(chain.key())
            .map_err(|e| SmimeError::Signer(format!("the private key is not RSA ({e})")))?;
        let leaf = chain.chain().first().ok_or_else(|| {
            SmimeError::Signer("the PKCS#12 file has no certificate for its key".into())
        })?;
        Self::from_parts(RecipientCert::parse(leaf.as_der())?, private)
    }

    /// The certificate and the key (PKCS#8), both PEM, for installing an
    /// identity read from PKCS#12 where the gateway loads it.
    pub fn to_pem(
        &self,
    ) -> Result<(String, rsa::pkcs8::der::zeroize::Zeroizing<String>), SmimeError> {
        use rsa::pkcs8::EncodePrivateKey as _;
        let cert = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.cert.der)
            .map_err(|e| SmimeError::Signer(e.to_string()))?;
        let key = self
            .key
            .as_ref()
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|e| SmimeError::Signer(e.to_string()))?;
        Ok((cert, key))
    }

    /// Who signs: the certificate's subject and serial.
    pub fn describe(&self) -> String {
        format!(
            "{} (serial {})",
            self.cert.subject(),
            self.cert.serial_hex()
        )
    }

    fn from_parts(cert: RecipientCert, private: rsa::RsaPrivateKey) -> Result<Self, SmimeError> {
        match cert.public_key() {
            Ok(PublicKey::Rsa(public)) if public == rsa::RsaPublicKey::from(&private) => {}
            _ => {
                return Err(SmimeError::Signer(
                    "the key does not belong to the certificate (or is not RSA)".into(),
                ))
            }
        }
        Ok(SmimeSigner {
            cert,
            key: rsa::pkcs1v15::SigningKey::<Sha256>::new(private),
        })
    }

    /// `entity` signed as an opaque `application/pkcs7-mime;
    /// smime-type=signed-data` entity (RFC 8551 §3.5.2), SHA-256 with RSA,
    /// the signer's certificate included.
    pub fn sign_entity(&self, entity: &[u8]) -> Result<Vec<u8>, SmimeError> {
        use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
        use cms::cert::CertificateChoices;
        use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
        let eci = EncapsulatedContentInfo {
            econtent_type: oid::DATA,
            econtent: Some(der::Any::new(der::Tag::OctetString, entity.to_vec()).map_err(der_err)?),
        };
        let digest = AlgorithmIdentifierOwned {
            oid: oid::SHA256,
            parameters: None,
        };
        let signer_info = SignerInfoBuilder::new(
            &self.key,
            SignerIdentifier::IssuerAndSerialNumber(self.cert.issuer_and_serial()),
            digest.clone(),
            &eci,
            None,
        )
        .map_err(cms_err)?;
        let signed = SignedDataBuilder::new(&eci)
            .add_digest_algorithm(digest)
            .map_err(cms_err)?
            .add_certificate(CertificateChoices::Certificate(self.cert.cert.clone()))
            .map_err(cms_err)?
            .add_signer_info::<_, rsa::pkcs1v15::Signature>(signer_info)
            .map_err(cms_err)?
            .build()
            .map_err(cms_err)?;
        let der = signed.to_der().map_err(der_err)?;
        let mut out = b"Content-Type: application/pkcs7-mime; smime-type=signed-data;\r\n name=\"smime.p7m\"\r\nContent-Disposition: attachment; filename=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
        out.extend_from_slice(&base64_lines(&der));
        Ok(out)
    }
}

/// Seals `message` (RFC 5322, CRLF) for `recipients` as an S/MIME enveloped-data message.
///
/// The MIME entity from [`split`] is encrypted with AES-256-CBC (or
/// AES-256-GCM, per `opts.aead`); each RSA
/// recipient gets the key by PKCS#1 v1.5 (or OAEP with `opts.rsa_oaep`), each
/// P-256 or P-384 recipient by ECDH + AES-256 key wrap. Certificates are not checked
/// for validity here: that is [`RecipientCert::usable_for`], in policy.
pub fn seal(
    message: &[u8],
    recipients: &[&RecipientCert],
    opts: &SmimeOptions,
) -> Result<Vec<u8>, SmimeError> {
    if recipients.is_empty() {
        return Err(SmimeError::NoRecipients);
    }
    let parts = split(message);
    let signed;
    let inner = match &opts.signer {
        Some(s) => {
            signed = s.sign_entity(&parts.entity)?;
            &signed
        }
        None => &parts.entity,
    };
    let gcm = match opts.aead {
        Aead::Always => true,
        Aead::Never => false,
        Aead::Auto => recipients.iter().all(|c| c.accepts_aes_gcm()),
    };
    let mut builders: Vec<Recipient> = Vec::with_capacity(recipients.len());
    let mut seen: Vec<&[u8]> = Vec::with_capacity(recipients.len());
    for cert in recipients {
        // The same certificate twice (two addresses, one certificate) needs one RecipientInfo.
        if seen.contains(&cert.der()) {
            continue;
        }
        seen.push(cert.der());
        let key = cert
            .encryption_key()
            .map_err(|problem| SmimeError::Recipient {
                subject: cert.subject(),
                problem,
            })?;
        let rid = cert.issuer_and_serial();
        builders.push(match key {
            EncKey::Rsa(key) => Recipient::Rsa(RsaRecipient {
                rid,
                key,
                oaep: opts.rsa_oaep,
            }),
            EncKey::Ec(key) => Recipient::Ecdh(EcdhRecipient { rid, key }),
        });
    }
    let (content_info, smime_type) = if gcm {
        (auth_enveloped(inner, builders)?, "authEnveloped-data")
    } else {
        let mut builder =
            EnvelopedDataBuilder::new(None, inner, ContentEncryptionAlgorithm::Aes256Cbc, None)
                .map_err(cms_err)?;
        for b in builders {
            builder.add_recipient_info(b).map_err(cms_err)?;
        }
        let enveloped = builder.build_with_rng(&mut OsRng).map_err(cms_err)?;
        let info = ContentInfo {
            content_type: oid::ENVELOPED_DATA,
            content: der::Any::encode_from(&enveloped).map_err(der_err)?,
        };
        (info, "enveloped-data")
    };
    let der = content_info.to_der().map_err(der_err)?;
    let fields = [
        format!("Content-Type: application/pkcs7-mime; smime-type={smime_type};\r\n name=\"smime.p7m\"\r\n"),
        "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n".to_string(),
        "Content-Transfer-Encoding: base64\r\n".to_string(),
    ];
    let mut out = parts.head(&fields, der.len().div_ceil(57) * 78);
    push_base64_lines(&mut out, &der);
    Ok(out)
}

/// AuthEnvelopedData (RFC 5083) with AES-256-GCM (RFC 5084): a fresh key
/// given to each recipient by its builder, a 12-byte nonce, a 16-byte tag
/// as the `mac`, no authenticated attributes (so no additional data).
fn auth_enveloped(content: &[u8], recipients: Vec<Recipient>) -> Result<ContentInfo, SmimeError> {
    use aes_gcm::aead::{Aead as _, KeyInit};
    use cms::enveloped_data::{EncryptedContentInfo, RecipientInfos};
    use rand_core::RngCore;

    /// GCMParameters (RFC 5084 §3.2); the tag length is always given, as
    /// 16 is not the default 12.
    #[derive(der::Sequence)]
    struct GcmParameters {
        nonce: OctetString,
        icv_len: u8,
    }

    /// AuthEnvelopedData without originatorInfo and authAttrs.
    #[derive(der::Sequence)]
    struct AuthEnvelopedData {
        version: CmsVersion,
        recipient_infos: RecipientInfos,
        auth_encrypted_content_info: EncryptedContentInfo,
        mac: OctetString,
    }

    let mut cek = rsa::pkcs8::der::zeroize::Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut cek[..]);
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let mut infos = Vec::with_capacity(recipients.len());
    for mut r in recipients {
        infos.push(r.build(&cek[..]).map_err(cms_err)?);
    }
    let cipher =
        aes_gcm::Aes256Gcm::new_from_slice(&cek[..]).map_err(|e| SmimeError::Cms(e.to_string()))?;
    let mut sealed = cipher
        .encrypt(aes_gcm::Nonce::from_slice(&nonce), content)
        .map_err(|e| SmimeError::Cms(e.to_string()))?;
    let tag = sealed.split_off(sealed.len() - 16);
    let params = GcmParameters {
        nonce: OctetString::new(nonce.to_vec()).map_err(der_err)?,
        icv_len: 16,
    };
    let data = AuthEnvelopedData {
        version: CmsVersion::V0,
        recipient_infos: RecipientInfos::try_from(infos).map_err(der_err)?,
        auth_encrypted_content_info: EncryptedContentInfo {
            content_type: oid::DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: oid::AES256_GCM,
                parameters: Some(der::Any::encode_from(&params).map_err(der_err)?),
            },
            encrypted_content: Some(OctetString::new(sealed).map_err(der_err)?),
        },
        mac: OctetString::new(tag).map_err(der_err)?,
    };
    Ok(ContentInfo {
        content_type: oid::AUTH_ENVELOPED_DATA,
        content: der::Any::encode_from(&data).map_err(der_err)?,
    })
}

fn cms_err(e: cms::builder::Error) -> SmimeError {
    SmimeError::Cms(e.to_string())
}

fn der_err(e: der::Error) -> SmimeError {
    SmimeError::Cms(e.to_string())
}

/// One recipient's RecipientInfo builder, whichever its key type.
enum Recipient {
    Rsa(RsaRecipient),
    Ecdh(EcdhRecipient),
}

impl RecipientInfoBuilder for Recipient {
    fn recipient_info_type(&self) -> RecipientInfoType {
        match self {
            Recipient::Rsa(r) => r.recipient_info_type(),
            Recipient::Ecdh(r) => r.recipient_info_type(),
        }
    }

    fn recipient_info_version(&self) -> CmsVersion {
        match self {
            Recipient::Rsa(r) => r.recipient_info_version(),
            Recipient::Ecdh(r) => r.recipient_info_version(),
        }
    }

    fn build(&mut self, cek: &[u8]) -> Result<RecipientInfo, cms::builder::Error> {
        match self {
            Recipient::Rsa(r) => r.build(cek),
            Recipient::Ecdh(r) => r.build(cek),
        }
    }
}

/// KeyTransRecipientInfo for an RSA certificate (RFC 5652 §6.2.1, RFC 8017).
struct RsaRecipient {
    rid: IssuerAndSerialNumber,
    key: rsa::RsaPublicKey,
    oaep: bool,
}

impl RecipientInfoBuilder for RsaRecipient {
    fn recipient_info_type(&self) -> RecipientInfoType {
        RecipientInfoType::Ktri
    }

    fn recipient_info_version(&self) -> CmsVersion {
        CmsVersion::V0
    }

    fn build(&mut self, cek: &[u8]) -> Result<RecipientInfo, cms::builder::Error> {
        let (enc, key_enc_alg) = if self.oaep {
            let params = rsa::pkcs1::RsaOaepParams::new::<Sha256>();
            let enc = self
                .key
                .encrypt(&mut OsRng, rsa::Oaep::new::<Sha256>(), cek)
                .map_err(|e| cms::builder::Error::Builder(format!("RSA-OAEP: {e}")))?;
            let alg = AlgorithmIdentifierOwned {
                oid: oid::RSAES_OAEP,
                parameters: Some(der::Any::encode_from(&params)?),
            };
            (enc, alg)
        } else {
            let enc = self
                .key
                .encrypt(&mut OsRng, rsa::Pkcs1v15Encrypt, cek)
                .map_err(|e| cms::builder::Error::Builder(format!("RSA: {e}")))?;
            // RFC 3370 §4.2.1: rsaEncryption with NULL parameters.
            let alg = AlgorithmIdentifierOwned {
                oid: oid::RSA_ENCRYPTION,
                parameters: Some(der::Any::null()),
            };
            (enc, alg)
        };
        Ok(RecipientInfo::Ktri(KeyTransRecipientInfo {
            version: CmsVersion::V0,
            rid: RecipientIdentifier::IssuerAndSerialNumber(self.rid.clone()),
            key_enc_alg,
            enc_key: EncryptedKey::new(enc)?,
        }))
    }
}

/// ECC-CMS-SharedInfo (RFC 5753 §7.2): the KDF input that binds the derived key to its use.
#[derive(der::Sequence)]
struct EccCmsSharedInfo {
    key_info: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    entity_u_info: Option<OctetString>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    supp_pub_info: OctetString,
}

/// KeyAgreeRecipientInfo for a P-256 or P-384 certificate: ephemeral-static
/// ECDH, X9.63 KDF with SHA-256 resp. SHA-384, AES-256 key wrap (RFC 5753
/// §3.1, as OpenSSL does).
struct EcdhRecipient {
    rid: IssuerAndSerialNumber,
    key: EcKey,
}

impl RecipientInfoBuilder for EcdhRecipient {
    fn recipient_info_type(&self) -> RecipientInfoType {
        RecipientInfoType::Kari
    }

    fn recipient_info_version(&self) -> CmsVersion {
        CmsVersion::V3
    }

    fn build(&mut self, cek: &[u8]) -> Result<RecipientInfo, cms::builder::Error> {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        use rsa::pkcs8::der::zeroize::Zeroizing;
        // Ephemeral-static ECDH on the recipient's curve; the KDF hash
        // matches the curve's strength (RFC 5753 §7.1.4, RFC 8551 §2.7.1.2).
        // ANSI X9.63 KDF: the first 256 bits of one hash block are the KEK.
        fn x963<D: Digest>(secret: &[u8], info: &[u8]) -> Zeroizing<Vec<u8>> {
            let mut h = D::new();
            h.update(secret);
            h.update(1u32.to_be_bytes());
            h.update(info);
            Zeroizing::new(h.finalize()[..32].to_vec())
        }
        type Kdf = fn(&[u8], &[u8]) -> Zeroizing<Vec<u8>>;
        // One ephemeral key on the curve: (shared secret, our public point).
        macro_rules! ecdh {
            ($curve:ident, $key:expr) => {{
                let e = $curve::ecdh::EphemeralSecret::random(&mut OsRng);
                let s = e.diffie_hellman($key);
                (
                    Zeroizing::new(s.raw_secret_bytes().to_vec()),
                    e.public_key().to_encoded_point(false).as_bytes().to_vec(),
                )
            }};
        }
        let ((secret, point), kdf, kek_of): (_, _, Kdf) = match &self.key {
            EcKey::P256(k) => (
                ecdh!(p256, k),
                oid::DH_SINGLE_PASS_STD_DH_SHA256KDF,
                x963::<Sha256>,
            ),
            EcKey::P384(k) => (
                ecdh!(p384, k),
                oid::DH_SINGLE_PASS_STD_DH_SHA384KDF,
                x963::<Sha384>,
            ),
        };
        // Wrap algorithm without parameters: the same encoding goes into the
        // KDF input, and the recipient re-encodes what it reads here.
        let wrap_alg = AlgorithmIdentifierOwned {
            oid: oid::AES256_WRAP,
            parameters: None,
        };
        let shared_info = EccCmsSharedInfo {
            key_info: wrap_alg.clone(),
            entity_u_info: None,
            supp_pub_info: OctetString::new(256u32.to_be_bytes().to_vec())?,
        }
        .to_der()?;
        let kek = kek_of(&secret, &shared_info);
        let wrapped = aes_kw::KekAes256::new(kek[..].into())
            .wrap_vec(cek)
            .map_err(|e| cms::builder::Error::Builder(format!("AES key wrap: {e}")))?;
        Ok(RecipientInfo::Kari(KeyAgreeRecipientInfo {
            version: CmsVersion::V3,
            originator: OriginatorIdentifierOrKey::OriginatorKey(OriginatorPublicKey {
                // RFC 5753: parameters absent; the curve is the recipient's.
                algorithm: AlgorithmIdentifierOwned {
                    oid: oid::EC_PUBLIC_KEY,
                    parameters: None,
                },
                public_key: BitString::from_bytes(&point)?,
            }),
            ukm: None,
            key_enc_alg: AlgorithmIdentifierOwned {
                oid: kdf,
                parameters: Some(der::Any::encode_from(&wrap_alg)?),
            },
            recipient_enc_keys: vec![RecipientEncryptedKey {
                rid: KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(self.rid.clone()),
                enc_key: EncryptedKey::new(wrapped)?,
            }],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::smime_cert::{ANY_EKU_DER, EMAIL_PROTECTION_DER};
    use mail_parser::MimeHeaders as _;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::Duration;
    use std::time::SystemTime;

    const PATIENT: &str = "patient@example.test";

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

    /// A self-signed RSA-2048 certificate made by `openssl req -x509`, with
    /// the given keyUsage; returns (cert.pem, key.pem).
    fn openssl_rsa_cert(dir: &Path, name: &str, email: &str, ku: &str) -> (PathBuf, PathBuf) {
        openssl_rsa_cert_ext(dir, name, email, ku, &[])
    }

    /// As [`openssl_rsa_cert`], with `extra` arguments (`-addext ...`).
    fn openssl_rsa_cert_ext(
        dir: &Path,
        name: &str,
        email: &str,
        ku: &str,
        extra: &[&str],
    ) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        let (subj, san, kus) = (
            format!("/CN={name}"),
            format!("subjectAltName=email:{email}"),
            format!("keyUsage={ku}"),
        );
        let mut args = vec![
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
            "-days",
            "30",
            "-subj",
            &subj,
            "-addext",
            &san,
            "-addext",
            &kus,
            "-addext",
            "extendedKeyUsage=emailProtection",
        ];
        args.extend_from_slice(extra);
        openssl(dir, &args);
        (cert, key)
    }

    fn load(path: &Path) -> RecipientCert {
        RecipientCert::parse(&std::fs::read(path).unwrap()).unwrap()
    }

    /// A multipart/mixed message with a text part and a base64 binary attachment.
    fn message() -> Vec<u8> {
        let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let mut m = String::from(
            "Received: from clinic.example.test\r\n\tby gw.example.test; Mon, 2 Jun 2025 10:00:00 +0000\r\n\
             From: Clinic <clinic@example.test>\r\n\
             To: <patient@example.test>\r\n\
             Subject: Lab results\r\n\
             Date: Mon, 2 Jun 2025 10:00:00 +0000\r\n\
             Message-ID: <lab-1@example.test>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
             \r\n\
             --b1\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             \r\n\
             Your results are attached. \u{2014} the clinic\r\n\
             --b1\r\n\
             Content-Type: application/octet-stream; name=\"results.bin\"\r\n\
             Content-Disposition: attachment; filename=\"results.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             \r\n",
        );
        m.push_str(&String::from_utf8(base64_lines(&binary)).unwrap());
        m.push_str("--b1--\r\n");
        m.into_bytes()
    }

    /// Decrypts `sealed` with `openssl cms -decrypt`.
    fn cms_decrypt(dir: &Path, sealed: &[u8], cert: &Path, key: &Path) -> Vec<u8> {
        decrypt_with(dir, "cms", sealed, cert, key)
    }

    fn decrypt_with(dir: &Path, tool: &str, sealed: &[u8], cert: &Path, key: &Path) -> Vec<u8> {
        let input = dir.join("sealed.eml");
        std::fs::write(&input, sealed).unwrap();
        let (i, c, k) = (
            input.to_str().unwrap(),
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
        );
        openssl(dir, &[tool, "-decrypt", "-in", i, "-recip", c, "-inkey", k])
    }

    /// Decrypts `sealed` with `openssl cms` and `openssl smime` and returns both outputs.
    fn decrypt_both(dir: &Path, sealed: &[u8], cert: &Path, key: &Path) -> (Vec<u8>, Vec<u8>) {
        (
            decrypt_with(dir, "cms", sealed, cert, key),
            decrypt_with(dir, "smime", sealed, cert, key),
        )
    }

    fn rcgen_params(email: &str) -> rcgen::CertificateParams {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("rcgen {email}"));
        p.subject_alt_names = vec![rcgen::SanType::Rfc822Name(email.try_into().unwrap())];
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyAgreement,
        ];
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::EmailProtection];
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        p.not_after = rcgen::date_time_ymd(2099, 1, 1);
        p
    }

    fn rcgen_self_signed(p: &rcgen::CertificateParams) -> (RecipientCert, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        (RecipientCert::parse(cert.der()).unwrap(), key)
    }

    type RcgenIssuer = rcgen::Issuer<'static, rcgen::KeyPair>;

    /// CA parameters for `cn`: cA, keyCertSign, no extended key usage.
    fn rcgen_ca_params(cn: &str) -> rcgen::CertificateParams {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        p.not_after = rcgen::date_time_ymd(2099, 1, 1);
        p
    }

    /// The certificate for `p` (P-256), signed by `parent` or self-signed,
    /// and the issuer that signs below it.
    fn rcgen_issued(
        p: rcgen::CertificateParams,
        parent: Option<&RcgenIssuer>,
    ) -> (RecipientCert, RcgenIssuer) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = match parent {
            Some(parent) => p.signed_by(&key, parent).unwrap(),
            None => p.self_signed(&key).unwrap(),
        };
        (
            RecipientCert::parse(cert.der()).unwrap(),
            rcgen::Issuer::new(p, key),
        )
    }

    /// A leaf for `p` signed by `issuer`.
    fn rcgen_leaf(p: &rcgen::CertificateParams, issuer: &RcgenIssuer) -> RecipientCert {
        let key = rcgen::KeyPair::generate().unwrap();
        RecipientCert::parse(p.signed_by(&key, issuer).unwrap().der()).unwrap()
    }

    #[test]
    fn rsa_seal_opens_with_openssl_to_the_exact_entity() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = openssl_rsa_cert(
            dir.path(),
            "patient",
            PATIENT,
            "keyEncipherment,digitalSignature",
        );
        let cert = load(&cert_path);
        assert_eq!(cert.email_addresses(), vec![PATIENT.to_string()]);
        assert_eq!(cert.subject(), "CN=patient");
        assert_eq!(cert.sha256_hex().len(), 64);
        let serial = String::from_utf8(openssl(
            dir.path(),
            &[
                "x509",
                "-noout",
                "-serial",
                "-in",
                cert_path.to_str().unwrap(),
            ],
        ))
        .unwrap();
        assert_eq!(serial.trim(), format!("serial={}", cert.serial_hex()));
        cert.usable_for("Patient@Example.TEST", SystemTime::now(), &[])
            .unwrap();
        // Self-signed and configured as a root itself: trusted.
        cert.usable_for(PATIENT, SystemTime::now(), std::slice::from_ref(&cert))
            .unwrap();

        let msg = message();
        let sealed = seal(&msg, &[&cert], &SmimeOptions::default()).unwrap();
        let entity = split(&msg).entity;
        let (cms, smime) = decrypt_both(dir.path(), &sealed, &cert_path, &key_path);
        assert_eq!(cms, entity);
        assert_eq!(smime, entity);

        // The outside: same fields, the S/MIME type, a base64 body in 76 columns.
        let parsed = mail_parser::MessageParser::default()
            .parse(&sealed)
            .unwrap();
        assert_eq!(parsed.subject(), Some("Lab results"));
        assert_eq!(parsed.message_id(), Some("lab-1@example.test"));
        assert_eq!(
            parsed
                .from()
                .and_then(|a| a.first())
                .and_then(|a| a.address()),
            Some("clinic@example.test")
        );
        let ct = parsed.root_part().content_type().unwrap();
        assert_eq!(ct.ctype(), "application");
        assert_eq!(ct.subtype(), Some("pkcs7-mime"));
        assert_eq!(ct.attribute("smime-type"), Some("enveloped-data"));
        assert_eq!(ct.attribute("name"), Some("smime.p7m"));
        let cd = parsed.root_part().content_disposition().unwrap();
        assert_eq!(cd.ctype(), "attachment");
        assert_eq!(cd.attribute("filename"), Some("smime.p7m"));
        let text = String::from_utf8(sealed.clone()).unwrap();
        assert!(text.contains("Content-Transfer-Encoding: base64\r\n"));
        assert!(text.starts_with("Received: from clinic.example.test\r\n\tby gw"));
        assert!(!text.contains("Your results"));
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        assert!(body.split("\r\n").all(|l| l.len() <= 76));
        assert!(body.split("\r\n").next().unwrap().len() == 76);
    }

    #[test]
    fn oaep_seal_opens_with_openssl_cms() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) =
            openssl_rsa_cert(dir.path(), "oaep", PATIENT, "keyEncipherment");
        let cert = load(&cert_path);
        let msg = message();
        let sealed = seal(
            &msg,
            &[&cert],
            &SmimeOptions {
                rsa_oaep: true,
                ..Default::default()
            },
        )
        .unwrap();
        let out = cms_decrypt(dir.path(), &sealed, &cert_path, &key_path);
        let input = dir.path().join("sealed.eml");
        assert_eq!(out, split(&msg).entity);
        // And it really is OAEP with SHA-256 on the wire.
        let p7 = dir.path().join("sealed.p7m");
        openssl(
            dir.path(),
            &[
                "cms",
                "-cmsout",
                "-in",
                input.to_str().unwrap(),
                "-outform",
                "DER",
                "-out",
                p7.to_str().unwrap(),
            ],
        );
        let dump = String::from_utf8(openssl(
            dir.path(),
            &["asn1parse", "-inform", "DER", "-in", p7.to_str().unwrap()],
        ))
        .unwrap();
        assert!(dump.contains("rsaesOaep"), "{dump}");
        assert!(dump.contains("sha256"), "{dump}");
    }

    #[test]
    fn two_recipients_each_open_the_same_envelope() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, k1) = openssl_rsa_cert(dir.path(), "one", "one@example.test", "keyEncipherment");
        let (c2, k2) = openssl_rsa_cert(dir.path(), "two", "two@example.test", "keyEncipherment");
        let (r1, r2) = (load(&c1), load(&c2));
        let msg = message();
        // r1 twice (two addresses on one certificate) still seals once for it.
        let sealed = seal(&msg, &[&r1, &r2, &r1], &SmimeOptions::default()).unwrap();
        let entity = split(&msg).entity;
        assert_eq!(decrypt_both(dir.path(), &sealed, &c1, &k1).0, entity);
        assert_eq!(decrypt_both(dir.path(), &sealed, &c2, &k2).0, entity);
    }

    #[test]
    fn aes_gcm_when_the_certificate_lists_it_and_openssl_opens_it() {
        let dir = tempfile::tempdir().unwrap();
        // smimeCapabilities (RFC 4262) listing id-aes256-GCM.
        let caps = "1.2.840.113549.1.9.15=DER:300D300B060960864801650304012E";
        let (gc, gk) = openssl_rsa_cert_ext(
            dir.path(),
            "gcm",
            "gcm@example.test",
            "keyEncipherment",
            &["-addext", caps],
        );
        let (pc, pk) = openssl_rsa_cert(dir.path(), "cbc", "cbc@example.test", "keyEncipherment");
        let (gcm, cbc) = (load(&gc), load(&pc));
        assert!(gcm.accepts_aes_gcm() && !cbc.accepts_aes_gcm());
        let msg = message();
        let entity = split(&msg).entity;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        // auto: GCM for the capable certificate, CBC as soon as one is not.
        let sealed = seal(&msg, &[&gcm], &SmimeOptions::default()).unwrap();
        assert!(text(&sealed).contains("smime-type=authEnveloped-data"));
        assert_eq!(cms_decrypt(dir.path(), &sealed, &gc, &gk), entity);
        let sealed = seal(&msg, &[&gcm, &cbc], &SmimeOptions::default()).unwrap();
        assert!(text(&sealed).contains("smime-type=enveloped-data"));
        assert_eq!(cms_decrypt(dir.path(), &sealed, &pc, &pk), entity);
        // always: GCM to both, with OAEP key transport too.
        let opts = SmimeOptions {
            aead: Aead::Always,
            rsa_oaep: true,
            ..SmimeOptions::default()
        };
        let sealed = seal(&msg, &[&gcm, &cbc], &opts).unwrap();
        assert!(text(&sealed).contains("smime-type=authEnveloped-data"));
        assert_eq!(cms_decrypt(dir.path(), &sealed, &gc, &gk), entity);
        assert_eq!(cms_decrypt(dir.path(), &sealed, &pc, &pk), entity);
        // A flipped ciphertext byte fails the tag: openssl refuses it.
        let b64: String = text(&sealed)
            .split("\r\n\r\n")
            .last()
            .unwrap()
            .split_whitespace()
            .collect();
        use base64::Engine as _;
        let mut der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let n = der.len();
        der[n - 40] ^= 1;
        let bad = dir.path().join("bad.p7m");
        std::fs::write(&bad, &der).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["cms", "-decrypt", "-inform", "DER", "-in"])
            .arg(&bad)
            .arg("-recip")
            .arg(&gc)
            .arg("-inkey")
            .arg(&gk)
            .output()
            .unwrap();
        assert!(!out.status.success(), "a tampered AuthEnvelopedData opened");
    }

    #[test]
    fn p384_recipient_gets_ecdh_with_sha384_kdf_that_openssl_opens() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let der = rcgen_params(PATIENT)
            .self_signed(&key)
            .unwrap()
            .der()
            .to_vec();
        let cert = RecipientCert::parse(&der).unwrap();
        cert.usable_for(PATIENT, SystemTime::now(), &[]).unwrap();
        let (cert_path, key_path) = (dir.path().join("p384.crt"), dir.path().join("p384.key"));
        std::fs::write(&cert_path, cert.to_pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let msg = message();
        let sealed = seal(&msg, &[&cert], &SmimeOptions::default()).unwrap();
        assert_eq!(
            cms_decrypt(dir.path(), &sealed, &cert_path, &key_path),
            split(&msg).entity
        );
    }

    #[test]
    fn p256_recipient_gets_ecdh_that_openssl_opens() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = rcgen_self_signed(&rcgen_params(PATIENT));
        cert.usable_for(PATIENT, SystemTime::now(), &[]).unwrap();
        let cert_path = dir.path().join("ec.crt");
        let key_path = dir.path().join("ec.key");
        std::fs::write(&cert_path, cert.der()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let pem_path = dir.path().join("ec.pem");
        openssl(
            dir.path(),
            &[
                "x509",
                "-inform",
                "DER",
                "-in",
                cert_path.to_str().unwrap(),
                "-out",
                pem_path.to_str().unwrap(),
            ],
        );
        // Mixed envelope: one EC and one RSA recipient.
        let (rc, rk) = openssl_rsa_cert(dir.path(), "rsa", "rsa@example.test", "keyEncipherment");
        let rsa_cert = load(&rc);
        let msg = message();
        let sealed = seal(&msg, &[&cert, &rsa_cert], &SmimeOptions::default()).unwrap();
        let entity = split(&msg).entity;
        // `openssl smime` is the PKCS#7 code, which knows no key agreement and
        // cannot even read an envelope that holds one: `openssl cms` only.
        assert_eq!(
            cms_decrypt(dir.path(), &sealed, &pem_path, &key_path),
            entity
        );
        assert_eq!(cms_decrypt(dir.path(), &sealed, &rc, &rk), entity);
    }

    #[test]
    fn chain_to_a_configured_root_rsa_ca_and_ecdsa_ca() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // RSA CA and leaf signed by it with openssl x509 -req.
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "30",
                "-subj",
                "/CN=Test CA",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=Leaf/emailAddress=patient@example.test",
            ],
        );
        std::fs::write(
            d.join("leaf.ext"),
            "keyUsage=keyEncipherment\nextendedKeyUsage=emailProtection\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "10",
                "-sha256",
                "-extfile",
                "leaf.ext",
                "-out",
                "leaf.crt",
            ],
        );
        let ca = load(&d.join("ca.crt"));
        let leaf = load(&d.join("leaf.crt"));
        // emailAddress in the subject counts when there is no SAN.
        assert_eq!(leaf.email_addresses(), vec![PATIENT.to_string()]);
        let now = SystemTime::now();
        leaf.usable_for(PATIENT, now, std::slice::from_ref(&ca))
            .unwrap();
        // A different root, or a self-signed cert not among the roots: untrusted.
        let (other, _) = rcgen_self_signed(&rcgen_params("ca@example.test"));
        assert_eq!(
            leaf.usable_for(PATIENT, now, std::slice::from_ref(&other)),
            Err(CertProblem::Untrusted)
        );
        let (selfsigned, _) = rcgen_self_signed(&rcgen_params(PATIENT));
        assert_eq!(
            selfsigned.usable_for(PATIENT, now, std::slice::from_ref(&ca)),
            Err(CertProblem::Untrusted)
        );
        // A root that has expired does not vouch any more.
        let later = now + Duration::from_secs(60 * 86400);
        assert_eq!(
            leaf.usable_for(PATIENT, later, std::slice::from_ref(&ca)),
            Err(CertProblem::Expired)
        );

        // ECDSA P-256 CA made with rcgen.
        let mut ca_params = rcgen_params("ca@example.test");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        ca_params.extended_key_usages = vec![];
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_cert = rcgen_params(PATIENT).signed_by(&leaf_key, &issuer).unwrap();
        let ec_root = RecipientCert::parse(ca_cert.pem().as_bytes()).unwrap();
        let ec_leaf = RecipientCert::parse(leaf_cert.der()).unwrap();
        ec_leaf
            .usable_for(PATIENT, now, &[ca.clone(), ec_root.clone()])
            .unwrap();
        assert_eq!(
            ec_leaf.usable_for(PATIENT, now, std::slice::from_ref(&ca)),
            Err(CertProblem::Untrusted)
        );
        // A tampered signature does not verify.
        let mut der = leaf_cert.der().to_vec();
        let last = der.len() - 5;
        der[last] ^= 0x55;
        if let Ok(bad) = RecipientCert::parse(&der) {
            assert_eq!(
                bad.usable_for(PATIENT, now, std::slice::from_ref(&ec_root)),
                Err(CertProblem::Untrusted)
            );
        }
    }

    #[test]
    fn chains_of_three_and_four_hops_need_only_the_root() {
        let now = SystemTime::now();
        let (root, root_i) = rcgen_issued(rcgen_ca_params("Test Root"), None);
        let (int1, int1_i) = rcgen_issued(rcgen_ca_params("Test Intermediate 1"), Some(&root_i));
        let (int2, int2_i) = rcgen_issued(rcgen_ca_params("Test Intermediate 2"), Some(&int1_i));
        let roots = std::slice::from_ref(&root);

        // root -> intermediate -> leaf, the intermediate given with the leaf.
        let leaf3 = rcgen_leaf(&rcgen_params(PATIENT), &int1_i);
        leaf3
            .usable_for_chain(PATIENT, now, roots, std::slice::from_ref(&int1))
            .unwrap();
        // Without the intermediate there is no path...
        assert_eq!(
            leaf3.usable_for(PATIENT, now, roots),
            Err(CertProblem::Untrusted)
        );
        // ...unless the roots file carries it (then it is trusted itself, as before).
        leaf3
            .usable_for(PATIENT, now, &[root.clone(), int1.clone()])
            .unwrap();

        // root -> intermediate -> intermediate -> leaf, intermediates in any order.
        let leaf4 = rcgen_leaf(&rcgen_params(PATIENT), &int2_i);
        leaf4
            .usable_for_chain(PATIENT, now, roots, &[int2.clone(), int1.clone()])
            .unwrap();
        leaf4
            .usable_for_chain(PATIENT, now, roots, &[int1.clone(), int2.clone()])
            .unwrap();
        // A missing middle link breaks the path.
        assert_eq!(
            leaf4.usable_for_chain(PATIENT, now, roots, std::slice::from_ref(&int2)),
            Err(CertProblem::Untrusted)
        );
        // An unknown root: untrusted, however complete the intermediates.
        let (other, _) = rcgen_issued(rcgen_ca_params("Other Root"), None);
        assert_eq!(
            leaf4.usable_for_chain(
                PATIENT,
                now,
                std::slice::from_ref(&other),
                &[int1.clone(), int2.clone()]
            ),
            Err(CertProblem::Untrusted)
        );
        // Intermediates alone vouch for nothing.
        assert_eq!(
            leaf4.usable_for_chain(
                PATIENT,
                now,
                &[other],
                &[int1.clone(), int2.clone(), root.clone()]
            ),
            Err(CertProblem::Untrusted)
        );

        // S/MIME leaves often carry no extended key usage, or anyExtendedKeyUsage.
        let mut no_eku = rcgen_params(PATIENT);
        no_eku.extended_key_usages = vec![];
        rcgen_leaf(&no_eku, &int2_i)
            .usable_for_chain(PATIENT, now, roots, &[int1.clone(), int2.clone()])
            .unwrap();
        let mut any_eku = rcgen_params(PATIENT);
        any_eku.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::Any];
        rcgen_leaf(&any_eku, &int2_i)
            .usable_for_chain(PATIENT, now, roots, &[int1.clone(), int2.clone()])
            .unwrap();
    }

    #[test]
    fn broken_chains_name_the_reason() {
        let now = SystemTime::now();
        let (root, root_i) = rcgen_issued(rcgen_ca_params("Test Root"), None);
        let roots = std::slice::from_ref(&root);

        // An expired intermediate, named.
        let mut old = rcgen_ca_params("Old Intermediate");
        old.not_before = rcgen::date_time_ymd(2020, 1, 1);
        old.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let (old_int, old_i) = rcgen_issued(old, Some(&root_i));
        let leaf = rcgen_leaf(&rcgen_params(PATIENT), &old_i);
        let got = leaf.usable_for_chain(PATIENT, now, roots, std::slice::from_ref(&old_int));
        assert_eq!(
            got,
            Err(CertProblem::CaExpired("CN=Old Intermediate".into()))
        );
        assert_eq!(
            got.unwrap_err().to_string(),
            "issuing CA certificate CN=Old Intermediate has expired"
        );
        // An intermediate not valid yet.
        let mut young = rcgen_ca_params("Future Intermediate");
        young.not_before = rcgen::date_time_ymd(2090, 1, 1);
        let (young_int, young_i) = rcgen_issued(young, Some(&root_i));
        assert_eq!(
            rcgen_leaf(&rcgen_params(PATIENT), &young_i).usable_for_chain(
                PATIENT,
                now,
                roots,
                std::slice::from_ref(&young_int)
            ),
            Err(CertProblem::CaNotYetValid("CN=Future Intermediate".into()))
        );
        // An expired configured root no longer vouches, and says so.
        let mut old_root = rcgen_ca_params("Old Root");
        old_root.not_before = rcgen::date_time_ymd(2020, 1, 1);
        old_root.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let (old_root, old_root_i) = rcgen_issued(old_root, None);
        assert_eq!(
            rcgen_leaf(&rcgen_params(PATIENT), &old_root_i).usable_for(
                PATIENT,
                now,
                std::slice::from_ref(&old_root)
            ),
            Err(CertProblem::CaExpired("CN=Old Root".into()))
        );

        // An "intermediate" that is no CA cannot issue.
        let mut not_ca = rcgen_ca_params("Not A CA");
        not_ca.is_ca = rcgen::IsCa::ExplicitNoCa;
        let (not_ca, not_ca_i) = rcgen_issued(not_ca, Some(&root_i));
        assert!(matches!(
            rcgen_leaf(&rcgen_params(PATIENT), &not_ca_i).usable_for_chain(
                PATIENT,
                now,
                roots,
                std::slice::from_ref(&not_ca)
            ),
            Err(CertProblem::BadChain(why)) if why.contains("not a CA")
        ));
        // An intermediate for TLS servers only does not issue for email.
        let mut tls_ca = rcgen_ca_params("TLS Intermediate");
        tls_ca.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let (tls_int, tls_i) = rcgen_issued(tls_ca, Some(&root_i));
        assert!(matches!(
            rcgen_leaf(&rcgen_params(PATIENT), &tls_i).usable_for_chain(
                PATIENT,
                now,
                roots,
                std::slice::from_ref(&tls_int)
            ),
            Err(CertProblem::BadChain(why)) if why.contains("email protection")
        ));
        // A path length constraint of 0 allows no intermediate below it.
        let mut short = rcgen_ca_params("Short Intermediate");
        short.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        let (short_int, short_i) = rcgen_issued(short, Some(&root_i));
        let (below, below_i) = rcgen_issued(rcgen_ca_params("Below Short"), Some(&short_i));
        assert!(matches!(
            rcgen_leaf(&rcgen_params(PATIENT), &below_i).usable_for_chain(
                PATIENT,
                now,
                roots,
                &[short_int.clone(), below]
            ),
            Err(CertProblem::BadChain(why)) if why.contains("path length")
        ));
        rcgen_leaf(&rcgen_params(PATIENT), &short_i)
            .usable_for_chain(PATIENT, now, roots, &[short_int])
            .unwrap();
    }

    #[test]
    fn sha1_signatures_are_refused_as_weak() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let req = |name: &str, subj: &str| {
            openssl(
                d,
                &[
                    "req",
                    "-new",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    subj,
                ],
            );
        };
        // `openssl x509 -req` of `name` by `ca` with `digest` and extensions `ext`.
        let sign = |name: &str, ca: &str, digest: &str, ext: &str| {
            let ext_file = format!("{name}.ext");
            std::fs::write(d.join(&ext_file), ext).unwrap();
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    &format!("{ca}.crt"),
                    "-CAkey",
                    &format!("{ca}.key"),
                    "-CAcreateserial",
                    "-days",
                    "10",
                    digest,
                    "-extfile",
                    &ext_file,
                    "-out",
                    &format!("{name}.crt"),
                ],
            );
            load(&d.join(format!("{name}.crt")))
        };
        let leaf_ext = "keyUsage=keyEncipherment\nextendedKeyUsage=emailProtection\n";
        let ca_ext = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n";
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "root.key",
                "-out",
                "root.crt",
                "-days",
                "30",
                "-sha256",
                "-subj",
                "/CN=Test Root",
            ],
        );
        let root = load(&d.join("root.crt"));
        let roots = std::slice::from_ref(&root);
        let subj = format!("/CN=Leaf/emailAddress={PATIENT}");
        // notBefore is the second openssl made each: check a moment after that.
        let now = || SystemTime::now() + Duration::from_secs(2);

        // The RFC 4134 case: a SHA-1 leaf from a configured root. Refused, and why.
        req("leaf1", &subj);
        let sha1_leaf = sign("leaf1", "root", "-sha1", leaf_ext);
        let got = sha1_leaf.usable_for(PATIENT, now(), roots);
        assert_eq!(
            got,
            Err(CertProblem::WeakSignature {
                ca: None,
                algorithm: "SHA-1".into()
            })
        );
        assert_eq!(
            got.unwrap_err().to_string(),
            "certificate is signed with SHA-1, which is not accepted"
        );
        // The same leaf signed with SHA-256 passes: it was only the hash.
        req("leaf2", &subj);
        sign("leaf2", "root", "-sha256", leaf_ext)
            .usable_for(PATIENT, now(), roots)
            .unwrap();
        // A SHA-1 intermediate above a SHA-256 leaf: the intermediate is named.
        req("int", "/CN=SHA-1 Intermediate");
        let int = sign("int", "root", "-sha1", ca_ext);
        req("leaf3", &subj);
        let leaf3 = sign("leaf3", "int", "-sha256", leaf_ext);
        let got = leaf3.usable_for_chain(PATIENT, now(), roots, std::slice::from_ref(&int));
        assert_eq!(
            got,
            Err(CertProblem::WeakSignature {
                ca: Some("CN=SHA-1 Intermediate".into()),
                algorithm: "SHA-1".into()
            })
        );
        assert_eq!(
            got.unwrap_err().to_string(),
            "issuing CA certificate CN=SHA-1 Intermediate is signed with SHA-1, which is not accepted"
        );
        // A CA with an RSA-1024 key: named, not just "untrusted".
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:1024",
                "-nodes",
                "-keyout",
                "small.key",
                "-out",
                "small.crt",
                "-days",
                "30",
                "-sha256",
                "-subj",
                "/CN=Small Root",
            ],
        );
        req("leaf4", &subj);
        let got = sign("leaf4", "small", "-sha256", leaf_ext).usable_for(
            PATIENT,
            now(),
            &[load(&d.join("small.crt"))],
        );
        assert!(
            matches!(&got, Err(CertProblem::BadChain(why)) if why.contains("CN=Small Root has an RSA-1024 key")),
            "{got:?}"
        );
        // Harvest-style checks without roots do not look at signatures at all.
        sha1_leaf.usable_for(PATIENT, now(), &[]).unwrap();
    }

    #[test]
    fn the_eku_oid_bytes_are_email_protection_and_any() {
        assert_eq!(EMAIL_PROTECTION_DER, oid::EMAIL_PROTECTION.as_bytes());
        assert_eq!(ANY_EKU_DER, oid::ANY_EXT_KEY_USAGE.as_bytes());
    }

    #[test]
    fn bad_certificates_give_the_right_problem() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();

        let mut expired = rcgen_params(PATIENT);
        expired.not_before = rcgen::date_time_ymd(2020, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let (c, _) = rcgen_self_signed(&expired);
        assert_eq!(c.usable_for(PATIENT, now, &[]), Err(CertProblem::Expired));
        assert_eq!(CertProblem::Expired.to_string(), "certificate has expired");

        let mut future = rcgen_params(PATIENT);
        future.not_before = rcgen::date_time_ymd(2090, 1, 1);
        let (c, _) = rcgen_self_signed(&future);
        assert_eq!(
            c.usable_for(PATIENT, now, &[]),
            Err(CertProblem::NotYetValid)
        );

        // RSA without keyEncipherment (made by openssl).
        let (p, _) = openssl_rsa_cert(dir.path(), "signonly", PATIENT, "digitalSignature");
        // notBefore is the second openssl made it: check a moment later.
        let later = SystemTime::now() + Duration::from_secs(2);
        assert_eq!(
            load(&p).usable_for(PATIENT, later, &[]),
            Err(CertProblem::NoEncryptionKeyUsage)
        );
        // EC without keyAgreement.
        let mut ec_sign = rcgen_params(PATIENT);
        ec_sign.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let (c, _) = rcgen_self_signed(&ec_sign);
        assert_eq!(
            c.usable_for(PATIENT, now, &[]),
            Err(CertProblem::NoEncryptionKeyUsage)
        );

        let mut tls_only = rcgen_params(PATIENT);
        tls_only.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let (c, _) = rcgen_self_signed(&tls_only);
        assert_eq!(
            c.usable_for(PATIENT, now, &[]),
            Err(CertProblem::NotForEmail)
        );

        let (c, _) = rcgen_self_signed(&rcgen_params("someone.else@example.test"));
        assert_eq!(
            c.usable_for(PATIENT, now, &[]),
            Err(CertProblem::AddressMismatch)
        );

        // Ed25519 keys cannot be sealed to (no CMS key agreement for them here).
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let ed =
            RecipientCert::parse(rcgen_params(PATIENT).self_signed(&key).unwrap().der()).unwrap();
        assert_eq!(
            ed.usable_for(PATIENT, now, &[]),
            Err(CertProblem::UnsupportedKey("Ed25519".into()))
        );

        // Small RSA keys are refused.
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:1024",
                "-nodes",
                "-keyout",
                "small.key",
                "-out",
                "small.crt",
                "-days",
                "3",
                "-subj",
                "/CN=small",
                "-addext",
                "subjectAltName=email:patient@example.test",
            ],
        );
        assert!(matches!(
            load(&dir.path().join("small.crt")).usable_for(PATIENT, later, &[]),
            Err(CertProblem::UnsupportedKey(_))
        ));

        assert!(seal(&message(), &[], &SmimeOptions::default()).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        assert!(RecipientCert::parse(b"").is_err());
        assert!(RecipientCert::parse(b"not a certificate at all").is_err());
        assert!(RecipientCert::parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
        assert!(RecipientCert::parse(
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"
        )
        .is_err());
        // Every truncation and many bit flips of a real certificate: errors or
        // problems, never a panic.
        let (good, _) = rcgen_self_signed(&rcgen_params(PATIENT));
        let der = good.der().to_vec();
        for n in 0..der.len() {
            let _ = RecipientCert::parse(&der[..n]);
        }
        let mut state = 0x2545_f491_u32;
        for _ in 0..3000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let mut d = der.clone();
            let i = state as usize % d.len();
            d[i] ^= (state >> 8) as u8 | 1;
            if let Ok(c) = RecipientCert::parse(&d) {
                let _ = c.usable_for(PATIENT, SystemTime::now(), std::slice::from_ref(&good));
                let _ = (c.email_addresses(), c.serial_hex(), c.issuer(), c.subject());
                let _ = seal(b"Subject: x\r\n\r\nhi\r\n", &[&c], &SmimeOptions::default());
            }
        }
    }

    #[test]
    fn mutated_rsa_certificates_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _) = openssl_rsa_cert(dir.path(), "fuzz", PATIENT, "keyEncipherment");
        let good = load(&p);
        let der = good.der().to_vec();
        let mut state = 0x9e37_79b9_u32;
        for _ in 0..600 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let mut d = der.clone();
            let i = state as usize % d.len();
            d[i] ^= (state >> 8) as u8 | 1;
            if let Ok(c) = RecipientCert::parse(&d) {
                let _ = c.usable_for(PATIENT, SystemTime::now(), std::slice::from_ref(&good));
                let _ = good.usable_for(PATIENT, SystemTime::now(), std::slice::from_ref(&c));
                let _ = seal(
                    b"Subject: x\r\n\r\nhi\r\n",
                    &[&c],
                    &SmimeOptions {
                        rsa_oaep: true,
                        ..Default::default()
                    },
                );
            }
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg==\r\n"),
            ("fo", "Zm8=\r\n"),
            ("foo", "Zm9v\r\n"),
            ("foob", "Zm9vYg==\r\n"),
            ("fooba", "Zm9vYmE=\r\n"),
            ("foobar", "Zm9vYmFy\r\n"),
        ] {
            assert_eq!(base64_lines(i.as_bytes()), o.as_bytes());
        }
    }

    #[test]
    fn signed_then_enveloped_verifies_with_openssl_cms() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) =
            openssl_rsa_cert(dir.path(), "patient", PATIENT, "keyEncipherment");
        let (org_cert, org_key) = openssl_rsa_cert(
            dir.path(),
            "org",
            "security@clinic.example.test",
            "digitalSignature,nonRepudiation",
        );
        let signer = SmimeSigner::from_pem(
            &std::fs::read(&org_cert).unwrap(),
            &std::fs::read(&org_key).unwrap(),
        )
        .unwrap();
        let opts = SmimeOptions {
            signer: Some(std::sync::Arc::new(signer)),
            ..Default::default()
        };
        let msg = message();
        let sealed = seal(&msg, &[&load(&cert_path)], &opts).unwrap();
        let inner = cms_decrypt(dir.path(), &sealed, &cert_path, &key_path);
        let inner_text = String::from_utf8_lossy(&inner).to_string();
        assert!(
            inner_text.starts_with("Content-Type: application/pkcs7-mime; smime-type=signed-data"),
            "{inner_text}"
        );
        // openssl checks the signature against the organisation's certificate
        // and gives back the original entity, byte for byte.
        let signed = dir.path().join("signed.eml");
        std::fs::write(&signed, &inner).unwrap();
        let verified = openssl(
            dir.path(),
            &[
                "cms",
                "-verify",
                "-in",
                signed.to_str().unwrap(),
                "-CAfile",
                org_cert.to_str().unwrap(),
                "-purpose",
                "any",
            ],
        );
        assert_eq!(verified, split(&msg).entity);
        // A different CA does not verify it.
        let (other, _) =
            openssl_rsa_cert(dir.path(), "other", "x@example.test", "digitalSignature");
        let out = Command::new("openssl")
            .current_dir(dir.path())
            .args(["cms", "-verify", "-in", signed.to_str().unwrap(), "-CAfile"])
            .arg(&other)
            .output()
            .unwrap();
        assert!(!out.status.success(), "verified against the wrong CA");
    }

    #[test]
    fn a_signing_key_that_is_not_the_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (org_cert, _) =
            openssl_rsa_cert(dir.path(), "org", "a@example.test", "digitalSignature");
        let (_, other_key) =
            openssl_rsa_cert(dir.path(), "x", "b@example.test", "digitalSignature");
        let e = SmimeSigner::from_pem(
            &std::fs::read(&org_cert).unwrap(),
            &std::fs::read(&other_key).unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not belong"), "{e}");
        let e = SmimeSigner::from_pem(&std::fs::read(&org_cert).unwrap(), b"junk").unwrap_err();
        assert!(e.to_string().contains("does not load"), "{e}");
    }
}
