//! The escrow portal's store: held messages (each under a key of its own,
//! erased for good when withdrawn or expired) and the portal's sign-in
//! state (accounts and sessions).

use super::keyring::KeyError;
use super::shred::ShredError;
use super::BackendError;
use crate::model::escrow::{Deposit, EscrowEntry, EscrowState, NewDeposit, SignInRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Errors of the escrow store.
#[derive(Debug, thiserror::Error)]
pub enum EscrowError {
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A record did not decrypt.
    #[error("escrow record {what}: {source}")]
    Key {
        /// Which record.
        what: String,
        /// Why.
        source: KeyError,
    },
    /// A record decrypted but is not what it should be.
    #[error("escrow record {0} is damaged: {1}")]
    Corrupt(String, String),
    /// The message was erased (expired or revoked).
    #[error("message {0} is no longer available ({1:?})")]
    Gone(String, EscrowState),
    /// The shredding keys.
    #[error(transparent)]
    Shred(#[from] ShredError),
}

/// The SHA-256 (hex) of a link token or cookie: what the store keeps
/// instead of it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Held messages.
///
/// Promises: a deposit is durable, content included, when it returns, and
/// its tokens are kept only as hashes. Content is stored encrypted under a
/// key of the message's own, and after `revoke` or `sweep` return no key
/// that opens the erased content exists any more, in any file the backend
/// keeps; the entry stays as a tombstone (state, times). Reads of an erased
/// message fail with [`EscrowError::Gone`]. The first `read` marks the
/// entry read; `peek` does not. Every change is durable at return.
#[async_trait]
pub trait EscrowStore: Send + Sync {
    /// Stores `message` for its recipient until it expires.
    async fn deposit(&self, new: NewDeposit<'_>) -> Result<Deposit, EscrowError>;
    /// The entry `id`.
    async fn entry(&self, id: &str) -> Result<Option<EscrowEntry>, EscrowError>;
    /// The entry a recipient's link token opens (erased ones included, so
    /// the portal can say "expired" rather than "unknown").
    async fn by_token(&self, token: &str) -> Result<Option<EscrowEntry>, EscrowError>;
    /// The entry a sender's withdraw token names.
    async fn by_revoke_token(&self, token: &str) -> Result<Option<EscrowEntry>, EscrowError>;
    /// `recipient`'s entries (any case), erased ones included.
    async fn entries_for(&self, recipient: &str) -> Result<Vec<EscrowEntry>, EscrowError>;
    /// Every entry.
    async fn list(&self) -> Result<Vec<EscrowEntry>, EscrowError>;
    /// The message `id`, decrypted; the first read marks it read.
    async fn read(&self, id: &str) -> Result<Vec<u8>, EscrowError>;
    /// The message `id`, decrypted, without marking it read.
    async fn peek(&self, id: &str) -> Result<Vec<u8>, EscrowError>;
    /// Records a reply from the recipient (nothing for an erased entry).
    async fn mark_replied(&self, id: &str) -> Result<(), EscrowError>;
    /// Withdraws `id` now, erasing content and key; the entry as it stands
    /// after (already erased ones unchanged), or `None` when unknown.
    async fn revoke(&self, id: &str) -> Result<Option<EscrowEntry>, EscrowError>;
    /// Erases every message past its expiry at `now`; returns them.
    async fn sweep(&self, now: DateTime<Utc>) -> Result<Vec<EscrowEntry>, EscrowError>;
}

/// Held while one address's sign-in state is read and written; dropping
/// it lets the next caller for that address in.
pub type AccountGuard = Box<dyn Send + Sync>;

/// The portal's sign-in state: accounts by address, sessions by the hash
/// of their cookie, each an opaque (JSON) value the backend keeps
/// encrypted.
///
/// Promises: `put` and `delete` are durable at return and seen by every
/// later `get`; `lock` serialises callers for one address (on every node
/// sharing the store) until its guard is dropped, so a read-change-write
/// of an account cannot lose another's change.
#[async_trait]
pub trait SignInRecords: Send + Sync {
    /// The record `key` of `kind`.
    async fn get(&self, kind: SignInRecord, key: &str) -> Result<Option<Vec<u8>>, EscrowError>;
    /// Stores `value` as the record `key` of `kind`.
    async fn put(&self, kind: SignInRecord, key: &str, value: Vec<u8>) -> Result<(), EscrowError>;
    /// Removes the record `key` of `kind` (absent is fine).
    async fn delete(&self, kind: SignInRecord, key: &str) -> Result<(), EscrowError>;
    /// Every key of `kind` (for the sweeper).
    async fn keys(&self, kind: SignInRecord) -> Result<Vec<String>, EscrowError>;
    /// Waits for, then holds, `address`'s lock.
    async fn lock(&self, address: &str) -> Result<AccountGuard, EscrowError>;
}

/// The escrow portal's stores, opened together: held messages and the
/// sign-in state beside them.
#[derive(Clone)]
pub struct PortalStores {
    /// Held messages.
    pub messages: std::sync::Arc<dyn EscrowStore>,
    /// Accounts and sessions.
    pub sign_in: std::sync::Arc<dyn SignInRecords>,
}

impl std::fmt::Debug for PortalStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalStores").finish_non_exhaustive()
    }
}
