//! Operator surfaces: the admin HTTP API (serving `/metrics`), and the CLI.

pub mod archive;
pub mod archive_api;
pub mod client;
pub mod explain;
pub mod export_shelf;
pub mod http;
pub mod keys;
pub mod portal;
pub mod quarantine;
pub mod queue;
pub mod tokens;
pub mod trace;
