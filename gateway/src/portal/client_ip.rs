//! The client's address: the TCP peer, unless the peer is a trusted reverse
//! proxy (`[portal] trusted_proxies`), in which case the rightmost address
//! in `X-Forwarded-For` that is not itself a trusted proxy. Anything a
//! client could forge (the leftmost entries) is never taken on trust.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// The address a request came from, as rate limits and the audit log see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client address of a request from `peer` with `headers`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    // Walk from the nearest hop outwards; the first untrusted one is the client.
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .copied()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(xff: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert("x-forwarded-for", xff.parse().unwrap());
        m
    }

    #[test]
    fn only_a_trusted_proxy_is_believed_and_only_for_its_own_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let outsider: IpAddr = "198.51.100.7".parse().unwrap();
        // A forged header from an untrusted peer is ignored.
        assert_eq!(client_ip(outsider, &h("203.0.113.1"), &trusted), outsider);
        // Through the proxy: the address it saw, not what the client claimed before it.
        assert_eq!(
            client_ip(proxy, &h("1.2.3.4, 203.0.113.9"), &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // Two trusted hops.
        assert_eq!(
            client_ip(proxy, &h("203.0.113.9, 10.0.0.7"), &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // No header, or no trusted proxies configured: the peer.
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(client_ip(proxy, &h("203.0.113.9"), &[]), proxy);
    }
}
