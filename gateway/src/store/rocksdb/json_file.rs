//! A short list of records kept as one JSON file, replaced atomically and
//! synced on each change under an exclusive lock on a `.lock` file beside
//! it, so the gateway and the command line never lose each other's change.
//! For stores of a handful of records (API tokens, legal holds), where a
//! database would add nothing.

use crate::store::BackendError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One JSON file holding a list of `T`.
pub struct JsonFile {
    path: PathBuf,
    lock: PathBuf,
    mode: u32,
    store: &'static str,
}

impl JsonFile {
    /// The file `name` (e.g. `tokens.json`) in `dir`, written with `mode`;
    /// `store` names it in errors.
    pub fn new(dir: &Path, name: &str, mode: u32, store: &'static str) -> Self {
        let path = dir.join(name);
        JsonFile {
            lock: path.with_extension("lock"),
            path,
            mode,
            store,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, path: &Path, e: impl std::fmt::Display) -> BackendError {
        BackendError::new(self.store, format!("{}: {e}", path.display()))
    }

    /// Every record (none when the file does not exist yet).
    pub fn read<T: DeserializeOwned>(&self) -> Result<Vec<T>, BackendError> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| self.error(&self.path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.error(&self.path, e)),
        }
    }

    /// Reads the records, lets `f` change them, and writes them back, all
    /// under the lock; nothing is written when `f` fails.
    pub fn change<T, R, E>(&self, f: impl FnOnce(&mut Vec<T>) -> Result<R, E>) -> Result<R, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<BackendError>,
    {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|e| self.error(&self.lock, e))?;
        // Released when `lock` is dropped, after the new file is in place.
        lock.lock().map_err(|e| self.error(&self.lock, e))?;
        let mut records = self.read()?;
        let out = f(&mut records)?;
        let text = serde_json::to_vec_pretty(&records).map_err(|e| self.error(&self.path, e))?;
        crate::durable_file::replace(&self.path, &text, self.mode)
            .map_err(|e| self.error(&self.path, e))?;
        Ok(out)
    }
}
