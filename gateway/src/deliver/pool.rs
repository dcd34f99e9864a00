//! Idle outbound connections kept for a short while, so a burst of messages
//! to the same host reuses one session (and one TLS handshake) instead of
//! opening a connection per message.

use super::client::Connection;
use super::tls_policy::TlsLevel;
use crate::spool::OutboundTls;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a pooled connection was opened for: the same host name, address
/// and TLS level, so the guarantees checked at connect time still hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// Host name the certificate was checked against.
    pub host: String,
    /// Address connected to.
    pub addr: SocketAddr,
    /// TLS level the session satisfied.
    pub level: TlsLevel,
}

struct Idle {
    conn: Connection,
    tls: Option<OutboundTls>,
    since: Instant,
}

/// The idle connections.
pub struct Pool {
    idle: Mutex<HashMap<PoolKey, Vec<Idle>>>,
    timeout: Duration,
    /// Most idle connections kept per key.
    per_key: usize,
}

impl Pool {
    /// A pool keeping connections idle for at most `timeout` (zero disables reuse).
    pub fn new(timeout: Duration, per_key: usize) -> Self {
        Pool {
            idle: Mutex::new(HashMap::new()),
            timeout,
            per_key: per_key.max(1),
        }
    }

    /// An idle connection for `key`, newest first, if one is still fresh.
    pub fn take(&self, key: &PoolKey) -> Option<(Connection, Option<OutboundTls>)> {
        let mut map = crate::locks::lock(&self.idle);
        let list = map.get_mut(key)?;
        while let Some(i) = list.pop() {
            if i.since.elapsed() < self.timeout {
                return Some((i.conn, i.tls));
            }
        }
        map.remove(key);
        None
    }

    /// Keeps `conn` for reuse; closes it when reuse is off or the key is full.
    pub async fn put(&self, key: PoolKey, conn: Connection, tls: Option<OutboundTls>) {
        if self.timeout.is_zero() {
            conn.quit().await;
            return;
        }
        let surplus = {
            let mut map = crate::locks::lock(&self.idle);
            let list = map.entry(key).or_default();
            list.push(Idle {
                conn,
                tls,
                since: Instant::now(),
            });
            (list.len() > self.per_key).then(|| list.remove(0))
        };
        if let Some(old) = surplus {
            old.conn.quit().await;
        }
    }

    /// Closes (QUIT) every connection idle longer than the timeout.
    pub async fn reap(&self) {
        let expired: Vec<Idle> = {
            let mut map = crate::locks::lock(&self.idle);
            let mut out = Vec::new();
            for list in map.values_mut() {
                let (old, fresh): (Vec<Idle>, Vec<Idle>) = std::mem::take(list)
                    .into_iter()
                    .partition(|i| i.since.elapsed() >= self.timeout);
                *list = fresh;
                out.extend(old);
            }
            map.retain(|_, l| !l.is_empty());
            out
        };
        for i in expired {
            i.conn.quit().await;
        }
    }
}
