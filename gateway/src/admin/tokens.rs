//! Bearer tokens for the archive and audit API, each bound to one role:
//! `archivist` (search, read, export, verify), `auditor` (read and verify
//! the audit log, verify the archive), `admin` (legal holds). Only the
//! SHA-256 of a token is stored (`<data_dir>/tokens.json`, replaced
//! atomically); the token itself is shown once, when it is made.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Search, read, export and verify the archive.
    Archivist,
    /// Read and verify the audit log; verify the archive.
    Auditor,
    /// Place and release legal holds.
    Admin,
}

impl Role {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Archivist => "archivist",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "archivist" => Ok(Role::Archivist),
            "auditor" => Ok(Role::Auditor),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("`{s}`: use archivist, auditor or admin")),
        }
    }
}

/// A stored token: its name, role and hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// Who or what holds it.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// SHA-256 (hex) of the token.
    pub sha256: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// Errors of the token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading or writing the file.
    #[error("tokens file {0}: {1}")]
    Io(String, std::io::Error),
    /// The file does not parse.
    #[error("tokens file {0}: {1}")]
    Corrupt(String, String),
    /// A token of that name exists.
    #[error("a token named {0:?} exists (revoke it first)")]
    Exists(String),
    /// No token of that name.
    #[error("no token named {0:?}")]
    Missing(String),
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("tokens.json")
}

/// Every stored token.
pub fn list(data_dir: &Path) -> Result<Vec<TokenEntry>, TokenError> {
    let p = path(data_dir);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| TokenError::Corrupt(p.display().to_string(), e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(TokenError::Io(p.display().to_string(), e)),
    }
}

fn save(data_dir: &Path, entries: &[TokenEntry]) -> Result<(), TokenError> {
    let p = path(data_dir);
    let text = serde_json::to_vec_pretty(entries).expect("tokens serialise");
    crate::durable_file::replace(&p, &text, 0o600)
        .map_err(|e| TokenError::Io(p.display().to_string(), e))
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Makes a token for `name` with `role`; returns it (shown once).
pub fn create(data_dir: &Path, role: Role, name: &str) -> Result<String, TokenError> {
    let mut entries = list(data_dir)?;
    if entries.iter().any(|e| e.name == name) {
        return Err(TokenError::Exists(name.to_string()));
    }
    let secret: [u8; 32] = rand::random();
    let token = format!("sgt_{}", hex::encode(secret));
    entries.push(TokenEntry {
        name: name.to_string(),
        role,
        sha256: hash(&token),
        created_at: Utc::now(),
    });
    save(data_dir, &entries)?;
    Ok(token)
}

/// Revokes the token named `name`.
pub fn revoke(data_dir: &Path, name: &str) -> Result<TokenEntry, TokenError> {
    let mut entries = list(data_dir)?;
    let at = entries
        .iter()
        .position(|e| e.name == name)
        .ok_or_else(|| TokenError::Missing(name.to_string()))?;
    let gone = entries.remove(at);
    save(data_dir, &entries)?;
    Ok(gone)
}

/// The entry a presented token belongs to, if any (compared by hash, so
/// the comparison reveals nothing about stored tokens).
pub fn lookup(data_dir: &Path, token: &str) -> Option<TokenEntry> {
    let h = hash(token);
    list(data_dir).ok()?.into_iter().find(|e| e.sha256 == h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_found_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let t = create(dir.path(), Role::Archivist, "alice").unwrap();
        assert!(t.starts_with("sgt_") && t.len() == 68);
        let file = std::fs::read_to_string(dir.path().join("tokens.json")).unwrap();
        assert!(!file.contains(&t[4..]), "the token itself is not stored");
        assert!(matches!(
            create(dir.path(), Role::Admin, "alice"),
            Err(TokenError::Exists(_))
        ));
        assert_eq!(
            lookup(dir.path(), &t).map(|e| e.role),
            Some(Role::Archivist)
        );
        assert!(lookup(dir.path(), "sgt_wrong").is_none());
        revoke(dir.path(), "alice").unwrap();
        assert!(lookup(dir.path(), &t).is_none());
        assert!(matches!(
            revoke(dir.path(), "alice"),
            Err(TokenError::Missing(_))
        ));
        assert_eq!("Auditor".parse::<Role>(), Ok(Role::Auditor));
        assert!("root".parse::<Role>().is_err());
    }
}
