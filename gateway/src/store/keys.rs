//! Recipients' OpenPGP keys and S/MIME certificates as stored: one record
//! per key, by kind and id. Pinning, merging and parsing are the keystore's
//! (`keys/`); this is where the records live.

use super::BackendError;
use crate::model::key::{KeyEntry, KeyKind};
use async_trait::async_trait;

/// A value that changes whenever the stored records change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(pub u128);

/// The stored key records.
///
/// Promises: `put` and `delete` are durable when they return, and an `all`
/// that starts after they return sees them (from any process or node
/// sharing the store). `put` replaces the record of the same kind and id.
/// `stamp` is cheap and differs after any change made since it was last
/// read, once the backend's clock has ticked (the embedded backend uses the
/// directory's modification time: a few milliseconds), so a reader can keep
/// `all` in memory and reload on a new stamp (`None`: nothing stored yet);
/// a writer reloads after its own changes.
#[async_trait]
pub trait KeyRecords: Send + Sync {
    /// The current stamp.
    async fn stamp(&self) -> Result<Option<Stamp>, BackendError>;
    /// Every record.
    async fn all(&self) -> Result<Vec<KeyEntry>, BackendError>;
    /// Stores `entry`, replacing the record of its kind and id.
    async fn put(&self, entry: &KeyEntry) -> Result<(), BackendError>;
    /// Deletes the record of `kind` and `id`; false when there was none.
    async fn delete(&self, kind: KeyKind, id: &str) -> Result<bool, BackendError>;
}
