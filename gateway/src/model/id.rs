//! Queue ids: unique, time-ordered, printed as 16 hex digits.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

/// A message's id in the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct QueueId(pub u64);

static SEQ: AtomicU64 = AtomicU64::new(0);

impl QueueId {
    /// A candidate id: milliseconds since the epoch in the high bits, a
    /// per-process sequence in the low 16, so ids sort by arrival. The spool
    /// (`Spool::next_id`) makes it strictly greater than every stored id.
    pub fn generate() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        QueueId((ms << 16) | (seq & 0xffff))
    }

    /// The smallest id a message accepted at `t` can have, for range scans by time.
    pub fn at(t: chrono::DateTime<chrono::Utc>) -> Self {
        QueueId((t.timestamp_millis().max(0) as u64) << 16)
    }

    /// Big-endian bytes, the key prefix in the store.
    pub fn to_key(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// Reads an id back from a store key prefix.
    pub fn from_key(k: &[u8]) -> Option<Self> {
        k.get(..8)
            .and_then(|b| b.try_into().ok())
            .map(|b| QueueId(u64::from_be_bytes(b)))
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

/// A string that is not a queue id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a queue id (16 hex digits)")]
pub struct BadQueueId(pub String);

impl FromStr for QueueId {
    type Err = BadQueueId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 {
            return Err(BadQueueId(s.to_string()));
        }
        u64::from_str_radix(s, 16)
            .map(QueueId)
            .map_err(|_| BadQueueId(s.to_string()))
    }
}

impl From<QueueId> for String {
    fn from(id: QueueId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for QueueId {
    type Error = BadQueueId;
    fn try_from(s: String) -> Result<Self, BadQueueId> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_and_round_trip() {
        let ids: Vec<QueueId> = (0..1000).map(|_| QueueId::generate()).collect();
        let set: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(set.len(), ids.len());
        let s = ids[0].to_string();
        assert_eq!(s.parse::<QueueId>().unwrap(), ids[0]);
        assert_eq!(QueueId::from_key(&ids[0].to_key()), Some(ids[0]));
        assert!("xyz".parse::<QueueId>().is_err());
    }
}
