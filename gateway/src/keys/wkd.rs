//! OpenPGP Web Key Directory lookups (draft-koch-openpgp-webkey-service):
//! the advanced method (`openpgpkey.<domain>`) when that host exists, else
//! the direct method, over HTTPS verified against the system roots (plus
//! `[tls] extra_roots_file`), through our own resolver, no redirects, a
//! size cap. A key found is stored in the keystore as source `wkd` (so a
//! key that differs from a known one waits for approval); misses and
//! failures are remembered for a while so a busy queue does not ask again.

use crate::net::dns::{Dns, DnsError};
use crate::net::https_get::{self, Want};
use data_encoding::{Encoding, Specification};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rustls::ClientConfig;
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// What a key fetch accepts: any media type (servers send
/// application/octet-stream or nothing useful), at most 256 KiB, 10 s.
const KEY: Want = Want {
    media_types: &[],
    max_body: 256 * 1024,
    timeout: Duration::from_secs(10),
};
/// How long a miss (404, no such host) is remembered.
const MISS_TTL: Duration = Duration::from_secs(3600);
/// How long a failure (timeout, TLS, DNS trouble) is remembered.
const FAIL_TTL: Duration = Duration::from_secs(900);
/// Remembered misses at most (oldest dropped first).
const MAX_REMEMBERED: usize = 10_000;

/// z-base-32 (RFC 6189 §5.1.6), as WKD uses it: no padding.
static ZBASE32: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = Specification::new();
    spec.symbols.push_str("ybndrfg8ejkmcpqxot1uwisza345h769");
    spec.encoding().expect("32 distinct symbols")
});

/// z-base-32 of the SHA-1 of the lower-cased local part: the file name WKD uses.
pub fn hashed_local(local: &str) -> String {
    ZBASE32.encode(&Sha1::digest(local.to_lowercase().as_bytes()))
}

/// What stays as it is in the `l=` query value: RFC 3986's unreserved characters.
const QUERY_KEEPS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a local part for the `l=` query parameter.
fn query_escape(s: &str) -> String {
    utf8_percent_encode(s, QUERY_KEEPS).to_string()
}

/// Host and path of the advanced and the direct method for `local@domain`
/// (domain in lower-case ASCII).
pub fn locations(local: &str, domain: &str) -> [(String, String); 2] {
    let (hash, l) = (hashed_local(local), query_escape(local));
    [
        (
            format!("openpgpkey.{domain}"),
            format!("/.well-known/openpgpkey/{domain}/hu/{hash}?l={l}"),
        ),
        (
            domain.to_string(),
            format!("/.well-known/openpgpkey/hu/{hash}?l={l}"),
        ),
    ]
}

/// Why WKD gave no key for an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WkdError {
    /// A lookup for the address found nothing a short while ago.
    #[error("a recent WKD lookup found no key")]
    Remembered,
    /// The address has no `@`.
    #[error("not an address")]
    NotAnAddress,
    /// Neither the advanced nor the direct method's host resolves, or DNS failed.
    #[error("WKD: {0}")]
    Dns(#[from] DnsError),
    /// The server answered, but not with a key (a 404, a redirect...).
    #[error("WKD {host}: {error}")]
    NotPublished {
        /// The host asked.
        host: String,
        /// Its answer.
        error: https_get::GetError,
    },
    /// No server could be asked: connection, TLS, timeout.
    #[error("WKD {host}: {error}")]
    Unreachable {
        /// The host tried.
        host: String,
        /// The last failure.
        error: https_get::GetError,
    },
    /// The host resolved to no address at all.
    #[error("WKD {0}: no address")]
    NoAddress(String),
}

/// WKD lookups with a memory of recent misses.
pub struct Wkd {
    dns: Dns,
    config: Arc<ClientConfig>,
    port: u16,
    misses: Mutex<HashMap<String, Instant>>,
}

impl Wkd {
    /// Looks keys up through `dns`, verifying servers against `roots`, on `port` (443).
    pub fn new(
        dns: Dns,
        roots: Arc<rustls::RootCertStore>,
        port: u16,
    ) -> Result<Self, https_get::GetError> {
        Ok(Wkd {
            dns,
            config: https_get::client_config(roots)?,
            port,
            misses: Mutex::default(),
        })
    }

    /// The key bytes published for `address` (lower-case, ASCII domain), or
    /// why there are none. A recent miss answers at once.
    pub async fn lookup(&self, address: &str) -> Result<Vec<u8>, WkdError> {
        let now = Instant::now();
        if let Some(until) = crate::locks::lock(&self.misses).get(address) {
            if *until > now {
                return Err(WkdError::Remembered);
            }
        }
        let result = self.fetch(address).await;
        if let Err((_, ttl)) = &result {
            let mut m = crate::locks::lock(&self.misses);
            if m.len() >= MAX_REMEMBERED {
                m.retain(|_, until| *until > now);
                if m.len() >= MAX_REMEMBERED {
                    m.clear();
                }
            }
            m.insert(address.to_string(), now + *ttl);
        }
        result.map_err(|(why, _)| why)
    }

    async fn fetch(&self, address: &str) -> Result<Vec<u8>, (WkdError, Duration)> {
        let (local, domain) = address
            .rsplit_once('@')
            .ok_or((WkdError::NotAnAddress, MISS_TTL))?;
        let [advanced, direct] = locations(local, domain);
        let miss = |e: DnsError| {
            let ttl = match e {
                DnsError::NoSuchDomain(_) | DnsError::NoAddress(_) => MISS_TTL,
                _ => FAIL_TTL,
            };
            (WkdError::Dns(e), ttl)
        };
        // The advanced method when its host exists (draft §3.1), else direct.
        let (host, path, addrs) = match self.dns.addrs(&advanced.0).await {
            Ok(a) => (advanced.0, advanced.1, a),
            Err(DnsError::NoSuchDomain(_) | DnsError::NoAddress(_)) => {
                match self.dns.addrs(&direct.0).await {
                    Ok(a) => (direct.0, direct.1, a),
                    Err(e) => return Err(miss(e)),
                }
            }
            Err(e) => return Err((WkdError::Dns(e), FAIL_TTL)),
        };
        let mut last = WkdError::NoAddress(host.clone());
        for ip in addrs.into_iter().take(3) {
            let addr = SocketAddr::new(ip, self.port);
            match https_get::get(addr, &host, &path, self.config.clone(), &KEY).await {
                Ok(body) => return Ok(body),
                Err(error @ https_get::GetError::Status { .. }) => {
                    return Err((WkdError::NotPublished { host, error }, MISS_TTL))
                }
                Err(error) => {
                    last = WkdError::Unreachable {
                        host: host.clone(),
                        error,
                    }
                }
            }
        }
        Err((last, FAIL_TTL))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_the_draft_example() {
        // draft-koch-openpgp-webkey-service §3.1: Joe.Doe@Example.ORG.
        assert_eq!(hashed_local("Joe.Doe"), "iy9q119eutrkn8s1mk4r39qejnbu3n5q");
        let [adv, direct] = locations("Joe.Doe", "example.org");
        assert_eq!(adv.0, "openpgpkey.example.org");
        assert_eq!(
            adv.1,
            "/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"
        );
        assert_eq!(direct.0, "example.org");
        assert!(direct.1.starts_with("/.well-known/openpgpkey/hu/iy9q"));
        assert_eq!(query_escape("a+b c"), "a%2Bb%20c");
    }
}
