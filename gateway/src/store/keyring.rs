//! Encryption at rest: AES-256-GCM under keys from a key file (the spool,
//! the escrow store and the archive seal their records with it). Each record
//! carries the id of the key that sealed it, so keys can be rotated: add a new
//! line to the file and new records use it while old ones still open.
//!
//! Key file format: one key per line, `<id> <64 hex digits>`, `#` comments;
//! the last key is the one used for new records.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Record format version byte.
const VERSION: u8 = 1;
const HEADER: usize = 1 + 4 + 12;

/// Errors reading keys or opening records.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file's content is wrong.
    #[error("key file {path} line {line}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The key file is readable or writable by others, or not ours.
    #[error(transparent)]
    Unsafe(crate::secret_file::SecretFileError),
    /// A record names a key the key file does not have.
    #[error("record sealed with key id {0}, which is not in the key file")]
    UnknownKey(u32),
    /// A record failed authentication (tampered, truncated or wrong key).
    #[error("record failed authentication")]
    Corrupt,
}

/// The set of keys; the last is active.
pub struct Keyring {
    keys: Vec<(u32, Aes256Gcm)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

impl Keyring {
    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        // Only its owner, the user Sealgate runs as, may read or change it.
        crate::secret_file::check(path).map_err(KeyError::Unsafe)?;
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: p.clone(),
            source,
        })?;
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fmt = |reason| KeyError::Format {
                path: p.clone(),
                line: n + 1,
                reason,
            };
            let (id, hexkey) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| fmt("expected `<id> <64 hex digits>`"))?;
            let id: u32 = id.parse().map_err(|_| fmt("key id must be a number"))?;
            let bytes = hex::decode(hexkey.trim()).map_err(|_| fmt("key is not hex"))?;
            if bytes.len() != 32 {
                return Err(fmt("key must be 32 bytes (64 hex digits)"));
            }
            if keys.iter().any(|(k, _)| *k == id) {
                return Err(fmt("key id repeated"));
            }
            keys.push((id, Aes256Gcm::new_from_slice(&bytes).expect("32-byte key")));
        }
        if keys.is_empty() {
            return Err(KeyError::Format {
                path: p,
                line: 0,
                reason: "no keys in file",
            });
        }
        Ok(Keyring { keys })
    }

    /// Reads a key file, creating it with one fresh key (mode 0600) if absent.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        if !path.exists() {
            let io = |source| KeyError::Io {
                path: path.display().to_string(),
                source,
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let key: [u8; 32] = rand::random();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
            writeln!(f, "# Sealgate spool keys: <id> <hex>; the last line seals new records. Keep secret, back up.")
                .and_then(|_| writeln!(f, "1 {}", hex::encode(key)))
                .and_then(|_| f.sync_all())
                .map_err(io)?;
            // Make the new name durable too: a key file that vanishes in a
            // power cut would make every message in the spool unreadable.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::durable_file::sync_dir(dir).map_err(io)?;
                if let Some(up) = dir.parent().filter(|d| !d.as_os_str().is_empty()) {
                    crate::durable_file::sync_dir(up).map_err(io)?;
                }
            }
        }
        Self::load(path)
    }

    /// Encrypts `plain`, binding it to `aad` (the record's key in the store).
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let (id, cipher) = self.keys.last().expect("keyring is never empty");
        let nonce: [u8; 12] = rand::random();
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .expect("AES-GCM encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(HEADER + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts a record sealed by [`Keyring::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], record: &[u8]) -> Result<Vec<u8>, KeyError> {
        if record.len() < HEADER + 16 || record[0] != VERSION {
            return Err(KeyError::Corrupt);
        }
        let id = u32::from_be_bytes(record[1..5].try_into().expect("4 bytes"));
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(k, _)| *k == id)
            .ok_or(KeyError::UnknownKey(id))?;
        cipher
            .decrypt(
                Nonce::from_slice(&record[5..17]),
                Payload {
                    msg: &record[HEADER..],
                    aad,
                },
            )
            .map_err(|_| KeyError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_rotate_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/spool.keys");
        let ring = Keyring::load_or_create(&path).unwrap();
        let rec = ring.seal(b"key1", b"hello");
        assert_eq!(ring.open(b"key1", &rec).unwrap(), b"hello");
        assert!(matches!(ring.open(b"key2", &rec), Err(KeyError::Corrupt)));
        let mut bad = rec.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(ring.open(b"key1", &bad), Err(KeyError::Corrupt)));

        // Rotation: append key 2; old records still open, new ones use key 2.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("2 {}\n", hex::encode([7u8; 32])));
        std::fs::write(&path, text).unwrap();
        let ring2 = Keyring::load(&path).unwrap();
        assert_eq!(ring2.open(b"key1", &rec).unwrap(), b"hello");
        let rec2 = ring2.seal(b"k", b"x");
        assert_eq!(u32::from_be_bytes(rec2[1..5].try_into().unwrap()), 2);
        assert!(matches!(
            ring.open(b"k", &rec2),
            Err(KeyError::UnknownKey(2))
        ));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn bad_files_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "# c\n1 abcd\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Keyring::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("mode 0644"),
            "a key file others can read is refused: {e}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = Keyring::load(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("32 bytes"), "{e}");
    }
}
