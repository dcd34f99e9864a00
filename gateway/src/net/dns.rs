//! DNS lookups for routing: MX by preference (RFC 5321 §5.1), null MX
//! (RFC 7505), and host addresses. The resolver is the system's, or the
//! servers listed in `[delivery] resolvers`.

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{ResolverBuilder, TokioResolver};
use rand::seq::SliceRandom;
use rustls::{ClientConfig, RootCertStore};
use std::net::{IpAddr, SocketAddr};

/// Why a lookup gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN): a permanent failure.
    #[error("{0}: no such domain")]
    NoSuchDomain(String),
    /// The name exists but has no address: permanent for routing.
    #[error("{0}: no A or AAAA record")]
    NoAddress(String),
    /// Anything else (timeout, SERVFAIL...): try again later.
    #[error("{name}: DNS lookup failed: {reason}")]
    Temporary {
        /// The name asked for.
        name: String,
        /// What the resolver said.
        reason: String,
    },
    /// The resolver could not be set up.
    #[error("DNS resolver: {0}")]
    Setup(String),
}

impl DnsError {
    /// True when retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self, DnsError::Temporary { .. } | DnsError::Setup(_))
    }
}

/// The MX answer for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// Exchange host names, most preferred first, shuffled among equals.
    Hosts(Vec<String>),
    /// The domain publishes a null MX: it accepts no mail (RFC 7505).
    Null,
    /// No MX records: the domain itself is the implicit MX (RFC 5321 §5.1).
    Implicit,
}

/// The resolver the deliver stage uses; cheap to clone.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    config: Option<ResolverConfig>,
}

/// Makes `name` absolute so search domains are never appended.
pub fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// True for a negative answer (the name or the record type does not exist),
/// as opposed to a failure such as SERVFAIL, REFUSED or a timeout.
pub fn is_negative(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Dns(HickoryDnsError::NoRecordsFound(NoRecords {
            response_code: ResponseCode::NoError | ResponseCode::NXDomain,
            ..
        }))
    )
}

/// The TLS configuration handed to hickory: an empty root store, since
/// every server is reached over UDP or TCP. Left to itself, hickory (with the
/// rustls-platform-verifier feature mail-auth turns on) would load the
/// system's roots for every resolver built, and fail where there are none.
pub(crate) fn unused_tls() -> Result<ClientConfig, DnsError> {
    Ok(
        ClientConfig::builder_with_provider(crate::net::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| DnsError::Setup(e.to_string()))?
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
    )
}

/// A builder on `config` (the system's when `None`) with `ndots` 0.
fn builder(
    config: Option<&ResolverConfig>,
) -> Result<ResolverBuilder<TokioRuntimeProvider>, DnsError> {
    let mut builder = match config {
        Some(c) => TokioResolver::builder_with_config(c.clone(), TokioRuntimeProvider::default()),
        None => TokioResolver::builder_tokio().map_err(|e| DnsError::Setup(e.to_string()))?,
    };
    builder.options_mut().ndots = 0;
    Ok(builder.with_tls_config(unused_tls()?))
}

fn classify(name: &str, e: NetError) -> DnsError {
    if e.is_nx_domain() && is_negative(&e) {
        DnsError::NoSuchDomain(name.to_string())
    } else {
        DnsError::Temporary {
            name: name.to_string(),
            reason: e.to_string(),
        }
    }
}

impl Dns {
    /// A resolver asking `servers` (UDP, then TCP for truncated answers), or
    /// the system's when `servers` is empty.
    pub fn new(servers: &[SocketAddr]) -> Result<Self, DnsError> {
        let config = (!servers.is_empty()).then(|| {
            let on_port = |mut c: ConnectionConfig, port: u16| {
                c.port = port;
                c
            };
            ResolverConfig::from_name_servers(
                servers
                    .iter()
                    .map(|s| {
                        // UDP first; TCP when an answer comes back truncated.
                        let connections = vec![
                            on_port(ConnectionConfig::udp(), s.port()),
                            on_port(ConnectionConfig::tcp(), s.port()),
                        ];
                        NameServerConfig::new(s.ip(), true, connections)
                    })
                    .collect(),
            )
        });
        let resolver = builder(config.as_ref())?
            .build()
            .map_err(|e| DnsError::Setup(e.to_string()))?;
        Ok(Dns { resolver, config })
    }

    /// The explicit server list, if one was configured (for resolvers with
    /// other options, such as DNSSEC validation for DANE).
    pub fn server_config(&self) -> Option<&ResolverConfig> {
        self.config.as_ref()
    }

    /// Builds another resolver on the same servers with `opts` changed by `f`.
    pub fn with_options(
        &self,
        f: impl FnOnce(&mut ResolverOpts),
    ) -> Result<TokioResolver, DnsError> {
        let mut builder = builder(self.config.as_ref())?;
        f(builder.options_mut());
        builder.build().map_err(|e| DnsError::Setup(e.to_string()))
    }

    /// The underlying resolver, for other record types (TXT, TLSA).
    pub fn resolver(&self) -> &TokioResolver {
        &self.resolver
    }

    /// MX hosts of `domain` in the order to try them.
    pub async fn mx(&self, domain: &str) -> Result<MxAnswer, DnsError> {
        let lookup = match self.resolver.mx_lookup(fqdn(domain)).await {
            Ok(l) => l,
            Err(e) if is_negative(&e) && !e.is_nx_domain() => return Ok(MxAnswer::Implicit),
            Err(e) => return Err(classify(domain, e)),
        };
        let mut records: Vec<(u16, String)> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some(mx),
                _ => None,
            })
            .map(|mx| {
                let host = mx.exchange.to_ascii();
                (
                    mx.preference,
                    host.trim_end_matches('.').to_ascii_lowercase(),
                )
            })
            .collect();
        if records.is_empty() {
            return Ok(MxAnswer::Implicit);
        }
        // RFC 7505: a single MX with an empty exchange ("." ) means no mail.
        if records.len() == 1 && records[0].1.is_empty() {
            return Ok(MxAnswer::Null);
        }
        records.retain(|(_, h)| !h.is_empty());
        Ok(MxAnswer::Hosts(order_by_preference(records)))
    }

    /// A and AAAA addresses of `host` (an IP literal is returned as is).
    pub async fn addrs(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        match self.resolver.lookup_ip(fqdn(host)).await {
            Ok(l) => {
                let v: Vec<IpAddr> = l.iter().collect();
                if v.is_empty() {
                    Err(DnsError::NoAddress(host.to_string()))
                } else {
                    Ok(v)
                }
            }
            Err(e) if is_negative(&e) && !e.is_nx_domain() => {
                Err(DnsError::NoAddress(host.to_string()))
            }
            Err(e) => Err(classify(host, e)),
        }
    }
}

/// Sorts by preference and shuffles hosts of equal preference, so load is
/// spread as RFC 5321 §5.1 asks.
fn order_by_preference(mut records: Vec<(u16, String)>) -> Vec<String> {
    let mut rng = rand::rng();
    records.shuffle(&mut rng);
    records.sort_by_key(|(p, _)| *p);
    let mut out: Vec<String> = Vec::with_capacity(records.len());
    for (_, h) in records {
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_orders_and_equal_preferences_vary() {
        let recs = vec![
            (20, "c".to_string()),
            (10, "a".to_string()),
            (10, "b".to_string()),
            (30, "d".to_string()),
        ];
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..64 {
            let o = order_by_preference(recs.clone());
            assert_eq!(&o[2..], &["c".to_string(), "d".to_string()]);
            firsts.insert(o[0].clone());
        }
        assert_eq!(firsts.len(), 2, "equal-preference hosts should be shuffled");
    }

    #[test]
    fn fqdn_is_absolute() {
        assert_eq!(fqdn("example.com"), "example.com.");
        assert_eq!(fqdn("example.com."), "example.com.");
    }
}
