//! Shared helpers for integration tests and examples.
pub mod eval;
