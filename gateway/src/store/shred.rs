//! Shredding keys: the key that wraps every escrowed message's own key,
//! kept in a small file of its own rather than in RocksDB, whose deletes
//! leave old values in its log and table files until they are rewritten.
//!
//! Erasing a message rotates this key: a new one is written beside the old
//! one, every message still held is re-wrapped under the new one, and only
//! then is the old one removed and its file overwritten. Whatever RocksDB
//! still keeps of the erased message — its content, its wrapped key — was
//! sealed under a key that no longer exists anywhere (crypto-shredding).
//!
//! The file (`shred.keys`, mode 0600) holds one key, or two between the
//! steps of a rotation; a crash there leaves both usable, and the next open
//! finishes the rotation.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

/// Why the shredding keys could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ShredError {
    /// The key file could not be read or written.
    #[error("shredding key file {0}: {1}")]
    Io(String, std::io::Error),
    /// The key file is not what this module writes.
    #[error("shredding key file {0} is damaged: {1}")]
    Damaged(String, String),
    /// A wrapped key names a key the file does not hold (it was shredded).
    #[error("shredding key {0} is gone")]
    Gone(u64),
    /// A wrapped key did not open under its key.
    #[error("a wrapped message key failed authentication")]
    Unwrap,
    /// A read-only view of a store that has no key file yet.
    #[error("no shredding key (the store was opened read-only before it had one)")]
    NoKey,
}

/// The file's form: keys in hex.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<FileKey>,
}

#[derive(Serialize, Deserialize)]
struct FileKey {
    id: u64,
    key: String,
}

#[derive(Clone)]
struct StoredKey {
    id: u64,
    key: [u8; 32],
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<StoredKey>, ShredError> {
    let damaged = |why: String| ShredError::Damaged(path.display().to_string(), why);
    let file: KeyFile = serde_json::from_slice(bytes).map_err(|e| damaged(e.to_string()))?;
    if file.keys.is_empty() {
        return Err(damaged("no key".into()));
    }
    file.keys
        .into_iter()
        .map(|k| {
            let mut key = [0u8; 32];
            hex::decode_to_slice(&k.key, &mut key)
                .map_err(|e| damaged(format!("key {}: {e}", k.id)))?;
            Ok(StoredKey { id: k.id, key })
        })
        .collect()
}

/// The shredding keys of one escrow store.
pub struct ShredKeys {
    path: PathBuf,
    /// Oldest first; the last is the one new wraps use.
    keys: Vec<StoredKey>,
}

/// A message key wrapped by a shredding key: nonce then ciphertext.
pub type Wrapped = Vec<u8>;

impl ShredKeys {
    /// Loads `path`, making it with a fresh key when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, ShredError> {
        let io = |e| ShredError::Io(path.display().to_string(), e);
        match std::fs::read(path) {
            Ok(bytes) => {
                crate::secret_file::check(path)
                    .map_err(|e| ShredError::Damaged(path.display().to_string(), e.to_string()))?;
                Ok(ShredKeys {
                    path: path.to_path_buf(),
                    keys: parse(path, &bytes)?,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = ShredKeys {
                    path: path.to_path_buf(),
                    keys: vec![StoredKey {
                        id: 1,
                        key: rand::random(),
                    }],
                };
                keys.save()?;
                Ok(keys)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Reads `path` without ever writing it (read-only tools); a store
    /// that never had one gets none, and unwraps nothing.
    pub fn load_read_only(path: &Path) -> Result<Self, ShredError> {
        let keys = match std::fs::read(path) {
            Ok(bytes) => parse(path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(ShredError::Io(path.display().to_string(), e)),
        };
        Ok(ShredKeys {
            path: path.to_path_buf(),
            keys,
        })
    }

    /// True when a rotation was cut short and must be finished.
    pub fn mid_rotation(&self) -> bool {
        self.keys.len() > 1
    }

    /// Wraps `key` (bound to `label`) under the current key; returns the
    /// key's id and the wrapped bytes.
    pub fn wrap(&self, label: &str, key: &[u8; 32]) -> Result<(u64, Wrapped), ShredError> {
        let k = self.keys.last().ok_or(ShredError::NoKey)?;
        let cipher = Aes256Gcm::new_from_slice(&k.key).expect("a 32-byte key");
        let nonce: [u8; 12] = rand::random();
        let mut out = nonce.to_vec();
        out.extend(
            cipher
                .encrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: key,
                        aad: label.as_bytes(),
                    },
                )
                .expect("AES-GCM encrypts 32 bytes"),
        );
        Ok((k.id, out))
    }

    /// Unwraps a key wrapped under key `id` for `label`.
    pub fn unwrap(&self, id: u64, label: &str, wrapped: &[u8]) -> Result<[u8; 32], ShredError> {
        let k = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(ShredError::Gone(id))?;
        if wrapped.len() < 12 {
            return Err(ShredError::Unwrap);
        }
        let cipher = Aes256Gcm::new_from_slice(&k.key).expect("a 32-byte key");
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&wrapped[..12]),
                Payload {
                    msg: &wrapped[12..],
                    aad: label.as_bytes(),
                },
            )
            .map_err(|_| ShredError::Unwrap)?;
        plain.try_into().map_err(|_| ShredError::Unwrap)
    }

    /// Step 1 of a rotation: a new key is added (durably) and becomes the
    /// current one; the old ones still unwrap what they wrapped.
    pub fn begin_rotation(&mut self) -> Result<(), ShredError> {
        if self.keys.is_empty() {
            return Err(ShredError::NoKey);
        }
        let id = self.keys.iter().map(|k| k.id).max().unwrap_or(0) + 1;
        self.keys.push(StoredKey {
            id,
            key: rand::random(),
        });
        self.save()
    }

    /// Step 3, once everything kept is re-wrapped under the current key:
    /// the older keys leave the file, and the file they were in is
    /// overwritten before it is released.
    pub fn finish_rotation(&mut self) -> Result<(), ShredError> {
        let path = self.path.display().to_string();
        let io = |e| ShredError::Io(path.clone(), e);
        // Held open across the rename so the old bytes can be overwritten
        // in place once nothing names them.
        let old = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(io)?;
        let len = old.metadata().map_err(io)?.len();
        let current = self.keys.pop().ok_or(ShredError::NoKey)?;
        self.keys.clear();
        self.keys.push(current);
        self.save()?;
        let mut old = old;
        old.rewind().map_err(io)?;
        old.write_all(&vec![0u8; len as usize]).map_err(io)?;
        old.sync_all().map_err(io)
    }

    fn save(&self) -> Result<(), ShredError> {
        let bytes = serde_json::to_vec(&KeyFile {
            keys: self
                .keys
                .iter()
                .map(|k| FileKey {
                    id: k.id,
                    key: hex::encode(k.key),
                })
                .collect(),
        })
        .expect("keys serialise");
        crate::durable_file::replace(&self.path, &bytes, 0o600)
            .map_err(|e| ShredError::Io(self.path.display().to_string(), e))
    }

    /// The raw bytes of every key held (for tests that look for them on disk).
    #[cfg(test)]
    pub(crate) fn raw_keys(&self) -> Vec<[u8; 32]> {
        self.keys.iter().map(|k| k.key).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_keeps_what_is_rewrapped_and_loses_the_old_key_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shred.keys");
        let mut k = ShredKeys::load_or_create(&path).unwrap();
        let msg: [u8; 32] = rand::random();
        let (old_id, old_wrap) = k.wrap("key:a", &msg).unwrap();
        assert_eq!(k.unwrap(old_id, "key:a", &old_wrap).unwrap(), msg);
        assert!(
            k.unwrap(old_id, "key:b", &old_wrap).is_err(),
            "bound to its label"
        );
        let old_raw = k.raw_keys()[0];

        k.begin_rotation().unwrap();
        // Cut short here: a reload still opens both.
        let again = ShredKeys::load_or_create(&path).unwrap();
        assert!(again.mid_rotation());
        assert_eq!(again.unwrap(old_id, "key:a", &old_wrap).unwrap(), msg);
        let (new_id, new_wrap) = k.wrap("key:a", &msg).unwrap();
        assert_ne!(new_id, old_id);
        k.finish_rotation().unwrap();

        let k = ShredKeys::load_or_create(&path).unwrap();
        assert!(!k.mid_rotation());
        assert_eq!(k.unwrap(new_id, "key:a", &new_wrap).unwrap(), msg);
        assert!(matches!(
            k.unwrap(old_id, "key:a", &old_wrap),
            Err(ShredError::Gone(_))
        ));
        let file = std::fs::read(&path).unwrap();
        let hex_old = hex::encode(old_raw);
        assert!(!String::from_utf8_lossy(&file).contains(&hex_old));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
