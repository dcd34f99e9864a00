//! API tokens in `<data_dir>/tokens.json` (0600), replaced atomically on
//! each change under an exclusive lock on `tokens.lock`, so the gateway
//! and the command line never lose each other's change.

use super::json_file::JsonFile;
use crate::store::tokens::{ApiTokens, TokenEntry, TokenError};
use async_trait::async_trait;
use std::path::Path;

/// The token file of one data directory.
pub struct TokenFile(JsonFile);

impl TokenFile {
    /// The tokens of `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        TokenFile(JsonFile::new(data_dir, "tokens.json", 0o600, "tokens file"))
    }
}

#[async_trait]
impl ApiTokens for TokenFile {
    async fn list(&self) -> Result<Vec<TokenEntry>, TokenError> {
        Ok(self.0.read()?)
    }

    async fn insert(&self, entry: TokenEntry) -> Result<(), TokenError> {
        self.0.change(|entries: &mut Vec<TokenEntry>| {
            if entries.iter().any(|e| e.name == entry.name) {
                return Err(TokenError::Exists(entry.name.clone()));
            }
            entries.push(entry);
            Ok(())
        })
    }

    async fn remove(&self, name: &str) -> Result<TokenEntry, TokenError> {
        self.0.change(|entries: &mut Vec<TokenEntry>| {
            let at = entries
                .iter()
                .position(|e| e.name == name)
                .ok_or_else(|| TokenError::Missing(name.to_string()))?;
            Ok(entries.remove(at))
        })
    }

    async fn find_hash(&self, sha256: &str) -> Result<Option<TokenEntry>, TokenError> {
        Ok(self
            .0
            .read::<TokenEntry>()?
            .into_iter()
            .find(|e| e.sha256 == sha256))
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
