//! Loading and checking a config file, reporting every error with the file,
//! line, field path and a reason (`sealgate check-config`).

use super::{Config, ListenerTls};
use crate::model::address::Mailbox;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item, TableLike, Value};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted field path such as `listener[0].address`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.reason)
        } else {
            write!(f, ": {}: {}", self.field, self.reason)
        }
    }
}

/// All problems found in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn parse_path(p: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in p.split('.').filter(|s| !s.is_empty() && *s != "?") {
        let (key, idx) = match part.find('[') {
            Some(i) => (&part[..i], Some(&part[i..])),
            None => (part, None),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key.to_string()));
        }
        if let Some(idx) = idx {
            for n in idx.split(['[', ']']).filter(|s| !s.is_empty()) {
                if let Ok(n) = n.parse() {
                    out.push(Seg::Index(n));
                }
            }
        }
    }
    out
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// Finds the line where the item at `path` is written in the original text.
fn line_for(doc: &toml_edit::Document<String>, path: &[Seg]) -> Option<usize> {
    fn walk(t: &dyn TableLike, path: &[Seg]) -> Option<std::ops::Range<usize>> {
        let (Seg::Key(k), rest) = path.split_first()? else {
            return None;
        };
        let (key, item) = t.get_key_value(k)?;
        let here = key.span().or_else(|| item.span());
        match rest.split_first() {
            None => here,
            Some((Seg::Index(i), rest2)) => {
                let deeper = match item {
                    Item::ArrayOfTables(a) => a.get(*i).and_then(|t| {
                        if rest2.is_empty() {
                            t.span()
                        } else {
                            walk(t, rest2)
                        }
                    }),
                    Item::Value(Value::Array(a)) => a.get(*i).and_then(|v| match v {
                        Value::InlineTable(t) if !rest2.is_empty() => walk(t, rest2),
                        v => v.span(),
                    }),
                    _ => None,
                };
                deeper.or(here)
            }
            Some(_) => item.as_table_like().and_then(|t| walk(t, rest)).or(here),
        }
    }
    let span = walk(doc.as_table(), path)?;
    Some(line_of(doc.raw(), span.start))
}

/// Removes the item at `path` so deserialisation can go on to find the next error.
fn remove_at(t: &mut dyn TableLike, path: &[Seg]) -> bool {
    match path {
        [Seg::Key(k)] => t.remove(k).is_some(),
        [Seg::Key(k), Seg::Index(i), rest @ ..] => match t.get_mut(k) {
            Some(Item::ArrayOfTables(a)) if rest.is_empty() && *i < a.len() => {
                a.remove(*i);
                true
            }
            Some(Item::ArrayOfTables(a)) => a.get_mut(*i).is_some_and(|t| remove_at(t, rest)),
            Some(Item::Value(Value::Array(a))) if rest.is_empty() && *i < a.len() => {
                a.remove(*i);
                true
            }
            Some(Item::Value(Value::Array(a))) => match a.get_mut(*i) {
                Some(Value::InlineTable(t)) => remove_at(t, rest),
                _ => false,
            },
            _ => false,
        },
        [Seg::Key(k), rest @ ..] => t
            .get_mut(k)
            .and_then(|i| i.as_table_like_mut())
            .is_some_and(|t| remove_at(t, rest)),
        _ => false,
    }
}

/// Checks of the files a config names that need the stages' own loaders
/// (the recipients list, DKIM keys, extra trust roots). The layers above
/// supply them (`preflight::files`), so config imports no stage. Returns
/// `(field path, reason)` pairs.
pub type FileCheck = dyn Fn(&Config) -> Vec<(String, String)>;

/// Loads and checks a config file, its own settings only; on failure
/// returns every error found.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    load_file_checked(path, &|_| Vec::new())
}

/// Loads and checks a config file and, with `files`, the files it names;
/// on failure returns every error found.
pub fn load_file_checked(path: &Path, files: &FileCheck) -> Result<Config, ConfigErrors> {
    let err = |line, field: &str, reason: String| ConfigError {
        file: path.to_path_buf(),
        line,
        field: field.to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors(vec![err(None, "", format!("cannot read file: {e}"))]))?;
    let original = toml_edit::Document::parse(text.clone()).map_err(|e| {
        let line = e.span().map(|s| line_of(&text, s.start));
        ConfigErrors(vec![err(
            line,
            "",
            format!("TOML syntax error: {}", e.message()),
        )])
    })?;
    let mut editable: DocumentMut = text.parse().expect("parsed once already");
    let mut errors = Vec::new();
    let mut current = text.clone();
    let mut config = None;
    for _ in 0..100 {
        let de = match toml::Deserializer::parse(&current) {
            Ok(de) => de,
            Err(e) => {
                errors.push(err(None, "", e.message().to_string()));
                break;
            }
        };
        match serde_path_to_error::deserialize::<_, Config>(de) {
            Ok(c) => {
                config = Some(c);
                break;
            }
            Err(e) => {
                let field = e.path().to_string();
                let segs = parse_path(&field);
                let mut reason = e.inner().message().to_string();
                if reason.starts_with("unknown field") {
                    reason.push_str(" (misspelt option, or in the wrong section?)");
                }
                let line = line_for(&original, &segs).or_else(|| {
                    e.inner()
                        .span()
                        .filter(|_| errors.is_empty())
                        .map(|s| line_of(&text, s.start))
                });
                errors.push(err(line, &field, reason));
                if segs.is_empty() || !remove_at(editable.as_table_mut(), &segs) {
                    break;
                }
                current = editable.to_string();
            }
        }
    }
    if let Some(mut config) = config {
        config.fill_defaults();
        for (field, reason) in validate(&config).into_iter().chain(files(&config)) {
            errors.push(err(
                line_for(&original, &parse_path(&field)),
                &field,
                reason,
            ));
        }
        if errors.is_empty() {
            return Ok(config);
        }
    }
    Err(ConfigErrors(errors))
}

/// Checks what types alone cannot: consistency, files, ranges. Returns
/// `(field path, reason)` pairs.
pub fn validate(c: &Config) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut bad = |f: String, r: &str| out.push((f, r.to_string()));

    if c.server.hostname.is_empty() || Mailbox::parse(&format!("x@{}", c.server.hostname)).is_err()
    {
        bad(
            "server.hostname".into(),
            "must be a fully qualified host name",
        );
    }
    for (i, d) in c.server.local_domains.iter().enumerate() {
        if Mailbox::parse(&format!("x@{d}")).is_err() || d.starts_with('[') {
            bad(
                format!("server.local_domains[{i}]"),
                "is not a valid domain name",
            );
        }
    }

    if c.connector_implied() {
        for (i, l) in c.listener.iter().enumerate() {
            if !l.address.ip().is_loopback() {
                bad(
                    format!("listener[{i}].address"),
                    "binds beyond loopback, but no [[connector]] is configured (only then are loopback peers taken as the tenant): name the tenant's connectors explicitly",
                );
            }
        }
    }

    let mut names = HashSet::new();
    let mut addrs = HashSet::new();
    for (i, l) in c.listener.iter().enumerate() {
        if l.name.is_empty() {
            bad(format!("listener[{i}].name"), "must not be empty");
        } else if !names.insert(l.name.clone()) {
            bad(format!("listener[{i}].name"), "is used by another listener");
        } else if [
            crate::model::record::PORTAL_ORIGIN,
            crate::model::record::DSN_ORIGIN,
        ]
        .contains(&l.name.as_str())
        {
            bad(
                format!("listener[{i}].name"),
                "is reserved: mail Sealgate writes itself (DSNs, portal notices) carries it",
            );
        }
        if !addrs.insert(l.address) {
            bad(
                format!("listener[{i}].address"),
                "is used by another listener",
            );
        }
        if l.require_tls && l.tls == ListenerTls::None {
            bad(
                format!("listener[{i}].require_tls"),
                "needs tls = \"starttls\" or \"implicit\"",
            );
        }
    }

    let any_tls = c.listener.iter().any(|l| l.tls != ListenerTls::None);
    let mut cnames = HashSet::new();
    for (i, k) in c.connector.iter().enumerate() {
        if k.name.is_empty() {
            bad(format!("connector[{i}].name"), "must not be empty");
        } else if !cnames.insert(k.name.clone()) {
            bad(
                format!("connector[{i}].name"),
                "is used by another connector",
            );
        }
        if k.cidrs.is_empty() && k.tls_client_names.is_empty() {
            bad(
                format!("connector[{i}]"),
                "needs cidrs or tls_client_names: a connector that matches everybody would make an open relay",
            );
        }
        for (j, n) in k.tls_client_names.iter().enumerate() {
            let name = n.strip_prefix("*.").unwrap_or(n);
            if Mailbox::parse(&format!("x@{name}")).is_err() {
                bad(
                    format!("connector[{i}].tls_client_names[{j}]"),
                    "is not a host name or *.wildcard",
                );
            }
        }
        // Shared sending infrastructure: anyone's tenant could use it to relay.
        let exo_ranges: [ipnet::IpNet; 4] = [
            "40.92.0.0/15".parse().expect("valid"),
            "40.107.0.0/16".parse().expect("valid"),
            "52.100.0.0/14".parse().expect("valid"),
            "104.47.0.0/17".parse().expect("valid"),
        ];
        let looks_m365 = k
            .tls_client_names
            .iter()
            .any(|n| n.to_ascii_lowercase().ends_with("protection.outlook.com"))
            || k.cidrs.iter().any(|c| {
                exo_ranges
                    .iter()
                    .any(|e| e.contains(&c.network()) || c.contains(&e.network()))
            });
        if looks_m365 && k.m365_tenant_id.is_none() {
            bad(
                format!("connector[{i}].m365_tenant_id"),
                "must be set: Microsoft 365 addresses and certificates are shared by every tenant, so without the tenant id any tenant could relay through this connector",
            );
        }
        let looks_google = k.tls_client_names.iter().any(|n| {
            let n = n.to_ascii_lowercase();
            n.ends_with(".google.com") || n.ends_with(".gmail.com")
        });
        if looks_google && k.sender_domains.is_empty() {
            bad(
                format!("connector[{i}].sender_domains"),
                "must be set: Google's relay addresses and certificates are shared by every Workspace customer",
            );
        }
        if let Some(t) = &k.m365_tenant_id {
            let hex_groups: Vec<&str> = t.split('-').collect();
            let shape = [8, 4, 4, 4, 12];
            let ok = hex_groups.len() == 5
                && hex_groups
                    .iter()
                    .zip(shape)
                    .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                bad(
                    format!("connector[{i}].m365_tenant_id"),
                    "must be a GUID such as 8f3a1c2e-0000-4000-8000-123456789abc",
                );
            }
        }
        for (j, d) in k.sender_domains.iter().enumerate() {
            if Mailbox::parse(&format!("x@{d}")).is_err() || d.starts_with('[') {
                bad(
                    format!("connector[{i}].sender_domains[{j}]"),
                    "is not a valid domain name",
                );
            }
        }
        if !k.tls_client_names.is_empty() && !any_tls {
            bad(
                format!("connector[{i}].tls_client_names"),
                "no listener offers TLS, so no client certificate can be seen",
            );
        }
        for (j, l) in k.listeners.iter().enumerate() {
            if !c.listener.iter().any(|x| &x.name == l) {
                bad(
                    format!("connector[{i}].listeners[{j}]"),
                    "names no configured listener",
                );
            }
        }
    }

    match (&c.tls.cert_file, &c.tls.key_file) {
        (Some(_), None) => bad("tls.key_file".into(), "must be set when tls.cert_file is"),
        (None, Some(_)) => bad("tls.cert_file".into(), "must be set when tls.key_file is"),
        _ => {}
    }
    for (field, file) in [
        ("tls.cert_file", &c.tls.cert_file),
        ("tls.key_file", &c.tls.key_file),
        ("tls.client_ca_file", &c.tls.client_ca_file),
    ] {
        if let Some(f) = file {
            if let Err(e) = std::fs::metadata(f) {
                bad(field.into(), &format!("cannot read {}: {e}", f.display()));
            }
        }
    }
    if let Some(k) = &c.spool.key_file {
        if let Some(parent) = k.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                bad(
                    "spool.key_file".into(),
                    &format!("directory {} does not exist", parent.display()),
                );
            }
        }
    }

    if !c.admin.tls && !c.admin.address.ip().is_loopback() {
        bad(
            "admin.address".into(),
            "is not a loopback address: set admin.tls = true, the API carries queued mail and its token",
        );
    }
    if c.admin.cert_file.is_some() != c.admin.key_file.is_some() {
        bad(
            "admin.cert_file".into(),
            "admin.cert_file and admin.key_file go together",
        );
    }
    for (field, file) in [
        ("admin.cert_file", &c.admin.cert_file),
        ("admin.key_file", &c.admin.key_file),
        ("admin.ca_file", &c.admin.ca_file),
    ] {
        if let Some(f) = file {
            if let Err(e) = std::fs::metadata(f) {
                bad(field.into(), &format!("cannot read {}: {e}", f.display()));
            }
        }
    }

    // Unset, the token file is made at first start; a configured one must be usable now.
    if let Some(f) = &c.admin.token_file {
        match crate::secret_file::read(f) {
            Ok(t) if t.len() < 16 => bad(
                "admin.token_file".into(),
                "token must be at least 16 characters",
            ),
            Err(e) => bad("admin.token_file".into(), &e.to_string()),
            Ok(_) => {}
        }
    }

    let l = &c.limits;
    // (field, value, minimum, why that minimum)
    let minimums: [(&str, u64, u64, &str); 8] = [
        (
            "limits.max_message_size",
            l.max_message_size,
            1024,
            "octets",
        ),
        // RFC 5321 §4.5.3.1.8: servers must accept at least 100 recipients.
        (
            "limits.max_recipients",
            l.max_recipients as u64,
            100,
            "(RFC 5321 section 4.5.3.1.8)",
        ),
        (
            "limits.max_line_length",
            l.max_line_length as u64,
            512,
            "(RFC 5321 section 4.5.3.1.4)",
        ),
        (
            "limits.max_data_line_length",
            l.max_data_line_length as u64,
            998,
            "(RFC 5321 section 4.5.3.1.6)",
        ),
        ("limits.max_errors", u64::from(l.max_errors), 1, ""),
        (
            "limits.max_junk_commands",
            u64::from(l.max_junk_commands),
            10,
            "",
        ),
        ("limits.max_connections", l.max_connections as u64, 1, ""),
        (
            "limits.min_data_rate",
            l.min_data_rate,
            1,
            "octets per second",
        ),
    ];
    for (field, value, min, why) in minimums {
        if value < min {
            bad(
                field.into(),
                format!("must be at least {min} {why}").trim_end(),
            );
        }
    }
    if l.max_connections_per_ip < 1 || l.max_connections_per_ip > l.max_connections {
        bad(
            "limits.max_connections_per_ip".into(),
            "must be between 1 and limits.max_connections",
        );
    }
    for (f, v) in [
        ("limits.command_timeout", l.command_timeout),
        ("limits.data_block_timeout", l.data_block_timeout),
        ("limits.data_timeout", l.data_timeout),
        ("limits.session_timeout", l.session_timeout),
    ] {
        if v.0.is_zero() {
            bad(f.into(), "must be longer than zero");
        }
    }
    if l.max_hops < 2 {
        bad("limits.max_hops".into(), "must be at least 2");
    }
    check_delivery(c, &mut bad);
    check_dkim(c, &mut bad);
    for (f, r) in c.portal.problems() {
        bad(f, &r);
    }
    for (f, r) in c.console.problems() {
        bad(f, &r);
    }
    for (f, r) in c.store.problems() {
        bad(f, &r);
    }
    for (f, r) in c.inbound.problems() {
        bad(f, &r);
    }
    // The node's name matters only where nodes share a database.
    if c.store.backend == super::StoreBackend::Postgres {
        for (f, r) in c.cluster.problems() {
            bad(f, &r);
        }
    }
    out
}

/// `[[dkim]]`: domains, selectors and signed header fields (that each key
/// loads is `preflight::files`).
fn check_dkim(c: &Config, bad: &mut impl FnMut(String, &str)) {
    let mut seen = HashSet::new();
    for (i, k) in c.dkim.iter().enumerate() {
        let domain = k.domain.trim_end_matches('.');
        if Mailbox::parse(&format!("x@{domain}")).is_err() || domain.starts_with('[') {
            bad(format!("dkim[{i}].domain"), "is not a valid domain name");
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !k.selector.split('.').all(label_ok) {
            bad(
                format!("dkim[{i}].selector"),
                "must be a DNS label, or labels separated by dots",
            );
        } else if !seen.insert((
            crate::model::address::ascii_domain(domain),
            k.selector.to_ascii_lowercase(),
        )) {
            bad(
                format!("dkim[{i}].selector"),
                "is used by another [[dkim]] entry for the same domain",
            );
        }
        if !k
            .headers
            .iter()
            .any(|h| h.trim().eq_ignore_ascii_case("from"))
        {
            bad(
                format!("dkim[{i}].headers"),
                "must include From (RFC 6376 section 5.4)",
            );
        }
        for (j, h) in k.headers.iter().enumerate() {
            let h = h.trim();
            if h.is_empty() || !h.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
                bad(
                    format!("dkim[{i}].headers[{j}]"),
                    "is not a header field name",
                );
            }
        }
    }
}

/// `[delivery]`, `[[route]]` and the outbound `[tls]` settings.
fn check_delivery(c: &Config, bad: &mut impl FnMut(String, &str)) {
    use crate::model::tls::TlsLevel;
    let d = &c.delivery;
    let host_ok = |h: &str| {
        let bare = h.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<std::net::IpAddr>().is_ok() || Mailbox::parse(&format!("x@{h}")).is_ok()
    };
    if let Some(s) = &d.smart_host {
        if !host_ok(&s.host) {
            bad(
                "delivery.smart_host.host".into(),
                "must be a host name or IP address",
            );
        }
        if s.port == 0 {
            bad("delivery.smart_host.port".into(), "must not be 0");
        }
    }
    for (i, r) in c.route.iter().enumerate() {
        if r.domains.is_empty() {
            bad(
                format!("route[{i}].domains"),
                "must list at least one domain",
            );
        }
        if !host_ok(&r.host) {
            bad(
                format!("route[{i}].host"),
                "must be a host name or IP address",
            );
        }
        if r.port == 0 {
            bad(format!("route[{i}].port"), "must not be 0");
        }
    }
    if d.retry_schedule.is_empty() || d.retry_schedule.iter().any(|s| s.0.is_zero()) {
        bad(
            "delivery.retry_schedule".into(),
            "must list at least one wait, each longer than zero",
        );
    }
    for (f, v) in [
        ("delivery.connect_timeout", d.connect_timeout),
        ("delivery.command_timeout", d.command_timeout),
        ("delivery.data_timeout", d.data_timeout),
        ("delivery.max_lifetime", d.max_lifetime),
    ] {
        if v.0.is_zero() {
            bad(f.into(), "must be longer than zero");
        }
    }
    if d.max_connections == 0 || d.max_connections_per_domain == 0 {
        bad(
            "delivery.max_connections".into(),
            "max_connections and max_connections_per_domain must be at least 1",
        );
    }
    let dane_wanted = c.tls.default_level == TlsLevel::Dane
        || c.tls.domains.values().any(|l| *l == TlsLevel::Dane)
        || c.route.iter().any(|r| r.tls == Some(TlsLevel::Dane));
    if dane_wanted && !c.tls.dane {
        bad(
            "tls.dane".into(),
            "a TLS level is `dane` but DANE is disabled: such mail could never be delivered",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(text: &str) -> Result<Config, ConfigErrors> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        load_file_checked(f.path(), &crate::preflight::files)
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let c = load("").unwrap();
        assert_eq!(c.listener.len(), 1);
        assert_eq!(c.connector[0].name, "loopback");
        assert_eq!(c.limits.max_hops, 50);
    }

    #[test]
    fn reports_every_error_with_line_and_path() {
        let text = "[server]\nhostname = \"mx.example.org\"\nlocal_domains = [\"ok.example\", \"bad domain\"]\n\n[limits]\nmax_recipients = \"many\"\ncommand_timeout = \"5 minutes\"\nmax_hops = 1\n\n[[listener]]\nname = \"a\"\naddress = \"not an address\"\n\n[[connector]]\nname = \"open\"\nsurprise = 1\n";
        let errs = load(text).unwrap_err().0;
        let text_of = |field: &str| {
            errs.iter()
                .find(|e| e.field == field)
                .unwrap_or_else(|| panic!("no error for {field}: {errs:#?}"))
        };
        assert_eq!(text_of("limits.max_recipients").line, Some(6));
        assert_eq!(text_of("limits.command_timeout").line, Some(7));
        assert_eq!(text_of("listener[0].address").line, Some(12));
        let unknown = errs
            .iter()
            .find(|e| e.reason.contains("surprise"))
            .expect("unknown field reported");
        assert_eq!(unknown.line, Some(16));
        assert_eq!(text_of("server.local_domains[1]").line, Some(3));
        assert_eq!(text_of("limits.max_hops").line, Some(8));
        assert!(errs.len() >= 6, "{errs:#?}");
        let shown = text_of("limits.max_recipients").to_string();
        assert!(shown.contains(":6: limits.max_recipients: "), "{shown}");
    }

    #[test]
    fn connector_matching_everyone_is_refused() {
        let errs = load("[[connector]]\nname = \"x\"\n").unwrap_err().0;
        assert_eq!(errs[0].field, "connector[0]");
        assert!(errs[0].reason.contains("open relay"));
        assert_eq!(errs[0].line, Some(1));
    }

    #[test]
    fn syntax_error_has_line() {
        let errs = load("[server]\nhostname = \n").unwrap_err().0;
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, Some(2));
        assert!(errs[0].reason.contains("syntax"));
    }

    #[test]
    fn delivery_settings_are_checked() {
        let errs = load(
            "[delivery]\nretry_schedule = []\nsmart_host = { host = \"not a host\" }\n\n[tls]\ndane = false\n[tls.domains]\n\"bank.test\" = \"dane\"\n\n[[route]]\ndomains = []\nhost = \"relay.test\"\nport = 0\n",
        )
        .unwrap_err()
        .0;
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "delivery.smart_host.host",
            "route[0].domains",
            "route[0].port",
            "delivery.retry_schedule",
            "tls.dane",
        ] {
            assert!(fields.contains(&f), "{f} not reported: {fields:?}");
        }
        let bad_level = load("[tls]\ndefault_level = \"sometimes\"\n")
            .unwrap_err()
            .0;
        assert_eq!(bad_level[0].field, "tls.default_level");
        assert_eq!(bad_level[0].line, Some(2));
    }

    #[test]
    fn store_and_cluster_settings_are_checked() {
        let errs =
            load("[store]\nbackend = \"postgres\"\npool_size = 1\n\n[cluster]\nnode = \"a b\"\n")
                .unwrap_err()
                .0;
        let line = |f: &str| {
            errs.iter()
                .find(|e| e.field == f)
                .unwrap_or_else(|| panic!("no error for {f}: {errs:#?}"))
                .line
        };
        assert_eq!(
            line("store.url"),
            Some(1),
            "the section names the missing url"
        );
        assert_eq!(line("store.pool_size"), Some(3));
        assert_eq!(line("cluster.node"), Some(6));
        let c = load("[store]\nbackend = \"postgres\"\nurl = \"postgres://sealgate@127.0.0.1/sealgate\"\ncommit_timeout = \"3s\"\n\n[cluster]\nnode = \"mx1\"\nlease = \"2m\"\n")
            .unwrap();
        assert_eq!(c.store.commit_timeout, super::super::Span::secs(3));
        assert_eq!(c.cluster.lease, super::super::Span::secs(120));
        let embedded = load("[cluster]\nnode = \"a b\"\n").unwrap();
        assert_eq!(
            embedded.store.backend,
            super::super::StoreBackend::Rocksdb,
            "the default; the node name matters only with postgres"
        );
    }

    #[test]
    fn dkim_entries_are_checked() {
        let errs = load(
            "[[dkim]]\ndomain = \"hospital.test\"\nselector = \"sel\"\nkey_file = \"/nonexistent/dkim.pem\"\n\n\
             [[dkim]]\ndomain = \"not a domain\"\nselector = \"a b\"\nkey_file = \"/nonexistent/other.pem\"\n\
             algorithm = \"ed25519-sha256\"\nheaders = [\"Subject\", \"Bad:Name\"]\n",
        )
        .unwrap_err()
        .0;
        let by = |f: &str| {
            errs.iter()
                .find(|e| e.field == f)
                .unwrap_or_else(|| panic!("no error for {f}: {errs:#?}"))
        };
        let key = by("dkim[0].key_file");
        assert!(key.reason.contains("/nonexistent/dkim.pem"), "{key}");
        assert!(key.reason.contains("cannot read"), "{key}");
        assert_eq!(key.line, Some(4));
        by("dkim[1].domain");
        by("dkim[1].selector");
        by("dkim[1].headers");
        by("dkim[1].headers[1]");
        by("dkim[1].key_file");
        let unknown = load("[[dkim]]\ndomain = \"h.test\"\nselector = \"s\"\nkey_file = \"k\"\nalgorithm = \"rsa-sha1\"\n")
            .unwrap_err()
            .0;
        assert_eq!(unknown[0].field, "dkim[0].algorithm", "{unknown:#?}");
    }
}
