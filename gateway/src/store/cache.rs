//! Small derived records kept across restarts — fetched MTA-STS policies —
//! so a restart does not refetch them all; whatever is lost is fetched
//! again.

use super::BackendError;
use async_trait::async_trait;

/// Derived records by key, opaque bytes.
///
/// Promises: a `get` after a `put` returns that value (or a newer one);
/// `put` need not be durable at return, so a crash may lose the latest
/// puts, never leave half a value. The backend encrypts values at rest.
#[async_trait]
pub trait Cache: Send + Sync {
    /// Keeps `value` under `key`, replacing what was there.
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), BackendError>;
    /// The value under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError>;
}
