//! `[console]`: the web console on the admin listener.

use super::Span;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[console]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the web console at `/console/` on the admin listener (users
    /// come from `sealgate user add`).
    pub enabled: bool,
    /// Wrong sign-ins (password or code) in a row that lock a user.
    pub max_failures: u32,
    /// How long a locked user stays locked.
    pub lockout: Span,
    /// How long a signed-in session lasts without use.
    pub session_idle: Span,
    /// Requests per minute one client address may make to the console.
    pub requests_per_minute: u32,
    /// The key file that seals users' TOTP secrets (0600; every node of a
    /// cluster shares it); unset: `data_dir/keys/console.keys`.
    pub key_file: Option<PathBuf>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: false,
            max_failures: 5,
            lockout: Span::secs(900),
            session_idle: Span::secs(1800),
            requests_per_minute: 120,
            key_file: None,
        }
    }
}

impl ConsoleConfig {
    /// Problems `sealgate check-config` reports: `(field, reason)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |f: &str, r: &str| out.push((format!("console.{f}"), r.to_string()));
        if self.max_failures == 0 {
            bad("max_failures", "must be at least 1");
        }
        if self.requests_per_minute == 0 {
            bad("requests_per_minute", "must be at least 1");
        }
        for (f, v) in [
            ("lockout", self.lockout),
            ("session_idle", self.session_idle),
        ] {
            if v.0.is_zero() {
                bad(f, "must be longer than zero");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_limits_are_reported() {
        assert!(ConsoleConfig::default().problems().is_empty());
        let c = ConsoleConfig {
            max_failures: 0,
            session_idle: Span::secs(0),
            ..Default::default()
        };
        let fields: Vec<String> = c.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["console.max_failures", "console.session_idle"]);
    }
}
