//! RFC 5321 paths and mailboxes (with RFC 6531 UTF-8), parsed without I/O.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest local part RFC 5321 §4.5.3.1.1 allows, in octets.
const MAX_LOCAL: usize = 64;
/// Longest domain RFC 5321 §4.5.3.1.2 allows, in octets.
const MAX_DOMAIN: usize = 255;
/// Longest path RFC 5321 §4.5.3.1.3 allows, in octets (without the brackets).
const MAX_PATH: usize = 254;

/// A mailbox `local@domain`, the local part kept exactly as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mailbox {
    local: String,
    domain: String,
}

/// Why a path did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The path is not enclosed in angle brackets.
    #[error("address must be enclosed in <>")]
    NoBrackets,
    /// Local part syntax is wrong.
    #[error("invalid local part")]
    BadLocal,
    /// Domain or address literal syntax is wrong.
    #[error("invalid domain")]
    BadDomain,
    /// Missing `@`.
    #[error("address has no domain")]
    NoDomain,
    /// Over the RFC 5321 length limits.
    #[error("address too long")]
    TooLong,
}

impl Mailbox {
    /// Parses `local@domain` (no brackets).
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        if s.len() > MAX_PATH {
            return Err(AddressError::TooLong);
        }
        let (local, rest) = split_local(s)?;
        let domain = rest.strip_prefix('@').ok_or(AddressError::NoDomain)?;
        if local.len() > MAX_LOCAL || domain.len() > MAX_DOMAIN {
            return Err(AddressError::TooLong);
        }
        check_domain(domain)?;
        Ok(Mailbox {
            local: local.to_string(),
            domain: domain.to_string(),
        })
    }

    /// The local part as written (quotes included).
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain as written.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The domain in lower-case ASCII (A-labels), so `例子.广告` and its
    /// `xn--` form compare equal.
    pub fn domain_ascii(&self) -> String {
        ascii_domain(&self.domain)
    }

    /// True when the address needs SMTPUTF8 to be transmitted.
    pub fn needs_smtputf8(&self) -> bool {
        !self.local.is_ascii() || !self.domain.is_ascii()
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl From<Mailbox> for String {
    fn from(m: Mailbox) -> String {
        m.to_string()
    }
}

impl TryFrom<String> for Mailbox {
    type Error = AddressError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Mailbox::parse(&s)
    }
}

/// A domain in lower-case ASCII form (IDNA A-labels); names that IDNA
/// refuses are only lower-cased, so they still never match a valid name.
pub fn ascii_domain(d: &str) -> String {
    idna::domain_to_ascii(d).unwrap_or_else(|_| d.to_lowercase())
}

/// The MAIL FROM path: a mailbox, or the null path `<>` used by bounces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversePath {
    /// `<>`
    Null,
    /// `<local@domain>`
    Mailbox(Mailbox),
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => Ok(()),
            ReversePath::Mailbox(m) => m.fmt(f),
        }
    }
}

/// Parses `<path>` as used by MAIL FROM, dropping any obsolete source route.
pub fn parse_reverse_path(s: &str) -> Result<ReversePath, AddressError> {
    let inner = strip_brackets(s)?;
    if inner.is_empty() {
        return Ok(ReversePath::Null);
    }
    Mailbox::parse(strip_source_route(inner)?).map(ReversePath::Mailbox)
}

/// Parses `<path>` as used by RCPT TO. `<Postmaster>` without a domain is
/// returned as `Ok(None)` so the caller can resolve it to a local postmaster.
pub fn parse_forward_path(s: &str) -> Result<Option<Mailbox>, AddressError> {
    let inner = strip_brackets(s)?;
    if inner.eq_ignore_ascii_case("postmaster") {
        return Ok(None);
    }
    if inner.is_empty() {
        return Err(AddressError::BadLocal);
    }
    Mailbox::parse(strip_source_route(inner)?).map(Some)
}

fn strip_brackets(s: &str) -> Result<&str, AddressError> {
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .ok_or(AddressError::NoBrackets)
}

/// RFC 5321 §4.1.1.3: source routes (`@a,@b:user@c`) must be accepted and ignored.
fn strip_source_route(s: &str) -> Result<&str, AddressError> {
    if !s.starts_with('@') {
        return Ok(s);
    }
    let colon = s.find(':').ok_or(AddressError::BadDomain)?;
    for hop in s[..colon].split(',') {
        let d = hop.strip_prefix('@').ok_or(AddressError::BadDomain)?;
        check_domain(d)?;
    }
    Ok(&s[colon + 1..])
}

/// Splits the local part (dot-string or quoted-string) from `@domain`.
fn split_local(s: &str) -> Result<(&str, &str), AddressError> {
    if let Some(rest) = s.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            if escaped {
                if !(' '..='~').contains(&c) && c.is_ascii() {
                    return Err(AddressError::BadLocal);
                }
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                let end = i + 2; // opening quote + this quote
                return Ok((&s[..end], &s[end..]));
            } else if c.is_ascii() && !(' '..='~').contains(&c) {
                return Err(AddressError::BadLocal);
            }
        }
        return Err(AddressError::BadLocal);
    }
    let at = s.rfind('@').ok_or(AddressError::NoDomain)?;
    let local = &s[..at];
    if local.is_empty()
        || local
            .split('.')
            .any(|atom| atom.is_empty() || !atom.chars().all(is_atext))
    {
        return Err(AddressError::BadLocal);
    }
    Ok((local, &s[at..]))
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || !c.is_ascii() && !c.is_control()
}

/// Checks a domain name or an address literal.
fn check_domain(d: &str) -> Result<(), AddressError> {
    if let Some(lit) = d.strip_prefix('[') {
        let lit = lit.strip_suffix(']').ok_or(AddressError::BadDomain)?;
        if let Some(v6) = lit.strip_prefix("IPv6:") {
            return v6
                .parse::<std::net::Ipv6Addr>()
                .map(|_| ())
                .map_err(|_| AddressError::BadDomain);
        }
        return lit
            .parse::<std::net::Ipv4Addr>()
            .map(|_| ())
            .map_err(|_| AddressError::BadDomain);
    }
    if d.is_empty() {
        return Err(AddressError::BadDomain);
    }
    for label in d.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| {
                c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
            });
        if !ok {
            return Err(AddressError::BadDomain);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_null() {
        assert_eq!(parse_reverse_path("<>").unwrap(), ReversePath::Null);
        let m = Mailbox::parse("Alice.B+tag@Example.COM").unwrap();
        assert_eq!(m.local(), "Alice.B+tag");
        assert_eq!(m.domain_ascii(), "example.com");
    }

    #[test]
    fn quoted_local_part() {
        let m = Mailbox::parse("\"john smith\"@example.com").unwrap();
        assert_eq!(m.local(), "\"john smith\"");
        assert!(Mailbox::parse("\"unterminated@example.com").is_err());
    }

    #[test]
    fn source_route_is_dropped() {
        let p = parse_reverse_path("<@relay.example,@b.example:user@example.org>").unwrap();
        assert_eq!(p.to_string(), "user@example.org");
    }

    #[test]
    fn literals_and_utf8() {
        assert!(Mailbox::parse("a@[127.0.0.1]").is_ok());
        assert!(Mailbox::parse("a@[IPv6:::1]").is_ok());
        assert!(Mailbox::parse("a@[999.0.0.1]").is_err());
        let m = Mailbox::parse("用户@例子.广告").unwrap();
        assert!(m.needs_smtputf8());
        assert!(m.domain_ascii().starts_with("xn--fsqu00a.xn--"));
        assert_eq!(
            ascii_domain("Bücher.Example"),
            ascii_domain("xn--bcher-kva.example")
        );
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            "a..b@x.org",
            ".a@x.org",
            "a@",
            "@x.org",
            "a@-x.org",
            "a@x..org",
            "a b@x.org",
            "a@x_y.org",
        ] {
            assert!(Mailbox::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_reverse_path("a@x.org"), Err(AddressError::NoBrackets));
        let long = format!("<{}@x.org>", "a".repeat(65));
        assert_eq!(parse_reverse_path(&long), Err(AddressError::TooLong));
    }

    #[test]
    fn postmaster_without_domain() {
        assert_eq!(parse_forward_path("<Postmaster>").unwrap(), None);
        assert!(parse_forward_path("<>").is_err());
    }
}
