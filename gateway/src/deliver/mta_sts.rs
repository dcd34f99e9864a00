//! MTA-STS (RFC 8461): a domain's published promise that its MX hosts offer
//! TLS with a certificate that WebPKI-verifies, and the list of MX hosts it
//! stands behind. The TXT record `_mta-sts.<domain>` announces a policy and
//! its id; the policy itself is fetched over HTTPS from
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt` and cached until its
//! `max_age` runs out.
//!
//! The cache is in memory and, when a spool is attached
//! ([`MtaSts::with_store`]), also in the spool, so a restart does not
//! re-open the first-contact window RFC 8461 §10.2 describes (an attacker
//! who can block the fetch and strip STARTTLS).

use crate::net::dns::{fqdn, is_negative, Dns, DnsError};
use crate::net::https_get::{client_config, get, Want};
use chrono::{DateTime, TimeDelta, Utc};
use hickory_resolver::proto::rr::RData;
use rustls::{ClientConfig, RootCertStore};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest policy body accepted (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
                "mx" => mx.push(parse_mx_pattern(value)?),
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
fn parse_mx_pattern(value: &str) -> Result<String, StsError> {
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
        Err(StsError::Syntax(format!("bad mx pattern {value:.80}")))
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

/// What a policy fetch accepts: RFC 8461 §3.3, `text/plain`, 64 KiB, 10 s.
pub(crate) const POLICY: Want = Want {
    media_types: &["text/plain"],
    max_body: MAX_POLICY_BYTES,
    timeout: FETCH_TIMEOUT,
};

fn https_config(roots: Arc<RootCertStore>) -> Result<Arc<ClientConfig>, StsError> {
    client_config(roots).map_err(|e| StsError::Fetch {
        host: String::new(),
        reason: e.to_string(),
    })
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
    let body = get(addr, &host, "/.well-known/mta-sts.txt", config, &POLICY)
        .await
        .map_err(|e| StsError::Fetch {
            host: host.clone(),
            reason: e.to_string(),
        })?;
    String::from_utf8(body).map_err(|_| StsError::Fetch {
        host,
        reason: "policy is not UTF-8".into(),
    })
}

/// MTA-STS policies for recipient domains, with an in-memory cache.
pub struct MtaSts {
    dns: Dns,
    config: Result<Arc<ClientConfig>, StsError>,
    https_port: u16,
    cache: Mutex<HashMap<String, StsPolicy>>,
    store: Option<Arc<dyn crate::store::cache::Cache>>,
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
            store: None,
        }
    }

    /// Also keeps fetched policies in `store`, so they survive a restart.
    pub fn with_store(mut self, store: Arc<dyn crate::store::cache::Cache>) -> Self {
        self.store = Some(store);
        self
    }

    fn store_key(domain: &str) -> String {
        format!("mta-sts/{domain}")
    }

    /// Remembers a fetched policy in memory and in the store.
    async fn keep(&self, domain: &str, p: &StsPolicy) {
        self.lock().insert(domain.to_string(), p.clone());
        if let Some(store) = &self.store {
            let value = serde_json::to_vec(p).unwrap_or_default();
            if let Err(e) = store.put(&Self::store_key(domain), &value).await {
                tracing::warn!(domain, error = %e, "cannot store MTA-STS policy");
            }
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
        let cached = self.cached(&domain, now).await;
        match txt {
            Ok(Some(id)) => {
                if let Some(c) = cached.as_ref().filter(|c| c.id == id) {
                    return Ok(Some(c.clone()));
                }
                match self.fetch(&domain, &id).await {
                    Ok(p) => {
                        self.keep(&domain, &p).await;
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
        crate::locks::lock(&self.cache)
    }

    /// The cached policy if it has not expired; expired ones are dropped.
    async fn cached(&self, domain: &str, now: DateTime<Utc>) -> Option<StsPolicy> {
        let known = self.lock().contains_key(domain);
        if !known {
            if let Some(store) = &self.store {
                let stored = store.get(&Self::store_key(domain)).await.ok().flatten();
                if let Some(p) = stored.and_then(|b| serde_json::from_slice::<StsPolicy>(&b).ok()) {
                    self.lock().insert(domain.to_string(), p);
                }
            }
        }
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
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TXT(txt) => Some(txt),
                        _ => None,
                    })
                    .map(|txt| {
                        txt.txt_data
                            .iter()
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

impl crate::policy::worker::StsLookup for MtaSts {
    fn enforces<'a>(
        &'a self,
        domain: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = crate::policy::worker::StsAnswer> + Send + 'a>,
    > {
        Box::pin(async move {
            match self.policy(domain).await {
                Ok(p) => Ok(p.is_some_and(|p| p.mode == StsMode::Enforce)),
                Err(e) => Err(e.into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::dane::test_dns::{rec, serve, soa, TestZone};
    use crate::net::test_pki::{read_request_head, tls_listener, Ca, Leaf};
    use hickory_resolver::proto::rr::rdata::{A, TXT};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;

    const ENFORCE: &str =
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n";

    #[test]
    fn parses_a_policy_with_lf_or_crlf() {
        let (mode, mx, max_age) = StsPolicy::parse(ENFORCE).unwrap();
        assert_eq!(mode, StsMode::Enforce);
        assert_eq!(mx, vec!["mail.example.com", "*.example.net"]);
        assert_eq!(max_age, 86400);
        let crlf = ENFORCE.replace('\n', "\r\n");
        assert_eq!(
            StsPolicy::parse(&crlf).unwrap(),
            (mode, mx.clone(), max_age)
        );
        // No final newline, blank lines, spaces around values, unknown fields.
        let loose = "version: STSv1\r\n\r\nmode:testing  \nmx:  MAIL.Example.COM.\nfoo: bar baz\nmax_age: 0";
        assert_eq!(
            StsPolicy::parse(loose).unwrap(),
            (StsMode::Testing, vec!["mail.example.com".to_string()], 0)
        );
        assert_eq!(
            StsPolicy::parse("version: STSv1\nmode: none\nmax_age: 10\n").unwrap(),
            (StsMode::None, vec![], 10)
        );
    }

    #[test]
    fn rejects_broken_policies() {
        let bad = |text: &str| StsPolicy::parse(text).unwrap_err().to_string();
        assert!(bad("mode: enforce\nmx: a.example\nmax_age: 1\n").contains("missing version"));
        assert!(
            bad("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n").contains("version")
        );
        assert!(bad("version: STSv1\nmx: a.example\nmax_age: 1\n").contains("missing mode"));
        assert!(bad("version: STSv1\nmode: enforce\nmx: a.example\n").contains("missing max_age"));
        assert!(
            bad("version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n")
                .contains("unknown mode")
        );
        assert!(
            bad("version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n")
                .contains("unknown mode")
        );
        for age in ["", "abc", "-1", "1.5", "12345678901", "+5"] {
            let t = format!("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: {age}\n");
            assert!(bad(&t).contains("max_age"), "{age:?}");
        }
        assert!(bad("version: STSv1\nmode: enforce\nmax_age: 1\n").contains("without any mx"));
        assert!(bad("version: STSv1\nmode: testing\nmax_age: 1\n").contains("without any mx"));
        assert!(bad("version: STSv1\nmode enforce\n").contains("without ':'"));
        for mx in [
            "*.*.example.com",
            "ex ample.com",
            "",
            "*.",
            "a..example",
            "mx_.example.com",
        ] {
            let t = format!("version: STSv1\nmode: enforce\nmx: {mx}\nmax_age: 1\n");
            assert!(bad(&t).contains("bad mx"), "{mx:?}");
        }
    }

    #[test]
    fn first_occurrence_wins_except_for_mx() {
        let t = "version: STSv1\nmode: testing\nmode: enforce\nmax_age: 60\nmax_age: 99\nmx: a.example\nmx: b.example\nversion: nonsense\n";
        assert_eq!(
            StsPolicy::parse(t).unwrap(),
            (
                StsMode::Testing,
                vec!["a.example".to_string(), "b.example".to_string()],
                60
            )
        );
    }

    #[test]
    fn max_age_is_capped_at_a_year() {
        let t = "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 9999999999\n";
        assert_eq!(StsPolicy::parse(t).unwrap().2, 31_557_600);
    }

    fn policy(mx: &[&str], max_age: u64) -> StsPolicy {
        StsPolicy {
            mode: StsMode::Enforce,
            mx: mx.iter().map(|s| s.to_string()).collect(),
            max_age,
            id: "x".into(),
            fetched_at: Utc::now(),
        }
    }

    #[test]
    fn mx_patterns_match_like_rfc_8461() {
        let p = policy(&["mail.example.com", "*.example.net"], 60);
        assert!(p.mx_matches("mail.example.com"));
        assert!(p.mx_matches("MAIL.Example.Com."));
        assert!(!p.mx_matches("mail.example.com.evil"));
        assert!(!p.mx_matches("xmail.example.com"));
        assert!(p.mx_matches("mx1.example.net"));
        assert!(p.mx_matches("MX1.EXAMPLE.NET."));
        assert!(!p.mx_matches("example.net"), "the wildcard needs a label");
        assert!(!p.mx_matches("a.b.example.net"), "only one label");
        assert!(!p.mx_matches(".example.net"));
        assert!(!policy(&[], 60).mx_matches("mail.example.com"));
    }

    #[test]
    fn freshness_follows_max_age() {
        let p = policy(&["a.example"], 60);
        assert!(p.is_fresh(p.fetched_at));
        assert!(p.is_fresh(p.fetched_at + TimeDelta::seconds(59)));
        assert!(!p.is_fresh(p.fetched_at + TimeDelta::seconds(60)));
        assert!(!policy(&["a.example"], 0).is_fresh(Utc::now()));
    }

    #[test]
    fn txt_records_announce_one_policy_id() {
        let id =
            |recs: &[&str]| sts_record_id(&recs.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            id(&["v=STSv1; id=20160831085700Z;"]),
            Some("20160831085700Z".into())
        );
        assert_eq!(id(&["v=STSv1;id=abc"]), Some("abc".into()));
        assert_eq!(id(&["v=STSv1 ;  id=abc ; ext=1"]), Some("abc".into()));
        assert_eq!(id(&["v=spf1 -all", "v=STSv1; id=abc;"]), Some("abc".into()));
        assert_eq!(id(&["v=STSv1; id=abc; id=def"]), Some("abc".into()));
        assert_eq!(id(&[]), None);
        assert_eq!(
            id(&["v=STSv1; id=a;", "v=STSv1; id=b;"]),
            None,
            "two records"
        );
        assert_eq!(id(&["v=STSv1;"]), None, "no id");
        assert_eq!(id(&["v=STSv1; id=;"]), None);
        assert_eq!(id(&["v=STSv1; id=abc-def;"]), None);
        assert_eq!(id(&[&format!("v=STSv1; id={};", "a".repeat(33))]), None);
        assert_eq!(id(&["v=STSv1; id=abc; junk"]), None);
        assert_eq!(id(&["v=STSv10; id=abc;"]), None);
        assert_eq!(id(&["V=STSv1; id=abc;"]), None);
    }

    /// What a policy fetch makes of `raw` sent by the policy host (then a
    /// TLS close): the text, or why not.
    async fn response(raw: &[u8]) -> Result<String, String> {
        let ca = Ca::new("Test CA");
        let s = site("");
        *s.response.lock().unwrap() = raw.to_vec();
        let addr = https_server(&ca, ca.leaf(&["mta-sts.example.test"], false), s).await;
        let config = https_config(roots(&ca)).map_err(|e| e.to_string())?;
        fetch_with(addr, "example.test", config)
            .await
            .map_err(|e| match e {
                StsError::Fetch { reason, .. } => reason,
                e => e.to_string(),
            })
    }

    #[tokio::test]
    async fn reads_length_chunked_and_close_delimited_bodies() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello and more";
        assert_eq!(response(ok.as_bytes()).await.unwrap(), "hello");
        let chunked = "HTTP/1.1 200 OK\r\ncontent-type: TEXT/PLAIN\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
        assert_eq!(response(chunked.as_bytes()).await.unwrap(), "hello, world");
        let close = "HTTP/1.0 200 OK\nContent-Type: text/plain\n\nversion: STSv1\n";
        assert_eq!(
            response(close.as_bytes()).await.unwrap(),
            "version: STSv1\n"
        );
    }

    #[tokio::test]
    async fn refuses_redirects_errors_and_other_media_types() {
        let err = |raw: &'static str| async move { response(raw.as_bytes()).await.unwrap_err() };
        let e = err("HTTP/1.1 301 Moved\r\nLocation: https://elsewhere.example/\r\nContent-Type: text/plain\r\n\r\n").await;
        assert!(e.contains("redirect") && e.contains("not followed"), "{e}");
        assert!(
            err("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n")
                .await
                .contains("404")
        );
        assert!(err("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nx")
            .await
            .contains("text/html"));
        assert!(err("HTTP/1.1 200 OK\r\n\r\nx")
            .await
            .contains("Content-Type"));
        assert!(err("SMTP 220 hi\r\n\r\n").await.contains("HTTP"));
        assert!(err(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip\r\n\r\n"
        )
        .await
        .contains("Transfer-Encoding"));
        assert!(err("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc").await.contains("conflicting"));
        assert!(err(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nshort"
        )
        .await
        .contains("closed"));
        assert!(err("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
            .await
            .contains("header"));
        let not_utf8 = response(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\n\xff",
        )
        .await;
        assert!(not_utf8.unwrap_err().contains("UTF-8"));
    }

    #[tokio::test]
    async fn limits_the_policy_size() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            MAX_POLICY_BYTES + 1
        );
        assert!(response(big.as_bytes())
            .await
            .unwrap_err()
            .contains("exceeds"));
        let mut close = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        close.extend(vec![b'a'; MAX_POLICY_BYTES + 1]);
        assert!(response(&close).await.unwrap_err().contains("exceeds"));
        let mut chunked =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        for _ in 0..20 {
            chunked.extend(b"1000\r\n");
            chunked.extend(vec![b'a'; 0x1000]);
            chunked.extend(b"\r\n");
        }
        assert!(response(&chunked).await.unwrap_err().contains("exceeds"));
        let long_head = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\n\r\n",
            "a".repeat(crate::net::https_get::MAX_HEAD_BYTES + 10)
        );
        assert!(response(long_head.as_bytes())
            .await
            .unwrap_err()
            .contains("too large"));
    }

    /// What the test HTTPS server answers, and how often it was asked.
    struct Site {
        response: Mutex<Vec<u8>>,
        hits: AtomicUsize,
        hosts: Mutex<Vec<String>>,
    }

    fn ok_response(body: &str, chunked: bool) -> Vec<u8> {
        if chunked {
            let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for piece in body.as_bytes().chunks(7) {
                r.extend(format!("{:x}\r\n", piece.len()).as_bytes());
                r.extend(piece);
                r.extend(b"\r\n");
            }
            r.extend(b"0\r\n\r\n");
            r
        } else {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
    }

    /// An HTTPS server on loopback presenting `leaf` (and its CA).
    async fn https_server(ca: &Ca, leaf: Leaf, site: Arc<Site>) -> SocketAddr {
        let (chain, key) = leaf.with(ca);
        let (listener, acceptor, addr) = tls_listener(chain, key).await;
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, site) = (acceptor.clone(), site.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Some(req) = read_request_head(&mut tls).await else {
                        return;
                    };
                    let req = String::from_utf8_lossy(&req).to_string();
                    assert!(
                        req.starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\n"),
                        "{req}"
                    );
                    // Header names are case-insensitive (ureq sends them lower-case).
                    let host = req.lines().find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("host").then(|| value.trim())
                    });
                    if let Some(h) = host {
                        site.hosts.lock().unwrap().push(h.to_string());
                    }
                    site.hits.fetch_add(1, Ordering::SeqCst);
                    let resp = site.response.lock().unwrap().clone();
                    let _ = tls.write_all(&resp).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        addr
    }

    fn site(body: &str) -> Arc<Site> {
        Arc::new(Site {
            response: Mutex::new(ok_response(body, false)),
            hits: AtomicUsize::new(0),
            hosts: Mutex::new(Vec::new()),
        })
    }

    fn roots(ca: &Ca) -> Arc<RootCertStore> {
        let mut r = RootCertStore::empty();
        r.add(ca.cert()).unwrap();
        Arc::new(r)
    }

    #[tokio::test]
    async fn fetches_over_verified_https() {
        let ca = Ca::new("Test CA");
        let s = site(ENFORCE);
        let addr = https_server(&ca, ca.leaf(&["mta-sts.example.test"], false), s.clone()).await;
        assert_eq!(
            fetch_policy(addr, "Example.Test.", roots(&ca))
                .await
                .unwrap(),
            ENFORCE
        );
        assert_eq!(s.hosts.lock().unwrap().as_slice(), ["mta-sts.example.test"]);
        *s.response.lock().unwrap() = ok_response(ENFORCE, true);
        assert_eq!(
            fetch_policy(addr, "example.test", roots(&ca))
                .await
                .unwrap(),
            ENFORCE
        );

        // A certificate for another name, or from an unknown CA, is refused.
        let wrong = https_server(&ca, ca.leaf(&["www.example.test"], false), site(ENFORCE)).await;
        let e = fetch_policy(wrong, "example.test", roots(&ca))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("TLS"), "{e}");
        let other_ca = Ca::new("Other CA");
        let e = fetch_policy(addr, "example.test", roots(&other_ca))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("TLS"), "{e}");
        let expired =
            https_server(&ca, ca.leaf(&["mta-sts.example.test"], true), site(ENFORCE)).await;
        assert!(fetch_policy(expired, "example.test", roots(&ca))
            .await
            .is_err());

        // Not a domain.
        assert!(matches!(
            fetch_policy(addr, "192.0.2.1", roots(&ca)).await,
            Err(StsError::Domain(_))
        ));
    }

    fn sts_zone(txt: Option<&str>) -> Vec<TestZone> {
        let mut records = vec![
            soa("example.test."),
            rec("mta-sts.example.test.", RData::A(A::new(127, 0, 0, 1))),
        ];
        if let Some(t) = txt {
            records.push(rec(
                "_mta-sts.example.test.",
                RData::TXT(TXT::new(vec![t.to_string()])),
            ));
        }
        vec![TestZone::new("example.test.", records)]
    }

    #[tokio::test]
    async fn stored_policy_survives_a_restart() {
        let ca = Ca::new("Test CA");
        let s = site(ENFORCE);
        let https = https_server(&ca, ca.leaf(&["mta-sts.example.test"], false), s.clone()).await;
        let zones = Arc::new(Mutex::new(sts_zone(Some("v=STSv1; id=one;"))));
        let dns = Dns::new(&[serve(zones.clone()).await]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let keys = crate::spool::Keyring::load_or_create(&dir.path().join("keys")).unwrap();
        let metrics = Arc::new(crate::telemetry::metrics::Metrics::new());
        let spool = crate::spool::Spool::open(&dir.path().join("spool"), keys, metrics)
            .await
            .unwrap();
        let first = MtaSts::new(dns.clone(), roots(&ca), https.port()).with_store(spool.cache());
        let p = first.policy("example.test").await.unwrap().unwrap();
        drop(first);

        // "Restarted", and an attacker now strips the TXT record and blocks
        // the policy host: the stored policy still applies.
        *zones.lock().unwrap() = sts_zone(None);
        let again = MtaSts::new(dns, roots(&ca), 1).with_store(spool.cache());
        assert_eq!(again.policy("example.test").await.unwrap(), Some(p));
    }

    #[tokio::test]
    async fn policy_lookup_caches_refetches_on_new_id_and_falls_back() {
        let ca = Ca::new("Test CA");
        let s = site(ENFORCE);
        let https = https_server(&ca, ca.leaf(&["mta-sts.example.test"], false), s.clone()).await;
        let zones = Arc::new(Mutex::new(sts_zone(Some("v=STSv1; id=one;"))));
        let dns = Dns::new(&[serve(zones.clone()).await]).unwrap();
        let sts = MtaSts::new(dns, roots(&ca), https.port());

        let p = sts.policy("example.test").await.unwrap().unwrap();
        assert_eq!(
            (p.mode, p.id.as_str(), p.max_age),
            (StsMode::Enforce, "one", 86400)
        );
        assert!(p.mx_matches("mail.example.com"));
        assert_eq!(s.hits.load(Ordering::SeqCst), 1);

        // Same id: the cached policy, no fetch.
        let again = sts.policy("EXAMPLE.test.").await.unwrap().unwrap();
        assert_eq!(again, p);
        assert_eq!(s.hits.load(Ordering::SeqCst), 1);

        // New id: fetched again.
        *zones.lock().unwrap() = sts_zone(Some("v=STSv1; id=two;"));
        *s.response.lock().unwrap() = ok_response(
            "version: STSv1\nmode: testing\nmx: *.example.org\nmax_age: 3600\n",
            true,
        );
        let p2 = sts.policy("example.test").await.unwrap().unwrap();
        assert_eq!((p2.mode, p2.id.as_str()), (StsMode::Testing, "two"));
        assert_eq!(s.hits.load(Ordering::SeqCst), 2);

        // Another new id but the server fails: the cached policy stays in force.
        *zones.lock().unwrap() = sts_zone(Some("v=STSv1; id=three;"));
        *s.response.lock().unwrap() =
            b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        assert_eq!(sts.policy("example.test").await.unwrap().unwrap(), p2);
        assert_eq!(s.hits.load(Ordering::SeqCst), 3);

        // So does it when the TXT record disappears (RFC 8461 §5.1).
        *zones.lock().unwrap() = sts_zone(None);
        assert_eq!(sts.policy("example.test").await.unwrap().unwrap(), p2);

        // A policy that does not parse is a fetch failure too.
        *zones.lock().unwrap() = sts_zone(Some("v=STSv1; id=four;"));
        *s.response.lock().unwrap() = ok_response("version: STSv1\nmode: enforce\n", false);
        assert_eq!(sts.policy("example.test").await.unwrap().unwrap(), p2);

        // No TXT and nothing cached: no policy.
        assert_eq!(sts.policy("other.example.test").await, Ok(None));
    }

    #[tokio::test]
    async fn announced_but_unfetchable_policy_without_cache_is_an_error() {
        let ca = Ca::new("Test CA");
        let s = site("");
        *s.response.lock().unwrap() =
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        let https = https_server(&ca, ca.leaf(&["mta-sts.example.test"], false), s).await;
        let zones = Arc::new(Mutex::new(sts_zone(Some("v=STSv1; id=one;"))));
        let dns = Dns::new(&[serve(zones).await]).unwrap();
        let sts = MtaSts::new(dns, roots(&ca), https.port());
        let e = sts.policy("example.test").await.unwrap_err();
        assert!(matches!(e, StsError::Fetch { .. }), "{e}");
        assert!(e.to_string().contains("404"), "{e}");
    }

    #[tokio::test]
    async fn expired_policies_are_not_used() {
        let ca = Ca::new("Test CA");
        let zones = Arc::new(Mutex::new(sts_zone(None)));
        let dns = Dns::new(&[serve(zones).await]).unwrap();
        let sts = MtaSts::new(dns, roots(&ca), 1);
        let mut old = policy(&["a.example"], 60);
        old.fetched_at = Utc::now() - TimeDelta::seconds(61);
        sts.lock().insert("example.test".into(), old);
        assert_eq!(sts.policy("example.test").await, Ok(None));
        assert!(sts.lock().is_empty(), "expired entries are dropped");
    }
}
