//! SMTP: the pure command and DATA parsers, the session state machine, and
//! the server that drives sessions over TCP and TLS.

pub mod address;
pub mod command;
pub mod data;
pub mod received;
pub mod recipients;
pub mod reply;
pub mod server;
pub mod session;
pub mod tls;
