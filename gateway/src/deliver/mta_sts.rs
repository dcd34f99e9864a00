//! MTA-STS (RFC 8461): a domain's published promise that its MX hosts offer
//! TLS with a certificate that WebPKI-verifies, and the list of MX hosts it
//! stands behind. The TXT record `_mta-sts.<domain>` announces a policy and
//! its id; the policy itself is fetched over HTTPS from
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt` and cached until its
//! `max_age` runs out.
//!
//! The cache lives in memory only: after a restart policies are fetched
//! again. That re-opens the first-contact window RFC 8461 §10.2 describes
//! (an attacker who can block the fetch and strip STARTTLS) until the next
//! successful fetch; persisting the cache in the spool would close it.

use super::dns::{fqdn, Dns, DnsError};
use crate::smtp::tls::provider;
use chrono::{DateTime, TimeDelta, Utc};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::ResolveError;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Largest policy body accepted (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Largest HTTP response head accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Chunk-size lines and extensions on top of the body, for chunked responses.
const MAX_CHUNK_OVERHEAD: usize = 16 * 1024;
/// Connect, handshake, request and response together, per address.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Addresses of `mta-sts.<domain>` tried before giving up.
const MAX_ADDRS: usize = 3;
/// RFC 8461 §3.2: max_age is at most 31557600 seconds (about a year).
const MAX_AGE_LIMIT: u64 = 31_557_600;

/// Why no policy could be established.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    /// The policy text does not follow RFC 8461 §3.2.
    #[error("MTA-STS policy: {0}")]
    Syntax(String),
    /// The recipient domain cannot be used in an MTA-STS host name.
    #[error("{0}: not a domain MTA-STS can apply to")]
    Domain(String),
    /// The TXT or address lookup failed; retrying may help.
    #[error("MTA-STS DNS: {0}")]
    Dns(#[from] DnsError),
    /// The HTTPS fetch failed (connection, TLS, HTTP status or media type).
    #[error("MTA-STS policy fetch from {host}: {reason}")]
    Fetch {
        /// `mta-sts.<domain>`.
        host: String,
        /// What went wrong.
        reason: String,
    },
}

/// The policy mode (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StsMode {
    /// Deliver only to listed MX hosts, over TLS with a verified certificate.
    Enforce,
    /// Report failures but deliver as without a policy.
    Testing,
    /// The domain has withdrawn its policy.
    None,
}

impl StsMode {
    /// The policy-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StsMode::Enforce => "enforce",
            StsMode::Testing => "testing",
            StsMode::None => "none",
        }
    }
}

/// A fetched MTA-STS policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsPolicy {
    /// What the domain asks senders to do.
    pub mode: StsMode,
    /// Allowed MX host patterns, lower-case without a trailing dot; `*.x` matches one label.
    pub mx: Vec<String>,
    /// Seconds the policy may be cached (capped at 31557600).
    pub max_age: u64,
    /// The `id` from the TXT record the policy was fetched under.
    pub id: String,
    /// When the policy was fetched.
    pub fetched_at: DateTime<Utc>,
}

impl StsPolicy {
    /// Parses a policy file (RFC 8461 §3.2) into mode, MX patterns and max_age.
    ///
    /// Lines end in LF or CRLF. `version: STSv1`, `mode` and `max_age` are
    /// required, `mx` at least once unless the mode is `none`. For fields
    /// other than `mx` only the first occurrence counts (RFC 8461 §3.2);
    /// unknown fields are ignored.
    pub fn parse(text: &str) -> Result<(StsMode, Vec<String>, u64), StsError> {
        let syntax = |s: String| StsError::Syntax(s);
        let mut version: Option<&str> = None;
        let mut mode: Option<&str> = None;
        let mut max_age: Option<&str> = None;
        let mut mx: Vec<String> = Vec::new();
        for raw in text.split('\n') {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(syntax(format!("line without ':': {:.60}", line)));
            };
            let (key, value) = (key.trim(), value.trim_matches([' ', '\t']));
            match key {
                "version" => {
                    version.get_or_insert(value);
                }
                "mode" => {
                    mode.get_or_insert(value);
                }
                "max_age" => {
                    max_age.get_or_insert(value);
                }
                "mx" => mx.push(parse_mx_pattern(value).map_err(syntax)?),
                _ => {}
            }
        }
        match version {
            Some("STSv1") => {}
            Some(v) => return Err(syntax(format!("unsupported version {v:.20}"))),
            None => return Err(syntax("missing version".into())),
        }
        let mode = match mode {
            Some("enforce") => StsMode::Enforce,
            Some("testing") => StsMode::Testing,
            Some("none") => StsMode::None,
            Some(m) => return Err(syntax(format!("unknown mode {m:.20}"))),
            None => return Err(syntax("missing mode".into())),
        };
        let max_age = match max_age {
            // 1*10DIGIT (RFC 8461 §3.2); ten digits always fit in a u64.
            Some(v) if (1..=10).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) => v
                .parse::<u64>()
                .map_err(|e| syntax(format!("max_age: {e}")))?
                .min(MAX_AGE_LIMIT),
            Some(v) => return Err(syntax(format!("bad max_age {v:.20}"))),
            None => return Err(syntax("missing max_age".into())),
        };
        if mx.is_empty() && mode != StsMode::None {
            return Err(syntax(format!("mode {} without any mx", mode.as_str())));
        }
        Ok((mode, mx, max_age))
    }

    /// Whether `host` (an MX host name) is allowed by the policy's patterns
    /// (RFC 8461 §4.1: `*.example.com` matches exactly one more label).
    pub fn mx_matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|p| mx_pattern_matches(p, &host))
    }

    /// True until `max_age` seconds after the fetch.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        let age = TimeDelta::try_seconds(self.max_age.min(MAX_AGE_LIMIT) as i64);
        match age.and_then(|a| self.fetched_at.checked_add_signed(a)) {
            Some(expires) => now < expires,
            None => false,
        }
    }
}

/// Validates one `mx:` value: an optional `*.` and a domain of LDH labels.
fn parse_mx_pattern(value: &str) -> Result<String, String> {
    let v = value.trim_end_matches('.').to_ascii_lowercase();
    let domain = v.strip_prefix("*.").unwrap_or(&v);
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(v)
    } else {
        Err(format!("bad mx pattern {value:.80}"))
    }
}

/// `pattern` is lower-case without a trailing dot; so is `host`.
fn mx_pattern_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

/// The policy id announced by the `_mta-sts` TXT records, if exactly one of
/// them is a valid STSv1 record (RFC 8461 §3.1: records not starting with
/// `v=STSv1;` are ignored; none or several valid ones mean no policy).
pub fn sts_record_id(records: &[String]) -> Option<String> {
    let candidates: Vec<&String> = records.iter().filter(|r| is_sts_record(r)).collect();
    match candidates.as_slice() {
        [one] => parse_sts_record(one),
        _ => None,
    }
}

fn is_sts_record(txt: &str) -> bool {
    txt.strip_prefix("v=STSv1")
        .is_some_and(|rest| rest.trim_start_matches([' ', '\t']).starts_with(';'))
}

/// `v=STSv1; id=...; ext=...` → the id (1 to 32 letters and digits).
fn parse_sts_record(txt: &str) -> Option<String> {
    let rest = txt.strip_prefix("v=STSv1")?;
    let mut id = None;
    for field in rest.split(';').map(|f| f.trim_matches([' ', '\t'])) {
        if field.is_empty() {
            continue;
        }
        let (k, v) = field.split_once('=')?;
        if k == "id" && id.is_none() {
            if v.is_empty() || v.len() > 32 || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            id = Some(v.to_string());
        }
    }
    id
}

/// True for a negative answer (the name or the record type does not exist),
/// as opposed to a failure such as SERVFAIL or a timeout.
fn is_negative(e: &ResolveError) -> bool {
    match e.proto().map(|p| p.kind()) {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => {
            matches!(
                *response_code,
                ResponseCode::NoError | ResponseCode::NXDomain
            )
        }
        _ => false,
    }
}

/// Lower-case A-label form without a trailing dot, or an error for things
/// that are not host names (IP literals, empty labels, odd characters).
fn normalize_domain(domain: &str) -> Result<String, StsError> {
    let bad = || StsError::Domain(domain.chars().take(80).collect());
    let d = domain.trim_end_matches('.');
    let ascii = idna::domain_to_ascii(d).map_err(|_| bad())?;
    let ok = !ascii.is_empty()
        && ascii.len() <= 240
        && ascii.contains('.')
        && ascii.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && ascii.parse::<std::net::IpAddr>().is_err();
    if ok {
        Ok(ascii)
    } else {
        Err(bad())
    }
}

/// The TLS client configuration for policy fetches: WebPKI against `roots`,
/// TLS 1.2+ with the gateway's strong suites.
fn https_config(roots: Arc<RootCertStore>) -> Result<Arc<ClientConfig>, StsError> {
    let mut c = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| StsError::Fetch {
            host: String::new(),
            reason: format!("TLS configuration: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// Fetches the policy text of `domain` from `addr` (the address of
/// `mta-sts.<domain>`): HTTPS with the certificate verified for
/// `mta-sts.<domain>` against `roots`, redirects not followed, 200 and
/// `text/plain` only, at most 64 KiB, 10 s in all.
pub async fn fetch_policy(
    addr: SocketAddr,
    domain: &str,
    roots: Arc<RootCertStore>,
) -> Result<String, StsError> {
    let domain = normalize_domain(domain)?;
    fetch_with(addr, &domain, https_config(roots)?).await
}

async fn fetch_with(
    addr: SocketAddr,
    domain: &str,
    config: Arc<ClientConfig>,
) -> Result<String, StsError> {
    let host = format!("mta-sts.{domain}");
    let err = |reason: String| StsError::Fetch {
        host: host.clone(),
        reason,
    };
    let name = ServerName::try_from(host.clone()).map_err(|e| err(e.to_string()))?;
    let work = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| err(format!("connect {addr}: {e}")))?;
        let mut tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| err(format!("TLS with {addr}: {e}")))?;
        let request = format!(
            "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sealgate\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| err(format!("sending request: {e}")))?;
        tls.flush()
            .await
            .map_err(|e| err(format!("sending request: {e}")))?;
        read_response(&mut tls).await.map_err(err)
    };
    match tokio::time::timeout(FETCH_TIMEOUT, work).await {
        Ok(r) => r,
        Err(_) => Err(err(format!(
            "no complete answer from {addr} within {} s",
            FETCH_TIMEOUT.as_secs()
        ))),
    }
}

/// How the response body is delimited.
enum Framing {
    Chunked,
    Length(usize),
    UntilClose,
}

/// Reads an HTTP/1.1 response and returns the policy body, or why it is
/// not acceptable. Pure protocol handling, so it is tested on byte slices.
async fn read_response<R: AsyncRead + Unpin>(r: &mut R) -> Result<String, String> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let (head_len, body_start) = loop {
        if let Some(found) = head_end(&buf) {
            break found;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err("response header too large".into());
        }
        if read_more(r, &mut buf).await? == 0 {
            return Err("connection closed before the end of the response header".into());
        }
    };
    let head = std::str::from_utf8(&buf[..head_len])
        .map_err(|_| "response header is not text".to_string())?;
    let framing = check_head(head)?;
    let mut body = buf.split_off(body_start);
    let body = match framing {
        Framing::Length(n) => {
            if n > MAX_POLICY_BYTES {
                return Err(format!("policy of {n} bytes exceeds {MAX_POLICY_BYTES}"));
            }
            while body.len() < n {
                if read_more(r, &mut body).await? == 0 {
                    return Err("connection closed before the end of the policy".into());
                }
            }
            body.truncate(n);
            body
        }
        Framing::Chunked => loop {
            match decode_chunked(&body)? {
                Some(decoded) => break decoded,
                None => {
                    if body.len() > MAX_POLICY_BYTES + MAX_CHUNK_OVERHEAD {
                        return Err(format!("policy exceeds {MAX_POLICY_BYTES} bytes"));
                    }
                    if read_more(r, &mut body).await? == 0 {
                        return Err("connection closed inside the chunked policy".into());
                    }
                }
            }
        },
        Framing::UntilClose => {
            // A clean TLS close (close_notify) ends the body; a bare TCP
            // close is an error from tokio-rustls, so a truncated policy is
            // never taken for a whole one.
            while read_more(r, &mut body).await? > 0 {
                if body.len() > MAX_POLICY_BYTES {
                    return Err(format!("policy exceeds {MAX_POLICY_BYTES} bytes"));
                }
            }
            body
        }
    };
    String::from_utf8(body).map_err(|_| "policy is not UTF-8".to_string())
}

async fn read_more<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Result<usize, String> {
    let mut chunk = [0u8; 8192];
    let n = r
        .read(&mut chunk)
        .await
        .map_err(|e| format!("reading the response: {e}"))?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Where the header ends: (length of the header lines, start of the body).
/// Accepts CRLF CRLF and, leniently, LF LF.
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match buf.get(i + 1..) {
                Some([b'\r', b'\n', ..]) => return Some((i, i + 3)),
                Some([b'\n', ..]) => return Some((i, i + 2)),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Checks status and headers; returns how the body is framed.
fn check_head(head: &str) -> Result<Framing, String> {
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let (proto, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !proto.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: {status_line:.60}"));
    }
    let mut content_type: Option<&str> = None;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut location: Option<&str> = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed header line: {line:.60}"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = Some(value),
            "content-length" => {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:.20}"))?;
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting Content-Length headers".into());
                }
                length = Some(n);
            }
            "transfer-encoding" => {
                if value.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                } else {
                    return Err(format!("unsupported Transfer-Encoding {value:.30}"));
                }
            }
            "location" => location = Some(value),
            _ => {}
        }
    }
    if code != "200" {
        // RFC 8461 §3.3: redirects are not followed.
        return Err(match location {
            Some(l) if code.starts_with('3') => {
                format!("HTTP status {code} (redirect to {l:.80} not followed)")
            }
            _ => format!("HTTP status {code:.3}"),
        });
    }
    let media = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .unwrap_or("");
    if !media.eq_ignore_ascii_case("text/plain") {
        return Err(format!(
            "Content-Type {:.40} is not text/plain",
            content_type.unwrap_or("(none)")
        ));
    }
    Ok(match (chunked, length) {
        // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length.
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::UntilClose,
    })
}

/// Decodes a chunked body: `Ok(None)` while incomplete, the data once the
/// last (zero-size) chunk has been seen. Trailers are not needed and not read.
fn decode_chunked(raw: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let Some(nl) = raw[pos..].iter().position(|&b| b == b'\n') else {
            if raw.len() - pos > 1024 {
                return Err("chunk-size line too long".into());
            }
            return Ok(None);
        };
        let line = std::str::from_utf8(&raw[pos..pos + nl])
            .map_err(|_| "bad chunk-size line".to_string())?;
        let size_hex = line
            .trim_end_matches('\r')
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        if size_hex.is_empty() || size_hex.len() > 8 {
            return Err(format!("bad chunk size {size_hex:.10}"));
        }
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:.10}"))?;
        pos += nl + 1;
        if size == 0 {
            return Ok(Some(out));
        }
        if out.len() + size > MAX_POLICY_BYTES {
            return Err(format!("policy exceeds {MAX_POLICY_BYTES} bytes"));
        }
        // The chunk data and its CRLF (or LF).
        let Some(data) = raw.get(pos..pos + size) else {
            return Ok(None);
        };
        out.extend_from_slice(data);
        pos += size;
        match raw.get(pos..) {
            Some([b'\r', b'\n', ..]) => pos += 2,
            Some([b'\n', ..]) => pos += 1,
            Some([]) | Some([b'\r']) | None => return Ok(None),
            Some(_) => return Err("chunk not followed by CRLF".into()),
        }
    }
}

/// MTA-STS policies for recipient domains, with an in-memory cache.
pub struct MtaSts {
    dns: Dns,
    config: Result<Arc<ClientConfig>, StsError>,
    https_port: u16,
    cache: Mutex<HashMap<String, StsPolicy>>,
}

impl MtaSts {
    /// Looks up TXT records and addresses through `dns`, verifies policy
    /// hosts against `roots`, and fetches from `https_port` (443 but in tests).
    pub fn new(dns: Dns, roots: Arc<RootCertStore>, https_port: u16) -> Self {
        // Building the configuration only fails if the provider lacks both
        // TLS versions; keep the error and report it on every fetch.
        let config = https_config(roots);
        MtaSts {
            dns,
            config,
            https_port,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The policy in force for `domain` (RFC 8461 §3, §5.1).
    ///
    /// `Ok(None)`: the domain publishes no policy. `Err`: a policy is announced
    /// (or the TXT lookup failed) but none could be fetched and nothing
    /// usable is cached; RFC 8461 §5.1 says to deliver as if the domain had
    /// no policy, so callers should log the error and carry on.
    pub async fn policy(&self, domain: &str) -> Result<Option<StsPolicy>, StsError> {
        let domain = normalize_domain(domain)?;
        let txt = self.txt_id(&domain).await;
        let now = Utc::now();
        let cached = self.cached(&domain, now);
        match txt {
            Ok(Some(id)) => {
                if let Some(c) = cached.as_ref().filter(|c| c.id == id) {
                    return Ok(Some(c.clone()));
                }
                match self.fetch(&domain, &id).await {
                    Ok(p) => {
                        self.lock().insert(domain, p.clone());
                        Ok(Some(p))
                    }
                    Err(e) => match cached {
                        Some(c) => {
                            tracing::warn!(domain, error = %e, "MTA-STS policy refresh failed; using the cached policy");
                            Ok(Some(c))
                        }
                        None => Err(e),
                    },
                }
            }
            // No (valid) TXT record: a cached policy still applies until it
            // expires, so removing the record cannot be used for a downgrade.
            Ok(None) => Ok(cached),
            Err(e) => match cached {
                Some(c) => Ok(Some(c)),
                None => Err(e),
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StsPolicy>> {
        // A panic elsewhere while holding the lock leaves a plain map behind;
        // it is still consistent, so keep using it.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached policy if it has not expired; expired ones are dropped.
    fn cached(&self, domain: &str, now: DateTime<Utc>) -> Option<StsPolicy> {
        let mut cache = self.lock();
        match cache.get(domain) {
            Some(p) if p.is_fresh(now) => Some(p.clone()),
            Some(_) => {
                cache.remove(domain);
                None
            }
            None => None,
        }
    }

    async fn txt_id(&self, domain: &str) -> Result<Option<String>, StsError> {
        let name = fqdn(&format!("_mta-sts.{domain}"));
        match self.dns.resolver().txt_lookup(name.clone()).await {
            Ok(lookup) => {
                let records: Vec<String> = lookup
                    .iter()
                    .map(|txt| {
                        txt.iter()
                            .map(|part| String::from_utf8_lossy(part))
                            .collect::<String>()
                    })
                    .collect();
                Ok(sts_record_id(&records))
            }
            Err(e) if is_negative(&e) => Ok(None),
            Err(e) => Err(StsError::Dns(DnsError::Temporary {
                name,
                reason: e.to_string(),
            })),
        }
    }

    async fn fetch(&self, domain: &str, id: &str) -> Result<StsPolicy, StsError> {
        let config = self.config.clone()?;
        let host = format!("mta-sts.{domain}");
        let ips = self.dns.addrs(&host).await?;
        let mut last = None;
        for ip in ips.into_iter().take(MAX_ADDRS) {
            let addr = SocketAddr::new(ip, self.https_port);
            match fetch_with(addr, domain, config.clone()).await {
                Ok(text) => {
                    let (mode, mx, max_age) = StsPolicy::parse(&text)?;
                    return Ok(StsPolicy {
                        mode,
                        mx,
                        max_age,
                        id: id.to_string(),
                        fetched_at: Utc::now(),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(StsError::Fetch {
            host,
            reason: "no address".into(),
        }))
    }
}
