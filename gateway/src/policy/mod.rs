//! The policy stage: decides, per recipient, how a message may leave — a
//! [`Verdict`] — from its direction, DLP findings, subject tags, an
//! `X-Sealgate-Encrypt` header, the configured rules and what the
//! destination is known to support. Verdicts are stored in the spool
//! before delivery starts.

pub mod decide;
pub mod tags;
pub use crate::model::verdict;
pub mod worker;

pub use decide::{chain, decide, Inputs, Step, Unfit};
pub use verdict::{Fallback, Seal, Verdict};
