//! The web console's users and their sessions. A user has a role, may be
//! limited to some domains, and signs in with an argon2id password and a
//! TOTP code; the store keeps the password's PHC string and the TOTP
//! secret sealed by the caller (`console::users`), never either in clear.
//! A session is stored under the SHA-256 of its cookie, so the store
//! never holds a value that signs anyone in.

use super::tokens::Role;
use super::BackendError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One console user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleUser {
    /// Sign-in name, unique.
    pub name: String,
    /// What the user may see and do.
    pub role: Role,
    /// Domains an admin is limited to (lower-case); empty: every domain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// argon2id PHC string of the password.
    pub password: String,
    /// The TOTP secret, sealed (hex of the keyring's record); `None` until enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
    /// The last TOTP time step accepted, so a code is never taken twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_step: Option<u64>,
    /// Wrong sign-ins in a row.
    #[serde(default)]
    pub failures: u32,
    /// Locked until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<DateTime<Utc>>,
    /// When the user was added.
    pub created_at: DateTime<Utc>,
}

/// One signed-in console session (stored under its cookie's SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSession {
    /// The user it signs in.
    pub user: String,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it was last used.
    pub last_seen: DateTime<Utc>,
}

/// Why a console store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleStoreError {
    /// A user of that name exists.
    #[error("a console user named {0:?} exists (remove it first)")]
    Exists(String),
    /// No user of that name.
    #[error("no console user named {0:?}")]
    Missing(String),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A change made to one user under the store's lock.
pub type UserChange<'a> = &'a (dyn Fn(&mut ConsoleUser) + Send + Sync);

/// The console's users and sessions.
///
/// Promises: every write is durable when it returns and seen by the next
/// read through any handle (a removed user or ended session is refused at
/// once on every node that shares the store). Names are unique: of two
/// inserts of one name, one fails with `Exists`. `update` reads, changes
/// and writes one user atomically: two updates at once (two nodes counting
/// wrong passwords) never lose either's change. Removing a user ends its
/// sessions. Users list in the order they were added.
#[async_trait]
pub trait ConsoleUsers: Send + Sync {
    /// Every user, in the order they were added.
    async fn list(&self) -> Result<Vec<ConsoleUser>, ConsoleStoreError>;
    /// The user named `name`.
    async fn get(&self, name: &str) -> Result<Option<ConsoleUser>, ConsoleStoreError>;
    /// Stores a new user; `Exists` when its name is taken.
    async fn insert(&self, user: ConsoleUser) -> Result<(), ConsoleStoreError>;
    /// Applies `change` to user `name` atomically and returns the result;
    /// `Missing` when there is none. `change` may run more than once.
    async fn update(
        &self,
        name: &str,
        change: UserChange<'_>,
    ) -> Result<ConsoleUser, ConsoleStoreError>;
    /// Removes user `name` and ends its sessions; `Missing` when there is none.
    async fn remove(&self, name: &str) -> Result<ConsoleUser, ConsoleStoreError>;
    /// Stores (or replaces) the session under `key` (its cookie's SHA-256).
    async fn put_session(
        &self,
        key: &str,
        session: &ConsoleSession,
    ) -> Result<(), ConsoleStoreError>;
    /// The session under `key`, if any.
    async fn session(&self, key: &str) -> Result<Option<ConsoleSession>, ConsoleStoreError>;
    /// Ends the session under `key` (nothing when there is none).
    async fn end_session(&self, key: &str) -> Result<(), ConsoleStoreError>;
    /// Ends every session whose last use is before `idle_since` or whose
    /// start is before `started_before`; returns how many.
    async fn sweep_sessions(
        &self,
        idle_since: DateTime<Utc>,
        started_before: DateTime<Utc>,
    ) -> Result<usize, ConsoleStoreError>;
}
