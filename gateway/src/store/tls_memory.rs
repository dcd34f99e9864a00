//! TLS memory: destinations that once took mail over TLS, so a later
//! plain delivery to them is refused (a downgrade) until an admin clears
//! the domain (`sealgate tls forget`).

use super::BackendError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A remembered domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    /// The domain, lower-case ASCII.
    pub domain: String,
    /// When it first took mail over TLS.
    pub since: DateTime<Utc>,
}

/// The remembered domains. Domains are compared case-insensitively.
///
/// Promises: `remember` and `forget` are durable when they return, and any
/// read that starts after they return sees them (on every node sharing
/// the store). `remember` keeps the first time: remembering a domain again
/// changes nothing. `list` is ordered by domain.
#[async_trait]
pub trait TlsMemory: Send + Sync {
    /// Records that `domain` took mail over TLS now, unless it is known.
    async fn remember(&self, domain: &str) -> Result<(), BackendError>;
    /// When `domain` first took mail over TLS, if it did.
    async fn remembered(&self, domain: &str) -> Result<Option<DateTime<Utc>>, BackendError>;
    /// Forgets `domain`; false when it was not remembered.
    async fn forget(&self, domain: &str) -> Result<bool, BackendError>;
    /// Every remembered domain.
    async fn list(&self) -> Result<Vec<Remembered>, BackendError>;
}
