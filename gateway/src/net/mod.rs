//! The network ground every stage stands on: the DNS resolver (DNSSEC-
//! aware, for DANE, MTA-STS, WKD and routing), TLS (the crypto provider,
//! certificates, trust roots), the one HTTPS GET the stages fetch with (and
//! the fixed-address resolver it shares with the CLI's admin client), and
//! the HTTP server under the portal and admin listeners. It names `config`
//! and nothing above.

pub mod clamd;
pub mod dns;
pub mod fixed_address;
pub mod http_server;
pub mod https_get;
pub mod rspamd;
#[cfg(test)]
pub(crate) mod test_pki;
pub mod tls;
