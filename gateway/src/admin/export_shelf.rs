//! The API's exports between their request and their download, under
//! `<data_dir>/exports/<name>/`: written sealed under a key held here only
//! (`archive::sealed_file`), each file deleted once fetched, the rest at
//! `archive.export_ttl`, and everything a past run left at start (its keys
//! died with it). Archive content thus never rests in the clear outside
//! the archive.

use crate::archive::sealed_file::{self, SealKey};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why an export file could not be handed out.
#[derive(Debug, thiserror::Error)]
pub enum ShelfError {
    /// No such export or file (never made, fetched already, or expired).
    #[error("no such export file (fetched already, expired, or never made)")]
    NotFound,
    /// The file on disk does not open under its key.
    #[error("export file {0} is damaged: {1}")]
    Damaged(String, sealed_file::OpenError),
    /// Reading or removing it failed.
    #[error("export file {0}: {1}")]
    Io(String, std::io::Error),
}

struct Held {
    key: SealKey,
    expires: Instant,
    files: BTreeSet<String>,
}

/// The exports waiting for download.
pub struct ExportShelf {
    dir: PathBuf,
    ttl: Duration,
    held: Mutex<HashMap<String, Held>>,
}

impl ExportShelf {
    /// The shelf in `dir`; whatever a past run left there is deleted.
    pub fn new(dir: PathBuf, ttl: Duration) -> Self {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if let Err(err) = std::fs::remove_dir_all(e.path()) {
                    tracing::warn!(error = %err, "a past run's export could not be deleted");
                }
            }
        }
        ExportShelf {
            dir,
            ttl,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// A new export's name, directory and key.
    pub fn reserve(&self) -> (String, PathBuf, SealKey) {
        self.sweep();
        let name = format!(
            "{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S"),
            hex::encode(rand::random::<[u8; 8]>())
        );
        let path = self.dir.join(&name);
        (name, path, SealKey::random())
    }

    /// Records the written export `name`; returns its file names.
    pub fn store(&self, name: &str, key: SealKey) -> Result<Vec<String>, ShelfError> {
        let path = self.dir.join(name);
        let files: BTreeSet<String> = std::fs::read_dir(&path)
            .map_err(|e| ShelfError::Io(name.into(), e))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        let list = files.iter().cloned().collect();
        crate::locks::lock(&self.held).insert(
            name.to_string(),
            Held {
                key,
                expires: Instant::now() + self.ttl,
                files,
            },
        );
        Ok(list)
    }

    /// Forgets and deletes a half-written export.
    pub fn discard(&self, path: &std::path::Path) {
        let _ = std::fs::remove_dir_all(path);
    }

    /// The file `file` of export `name`, opened; it is deleted from disk,
    /// and the export with its last file.
    pub fn take(&self, name: &str, file: &str) -> Result<Vec<u8>, ShelfError> {
        self.sweep();
        let mut held = crate::locks::lock(&self.held);
        let h = held.get_mut(name).ok_or(ShelfError::NotFound)?;
        if !h.files.contains(file) {
            return Err(ShelfError::NotFound);
        }
        let path = self.dir.join(name).join(file);
        let sealed = std::fs::read(&path).map_err(|e| ShelfError::Io(file.into(), e))?;
        let plain =
            sealed_file::open(&sealed, &h.key).map_err(|e| ShelfError::Damaged(file.into(), e))?;
        std::fs::remove_file(&path).map_err(|e| ShelfError::Io(file.into(), e))?;
        h.files.remove(file);
        if h.files.is_empty() {
            held.remove(name);
            let _ = std::fs::remove_dir_all(self.dir.join(name));
        }
        Ok(plain)
    }

    /// Deletes exports past their time.
    fn sweep(&self) {
        let now = Instant::now();
        let mut held = crate::locks::lock(&self.held);
        held.retain(|name, h| {
            let keep = h.expires > now;
            if !keep {
                let _ = std::fs::remove_dir_all(self.dir.join(name));
                tracing::info!(export = %name, "export expired undownloaded; deleted");
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(shelf: &ExportShelf, files: &[(&str, &[u8])]) -> String {
        let (name, path, key) = shelf.reserve();
        std::fs::create_dir_all(&path).unwrap();
        for (f, bytes) in files {
            let mut w =
                sealed_file::SealWriter::new(std::fs::File::create(path.join(f)).unwrap(), &key)
                    .unwrap();
            w.write_all(bytes).unwrap();
            w.finish().unwrap();
        }
        shelf.store(&name, key).unwrap();
        name
    }

    #[test]
    fn files_open_once_then_the_export_is_gone_and_expired_ones_too() {
        let dir = tempfile::tempdir().unwrap();
        let shelf = ExportShelf::new(dir.path().to_path_buf(), Duration::from_secs(60));
        let name = write(&shelf, &[("a.eml", b"Jane Roe"), ("manifest.json", b"{}")]);
        let on_disk = std::fs::read(dir.path().join(&name).join("a.eml")).unwrap();
        assert!(!on_disk.windows(4).any(|w| w == b"Jane"), "sealed at rest");
        assert_eq!(shelf.take(&name, "a.eml").unwrap(), b"Jane Roe");
        assert!(matches!(
            shelf.take(&name, "a.eml"),
            Err(ShelfError::NotFound)
        ));
        assert!(matches!(
            shelf.take(&name, "../x"),
            Err(ShelfError::NotFound)
        ));
        assert!(dir.path().join(&name).exists());
        assert_eq!(shelf.take(&name, "manifest.json").unwrap(), b"{}");
        assert!(!dir.path().join(&name).exists(), "gone with its last file");

        let shelf = ExportShelf::new(dir.path().to_path_buf(), Duration::ZERO);
        let name = write(&shelf, &[("a.eml", b"x")]);
        assert!(matches!(
            shelf.take(&name, "a.eml"),
            Err(ShelfError::NotFound)
        ));
        assert!(!dir.path().join(&name).exists(), "expired: deleted");

        let kept = write(&shelf, &[("a.eml", b"x")]);
        ExportShelf::new(dir.path().to_path_buf(), Duration::from_secs(60));
        assert!(!dir.path().join(&kept).exists(), "a past run's: deleted");
    }
}
