//! The deliver stage: takes messages the earlier stages have finished with
//! from the spool, routes each recipient (static route, smart host or MX),
//! holds each destination to its TLS level (config, MTA-STS, DANE, memory),
//! sends over SMTP, and records per recipient what happened: delivered with
//! evidence, deferred for a retry, bounced with a DSN, or dropped by policy.

pub mod attempt;
pub mod client;
pub mod dane;
pub mod dkim;
pub mod dsn;
pub mod headers;
pub mod mta_sts;
pub mod pool;
pub mod retry;
pub mod route;
pub mod scheduler;
pub use crate::model::tls as tls_policy;
pub mod worker;
