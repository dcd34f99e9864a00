//! Retention, legal holds and purge.
//!
//! Each capture gets a retain-until date at ingest: the longest of the
//! `[[archive.retention]]` rules that match it, else `retain_days`. An item
//! may be purged once every relay of it is past its date and no legal hold
//! covers it. Holds (named matters: a query, addresses, or both) live in
//! the `LegalHolds` store, so the command line can change them while the
//! gateway runs; every change is audited. A locked rule's length is remembered in the archive: the
//! gateway refuses to start with it shortened, unlocked or removed.

use super::{Capture, SearchIndex};
use crate::config::{ArchiveConfig, RetentionRule};
use crate::store::holds::{Hold, LegalHolds};
use chrono::{DateTime, Utc};

/// The rule that decided a capture's retention and the date it gave.
pub fn retain_until(config: &ArchiveConfig, c: &Capture) -> (Option<String>, DateTime<Utc>) {
    // "Keep for ever" written as a huge number of days saturates.
    let days = |d: u32| {
        c.received_at
            .checked_add_signed(chrono::Duration::days(i64::from(d)))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    };
    config
        .retention
        .iter()
        .filter(|r| matches(r, c))
        .max_by_key(|r| r.days)
        .map(|r| (Some(r.name.clone()), days(r.days)))
        .unwrap_or((None, days(config.retain_days)))
}

/// Whether `rule` applies to `c`.
fn matches(rule: &RetentionRule, c: &Capture) -> bool {
    let addresses: Vec<String> = std::iter::once(c.mail_from.to_ascii_lowercase())
        .chain(c.recipients.iter().map(|r| r.address.to_ascii_lowercase()))
        .filter(|a| !a.is_empty())
        .collect();
    let domain_of = |a: &str| {
        a.rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_default()
    };
    (rule.directions.is_empty() || rule.directions.contains(&c.direction))
        && (rule.domains.is_empty()
            || addresses.iter().any(|a| {
                rule.domains
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(&domain_of(a)))
            }))
        && (rule.addresses.is_empty()
            || addresses
                .iter()
                .any(|a| rule.addresses.iter().any(|x| x.eq_ignore_ascii_case(a))))
        && (rule.dlp.is_empty()
            || c.dlp.as_ref().is_some_and(|d| {
                d.findings
                    .iter()
                    .any(|f| rule.dlp.iter().any(|x| x.eq_ignore_ascii_case(&f.detector)))
            }))
}

/// Errors of holds and purge.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] crate::store::holds::HoldStoreError),
    /// A hold must say what it holds.
    #[error("a hold needs --query or --address")]
    Empty,
    /// The hold's query does not parse.
    #[error(transparent)]
    Query(#[from] super::query::QueryError),
}

/// Places `hold` once it says what it holds in a query that parses.
pub async fn place(holds: &dyn LegalHolds, hold: Hold) -> Result<(), HoldError> {
    if hold.query.is_none() && hold.addresses.is_empty() {
        return Err(HoldError::Empty);
    }
    if let Some(q) = &hold.query {
        super::query::parse(q)?;
    }
    Ok(holds.place(hold).await?)
}

/// The items `holds` cover, by hold name: query holds through `index`,
/// address holds through every capture's sender and recipients.
pub fn held_items(
    holds: &[Hold],
    index: Option<&SearchIndex>,
    items: &[super::Item],
) -> Result<std::collections::BTreeMap<u64, String>, super::SearchError> {
    let mut held = std::collections::BTreeMap::new();
    for h in holds {
        if let Some(q) = &h.query {
            // Without an index a query hold cannot be resolved: hold everything.
            let ids: Vec<u64> = match index {
                Some(i) => i.search_all(q)?,
                None => items.iter().map(|i| i.id).collect(),
            };
            for id in ids {
                held.entry(id).or_insert_with(|| h.name.clone());
            }
        }
        if !h.addresses.is_empty() {
            for item in items {
                let hit = item.captures.iter().any(|(_, c)| {
                    std::iter::once(&c.mail_from)
                        .chain(c.recipients.iter().map(|r| &r.address))
                        .any(|a| h.addresses.iter().any(|x| x.eq_ignore_ascii_case(a)))
                });
                if hit {
                    held.entry(item.id).or_insert_with(|| h.name.clone());
                }
            }
        }
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::archive::testing::{capture, dlp_found};

    #[test]
    fn the_longest_matching_rule_sets_the_date() {
        let cfg = ArchiveConfig {
            retain_days: 10,
            retention: vec![
                RetentionRule {
                    name: "partner".into(),
                    days: 100,
                    domains: vec!["partner.com".into()],
                    ..Default::default()
                },
                RetentionRule {
                    name: "ssn".into(),
                    days: 1000,
                    dlp: vec!["us_ssn".into()],
                    ..Default::default()
                },
            ],
            ..ArchiveConfig::default()
        };
        let mut c = capture("q", b"x", &["a@partner.com"]);
        let (rule, until) = retain_until(&cfg, &c);
        assert_eq!(rule.as_deref(), Some("partner"));
        assert_eq!((until - c.received_at).num_days(), 100);
        c.recipients[0].address = "a@else.org".into();
        let (rule, until) = retain_until(&cfg, &c);
        assert_eq!((rule, (until - c.received_at).num_days()), (None, 10));
        c.dlp = Some(dlp_found("us_ssn"));
        c.recipients[0].address = "a@partner.com".into();
        assert_eq!(
            retain_until(&cfg, &c).0.as_deref(),
            Some("ssn"),
            "the longest wins"
        );
    }

    #[tokio::test]
    async fn a_hold_must_say_what_it_holds_and_covers_what_it_names() {
        use crate::store::holds::HoldStoreError;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::rocksdb::holds::HoldFile::new(dir.path());
        let hold = |name: &str, q: Option<&str>, a: &[&str]| Hold {
            name: name.into(),
            query: q.map(str::to_string),
            addresses: a.iter().map(|s| s.to_string()).collect(),
            created_at: Utc::now(),
        };
        place(&store, hold("m1", Some("from:x@y.test"), &[]))
            .await
            .unwrap();
        assert!(matches!(
            place(&store, hold("m1", None, &["a@b"])).await,
            Err(HoldError::Store(HoldStoreError::Exists(_)))
        ));
        assert!(matches!(
            place(&store, hold("m2", None, &[])).await,
            Err(HoldError::Empty)
        ));
        assert!(matches!(
            place(&store, hold("m3", Some("form:x"), &[])).await,
            Err(HoldError::Query(_))
        ));
        place(&store, hold("m2", None, &["a@b.test"]))
            .await
            .unwrap();
        store.release("m1").await.unwrap();
        let items = vec![super::super::Item {
            id: 7,
            captures: vec![(7, capture("q", b"x", &["A@B.test"]))],
        }];
        let held = held_items(&store.list().await.unwrap(), None, &items).unwrap();
        assert_eq!(held.get(&7).map(String::as_str), Some("m2"));
    }
}
