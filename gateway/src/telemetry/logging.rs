//! The log's set-up: level from `RUST_LOG` or `[log] level`, JSON lines or
//! text on stderr. What is logged is each stage's business; that it never
//! carries content, subjects or DLP matches is a rule every stage keeps.

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber for `log`.
pub fn init(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}
