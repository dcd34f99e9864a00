//! Resource limits for extraction, and the per-message byte budget that enforces them.
//!
//! Every decoder (MIME transfer encodings, zip inflate, PDF streams) can turn a small
//! input into a large output; the limits keep one message's work bounded in memory and
//! time whatever it contains, and whatever they stop is reported as unscannable.

pub use crate::config::InspectLimits;

/// What is left of a message's expansion budget.
#[derive(Debug)]
pub(crate) struct Budget {
    remaining: u64,
}

impl Budget {
    pub(crate) fn new(limits: &InspectLimits) -> Self {
        Budget {
            remaining: limits.max_expanded_bytes,
        }
    }

    /// Bytes still allowed.
    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Takes `n` bytes from the budget; false (and nothing taken) when they do not fit.
    pub(crate) fn take(&mut self, n: u64) -> bool {
        if n > self.remaining {
            return false;
        }
        self.remaining -= n;
        true
    }
}
