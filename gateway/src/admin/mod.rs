//! Operator surfaces: the admin HTTP API and metrics, and the `queue` CLI.

pub mod http;
pub mod metrics;
pub mod queue;
