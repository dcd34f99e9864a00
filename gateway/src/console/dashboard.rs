//! The dashboard: what the trace rows of the last days add up to, counted
//! on the server and drawn as plain tables with SVG bars (no scripts).
//! Counts only: addresses appear as destination domains, DLP as rule ids.

use crate::admin::trace::{self, TraceRow, TraceStatus};
use crate::spool::{Spool, SpoolError};
use std::collections::BTreeMap;

/// Rows one dashboard reads at most.
const MAX_ROWS: usize = 20_000;

/// The dashboard's counts.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dashboard {
    /// Recipients by status.
    pub by_status: BTreeMap<&'static str, usize>,
    /// Deferred recipients by destination domain.
    pub deferred_by_domain: BTreeMap<String, usize>,
    /// Delivered recipients (portal included) by protection.
    pub delivered_by_protection: BTreeMap<String, usize>,
    /// Recipients by DLP rule that fired.
    pub dlp_by_rule: BTreeMap<String, usize>,
    /// Recipients counted.
    pub recipients: usize,
    /// True when more rows existed than were counted.
    pub truncated: bool,
}

fn domain(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Adds up `rows`.
pub fn count(rows: &[TraceRow]) -> Dashboard {
    let mut d = Dashboard {
        recipients: rows.len(),
        ..Default::default()
    };
    for r in rows {
        *d.by_status.entry(r.status.as_str()).or_default() += 1;
        match r.status {
            TraceStatus::Deferred => *d.deferred_by_domain.entry(domain(&r.to)).or_default() += 1,
            TraceStatus::Delivered | TraceStatus::InPortal => {
                let how = r.seal.clone().unwrap_or_else(|| "unknown".into());
                *d.delivered_by_protection.entry(how).or_default() += 1;
            }
            _ => {}
        }
        for rule in &r.dlp {
            *d.dlp_by_rule.entry(rule.clone()).or_default() += 1;
        }
    }
    d
}

/// The dashboard over the last [`trace::MAX_WINDOW`], as `visible` lets the viewer see.
pub async fn gather(
    spool: &Spool,
    visible: &(dyn Fn(&str, &str) -> bool + Sync),
) -> Result<Dashboard, SpoolError> {
    let now = chrono::Utc::now();
    let q = trace::TraceQuery {
        from: now - trace::MAX_WINDOW,
        // Past now: what arrives while the page is made counts too.
        to: now + chrono::Duration::minutes(1),
        sender: None,
        recipient: None,
        queue_id: None,
        message_id: None,
        status: None,
        direction: None,
    };
    let found = trace::search_up_to(spool, &q, visible, MAX_ROWS).await?;
    let mut d = count(&found.rows);
    d.truncated = found.truncated;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::Direction;
    use crate::spool::QueueId;

    fn row(to: &str, status: TraceStatus, seal: Option<&str>, dlp: &[&str]) -> TraceRow {
        TraceRow {
            queue_id: QueueId(1),
            index: 0,
            received_at: chrono::Utc::now(),
            from: "a@x.test".into(),
            to: to.into(),
            size: 1,
            direction: Direction::Outbound,
            status,
            next_retry: None,
            seal: seal.map(str::to_string),
            dlp: dlp.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn rows_add_up_by_status_destination_protection_and_rule() {
        let d = count(&[
            row("a@bank.test", TraceStatus::Deferred, None, &[]),
            row("b@Bank.test", TraceStatus::Deferred, None, &["hipaa:ssn"]),
            row(
                "c@x.test",
                TraceStatus::Delivered,
                Some("pgp"),
                &["hipaa:ssn"],
            ),
            row("d@x.test", TraceStatus::InPortal, Some("portal"), &[]),
            row(
                "e@x.test",
                TraceStatus::Delivered,
                Some("pgp"),
                &["pci:pan"],
            ),
        ]);
        assert_eq!(d.recipients, 5);
        assert_eq!(d.by_status["deferred"], 2);
        assert_eq!(d.deferred_by_domain["bank.test"], 2);
        assert_eq!(d.delivered_by_protection["pgp"], 2);
        assert_eq!(d.delivered_by_protection["portal"], 1);
        assert_eq!(d.dlp_by_rule["hipaa:ssn"], 2);
        assert_eq!(d.dlp_by_rule["pci:pan"], 1);
    }
}
