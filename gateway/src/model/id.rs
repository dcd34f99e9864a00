//! Queue ids: unique, time-ordered, printed as 16 hex digits.
//!
//! Layout (high to low): milliseconds since the epoch (48 bits), the node
//! number (6 bits: 0 for a single node, 1..=63 registered per node of a
//! cluster, so two nodes never make the same id), a sequence (10 bits).
//! Ids made before nodes had numbers (a 16-bit sequence in the low bits)
//! parse and sort the same way.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

/// A message's id in the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct QueueId(pub u64);

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Bits of the sequence, below the node number.
const SEQ_BITS: u32 = 10;
/// Bits of the node number, below the milliseconds.
const NODE_BITS: u32 = 6;

/// The number a node puts in the ids it makes: 0 on a single node, one
/// registered per node name in a cluster's database (`nodes.number`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeNumber(u8);

/// A number outside the ids' node bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("node number {0} is outside 0..={max}", max = NodeNumber::MAX.0)]
pub struct BadNodeNumber(pub i64);

impl NodeNumber {
    /// The single node's number (and ids made before nodes had numbers).
    pub const SINGLE: NodeNumber = NodeNumber(0);
    /// The highest number a node can have.
    pub const MAX: NodeNumber = NodeNumber((1 << NODE_BITS) - 1);

    /// The number as a plain integer.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for NodeNumber {
    type Error = BadNodeNumber;
    fn try_from(n: i64) -> Result<Self, BadNodeNumber> {
        u8::try_from(n)
            .ok()
            .filter(|&n| n <= NodeNumber::MAX.0)
            .map(NodeNumber)
            .ok_or(BadNodeNumber(n))
    }
}

impl QueueId {
    /// A candidate id for a single node (node number 0).
    pub fn generate() -> Self {
        Self::generate_on(NodeNumber::SINGLE)
    }

    /// A candidate id made on `node`: milliseconds since the epoch in the
    /// high bits, then the node, then a per-process sequence, so ids sort
    /// by arrival and no two nodes make the same one. The spool
    /// (`Spool::next_id`) makes it strictly greater than every stored id
    /// ([`QueueId::next_after`]).
    pub fn generate_on(node: NodeNumber) -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        Self::compose(ms, node, seq)
    }

    fn compose(ms: u64, node: NodeNumber, seq: u64) -> Self {
        QueueId(
            (ms << (NODE_BITS + SEQ_BITS))
                | (u64::from(node.0) << SEQ_BITS)
                | (seq & ((1 << SEQ_BITS) - 1)),
        )
    }

    /// The node that made this id (0 for ids made before nodes had numbers).
    pub fn node(self) -> NodeNumber {
        NodeNumber(((self.0 >> SEQ_BITS) & u64::from(NodeNumber::MAX.0)) as u8)
    }

    /// The smallest id above `self` that `node` makes: where a node goes on
    /// when its clock is behind the highest id it has seen, still in its
    /// own part of the id space (another node's next id is never taken).
    pub fn next_after(self, node: NodeNumber) -> Self {
        let ms = self.0 >> (NODE_BITS + SEQ_BITS);
        let seq = self.0 & ((1 << SEQ_BITS) - 1);
        match self.node().cmp(&node) {
            std::cmp::Ordering::Less => Self::compose(ms, node, 0),
            std::cmp::Ordering::Equal if seq < (1 << SEQ_BITS) - 1 => {
                Self::compose(ms, node, seq + 1)
            }
            // At the end of time (a far-future id on disk) just one more.
            _ if ms >= u64::MAX >> (NODE_BITS + SEQ_BITS) => QueueId(self.0.saturating_add(1)),
            _ => Self::compose(ms + 1, node, 0),
        }
    }

    /// The smallest id a message accepted at `t` can have, for range scans by time.
    pub fn at(t: chrono::DateTime<chrono::Utc>) -> Self {
        QueueId((t.timestamp_millis().max(0) as u64) << (NODE_BITS + SEQ_BITS))
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

    #[test]
    fn nodes_make_disjoint_ids_that_still_sort_by_time() {
        let (a, b) = (
            NodeNumber::try_from(1).unwrap(),
            NodeNumber::try_from(2).unwrap(),
        );
        let (x, y) = (QueueId::generate_on(a), QueueId::generate_on(b));
        assert_eq!((x.node(), y.node()), (a, b));
        assert_ne!(x, y);
        // Time first: a later millisecond sorts after whatever node made it.
        let early = QueueId::compose(1_000, NodeNumber::MAX, 1023);
        let late = QueueId::compose(1_001, NodeNumber::SINGLE, 0);
        assert!(early < late);
        assert!(QueueId::at(chrono::DateTime::from_timestamp_millis(1_001).unwrap()) <= late);
        assert!(QueueId::at(chrono::DateTime::from_timestamp_millis(1_001).unwrap()) > early);
        // Going on above another node's id stays in this node's part.
        let theirs = QueueId::compose(5_000, b, 7);
        let mine = theirs.next_after(a);
        assert!(mine > theirs);
        assert_eq!(mine.node(), a);
        assert_eq!(mine, QueueId::compose(5_001, a, 0));
        assert_eq!(theirs.next_after(b), QueueId::compose(5_000, b, 8));
        assert_eq!(
            QueueId::compose(5_000, b, 1023).next_after(b),
            QueueId::compose(5_001, b, 0)
        );
        assert_eq!(theirs.next_after(NodeNumber::MAX).node(), NodeNumber::MAX);
        // Many ids from two nodes going on after each other never meet.
        let mut seen = std::collections::HashSet::new();
        let mut last = QueueId(0);
        for i in 0..5000 {
            let node = if i % 3 == 0 { a } else { b };
            last = last.next_after(node);
            assert!(seen.insert(last));
        }
        assert!(NodeNumber::try_from(64).is_err());
        assert!(NodeNumber::try_from(-1).is_err());
    }

    #[test]
    fn ids_made_before_node_numbers_still_parse_and_sort() {
        // 2026-01-01 with a 16-bit sequence, as made before.
        let old: QueueId = "019B76DAA8000012".parse().unwrap();
        assert_eq!(old.to_string(), "019B76DAA8000012");
        let new = QueueId::generate();
        assert!(new > old, "later ids sort after old ones");
        assert!(old.next_after(NodeNumber::SINGLE) > old);
    }
}
