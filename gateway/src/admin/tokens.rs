//! Bearer tokens for the archive and audit API, each bound to one role:
//! `archivist` (search, read, export, verify), `auditor` (read and verify
//! the audit log, verify the archive), `admin` (legal holds). A token is
//! made here and shown once; the store (`store::tokens::ApiTokens`) keeps
//! only its SHA-256.

pub use crate::store::tokens::{ApiTokens, Role, TokenEntry, TokenError};
use chrono::Utc;
use sha2::{Digest, Sha256};

/// The SHA-256 (hex) of a token: what the store keeps and looks up.
fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Makes a token for `name` with `role`; returns it (shown once).
pub async fn create(store: &dyn ApiTokens, role: Role, name: &str) -> Result<String, TokenError> {
    let secret: [u8; 32] = rand::random();
    let token = format!("sgt_{}", hex::encode(secret));
    store
        .insert(TokenEntry {
            name: name.to_string(),
            role,
            sha256: hash(&token),
            created_at: Utc::now(),
        })
        .await?;
    Ok(token)
}

/// The entry a presented token belongs to, if any (found by its hash, so
/// the lookup reveals nothing about stored tokens).
pub async fn lookup(store: &dyn ApiTokens, token: &str) -> Result<Option<TokenEntry>, TokenError> {
    store.find_hash(&hash(token)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rocksdb::tokens::TokenFile;

    #[tokio::test]
    async fn tokens_are_stored_hashed_found_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenFile::new(dir.path());
        let t = create(&store, Role::Archivist, "alice").await.unwrap();
        assert!(t.starts_with("sgt_") && t.len() == 68);
        let file = std::fs::read_to_string(dir.path().join("tokens.json")).unwrap();
        assert!(!file.contains(&t[4..]), "the token itself is not stored");
        assert!(matches!(
            create(&store, Role::Admin, "alice").await,
            Err(TokenError::Exists(_))
        ));
        assert_eq!(
            lookup(&store, &t).await.unwrap().map(|e| e.role),
            Some(Role::Archivist)
        );
        assert!(lookup(&store, "sgt_wrong").await.unwrap().is_none());
        store.remove("alice").await.unwrap();
        assert!(lookup(&store, &t).await.unwrap().is_none());
        assert!(matches!(
            store.remove("alice").await,
            Err(TokenError::Missing(_))
        ));
        assert_eq!("Auditor".parse::<Role>().unwrap(), Role::Auditor);
        assert!("root".parse::<Role>().is_err());
    }
}
