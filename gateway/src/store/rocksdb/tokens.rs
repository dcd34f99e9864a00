//! API tokens in `<data_dir>/tokens.json` (0600), replaced atomically on
//! each change under an exclusive lock on `tokens.lock`, so the gateway
//! and the command line never lose each other's change.

use crate::store::tokens::{ApiTokens, TokenEntry, TokenError};
use crate::store::BackendError;
use async_trait::async_trait;
use std::path::{Path, PathBuf};

/// The token file of one data directory.
pub struct TokenFile {
    path: PathBuf,
    lock: PathBuf,
}

fn backend(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> TokenError {
    TokenError::Backend(BackendError::new("tokens file", e))
}

impl TokenFile {
    /// The tokens of `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        TokenFile {
            path: data_dir.join("tokens.json"),
            lock: data_dir.join("tokens.lock"),
        }
    }

    fn read(&self) -> Result<Vec<TokenEntry>, TokenError> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| backend(format!("{}: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(backend(format!("{}: {e}", self.path.display()))),
        }
    }

    /// Reads, changes and rewrites the file under its lock.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut Vec<TokenEntry>) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|e| backend(format!("{}: {e}", self.lock.display())))?;
        lock.lock()
            .map_err(|e| backend(format!("{}: {e}", self.lock.display())))?;
        let mut entries = self.read()?;
        let out = f(&mut entries)?;
        let text = serde_json::to_vec_pretty(&entries).expect("tokens serialise");
        crate::durable_file::replace(&self.path, &text, 0o600)
            .map_err(|e| backend(format!("{}: {e}", self.path.display())))?;
        Ok(out)
    }
}

#[async_trait]
impl ApiTokens for TokenFile {
    async fn list(&self) -> Result<Vec<TokenEntry>, TokenError> {
        self.read()
    }

    async fn insert(&self, entry: TokenEntry) -> Result<(), TokenError> {
        self.change(|entries| {
            if entries.iter().any(|e| e.name == entry.name) {
                return Err(TokenError::Exists(entry.name.clone()));
            }
            entries.push(entry);
            Ok(())
        })
    }

    async fn remove(&self, name: &str) -> Result<TokenEntry, TokenError> {
        self.change(|entries| {
            let at = entries
                .iter()
                .position(|e| e.name == name)
                .ok_or_else(|| TokenError::Missing(name.to_string()))?;
            Ok(entries.remove(at))
        })
    }

    async fn find_hash(&self, sha256: &str) -> Result<Option<TokenEntry>, TokenError> {
        Ok(self.read()?.into_iter().find(|e| e.sha256 == sha256))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_token_file_keeps_the_promises() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        crate::store::conformance::api_tokens(&|| Box::new(TokenFile::new(&path))).await;
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tokens.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
