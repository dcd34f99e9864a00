//! Where a recipient domain's mail goes: a static `[[route]]`, the tenant's
//! smart host (for the local domains), or the domain's MX hosts.

use super::tls_policy::TlsLevel;
use crate::config::Config;
use crate::net::dns::{Dns, DnsError, MxAnswer};

/// How the next hop was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// The domain's MX records (or the implicit MX).
    Mx,
    /// `[delivery] smart_host`, for inbound mail to the local domains.
    SmartHost,
    /// A `[[route]]`.
    Static,
}

/// The hosts to try for one destination domain, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The recipient domain (IDNA ASCII, lower case).
    pub domain: String,
    /// Host names (or IP literals) to try, in order.
    pub hosts: Vec<String>,
    /// Port on each host.
    pub port: u16,
    /// How the hosts were chosen.
    pub kind: RouteKind,
    /// The route's own TLS level, which overrides the domain's.
    pub tls: Option<TlsLevel>,
}

/// Why a domain has no route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The domain publishes a null MX (RFC 7505).
    #[error("556 5.1.10 {0} does not accept mail (null MX)")]
    NullMx(String),
    /// The domain does not exist.
    #[error("550 5.1.2 {0}: domain not found")]
    NoSuchDomain(String),
    /// The MX host has no address.
    #[error("550 5.4.4 {0}: host not found")]
    NoAddress(String),
    /// Inbound mail but no smart host is configured.
    #[error("451 4.3.5 no smart host is configured for the local domains ([delivery] smart_host)")]
    NoSmartHost,
    /// DNS failed; try later.
    #[error("451 4.4.3 {0}")]
    Temporary(String),
}

impl RouteError {
    /// True when retrying later may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self, RouteError::Temporary(_) | RouteError::NoSmartHost)
    }
}

impl From<DnsError> for RouteError {
    fn from(e: DnsError) -> Self {
        match e {
            DnsError::NoSuchDomain(d) => RouteError::NoSuchDomain(d),
            DnsError::NoAddress(h) => RouteError::NoAddress(h),
            other => RouteError::Temporary(other.to_string()),
        }
    }
}

/// Routes `domain` (IDNA ASCII, lower case).
pub async fn resolve(config: &Config, dns: &Dns, domain: &str) -> Result<Route, RouteError> {
    if let Some(r) = config.route_for(domain) {
        return Ok(Route {
            domain: domain.to_string(),
            hosts: vec![r.host.clone()],
            port: r.port,
            kind: RouteKind::Static,
            tls: r.tls,
        });
    }
    if config.is_local_domain(domain) {
        let Some(s) = &config.delivery.smart_host else {
            return Err(RouteError::NoSmartHost);
        };
        return Ok(Route {
            domain: domain.to_string(),
            hosts: vec![s.host.clone()],
            port: s.port,
            kind: RouteKind::SmartHost,
            tls: s.tls,
        });
    }
    let hosts = match dns.mx(domain).await? {
        MxAnswer::Hosts(h) => h,
        MxAnswer::Null => return Err(RouteError::NullMx(domain.to_string())),
        MxAnswer::Implicit => vec![domain.to_string()],
    };
    Ok(Route {
        domain: domain.to_string(),
        hosts,
        port: config.delivery.mx_port,
        kind: RouteKind::Mx,
        tls: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;

    fn config() -> Config {
        let mut c = Config::default();
        c.server.local_domains = vec!["contoso.test".into()];
        c.route = vec![
            RouteConfig {
                domains: vec!["partner.test".into()],
                host: "10.0.0.1".into(),
                port: 2525,
                tls: Some(TlsLevel::Verify),
            },
            RouteConfig {
                domains: vec![".corp.test".into()],
                host: "relay.corp.test".into(),
                port: 25,
                tls: None,
            },
        ];
        c
    }

    #[tokio::test]
    async fn static_routes_and_smart_host_need_no_dns() {
        // A resolver pointed at a closed port: any lookup would fail.
        let dns = Dns::new(&["127.0.0.1:9".parse().unwrap()]).unwrap();
        let mut c = config();
        let r = resolve(&c, &dns, "partner.test").await.unwrap();
        assert_eq!(
            (r.kind, r.port, r.tls),
            (RouteKind::Static, 2525, Some(TlsLevel::Verify))
        );
        let r = resolve(&c, &dns, "a.b.corp.test").await.unwrap();
        assert_eq!(r.hosts, vec!["relay.corp.test".to_string()]);
        assert_eq!(
            resolve(&c, &dns, "contoso.test").await,
            Err(RouteError::NoSmartHost)
        );
        c.delivery.smart_host = Some(crate::config::RouteTarget {
            host: "contoso-test.mail.protection.outlook.com".into(),
            port: 25,
            tls: Some(TlsLevel::Verify),
        });
        let r = resolve(&c, &dns, "contoso.test").await.unwrap();
        assert_eq!(r.kind, RouteKind::SmartHost);
    }
}
