//! `[delivery]` and `[[route]]`.

use super::Span;
use crate::model::tls::TlsLevel;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// `[delivery]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Deliver queued mail. Off keeps everything in the queue (accept-only).
    pub enabled: bool,
    /// Name given in EHLO; unset means `server.hostname`.
    pub helo_name: Option<String>,
    /// Port used for MX hosts (25; other values are for tests).
    pub mx_port: u16,
    /// DNS servers to ask (`ip:port`); empty means those in /etc/resolv.conf.
    pub resolvers: Vec<SocketAddr>,
    /// Where inbound mail (to `server.local_domains`) goes: the tenant's
    /// smart host. Unset means inbound mail waits in the queue (and expires).
    pub smart_host: Option<RouteTarget>,
    /// Delivery connections open at once, all destinations together.
    pub max_connections: usize,
    /// Connections open at once to one destination domain.
    pub max_connections_per_domain: usize,
    /// Recipients sent in one transaction; more to one domain are split.
    pub max_recipients_per_transaction: usize,
    /// Time allowed for the TCP connection.
    pub connect_timeout: Span,
    /// Time allowed for the greeting, EHLO, STARTTLS, MAIL and each RCPT.
    pub command_timeout: Span,
    /// Time allowed for the DATA transfer and the final reply.
    pub data_timeout: Span,
    /// How long an open connection waits for another message to the same
    /// host before QUIT.
    pub idle_timeout: Span,
    /// Waits between attempts for a deferred recipient; the last one repeats.
    pub retry_schedule: Vec<Span>,
    /// How long a recipient may stay deferred before it bounces.
    pub max_lifetime: Span,
    /// Send a delay DSN once a recipient has been deferred this long (when
    /// its NOTIFY allows); unset means no delay notices.
    pub delay_notice_after: Option<Span>,
    /// How long, counted from acceptance, the record of a finished message
    /// (recipients, evidence; not its content) stays for `queue show`.
    pub keep_finished: Span,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            enabled: true,
            helo_name: None,
            mx_port: 25,
            resolvers: Vec::new(),
            smart_host: None,
            max_connections: 100,
            max_connections_per_domain: 10,
            max_recipients_per_transaction: 50,
            connect_timeout: Span::secs(30),
            command_timeout: Span::secs(300),
            data_timeout: Span::secs(600),
            idle_timeout: Span::secs(5),
            retry_schedule: ["2m", "5m", "10m", "15m", "30m", "1h", "2h", "4h"]
                .iter()
                .map(|s| Span::parse(s).expect("valid default"))
                .collect(),
            max_lifetime: Span::secs(5 * 86400),
            delay_notice_after: Some(Span::secs(4 * 3600)),
            keep_finished: Span::secs(7 * 86400),
        }
    }
}

/// A fixed next hop: the smart host, or a `[[route]]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteTarget {
    /// Host name or IP address; a name is looked up as A/AAAA, not MX.
    pub host: String,
    /// Port.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// TLS level for this hop; unset means the destination domain's level.
    pub tls: Option<TlsLevel>,
}

fn default_smtp_port() -> u16 {
    25
}

/// `[[route]]`: mail for these domains goes to a fixed host instead of MX.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// Recipient domains (exact; `.example.com` also matches subdomains).
    pub domains: Vec<String>,
    /// Host name or IP address of the next hop (looked up as A/AAAA).
    pub host: String,
    /// Its port.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// TLS level for this hop; unset means the destination domain's level.
    pub tls: Option<TlsLevel>,
}

impl RouteConfig {
    /// The next hop.
    pub fn target(&self) -> RouteTarget {
        RouteTarget {
            host: self.host.clone(),
            port: self.port,
            tls: self.tls,
        }
    }
}
