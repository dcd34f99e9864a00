//! When a deferred recipient is tried next, and when it has waited too long.

use crate::config::Span;
use chrono::{DateTime, Utc};

/// The time of the next attempt after `attempts` failed ones: the schedule's
/// `attempts`-th wait, its last entry repeating.
pub fn next_attempt(schedule: &[Span], attempts: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    let wait = match schedule {
        [] => std::time::Duration::from_secs(300),
        s => s[(attempts.max(1) as usize - 1).min(s.len() - 1)].0,
    };
    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(300))
}

/// True once a message accepted at `received` has been queued longer than `lifetime`.
pub fn expired(received: DateTime<Utc>, lifetime: Span, now: DateTime<Utc>) -> bool {
    chrono::Duration::from_std(lifetime.0)
        .map(|l| now - received >= l)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_steps_then_repeats_its_last_wait() {
        let s: Vec<Span> = ["2m", "5m", "4h"]
            .iter()
            .map(|x| Span::parse(x).unwrap())
            .collect();
        let now = Utc::now();
        let mins = |n: u32| (next_attempt(&s, n, now) - now).num_minutes();
        assert_eq!([mins(1), mins(2), mins(3), mins(9)], [2, 5, 240, 240]);
    }

    #[test]
    fn expiry_counts_from_acceptance() {
        let now = Utc::now();
        let life = Span::parse("5d").unwrap();
        assert!(!expired(now - chrono::Duration::days(4), life, now));
        assert!(expired(now - chrono::Duration::days(5), life, now));
    }
}
