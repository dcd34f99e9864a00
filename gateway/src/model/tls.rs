//! Outbound TLS levels and where a destination's level came from.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How strictly a delivery must be encrypted (Postfix's `smtp_tls_security_level`
/// names where they exist). Ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsLevel {
    /// Plain SMTP; STARTTLS is not used even when offered.
    None,
    /// Opportunistic: STARTTLS when offered, plain otherwise.
    May,
    /// TLS required (any certificate); without it the recipient is deferred.
    Encrypt,
    /// TLS required (any certificate); without it the recipient is dropped,
    /// without a bounce, logged and counted.
    Exclusive,
    /// TLS with a certificate that chains to the trusted roots and names the MX host.
    Verify,
    /// TLS authenticated by DNSSEC-validated TLSA records (RFC 7672).
    Dane,
}

impl TlsLevel {
    /// Lower-case name, as in the config and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsLevel::None => "none",
            TlsLevel::May => "may",
            TlsLevel::Encrypt => "encrypt",
            TlsLevel::Exclusive => "exclusive",
            TlsLevel::Verify => "verify",
            TlsLevel::Dane => "dane",
        }
    }

    /// True when a plain session is not acceptable.
    pub fn requires_tls(self) -> bool {
        self >= TlsLevel::Encrypt
    }

    /// True when the peer certificate must be authenticated.
    pub fn authenticates(self) -> bool {
        self >= TlsLevel::Verify
    }
}

impl fmt::Display for TlsLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What set the TLS level a delivery was held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicySource {
    /// `[tls] default_level` or `[tls.domains]`.
    Config,
    /// A static `[[route]]` or the smart host's own `tls`.
    Route,
    /// The domain's MTA-STS policy in `enforce` mode (RFC 8461).
    MtaSts,
    /// DNSSEC-validated TLSA records (RFC 7672).
    Dane,
    /// The domain was delivered to with TLS before (`sealgate tls forget` clears it).
    Memory,
    /// The recipient's verdict is escalated: verified TLS or nothing.
    Policy,
}

impl PolicySource {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicySource::Config => "config",
            PolicySource::Route => "route",
            PolicySource::MtaSts => "mta-sts",
            PolicySource::Dane => "dane",
            PolicySource::Memory => "memory",
            PolicySource::Policy => "policy",
        }
    }
}

impl fmt::Display for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_from_weak_to_strong() {
        assert!(TlsLevel::None < TlsLevel::May);
        assert!(TlsLevel::May < TlsLevel::Encrypt);
        assert!(TlsLevel::Encrypt.requires_tls() && !TlsLevel::May.requires_tls());
        assert!(TlsLevel::Verify.authenticates() && !TlsLevel::Exclusive.authenticates());
        assert!(TlsLevel::Dane.authenticates());
    }
}
