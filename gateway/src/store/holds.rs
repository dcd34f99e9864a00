//! Legal holds: named matters that keep the archive items they cover from
//! purge, until released.

use super::BackendError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A legal hold: a named matter that keeps what it covers from purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The matter's name.
    pub name: String,
    /// Items this archive query finds are held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Items sent by or to these addresses are held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
}

/// Why a hold could not be placed or released.
#[derive(Debug, thiserror::Error)]
pub enum HoldStoreError {
    /// A hold of that name exists.
    #[error("a hold named {0:?} exists")]
    Exists(String),
    /// No hold of that name.
    #[error("no hold named {0:?}")]
    Missing(String),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The legal holds in force.
///
/// Promises: `place` and `release` are durable when they return, and a
/// `list` that starts after they return sees them (a purge on any node
/// sharing the store keeps what a new hold covers). Names are unique: of
/// two placements of one name, one fails with `Exists`. `list` is in the
/// order the holds were placed.
#[async_trait]
pub trait LegalHolds: Send + Sync {
    /// Every hold in force.
    async fn list(&self) -> Result<Vec<Hold>, HoldStoreError>;
    /// Places `hold`; `Exists` when its name is taken.
    async fn place(&self, hold: Hold) -> Result<(), HoldStoreError>;
    /// Releases and returns the hold named `name`; `Missing` when none is.
    async fn release(&self, name: &str) -> Result<Hold, HoldStoreError>;
}
