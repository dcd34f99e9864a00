//! Sealgate: a secure email gateway. Mail flows one way through the stages
//! smtp → spool → inspect → policy → seal → deliver → archive; the spool
//! is the only thing the stages share, and the keystore (`keys`) is read
//! by policy and seal. The stages stand on a ground floor (`model`,
//! `locks`, `config`, `telemetry`, `net`, the file helpers, `audit`) and
//! under the surfaces (`portal`, `admin`, `console`, `serve`); each module imports
//! only floors below its own, which `tests/layers.rs` checks.

pub mod admin;
pub mod archive;
pub mod audit;
pub mod config;
pub mod console;
pub mod deliver;
pub mod durable_file;
pub mod inspect;
pub mod keys;
pub mod locks;
pub mod model;
pub mod net;
pub mod policy;
pub mod portal;
pub mod preflight;
pub mod seal;
pub mod secret_file;
pub mod serve;
pub mod smtp;
pub mod spool;
pub mod store;
pub mod telemetry;
