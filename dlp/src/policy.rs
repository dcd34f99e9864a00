//! Policies: which findings (detector, confidence, unique count) lead to which action.
//! Kept apart from detectors, as Purview does: detectors say *what and how sure*,
//! policies say *how many and what to do*.

use crate::engine::Findings;
use crate::{Action, Confidence};
use serde::Serialize;
use std::fmt;

/// Identifier of a policy (its file's `id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PolicyId(pub(crate) String);

impl PolicyId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One policy rule that fired: which policy, which rule, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyHit {
    /// The policy the rule belongs to.
    pub policy: PolicyId,
    /// The rule's id inside the policy.
    pub rule: String,
    /// The action the rule asks for.
    pub action: Action,
}

#[derive(Debug)]
pub(crate) struct Condition {
    pub detector: usize,
    pub min_confidence: Confidence,
    pub min_unique: usize,
    pub max_unique: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct PolicyRule {
    pub id: String,
    pub action: Action,
    pub all: Vec<Condition>,
    pub any: Vec<Condition>,
}

#[derive(Debug)]
pub(crate) struct Policy {
    pub id: PolicyId,
    pub rules: Vec<PolicyRule>,
}

impl Condition {
    fn holds(&self, findings: &Findings) -> bool {
        let n = findings
            .by_index(self.detector)
            .map_or(0, |f| f.unique_at_least(self.min_confidence));
        n >= self.min_unique.max(1) && self.max_unique.is_none_or(|m| n <= m)
    }
}

impl PolicyRule {
    /// All of `all` hold, and at least one of `any` when `any` is not empty.
    pub(crate) fn fires(&self, findings: &Findings) -> bool {
        self.all.iter().all(|c| c.holds(findings))
            && (self.any.is_empty() || self.any.iter().any(|c| c.holds(findings)))
    }
}

/// The strongest action among hits (`block` > `quarantine` > `encrypt` > `notify` > `tag`).
pub fn strongest_action(hits: &[PolicyHit]) -> Option<Action> {
    hits.iter().map(|h| h.action).max()
}
