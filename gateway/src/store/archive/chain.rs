//! The hash chain and its signed checkpoints. Each event's link is
//! SHA-256 over a domain tag, the previous link, the sequence number and
//! the SHA-256 of the event's plaintext, so changing, removing or
//! reordering any event changes every later link; a checkpoint signs a
//! link with the archive's Ed25519 key, so rewriting the whole chain needs
//! that key too.

use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// A 32-byte SHA-256 value.
pub type Hash = [u8; 32];

/// The link before the first event.
pub const GENESIS: Hash = [0; 32];

/// The link of event `seq` whose plaintext hashes to `event`.
pub fn link(prev: &Hash, seq: u64, event: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(b"sealgate-archive-link-v1\0");
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(event);
    h.finalize().into()
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// A signed statement that the chain's link at `covers` was `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The sequence number of the last event covered.
    pub covers: u64,
    /// Its link (hex).
    pub head: String,
    /// When it was signed.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The Ed25519 public key that signed it (hex).
    pub public_key: String,
    /// The signature (hex) over [`Checkpoint::message`].
    pub signature: String,
}

impl Checkpoint {
    /// The bytes signed: a domain tag, the sequence number and the head.
    fn message(covers: u64, head: &Hash) -> Vec<u8> {
        let mut m = b"sealgate-archive-checkpoint-v1\0".to_vec();
        m.extend_from_slice(&covers.to_be_bytes());
        m.extend_from_slice(head);
        m
    }

    /// Signs `head` at `covers` with `key`.
    pub fn sign(key: &Ed25519KeyPair, covers: u64, head: &Hash) -> Self {
        Checkpoint {
            covers,
            head: hex::encode(head),
            at: chrono::Utc::now(),
            public_key: hex::encode(key.public_key().as_ref()),
            signature: hex::encode(key.sign(&Self::message(covers, head)).as_ref()),
        }
    }

    /// Checks the signature against the key it names, and that it covers `head`.
    pub fn verify(&self, head: &Hash) -> Result<(), CheckpointError> {
        if self.head != hex::encode(head) {
            return Err(CheckpointError::OtherHead {
                covers: self.covers,
                named: self.head.clone(),
                chain: hex::encode(head),
            });
        }
        let key = hex::decode(&self.public_key).map_err(CheckpointError::PublicKey)?;
        let sig = hex::decode(&self.signature).map_err(CheckpointError::Signature)?;
        UnparsedPublicKey::new(&ED25519, key)
            .verify(&Self::message(self.covers, head), &sig)
            .map_err(|_| CheckpointError::BadSignature(self.covers))
    }
}

/// Why a checkpoint does not vouch for the chain.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// It was signed over another head than the chain's at that point.
    #[error("checkpoint at {covers} names head {named}, the chain has {chain}")]
    OtherHead {
        /// The sequence number it covers.
        covers: u64,
        /// The head it names.
        named: String,
        /// The chain's head there.
        chain: String,
    },
    /// The public key is not hex.
    #[error("public key: {0}")]
    PublicKey(hex::FromHexError),
    /// The signature is not hex.
    #[error("signature: {0}")]
    Signature(hex::FromHexError),
    /// The signature does not verify.
    #[error("checkpoint at {0}: bad signature")]
    BadSignature(u64),
}

/// Loads the archive's Ed25519 signing key (PKCS#8), creating it (mode
/// 0600) on first use.
pub fn load_or_create_signer(path: &Path) -> std::io::Result<Ed25519KeyPair> {
    let bad = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    if !path.exists() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| bad(e.to_string()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::durable_file::replace(path, pkcs8.as_ref(), 0o600)?;
    }
    crate::secret_file::check_key(path).map_err(|e| bad(e.to_string()))?;
    let bytes = std::fs::read(path)?;
    Ed25519KeyPair::from_pkcs8(&bytes).map_err(|e| {
        bad(format!(
            "{}: not an Ed25519 PKCS#8 key ({e})",
            path.display()
        ))
    })
}

/// The public key (hex) of the signing key at `path`, if it can be read.
pub fn public_key_of(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let key = Ed25519KeyPair::from_pkcs8(&bytes).ok()?;
    Some(hex::encode(key.public_key().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_changes_the_link() {
        let e = sha256(b"event");
        let l = link(&GENESIS, 1, &e);
        assert_ne!(l, link(&GENESIS, 2, &e));
        assert_ne!(l, link(&[1; 32], 1, &e));
        assert_ne!(l, link(&GENESIS, 1, &sha256(b"other")));
        assert_eq!(l, link(&GENESIS, 1, &e));
    }

    #[test]
    fn a_checkpoint_verifies_and_a_changed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_create_signer(&dir.path().join("k.pk8")).unwrap();
        let head = sha256(b"head");
        let c = Checkpoint::sign(&key, 7, &head);
        c.verify(&head).unwrap();
        assert!(c.verify(&sha256(b"other")).is_err());
        let mut forged = c.clone();
        forged.covers = 8;
        assert!(matches!(
            forged.verify(&head),
            Err(CheckpointError::BadSignature(_))
        ));
        // The key file is reused, not replaced.
        let again = load_or_create_signer(&dir.path().join("k.pk8")).unwrap();
        assert_eq!(again.public_key().as_ref(), key.public_key().as_ref());
    }
}
