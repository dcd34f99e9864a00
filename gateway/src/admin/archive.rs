//! `sealgate archive ...`: the archivist's view of the journal. Reads open
//! the archive read-only, so they work while the gateway runs.

use crate::archive::{ArchiveError, ArchiveStore, Item, VerifyReport};
use crate::config::Config;
use std::fmt::Write;
use std::sync::Arc;

/// Errors of the archive commands.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveCmdError {
    /// The archive store.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// No such item.
    #[error("no archived item {0}")]
    NoItem(u64),
    /// The search index.
    #[error(transparent)]
    Search(#[from] crate::archive::SearchError),
    /// The export.
    #[error(transparent)]
    Export(#[from] crate::archive::export::ExportError),
    /// The token file given.
    #[error("token file {0}: {1}")]
    TokenFile(String, std::io::Error),
    /// Holds.
    #[error(transparent)]
    Hold(#[from] crate::archive::retention::HoldError),
    /// The archive is open in the gateway.
    #[error("the archive is in use by the running gateway: stop it to {0} ({1})")]
    InUse(&'static str, String),
    /// Nothing has been archived yet.
    #[error("no archive at {0} (nothing journaled yet, or [archive] enabled = false)")]
    Missing(String),
    /// The audit log could not be written, so the result is not given.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// Opens the archive of `config` for writing; `what` names the command
/// when the running gateway holds it.
async fn open_writable(
    config: &Config,
    what: &'static str,
) -> Result<Arc<dyn ArchiveStore>, ArchiveCmdError> {
    crate::store::Stores::open_archive(config, false)
        .await
        .map_err(|e| match e {
            ArchiveError::Db(e) if held_by_the_gateway(config) => {
                ArchiveCmdError::InUse(what, e.to_string())
            }
            other => other.into(),
        })
}

/// Whether a database error opening the archive for writing means the
/// running gateway holds it: so with RocksDB (one writer); PostgreSQL
/// takes writers from every node, and its errors say what is wrong.
fn held_by_the_gateway(config: &Config) -> bool {
    config.store.backend == crate::config::StoreBackend::Rocksdb
}

/// Opens the archive of `config` read-only.
pub async fn open_read_only(config: &Config) -> Result<Arc<dyn ArchiveStore>, ArchiveCmdError> {
    crate::store::Stores::open_archive_read_only(config)
        .await?
        .ok_or_else(|| ArchiveCmdError::Missing(config.archive_dir().display().to_string()))
}

/// Every recipient of an item over all its relays (the envelope: Bcc included).
fn recipients(item: &Item) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for (_, c) in &item.captures {
        for r in &c.recipients {
            if !out.contains(&r.address.as_str()) {
                out.push(&r.address);
            }
        }
    }
    out
}

/// `archive search QUERY`: the matching items (newest first, at most
/// `limit`), as `ls` prints them, after a count line.
pub async fn search(
    config: &Config,
    stores: &crate::store::Stores,
    archive: &dyn ArchiveStore,
    query: &str,
    limit: usize,
    json: bool,
) -> Result<String, ArchiveCmdError> {
    let index = crate::archive::SearchIndex::open_read_only(&config.archive_index_dir())?;
    let started = std::time::Instant::now();
    let hits = index.search(query, limit)?;
    let took = started.elapsed();
    crate::audit::record(
        stores.audit.as_ref(),
        crate::audit::Actor::Cli,
        "archive.search",
        &format!("{} hits", hits.total),
        &format!("query {query:?}"),
    )
    .await?;
    let mut items = Vec::with_capacity(hits.ids.len());
    for id in &hits.ids {
        if let Some(item) = archive.item(*id).await? {
            items.push(item);
        }
    }
    if json {
        let v = serde_json::json!({
            "query": query,
            "total": hits.total,
            "items": items.iter().map(summary).collect::<Vec<_>>(),
            "took_ms": took.as_secs_f64() * 1000.0,
        });
        return Ok(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n");
    }
    let mut out = format!(
        "{} item{} match ({:.1} ms){}\n",
        hits.total,
        if hits.total == 1 { "" } else { "s" },
        took.as_secs_f64() * 1000.0,
        if hits.total > items.len() {
            format!("; the newest {} shown", items.len())
        } else {
            String::new()
        }
    );
    for item in &items {
        out.push_str(&line(item));
    }
    Ok(out)
}

/// `archive export QUERY --format F --out DIR`: every item the query
/// finds, oldest first, with a signed manifest; progress on stderr.
pub async fn export(
    config: &Config,
    stores: &crate::store::Stores,
    archive: &dyn ArchiveStore,
    query: &str,
    format: crate::archive::export::Format,
    out: &std::path::Path,
) -> Result<String, ArchiveCmdError> {
    use crate::archive::export::Destination;
    use std::io::IsTerminal as _;
    let index = crate::archive::SearchIndex::open_read_only(&config.archive_index_dir())?;
    let mut ids = index.search_all(query)?;
    ids.reverse();
    let key = crate::archive::signer(config)?;
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let done = crate::archive::export::export(
        archive,
        &ids,
        query,
        format,
        Destination::Plain(out),
        &key,
        |n, all| {
            if tty && (n == all || n % 50 == 0) {
                let width = 30;
                let filled = n * width / all.max(1);
                eprint!(
                    "\r[{}{}] {n}/{all}",
                    "#".repeat(filled),
                    " ".repeat(width - filled)
                );
                if n == all {
                    eprintln!();
                }
            }
        },
    )
    .await?;
    crate::audit::record(
        stores.audit.as_ref(),
        crate::audit::Actor::Cli,
        "archive.export",
        &format!("{} items", done.items),
        &format!("query {query:?} to {}", out.display()),
    )
    .await?;
    Ok(format!(
        "exported {} items ({} octets) in {:.1} s; manifest {} (signed: manifest.json.sig, key signing-key.pem)\n",
        done.items,
        done.bytes,
        started.elapsed().as_secs_f64(),
        done.manifest.display()
    ))
}

/// `archive hold add`: places a legal hold (audited).
pub async fn hold_add(
    stores: &crate::store::Stores,
    name: &str,
    query: Option<String>,
    addresses: Vec<String>,
) -> Result<String, ArchiveCmdError> {
    let hold = crate::store::holds::Hold {
        name: name.to_string(),
        query,
        addresses: addresses.iter().map(|a| a.to_ascii_lowercase()).collect(),
        created_at: chrono::Utc::now(),
    };
    let detail = serde_json::to_string(&hold).unwrap_or_default();
    crate::archive::retention::place(stores.holds.as_ref(), hold).await?;
    crate::audit::record(
        stores.audit.as_ref(),
        crate::audit::Actor::Cli,
        "archive.hold.add",
        name,
        &detail,
    )
    .await?;
    Ok(format!("hold {name:?} placed\n"))
}

/// `archive hold rm`: releases a legal hold (audited).
pub async fn hold_rm(stores: &crate::store::Stores, name: &str) -> Result<String, ArchiveCmdError> {
    let removed = stores
        .holds
        .release(name)
        .await
        .map_err(crate::archive::retention::HoldError::from)?;
    crate::audit::record(
        stores.audit.as_ref(),
        crate::audit::Actor::Cli,
        "archive.hold.remove",
        name,
        &serde_json::to_string(&removed).unwrap_or_default(),
    )
    .await?;
    Ok(format!("hold {name:?} released\n"))
}

/// `archive hold ls`.
pub async fn hold_ls(stores: &crate::store::Stores, json: bool) -> Result<String, ArchiveCmdError> {
    let holds = stores
        .holds
        .list()
        .await
        .map_err(crate::archive::retention::HoldError::from)?;
    if json {
        return Ok(serde_json::to_string_pretty(&holds).unwrap_or_default() + "\n");
    }
    Ok(holds
        .iter()
        .map(|h| {
            format!(
                "{}\t{}\tquery={}\taddresses={}\n",
                h.name,
                h.created_at.format("%Y-%m-%d %H:%M:%S"),
                h.query.as_deref().unwrap_or("-"),
                h.addresses.join(",")
            )
        })
        .collect())
}

/// `archive purge [--dry-run]`: removes items past their retain-until
/// date that no hold covers, recording the purge in the chain (gateway
/// stopped: it holds the archive for writing).
pub async fn purge(
    config: &Config,
    stores: &crate::store::Stores,
    dry_run: bool,
    json: bool,
) -> Result<String, ArchiveCmdError> {
    let archive = if dry_run {
        open_read_only(config).await?
    } else {
        open_writable(config, "purge").await?
    };
    let items = archive.items().await?;
    let index_dir = config.archive_index_dir();
    let index = if dry_run {
        crate::archive::SearchIndex::open_read_only(&index_dir).ok()
    } else {
        Some(
            crate::archive::SearchIndex::open(&index_dir, config.dlp.limits.clone())
                .map_err(|e| ArchiveCmdError::InUse("purge", e.to_string()))?,
        )
    };
    // Query holds are resolved through the index: bring it up to the
    // archive first (a dry run reads it as it is, and says if it lags).
    let mut lag_note = String::new();
    if let Some(i) = &index {
        if dry_run {
            let head = archive.head_seq().await;
            if i.indexed_through() < head {
                lag_note = format!(
                    "note: the search index covers sequence {} of {}; query holds may miss newer items until the gateway indexes them\n",
                    i.indexed_through(),
                    head
                );
            }
        } else {
            i.catch_up(archive.as_ref()).await?;
        }
    }
    let holds = stores
        .holds
        .list()
        .await
        .map_err(crate::archive::retention::HoldError::from)?;
    let held = crate::archive::retention::held_items(&holds, index.as_ref(), &items)?;
    let now = chrono::Utc::now();
    let default_days = chrono::Duration::days(i64::from(config.archive.retain_days));
    let expired: Vec<u64> = items
        .iter()
        .filter(|i| {
            i.captures.iter().all(|(_, c)| {
                let until = c.retain_until.unwrap_or_else(|| {
                    c.received_at
                        .checked_add_signed(default_days)
                        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
                });
                until <= now
            })
        })
        .map(|i| i.id)
        .collect();
    let (kept, go): (Vec<u64>, Vec<u64>) = expired.iter().partition(|id| held.contains_key(id));
    let report = if dry_run || go.is_empty() {
        crate::archive::PurgeReport {
            items: go.clone(),
            ..Default::default()
        }
    } else {
        let r = archive
            .purge(&go, "retention period over, no legal hold")
            .await?;
        if let Some(i) = &index {
            i.catch_up(archive.as_ref()).await?;
        }
        crate::audit::record(
            stores.audit.as_ref(),
            crate::audit::Actor::Cli,
            "archive.purge",
            &format!("event {}", r.seq),
            &format!("items {:?}; held and kept {:?}", r.items, kept),
        )
        .await?;
        r
    };
    if json {
        let held_list: Vec<serde_json::Value> = kept
            .iter()
            .map(|id| serde_json::json!({"item": id, "hold": held.get(id)}))
            .collect();
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "dry_run": dry_run,
            "purged": report.items,
            "bytes": report.bytes,
            "purge_event": report.seq,
            "expired_but_held": held_list,
        }))
        .unwrap_or_default()
            + "\n");
    }
    let mut out = format!(
        "{} {} item{}{}\n",
        if dry_run { "would purge" } else { "purged" },
        report.items.len(),
        if report.items.len() == 1 { "" } else { "s" },
        if report.seq > 0 {
            format!(
                " ({} octets; purge event {} in the chain)",
                report.bytes, report.seq
            )
        } else {
            String::new()
        }
    );
    out.push_str(&lag_note);
    for id in &kept {
        let _ = writeln!(
            out,
            "held: item {id} is past retention but under hold {:?}",
            held.get(id).map(String::as_str).unwrap_or("")
        );
    }
    Ok(out)
}

/// `archive checkpoint`: signs the chain head now. With the gateway
/// stopped the archive is opened directly; while it runs, the request goes
/// to its API with the admin or auditor token in `token_file`.
pub async fn checkpoint(
    config: &Config,
    stores: &crate::store::Stores,
    token_file: Option<&std::path::Path>,
) -> Result<String, ArchiveCmdError> {
    let cp = match crate::store::Stores::open_archive(config, false).await {
        Ok(archive) => {
            let cp = archive.checkpoint().await?;
            crate::audit::record(
                stores.audit.as_ref(),
                crate::audit::Actor::Cli,
                "archive.checkpoint",
                &cp.as_ref()
                    .map_or("head already covered".into(), |c| c.covers.to_string()),
                "",
            )
            .await?;
            serde_json::to_value(cp).unwrap_or_default()
        }
        Err(ArchiveError::Db(open_err)) if held_by_the_gateway(config) => {
            let Some(file) = token_file else {
                return Err(ArchiveCmdError::InUse(
                    "sign a checkpoint directly; or pass --token-file with an admin or auditor token",
                    open_err.to_string(),
                ));
            };
            let token = std::fs::read_to_string(file)
                .map_err(|e| ArchiveCmdError::TokenFile(file.display().to_string(), e))?;
            let client = super::client::ApiClient::new(config, &token)
                .map_err(|e| ArchiveCmdError::InUse("reach its API", e.to_string()))?;
            let mut resp = client
                .post("/api/v1/archive/checkpoint")
                .send_empty()
                .map_err(|e| ArchiveCmdError::InUse("reach its API", e.to_string()))?;
            if resp.status() != 200 {
                return Err(ArchiveCmdError::InUse(
                    "sign a checkpoint through its API",
                    format!("HTTP {}", resp.status().as_u16()),
                ));
            }
            let v: serde_json::Value = resp
                .body_mut()
                .read_json()
                .map_err(|e| ArchiveCmdError::InUse("read its answer", e.to_string()))?;
            v["checkpoint"].clone()
        }
        Err(e) => return Err(e.into()),
    };
    Ok(match cp.is_null() {
        true => "the head is already covered by a checkpoint\n".to_string(),
        false => format!(
            "checkpoint at {} head {} signed by {}\n",
            cp["covers"],
            cp["head"].as_str().unwrap_or(""),
            cp["public_key"].as_str().unwrap_or("")
        ),
    })
}

/// `archive reindex`: rebuilds the search index from the store (the
/// gateway must be stopped: it holds the index for writing).
pub async fn reindex(
    config: &Config,
    archive: &dyn ArchiveStore,
) -> Result<String, ArchiveCmdError> {
    let dir = config.archive_index_dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| crate::archive::SearchError::Io(dir.display().to_string(), e))?;
    }
    let started = std::time::Instant::now();
    let index = crate::archive::SearchIndex::open(&dir, config.dlp.limits.clone())?;
    let n = index.catch_up(archive).await?;
    let secs = started.elapsed().as_secs_f64();
    Ok(format!(
        "reindexed {n} item updates through sequence {} in {secs:.1} s ({:.0} items/s)\n",
        archive.head_seq().await,
        n as f64 / secs.max(1e-9)
    ))
}

/// One listing line: id, received, direction, sender, recipients, size, subject.
fn line(item: &Item) -> String {
    let (_, first) = &item.captures[0];
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
        item.id,
        first.received_at.format("%Y-%m-%d %H:%M:%S"),
        first.direction.as_str(),
        if first.mail_from.is_empty() {
            "<>"
        } else {
            &first.mail_from
        },
        recipients(item).join(","),
        first.size,
        first.headers.subject.as_deref().unwrap_or("")
    )
}

/// `archive ls`: one line per item: id, received, direction, sender,
/// recipients, size, subject.
pub async fn ls(archive: &dyn ArchiveStore, json: bool) -> Result<String, ArchiveCmdError> {
    let items = archive.items().await?;
    if json {
        let v: Vec<serde_json::Value> = items.iter().map(summary).collect();
        return Ok(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n");
    }
    Ok(items.iter().map(line).collect())
}

/// The JSON summary of an item.
pub fn summary(item: &Item) -> serde_json::Value {
    let (_, first) = &item.captures[0];
    serde_json::json!({
        "id": item.id,
        "received_at": first.received_at,
        "direction": first.direction,
        "mail_from": first.mail_from,
        "recipients": recipients(item),
        "size": first.size,
        "sha256": first.sha256,
        "message_id": first.headers.message_id,
        "subject": first.headers.subject,
        "relays": item.captures.len(),
    })
}

/// `archive show ID`: the envelope and header facts of every relay; with
/// `evidence`, per recipient the verdict, seal and delivery evidence; with
/// `raw`, the message bytes exactly as received instead.
pub async fn show(
    archive: &dyn ArchiveStore,
    id: u64,
    raw: bool,
    evidence: bool,
    json: bool,
) -> Result<Vec<u8>, ArchiveCmdError> {
    let item = archive.item(id).await?.ok_or(ArchiveCmdError::NoItem(id))?;
    if raw {
        let sha = &item.captures[0].1.sha256;
        return archive.raw(sha).await?.ok_or(ArchiveCmdError::NoItem(id));
    }
    if json {
        return Ok((serde_json::to_string_pretty(&item).unwrap_or_default() + "\n").into_bytes());
    }
    let mut out = String::new();
    let (_, first) = &item.captures[0];
    let h = &first.headers;
    let _ = writeln!(out, "item:        {}", item.id);
    let _ = writeln!(out, "sha256:      {}", first.sha256);
    let _ = writeln!(out, "size:        {}", first.size);
    let _ = writeln!(
        out,
        "message-id:  {}",
        h.message_id.as_deref().unwrap_or("-")
    );
    let _ = writeln!(out, "subject:     {}", h.subject.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "from:        {}", h.from.join(", "));
    let _ = writeln!(out, "to:          {}", h.to.join(", "));
    if !h.cc.is_empty() {
        let _ = writeln!(out, "cc:          {}", h.cc.join(", "));
    }
    if h.unparsable {
        let _ = writeln!(
            out,
            "note:        the message does not parse as MIME; archived byte-exact"
        );
    }
    for (seq, c) in &item.captures {
        let _ = writeln!(
            out,
            "\nrelay {seq}: {} {} received {} journaled {}",
            c.queue_id,
            c.direction.as_str(),
            c.received_at.to_rfc3339(),
            c.journaled_at.to_rfc3339()
        );
        let _ = writeln!(
            out,
            "  session:   {} (EHLO {}) on {}{}{}",
            c.peer,
            c.helo,
            c.listener,
            c.connector
                .as_deref()
                .map(|x| format!(", connector {x}"))
                .unwrap_or_default(),
            c.tls
                .as_ref()
                .map(|t| format!(", {} {}", t.version, t.cipher))
                .unwrap_or_else(|| ", no TLS".into())
        );
        let from = if c.mail_from.is_empty() {
            "<>"
        } else {
            &c.mail_from
        };
        let _ = writeln!(out, "  mail from: {from}");
        if let Some(until) = c.retain_until {
            let _ = writeln!(
                out,
                "  retained:  until {} ({})",
                until.format("%Y-%m-%d"),
                c.retention_rule.as_deref().unwrap_or("default")
            );
        }
        if c.from_journal_report {
            let _ = writeln!(out, "  envelope:  from a Microsoft 365 journal report");
        }
        if let Some(d) = &c.dlp {
            let found: Vec<String> = d
                .findings
                .iter()
                .map(|f| format!("{} x{}", f.detector, f.count))
                .collect();
            let _ = writeln!(
                out,
                "  dlp:       {}; rules: {}",
                if found.is_empty() {
                    "nothing found".into()
                } else {
                    found.join(", ")
                },
                if d.policy_hits.is_empty() {
                    "none".into()
                } else {
                    d.policy_hits.join(", ")
                }
            );
        }
        for r in &c.recipients {
            let _ = writeln!(out, "  rcpt to:   {} ({})", r.address, r.state.as_str());
            if !evidence {
                continue;
            }
            if let Some(v) = &r.verdict {
                let _ = writeln!(out, "    verdict: {v}");
            }
            if let Some(s) = &r.sealed {
                let _ = writeln!(
                    out,
                    "    sealed:  {} with {} ({})",
                    s.method.as_str(),
                    s.label,
                    s.key_source
                );
            }
            if let Some(why) = &r.tls_refused {
                let _ = writeln!(out, "    tls refused: {why}");
            }
            if let Some(e) = &r.evidence {
                let _ = writeln!(
                    out,
                    "    delivery: {} {}:{} level {} ({}), {}; {}",
                    e.at.to_rfc3339(),
                    e.host,
                    e.port,
                    e.tls_level,
                    e.policy_source,
                    e.tls
                        .as_ref()
                        .map(|t| format!(
                            "{} {}{}",
                            t.version,
                            t.cipher,
                            if t.verified { " verified" } else { "" }
                        ))
                        .unwrap_or_else(|| "no TLS".into()),
                    e.reply
                );
            }
        }
    }
    Ok(out.into_bytes())
}

/// `archive verify`: the report as text or JSON, and whether all is intact.
pub async fn verify(
    archive: &dyn ArchiveStore,
    from: u64,
    json: bool,
    local_key: Option<String>,
) -> Result<(String, bool), ArchiveCmdError> {
    let r: VerifyReport = archive.verify_signed_by(from, local_key.as_deref()).await?;
    let ok = r.damaged.is_empty();
    if json {
        let v = serde_json::json!({
            "ok": ok,
            "report": r,
            "first_broken": r.first_broken().map(|(s, w)| serde_json::json!({"seq": s, "problem": w})),
            "signing_key": local_key,
        });
        return Ok((
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n",
            ok,
        ));
    }
    let mut out = format!(
        "events {} ok, contents {} ok, checkpoints {} ok; head {} at {}\n",
        r.events_ok, r.blobs_ok, r.checkpoints_ok, r.head, r.head_seq
    );
    if let Some(k) = &local_key {
        let _ = writeln!(out, "signing key: {k}");
    }
    if let Some((seq, what)) = r.first_broken() {
        let _ = writeln!(out, "FIRST BROKEN: {seq}: {what}");
    }
    for (seq, what) in &r.damaged {
        let _ = writeln!(out, "DAMAGED: {seq}: {what}");
    }
    if ok {
        out.push_str("intact\n");
    }
    Ok((out, ok))
}
