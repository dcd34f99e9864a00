//! SMTP: the pure command and DATA parsers, the session state machine, and
//! the server that drives sessions over TCP and TLS.

pub mod content_filter;
pub mod received;
pub mod recipients;
pub mod sender_auth;
pub mod server;
pub mod session;
pub mod tls;

/// The pure parsers (paths, commands, DATA, replies): in sealgate-parse, shared
/// with the fuzz targets.
pub use sealgate_parse::smtp::{address, command, data, reply};
