//! API tokens: bearer tokens for the archive and audit API, each bound to
//! one role. Only a token's SHA-256 is ever stored; the token itself is
//! made and shown once by `admin::tokens`.

use super::BackendError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

/// A role name that is none of the roles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}`: use archivist, auditor or admin")]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        match s.to_ascii_lowercase().as_str() {
            "archivist" => Ok(Role::Archivist),
            "auditor" => Ok(Role::Auditor),
            "admin" => Ok(Role::Admin),
            _ => Err(UnknownRole(s.to_string())),
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

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A token of that name exists.
    #[error("a token named {0:?} exists (revoke it first)")]
    Exists(String),
    /// No token of that name.
    #[error("no token named {0:?}")]
    Missing(String),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The stored API tokens.
///
/// Promises: `insert` and `remove` are durable when they return, and a
/// `find_hash` or `list` that starts after they return sees them (a
/// revocation holds at once, on every node that shares the store). Names
/// are unique: of two inserts of one name, one fails with `Exists`.
#[async_trait]
pub trait ApiTokens: Send + Sync {
    /// Every stored token, in the order they were made.
    async fn list(&self) -> Result<Vec<TokenEntry>, TokenError>;
    /// Stores `entry`; `Exists` when its name is taken.
    async fn insert(&self, entry: TokenEntry) -> Result<(), TokenError>;
    /// Removes and returns the token named `name`; `Missing` when none is.
    async fn remove(&self, name: &str) -> Result<TokenEntry, TokenError>;
    /// The token whose SHA-256 (hex) is `sha256`, if one is stored.
    async fn find_hash(&self, sha256: &str) -> Result<Option<TokenEntry>, TokenError>;
}
