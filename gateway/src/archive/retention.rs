//! Retention, legal holds and purge.
//!
//! Each capture gets a retain-until date at ingest: the longest of the
//! `[[archive.retention]]` rules that match it, else `retain_days`. An item
//! may be purged once every relay of it is past its date and no legal hold
//! covers it. Holds (named matters: a query, addresses, or both) live in
//! `<data_dir>/archive-holds.json`, written whole and synced, so the
//! command line can change them while the gateway runs; every change is
//! audited. A locked rule's length is remembered in the archive: the
//! gateway refuses to start with it shortened, unlocked or removed.

use super::{Capture, SearchIndex};
use crate::config::{ArchiveConfig, RetentionRule};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;

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

/// A legal hold: a named matter that keeps what it covers from purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The matter's name.
    pub name: String,
    /// Items this archive query finds are held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Items sent by or to these addresses are held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
}

/// Errors of holds and purge.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// The holds file.
    #[error("holds file {0}: {1}")]
    Io(String, std::io::Error),
    /// The holds file does not parse.
    #[error("holds file {0}: {1}")]
    Corrupt(String, String),
    /// A hold of that name exists.
    #[error("a hold named {0:?} exists")]
    Exists(String),
    /// No hold of that name.
    #[error("no hold named {0:?}")]
    Missing(String),
    /// A hold must say what it holds.
    #[error("a hold needs --query or --address")]
    Empty,
    /// The hold's query does not parse.
    #[error(transparent)]
    Query(#[from] super::query::QueryError),
}

/// The holds file of a data directory.
pub fn holds_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("archive-holds.json")
}

/// Every hold (none when the file does not exist).
pub fn load_holds(data_dir: &Path) -> Result<Vec<Hold>, HoldError> {
    let path = holds_path(data_dir);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| HoldError::Corrupt(path.display().to_string(), e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(HoldError::Io(path.display().to_string(), e)),
    }
}

fn save_holds(data_dir: &Path, holds: &[Hold]) -> Result<(), HoldError> {
    let path = holds_path(data_dir);
    let text = serde_json::to_vec_pretty(holds).expect("holds serialise");
    crate::durable_file::replace(&path, &text, 0o640)
        .map_err(|e| HoldError::Io(path.display().to_string(), e))
}

/// An exclusive lock on the holds file's neighbour, held while a change
/// reads and rewrites it, so the CLI and the API never lose each other's hold.
fn lock_holds(data_dir: &Path) -> Result<std::fs::File, HoldError> {
    let path = data_dir.join("archive-holds.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| HoldError::Io(path.display().to_string(), e))?;
    f.lock()
        .map_err(|e| HoldError::Io(path.display().to_string(), e))?;
    Ok(f)
}

/// Places a hold.
pub fn add_hold(data_dir: &Path, hold: Hold) -> Result<(), HoldError> {
    if hold.query.is_none() && hold.addresses.is_empty() {
        return Err(HoldError::Empty);
    }
    if let Some(q) = &hold.query {
        super::query::parse(q)?;
    }
    let _lock = lock_holds(data_dir)?;
    let mut holds = load_holds(data_dir)?;
    if holds.iter().any(|h| h.name == hold.name) {
        return Err(HoldError::Exists(hold.name));
    }
    holds.push(hold);
    save_holds(data_dir, &holds)
}

/// Releases a hold.
pub fn remove_hold(data_dir: &Path, name: &str) -> Result<Hold, HoldError> {
    let _lock = lock_holds(data_dir)?;
    let mut holds = load_holds(data_dir)?;
    let at = holds
        .iter()
        .position(|h| h.name == name)
        .ok_or_else(|| HoldError::Missing(name.to_string()))?;
    let removed = holds.remove(at);
    save_holds(data_dir, &holds)?;
    Ok(removed)
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
    use super::super::store::testing::{capture, dlp_found};
    use super::*;

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

    #[test]
    fn holds_are_added_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let hold = |name: &str, q: Option<&str>, a: &[&str]| Hold {
            name: name.into(),
            query: q.map(str::to_string),
            addresses: a.iter().map(|s| s.to_string()).collect(),
            created_at: Utc::now(),
        };
        add_hold(dir.path(), hold("m1", Some("from:x@y.test"), &[])).unwrap();
        assert!(matches!(
            add_hold(dir.path(), hold("m1", None, &["a@b"])),
            Err(HoldError::Exists(_))
        ));
        assert!(matches!(
            add_hold(dir.path(), hold("m2", None, &[])),
            Err(HoldError::Empty)
        ));
        assert!(matches!(
            add_hold(dir.path(), hold("m3", Some("form:x"), &[])),
            Err(HoldError::Query(_))
        ));
        add_hold(dir.path(), hold("m2", None, &["a@b.test"])).unwrap();
        assert_eq!(load_holds(dir.path()).unwrap().len(), 2);
        assert_eq!(remove_hold(dir.path(), "m1").unwrap().name, "m1");
        assert!(matches!(
            remove_hold(dir.path(), "m1"),
            Err(HoldError::Missing(_))
        ));
        let items = vec![super::super::Item {
            id: 7,
            captures: vec![(7, capture("q", b"x", &["A@B.test"]))],
        }];
        let held = held_items(&load_holds(dir.path()).unwrap(), None, &items).unwrap();
        assert_eq!(held.get(&7).map(String::as_str), Some("m2"));
    }
}
