//! Key records as one `<kind>-<id>.json` file each in the keystore
//! directory, written atomically (temporary file, fsync, rename, fsync of
//! the directory); an admin can back the directory up as is. The stamp is
//! the directory's modification time and entry count, so a command-line
//! import is seen by the running gateway.

use crate::model::key::{KeyEntry, KeyKind};
use crate::store::keys::{KeyRecords, Stamp};
use crate::store::BackendError;
use async_trait::async_trait;
use std::path::{Path, PathBuf};

/// The key files of one directory (created when first written).
pub struct KeyFiles {
    dir: PathBuf,
}

fn error(path: &Path, e: impl std::fmt::Display) -> BackendError {
    BackendError::new("keystore", format!("{}: {e}", path.display()))
}

impl KeyFiles {
    /// The key files in `dir`.
    pub fn new(dir: &Path) -> Self {
        KeyFiles {
            dir: dir.to_path_buf(),
        }
    }

    fn path_of(&self, kind: KeyKind, id: &str) -> PathBuf {
        self.dir.join(format!(
            "{}-{}.json",
            kind.as_str(),
            id.to_ascii_lowercase()
        ))
    }
}

#[async_trait]
impl KeyRecords for KeyFiles {
    async fn stamp(&self) -> Result<Option<Stamp>, BackendError> {
        let modified = match std::fs::metadata(&self.dir) {
            Ok(m) => m.modified().map_err(|e| error(&self.dir, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error(&self.dir, e)),
        };
        let nanos = modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(Some(Stamp(nanos)))
    }

    async fn all(&self) -> Result<Vec<KeyEntry>, BackendError> {
        let mut out = Vec::new();
        let items = match std::fs::read_dir(&self.dir) {
            Ok(items) => items,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(error(&self.dir, e)),
        };
        for item in items {
            let path = item.map_err(|e| error(&self.dir, e))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| error(&path, e))?;
            out.push(serde_json::from_str(&text).map_err(|e| error(&path, e))?);
        }
        Ok(out)
    }

    async fn put(&self, entry: &KeyEntry) -> Result<(), BackendError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| error(&self.dir, e))?;
        let path = self.path_of(entry.kind, &entry.id);
        let text = serde_json::to_vec_pretty(entry).map_err(|e| error(&path, e))?;
        crate::durable_file::replace(&path, &text, 0o644).map_err(|e| error(&path, e))
    }

    async fn delete(&self, kind: KeyKind, id: &str) -> Result<bool, BackendError> {
        let path = self.path_of(kind, id);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(error(&path, e)),
        }
        crate::durable_file::sync_dir(&self.dir).map_err(|e| error(&self.dir, e))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_key_files_keep_the_promises() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keystore");
        crate::store::conformance::key_records(&|| Box::new(KeyFiles::new(&path))).await;
    }
}
