//! Sealgate DLP engine: detectors and policies loaded from `dlp-rules/`, applied to text.
//!
//! The crate is pure: loading reads files, scanning does no I/O and never logs. Findings
//! carry detector ids, confidences, counts and byte spans; callers must not log matched
//! text (the spans exist for tests and the CLI).

#![warn(missing_docs)]

mod engine;
mod error;
mod keywords;
mod policy;
mod rules;
pub mod validators;

use serde::{Deserialize, Serialize};
use std::fmt;

pub use engine::RuleSource;
pub use engine::{
    Accumulator, DetectorFinding, DetectorInfo, ExampleFailure, Findings, MatchSpan, RuleSet,
};
pub use error::{RuleError, RuleErrorKind};

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));
pub use policy::{strongest_action, PolicyHit, PolicyId};
pub use validators::{Normalize, Validator};

/// How sure a detector is about one match (Purview's 65 / 75 / 85 buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Pattern (and validator) only: informational, policies rarely act on it.
    Low,
    /// Pattern + validator, or pattern + keyword.
    Medium,
    /// Pattern + validator + keyword (or an equally strong combination).
    High,
}

impl Confidence {
    /// The next level up, saturating at `High` (used by boost keywords).
    pub fn raised(self) -> Confidence {
        match self {
            Confidence::Low => Confidence::Medium,
            _ => Confidence::High,
        }
    }

    /// Lowercase name as used in rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a policy rule asks the gateway to do; ordered from mildest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Add a header / subject tag, deliver normally.
    Tag,
    /// Deliver, and tell the sender or a compliance contact.
    Notify,
    /// Force a seal (TLS-verified, PGP, S/MIME or portal) for every external recipient.
    Encrypt,
    /// Hold for review.
    Quarantine,
    /// Refuse delivery and bounce to the sender.
    Block,
}

impl Action {
    /// Lowercase name as used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Tag => "tag",
            Action::Notify => "notify",
            Action::Encrypt => "encrypt",
            Action::Quarantine => "quarantine",
            Action::Block => "block",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stable identifier of a detector (the rule file's `id`, e.g. `us_ssn`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DetectorId(String);

impl DetectorId {
    /// Wraps a detector id string.
    pub fn new(id: impl Into<String>) -> Self {
        DetectorId(id.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DetectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for DetectorId {
    fn from(s: &str) -> Self {
        DetectorId(s.to_string())
    }
}
