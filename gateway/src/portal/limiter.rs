//! Requests per minute per client address: a fixed one-minute window,
//! enough to blunt scripted guessing without a shared store.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts requests per client address.
pub struct Limiter {
    per_minute: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Limiter {
    /// A limiter allowing `per_minute` requests per address.
    pub fn new(per_minute: u32) -> Self {
        Limiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request from `ip` (an IPv6 address by its /64, which one
    /// host usually holds whole); false when it is over the limit.
    pub fn allow(&self, ip: IpAddr) -> bool {
        let ip = crate::net::http_server::client_key(ip);
        let now = Instant::now();
        let mut w = crate::locks::lock(&self.windows);
        if w.len() > 100_000 {
            // Forget finished windows rather than grow without bound.
            w.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let e = w.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= Duration::from_secs(60) {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 <= self.per_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_per_address() {
        let l = Limiter::new(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| l.allow(a)));
        assert!(!l.allow(a));
        assert!(l.allow(b));
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        assert!((0..3).all(|_| l.allow(v6a)));
        assert!(!l.allow(v6b), "one /64, one budget");
    }
}
