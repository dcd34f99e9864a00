//! The configuration: one TOML file, every option with a documented default
//! (see `deploy/sealgate.example.toml`). `sealgate serve` with no file runs on
//! [`Config::default`].

mod archive;
mod check;
mod console;
mod delivery;
mod dkim;
mod duration;
mod inbound;
mod policy;
mod portal;
mod seal;
mod store;

pub use archive::{ArchiveConfig, RetentionRule};
pub use check::{load_file, load_file_checked, ConfigError, ConfigErrors, FileCheck};
pub use console::ConsoleConfig;
pub use delivery::{DeliveryConfig, RouteConfig, RouteTarget};
pub use dkim::{DkimAlgorithm, DkimConfig};
pub use duration::{Span, SpanError};
pub use inbound::{FilterAction, InboundConfig, ScannerFailure};
pub use policy::{InboundDlp, Mode, PolicyConfig};
pub use portal::{PortalConfig, PortalLogin};
pub use seal::{Aead, SealConfig};
pub use store::{ClusterConfig, StoreBackend, StoreConfig};

use crate::model::envelope::BareLineEnding;
use crate::model::envelope::EnvelopeSyntax;
use crate::model::tls::TlsLevel;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Identity, data directory and the organisation's own domains.
    pub server: ServerConfig,
    /// SMTP listeners (`[[listener]]`).
    pub listener: Vec<ListenerConfig>,
    /// Trusted sending systems: the tenant (`[[connector]]`).
    pub connector: Vec<ConnectorConfig>,
    /// Server certificate, client-certificate trust, outbound TLS policy.
    pub tls: TlsConfig,
    /// Outbound delivery: smart host, timeouts, retries.
    pub delivery: DeliveryConfig,
    /// Static routes (`[[route]]`) that override MX and the smart host.
    pub route: Vec<RouteConfig>,
    /// Tags, triggers and rules that decide each recipient's seal.
    pub policy: PolicyConfig,
    /// The keystore and how seals are made.
    pub seal: SealConfig,
    /// DKIM signing keys for outbound mail (`[[dkim]]`), applied after sealing.
    pub dkim: Vec<DkimConfig>,
    /// Protocol limits and timeouts.
    pub limits: Limits,
    /// The durable queue.
    pub spool: SpoolConfig,
    /// Admin HTTP listener (metrics, queue API).
    pub admin: AdminConfig,
    /// Logging.
    pub log: LogConfig,
    /// DLP inspection of accepted mail.
    pub dlp: DlpConfig,
    /// The journal archive.
    pub archive: ArchiveConfig,
    /// The escrow portal for recipients no key or verified TLS can reach.
    pub portal: PortalConfig,
    /// The web console on the admin listener.
    pub console: ConsoleConfig,
    /// Where the stores are kept: the embedded backend or PostgreSQL.
    pub store: StoreConfig,
    /// This node among the nodes sharing a PostgreSQL store.
    pub cluster: ClusterConfig,
    /// Checks on mail from the internet: sender authentication.
    pub inbound: InboundConfig,
}

/// `[dlp]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DlpConfig {
    /// Inspect every accepted message and record the findings in the spool.
    pub enabled: bool,
    /// Rules directory; unset means the rules built into the binary.
    /// SIGHUP reloads it; a rule set that fails to load is refused at start
    /// and, on reload, the old set stays in force.
    pub rules_dir: Option<PathBuf>,
    /// Extraction limits (depth, expanded size, zip ratio...).
    pub limits: InspectLimits,
}

impl Default for DlpConfig {
    fn default() -> Self {
        DlpConfig {
            enabled: true,
            rules_dir: None,
            limits: Default::default(),
        }
    }
}

impl DlpConfig {
    /// Loads the configured rule set.
    pub fn load_rules(&self) -> Result<sealgate_dlp::RuleSet, sealgate_dlp::RuleError> {
        match &self.rules_dir {
            Some(dir) => sealgate_dlp::RuleSet::load_dir(dir),
            None => sealgate_dlp::RuleSet::load_builtin(),
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Name used in the greeting, EHLO reply and `Received:` headers.
    pub hostname: String,
    /// Where spool, keys and the generated certificate live.
    pub data_dir: PathBuf,
    /// Domains the organisation receives mail for; inbound mail to any other
    /// domain is refused as relaying.
    pub local_domains: Vec<String>,
    /// Known local recipients (`user@domain` or `@domain` per line); inbound
    /// mail to other addresses in a listed domain is refused with 550 5.1.1.
    /// Unset means every address in the local domains is accepted.
    pub recipients_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: system_hostname(),
            data_dir: PathBuf::from("./sealgate-data"),
            local_domains: Vec::new(),
            recipients_file: None,
        }
    }
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "sealgate.localdomain".to_string())
}

/// How a listener uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerTls {
    /// Plain SMTP, no STARTTLS offered.
    None,
    /// STARTTLS offered (RFC 3207).
    Starttls,
    /// TLS from the first byte (RFC 8314, port 465 style).
    Implicit,
}

/// `[[listener]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerConfig {
    /// Name used in logs, metrics and connector restrictions.
    pub name: String,
    /// Socket address to bind.
    pub address: SocketAddr,
    /// TLS mode.
    pub tls: ListenerTls,
    /// Refuse MAIL until the session is encrypted.
    pub require_tls: bool,
    /// A journal listener: what it accepts (Microsoft 365 journal reports)
    /// is archived, never relayed; a report is unwrapped to its original.
    pub journal: bool,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            name: "smtp".into(),
            address: SocketAddr::from(([127, 0, 0, 1], 2525)),
            tls: ListenerTls::Starttls,
            require_tls: false,
            journal: false,
        }
    }
}

/// `[[connector]]`: a trusted sending system whose mail is outbound.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Name recorded with every message that arrives through it.
    pub name: String,
    /// Source address ranges; empty means any address.
    pub cidrs: Vec<IpNet>,
    /// Names one of which the verified TLS client certificate must carry (as
    /// subject CN or DNS SAN; `*.example.com` matches one label). Empty means
    /// no certificate is required.
    pub tls_client_names: Vec<String>,
    /// Listeners this connector applies on; empty means all.
    pub listeners: Vec<String>,
    /// Sender domains (and their subdomains) the tenant sends as; when set,
    /// MAIL FROM in another domain is treated as inbound, not relayed. Needed
    /// where the sending IPs are shared by many customers (Google Workspace).
    pub sender_domains: Vec<String>,
    /// Microsoft 365 tenant id (a GUID): mail through this connector must
    /// carry it in `X-MS-Exchange-CrossTenant-Id`, or it is refused. Needed
    /// because every M365 tenant shares Microsoft's IPs and certificate.
    pub m365_tenant_id: Option<String>,
}

/// `[tls]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; unset means a self-signed certificate generated
    /// in `data_dir/tls/` on first start (for development).
    pub cert_file: Option<PathBuf>,
    /// PEM private key for `cert_file`.
    pub key_file: Option<PathBuf>,
    /// PEM CA bundle that client certificates must chain to; unset means the
    /// system's trusted roots (M365 and Google present public certificates).
    pub client_ca_file: Option<PathBuf>,
    /// Outbound: level for destinations not listed in `domains`.
    pub default_level: TlsLevel,
    /// Outbound: level per destination domain.
    pub domains: BTreeMap<String, TlsLevel>,
    /// Outbound: honour MTA-STS policies (RFC 8461).
    pub mta_sts: bool,
    /// Outbound: use DANE (RFC 7672) wherever DNSSEC-signed TLSA records exist.
    pub dane: bool,
    /// Outbound: remember domains delivered to with TLS and refuse later
    /// plain delivery to them (`sealgate tls forget DOMAIN` clears one).
    pub remember: bool,
    /// Outbound: extra PEM roots trusted for `verify` and MTA-STS, beside the system's.
    pub extra_roots_file: Option<PathBuf>,
    /// Outbound: HTTPS port for MTA-STS policy fetches (443; others are for tests).
    pub mta_sts_port: u16,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            default_level: TlsLevel::May,
            domains: BTreeMap::new(),
            mta_sts: true,
            dane: true,
            remember: true,
            extra_roots_file: None,
            mta_sts_port: 443,
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest message accepted, in octets; announced in the SIZE extension.
    pub max_message_size: u64,
    /// Recipients per message.
    pub max_recipients: usize,
    /// Longest command line, in octets, without CRLF.
    pub max_line_length: usize,
    /// Longest line inside DATA, in octets, without CRLF.
    pub max_data_line_length: usize,
    /// Bad commands tolerated before the session is closed.
    pub max_errors: u32,
    /// NOOP, RSET, VRFY, EXPN, HELP, EHLO and HELO allowed per session.
    pub max_junk_commands: u32,
    /// Concurrent SMTP connections, all listeners together.
    pub max_connections: usize,
    /// Concurrent SMTP connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Time allowed to send one complete command line.
    pub command_timeout: Span,
    /// Time allowed between two reads while receiving DATA.
    pub data_block_timeout: Span,
    /// Time allowed for the whole of one DATA transfer, before `min_data_rate` adds more.
    pub data_timeout: Span,
    /// Octets per second that earn a DATA transfer one more second beyond
    /// `data_timeout`, so large messages on slow links still finish.
    pub min_data_rate: u64,
    /// Longest a session may last.
    pub session_timeout: Span,
    /// `Received:` headers beyond which a message is refused as looping.
    pub max_hops: u32,
    /// Bare CR or LF in DATA: `reject` (550) or `normalize`.
    pub bare_line_ending: BareLineEnding,
    /// Refuse `MAIL FROM:a@b` (a path without angle brackets) with 501.
    pub strict_envelope_syntax: bool,
}

impl Limits {
    /// How `MAIL FROM:` and `RCPT TO:` paths are read.
    pub fn envelope_syntax(&self) -> EnvelopeSyntax {
        if self.strict_envelope_syntax {
            EnvelopeSyntax::Strict
        } else {
            EnvelopeSyntax::Lenient
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 1000,
            max_line_length: 2048,
            max_data_line_length: 10_000,
            max_errors: 10,
            max_junk_commands: 100,
            max_connections: 1000,
            max_connections_per_ip: 100,
            command_timeout: Span::secs(300),
            data_block_timeout: Span::secs(180),
            data_timeout: Span::secs(600),
            min_data_rate: 10_240,
            session_timeout: Span::secs(1800),
            max_hops: 50,
            bare_line_ending: BareLineEnding::Reject,
            strict_envelope_syntax: false,
        }
    }
}

/// `[spool]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Key file for encryption at rest; unset means `data_dir/keys/spool.keys`,
    /// created on first start.
    pub key_file: Option<PathBuf>,
    /// Below this many free bytes on the spool's file system, new mail (SMTP
    /// and portal replies) is deferred with 452 4.3.1 rather than risk a
    /// half-written record.
    pub min_free_space: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            key_file: None,
            min_free_space: 512 * 1024 * 1024,
        }
    }
}

/// `[admin]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Admin HTTP listener (`/metrics`, `/api/v1/...`); keep it on loopback or
    /// a management network.
    pub address: SocketAddr,
    /// File holding the bearer token that `/api/v1/...` always requires
    /// (mode 0600, owned by Sealgate's user); unset: `data_dir/admin.token`,
    /// made with a random token at first start. The CLI reads the same file.
    pub token_file: Option<PathBuf>,
    /// Serve the API over HTTPS. Required when `address` is not a loopback
    /// address: the API carries queued mail and its bearer token.
    pub tls: bool,
    /// PEM certificate chain for the HTTPS listener; unset: the `[tls]` one.
    pub cert_file: Option<PathBuf>,
    /// PEM private key for `cert_file`.
    pub key_file: Option<PathBuf>,
    /// CA certificates (PEM) the CLI trusts for the admin listener; unset:
    /// the certificates in `cert_file` themselves (a self-signed one, such
    /// as the generated development certificate).
    pub ca_file: Option<PathBuf>,
    /// The name the CLI expects on the admin certificate; unset:
    /// `server.hostname`. The CLI connects to `address` whatever DNS says.
    pub server_name: Option<String>,
    /// Connection caps and timeouts of the listener.
    pub http: HttpListenerConfig,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            address: SocketAddr::from(([127, 0, 0, 1], 9025)),
            token_file: None,
            tls: false,
            cert_file: None,
            key_file: None,
            ca_file: None,
            server_name: None,
            http: HttpListenerConfig::default(),
        }
    }
}

/// `[portal.http]`, `[admin.http]`: what one client, and all of them, may
/// hold open on an HTTP listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpListenerConfig {
    /// Open connections at most; more are closed at once.
    pub max_connections: usize,
    /// Open connections from one client (an IPv4 address or an IPv6 /64).
    pub max_connections_per_client: usize,
    /// Time for the TLS handshake, and for each request's header section.
    pub header_timeout: Span,
    /// A connection that sends and receives nothing for this long is closed.
    pub idle_timeout: Span,
    /// Time for one whole request, body included, before it gets 408.
    pub request_timeout: Span,
}

impl Default for HttpListenerConfig {
    fn default() -> Self {
        HttpListenerConfig {
            max_connections: 512,
            max_connections_per_client: 32,
            header_timeout: Span::secs(10),
            idle_timeout: Span::secs(60),
            request_timeout: Span::secs(120),
        }
    }
}

/// Bounds on what one message may expand to while it is inspected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InspectLimits {
    /// Containers (nested messages, archives, Office files) inside containers, beyond the
    /// message itself.
    pub max_depth: usize,
    /// Nested `multipart/*` levels inside one message (real mail stays under 10).
    pub max_multipart_nesting: usize,
    /// Decoded bytes of all parts and archive entries of one message together.
    pub max_expanded_bytes: u64,
    /// Decoded bytes of one part or one archive entry.
    pub max_part_bytes: u64,
    /// Uncompressed / compressed size of one archive entry (zip bombs reach 1000+).
    pub max_compression_ratio: u64,
    /// Entries read from one archive (more are reported, not read).
    pub max_archive_entries: usize,
    /// Pages of one PDF whose text is extracted.
    pub max_pdf_pages: usize,
    /// Seconds one PDF's text extraction may take; the pages read by then are scanned.
    pub max_pdf_seconds: u64,
    /// Images of one message read by OCR (tesseract); 0 turns OCR off.
    pub max_ocr_images: usize,
    /// Seconds OCR may take on all the images of one message together.
    pub max_ocr_seconds: u64,
    /// Images smaller than this many bytes (logos, icons, signature art) are
    /// not read by OCR; they are reported.
    pub min_ocr_bytes: usize,
}

impl Default for InspectLimits {
    fn default() -> Self {
        InspectLimits {
            max_depth: 8,
            max_multipart_nesting: 32,
            max_expanded_bytes: 128 << 20,
            max_part_bytes: 32 << 20,
            max_compression_ratio: 100,
            max_archive_entries: 4096,
            max_pdf_pages: 2000,
            max_pdf_seconds: 10,
            max_ocr_images: 20,
            max_ocr_seconds: 30,
            min_ocr_bytes: 4096,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `json` or `text`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `sealgate=debug`; `RUST_LOG` overrides.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Json,
            level: "info".into(),
        }
    }
}

impl Config {
    /// The embedded defaults: one loopback STARTTLS listener whose loopback
    /// peers are the tenant connector.
    pub fn embedded() -> Self {
        let mut c = Config::default();
        c.fill_defaults();
        c
    }

    /// Supplies the default listener and loopback connector when none are given.
    pub fn fill_defaults(&mut self) {
        // Domains are compared in IDNA ASCII form; convert them once here
        // rather than on every RCPT.
        use crate::model::address::ascii_domain;
        for d in &mut self.server.local_domains {
            *d = ascii_domain(d);
        }
        for c in &mut self.connector {
            for d in &mut c.sender_domains {
                *d = ascii_domain(d);
            }
        }
        self.tls.domains = std::mem::take(&mut self.tls.domains)
            .into_iter()
            .map(|(d, l)| (ascii_domain(&d), l))
            .collect();
        for r in &mut self.route {
            for d in &mut r.domains {
                *d = ascii_domain(d);
            }
        }
        self.policy.portal_available = self.portal.enabled;
        if self.listener.is_empty() {
            self.listener.push(ListenerConfig::default());
        }
        if self.connector.is_empty() {
            self.connector.push(Self::implied_connector());
        }
    }

    /// The connector supplied when a config names none: loopback peers are
    /// the tenant. Refused when a listener binds beyond loopback (check.rs).
    pub fn implied_connector() -> ConnectorConfig {
        ConnectorConfig {
            name: "loopback".into(),
            cidrs: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            ..Default::default()
        }
    }

    /// True when the connectors are only the implied loopback one.
    pub fn connector_implied(&self) -> bool {
        let implied = Self::implied_connector();
        matches!(self.connector.as_slice(), [c] if c.name == implied.name && c.cidrs == implied.cidrs && c.tls_client_names.is_empty() && c.sender_domains.is_empty())
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> PathBuf {
        self.server.data_dir.join("spool")
    }

    /// The keystore directory.
    pub fn keystore_dir(&self) -> PathBuf {
        self.seal
            .keystore_dir
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("keystore"))
    }

    /// True when `listener` is a journal listener (`journal = true`).
    pub fn is_journal_listener(&self, listener: &str) -> bool {
        self.listener
            .iter()
            .any(|l| l.name == listener && l.journal)
    }

    /// The escrow portal's store.
    pub fn escrow_dir(&self) -> PathBuf {
        self.server.data_dir.join("escrow")
    }

    /// The console's key file (seals users' TOTP secrets).
    pub fn console_key_file(&self) -> PathBuf {
        self.console
            .key_file
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("keys").join("console.keys"))
    }

    /// The escrow store's key file (wraps every held message's own key).
    pub fn escrow_key_file(&self) -> PathBuf {
        self.server.data_dir.join("keys").join("escrow.keys")
    }

    /// The archive directory.
    pub fn archive_dir(&self) -> PathBuf {
        self.server.data_dir.join("archive")
    }

    /// The archive's search index (derived: `archive reindex` rebuilds it).
    pub fn archive_index_dir(&self) -> PathBuf {
        self.server.data_dir.join("archive-index")
    }

    /// The archive's key file.
    pub fn archive_key_file(&self) -> PathBuf {
        self.archive
            .key_file
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("keys").join("archive.keys"))
    }

    /// The archive's checkpoint signing key.
    pub fn archive_signing_key_file(&self) -> PathBuf {
        self.archive.signing_key_file.clone().unwrap_or_else(|| {
            self.server
                .data_dir
                .join("keys")
                .join("archive-signing.pk8")
        })
    }

    /// The spool key file.
    pub fn spool_key_file(&self) -> PathBuf {
        self.spool
            .key_file
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("keys").join("spool.keys"))
    }

    /// The admin API token's file: `admin.token_file`, else
    /// `data_dir/admin.token`.
    pub fn admin_token_file(&self) -> PathBuf {
        self.admin
            .token_file
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("admin.token"))
    }

    /// The name on the admin API's certificate: `admin.server_name`, else
    /// `server.hostname`.
    pub fn admin_server_name(&self) -> &str {
        self.admin
            .server_name
            .as_deref()
            .unwrap_or(&self.server.hostname)
    }

    /// Loads `path`, or the embedded defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigErrors> {
        match path {
            Some(p) => load_file(p),
            None => Ok(Config::embedded()),
        }
    }

    /// The `[[route]]` for `domain` (IDNA ASCII, lower case), if any: exact
    /// names first, then the longest `.suffix` entry.
    pub fn route_for(&self, domain: &str) -> Option<&RouteConfig> {
        let exact = self
            .route
            .iter()
            .find(|r| r.domains.iter().any(|d| d == domain));
        exact.or_else(|| {
            self.route
                .iter()
                .flat_map(|r| r.domains.iter().map(move |d| (r, d)))
                .filter(|(_, d)| d.starts_with('.') && domain.ends_with(d.as_str()))
                .max_by_key(|(_, d)| d.len())
                .map(|(r, _)| r)
        })
    }

    /// The TLS level configured for mail to `domain`, and whether a route
    /// (or the smart host) set it: the route's own `tls`, else
    /// `[tls.domains]`, else `[tls] default_level`. MTA-STS, DANE and the
    /// TLS memory may raise it at delivery time.
    pub fn tls_level_for(&self, domain: &str) -> (TlsLevel, bool) {
        let hop = match self.route_for(domain) {
            Some(r) => r.tls,
            None if self.is_local_domain(domain) => {
                self.delivery.smart_host.as_ref().and_then(|s| s.tls)
            }
            None => None,
        };
        match hop {
            Some(l) => (l, true),
            None => (
                self.tls
                    .domains
                    .get(domain)
                    .copied()
                    .unwrap_or(self.tls.default_level),
                false,
            ),
        }
    }

    /// True when `domain` is one of the local domains (compared in IDNA
    /// ASCII form, so U-labels and A-labels match; see `fill_defaults`).
    pub fn is_local_domain(&self, domain: &str) -> bool {
        let domain = crate::model::address::ascii_domain(domain);
        self.server.local_domains.contains(&domain)
    }
}
