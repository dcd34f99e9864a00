//! `sealgate queue ls|show|delete|verify`. Reads open the spool read-only,
//! which works whether or not the gateway is running; a delete needs write
//! access, so while the gateway holds the spool it goes through the admin API.

use crate::admin::metrics::Metrics;
use crate::config::Config;
use crate::spool::{Keyring, QueueId, QueuedMessage, Spool, SpoolError};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// One line of `queue ls --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueSummary {
    /// Queue id.
    pub id: String,
    /// MAIL FROM (empty for `<>`).
    pub from: String,
    /// Every RCPT TO.
    pub recipients: Vec<String>,
    /// Octets as received.
    pub size: u64,
    /// RFC 3339 time of acceptance.
    pub received_at: String,
    /// SHA-256 of the message as the client sent it.
    pub body_sha256: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Connector name, if any.
    pub connector: Option<String>,
}

impl From<&QueuedMessage> for QueueSummary {
    fn from(m: &QueuedMessage) -> Self {
        QueueSummary {
            id: m.id.to_string(),
            from: m.from.clone(),
            recipients: m.recipients.iter().map(|r| r.address.to_string()).collect(),
            size: m.size,
            received_at: m.received_at.to_rfc3339(),
            body_sha256: m.body_sha256.clone(),
            direction: m.origin.direction.as_str().to_string(),
            connector: m.origin.connector.clone(),
        }
    }
}

/// Queue command failures.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The spool could not be read.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The key file could not be read.
    #[error(transparent)]
    Key(#[from] crate::spool::KeyError),
    /// No such message.
    #[error("no message {0} in the queue")]
    NotFound(QueueId),
    /// The admin API failed or belongs to another instance.
    #[error("admin API at {addr}: {reason}")]
    Api {
        /// Where we tried.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// No spool at the path.
    #[error("no spool at {0} (wrong --data or --config?)")]
    NoSpool(PathBuf),
}

/// Where a spool and its gateway are.
#[derive(Debug, Clone)]
pub struct Location {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Spool directory.
    pub spool_dir: PathBuf,
    /// Key file.
    pub key_file: PathBuf,
    /// Admin API address of the gateway using this spool.
    pub admin: SocketAddr,
    /// Admin API token file, if the gateway requires one.
    pub token_file: Option<PathBuf>,
}

impl Location {
    /// From a loaded config.
    pub fn from_config(c: &Config) -> Self {
        Location {
            data_dir: c.server.data_dir.clone(),
            spool_dir: c.spool_dir(),
            key_file: c.spool_key_file(),
            admin: c.admin.address,
            token_file: c.admin.token_file.clone(),
        }
    }

    fn read_only(&self) -> Result<Spool, QueueError> {
        if !self.spool_dir.join("CURRENT").exists() {
            return Err(QueueError::NoSpool(self.spool_dir.clone()));
        }
        let keys = Keyring::load(&self.key_file)?;
        Ok(Spool::open_read_only(&self.spool_dir, keys)?)
    }
}

fn get(loc: &Location, id: QueueId) -> Result<(Spool, QueuedMessage), QueueError> {
    let spool = loc.read_only()?;
    let msg = spool.get(id)?.ok_or(QueueError::NotFound(id))?;
    Ok((spool, msg))
}

/// `queue ls`: a table, or a JSON array of [`QueueSummary`].
pub fn ls(loc: &Location, json: bool) -> Result<String, QueueError> {
    let list = loc.read_only()?.list()?;
    let rows: Vec<QueueSummary> = list.iter().map(QueueSummary::from).collect();
    if json {
        return Ok(serde_json::to_string_pretty(&rows).expect("serialisable") + "\n");
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16}  {:>9}  {:<25}  {:<8}  {:<30}  RECIPIENTS",
        "ID", "SIZE", "RECEIVED", "DIR", "FROM"
    );
    for r in &rows {
        let from = if r.from.is_empty() { "<>" } else { &r.from };
        let rcpts = match r.recipients.len() {
            1 => r.recipients[0].clone(),
            n => format!("{} (+{} more)", r.recipients[0], n - 1),
        };
        let _ = writeln!(
            out,
            "{:<16}  {:>9}  {:<25}  {:<8}  {:<30}  {}",
            r.id,
            r.size,
            &r.received_at[..19],
            r.direction,
            from,
            rcpts
        );
    }
    let _ = writeln!(
        out,
        "-- {} message(s), {} octets",
        rows.len(),
        rows.iter().map(|r| r.size).sum::<u64>()
    );
    Ok(out)
}

/// `queue show ID`: the envelope and state; the message itself only with `body`.
pub fn show(loc: &Location, id: QueueId, json: bool, body: bool) -> Result<Vec<u8>, QueueError> {
    let (spool, msg) = get(loc, id)?;
    if body {
        let mut full = msg.received_header.clone().into_bytes();
        full.extend_from_slice(&spool.read_body(&msg)?);
        return Ok(full);
    }
    if json {
        let mut v = serde_json::to_value(&msg).expect("serialisable");
        v["inspection"] = serde_json::to_value(spool.inspection(msg.id)?).expect("serialisable");
        return Ok((serde_json::to_string_pretty(&v).expect("serialisable") + "\n").into_bytes());
    }
    let mut out = String::new();
    let o = &msg.origin;
    let _ = writeln!(out, "id:           {}", msg.id);
    let _ = writeln!(out, "received at:  {}", msg.received_at.to_rfc3339());
    let _ = writeln!(out, "direction:    {}", o.direction.as_str());
    let _ = writeln!(
        out,
        "connector:    {}",
        o.connector.as_deref().unwrap_or("-")
    );
    let _ = writeln!(out, "listener:     {}", o.listener);
    let _ = writeln!(out, "peer:         {} (helo {})", o.peer, o.helo);
    match &o.tls {
        Some(t) => {
            let _ = writeln!(out, "tls:          {} {}", t.version, t.cipher);
            if !t.client_names.is_empty() {
                let _ = writeln!(out, "client cert:  {}", t.client_names.join(", "));
            }
        }
        None => {
            let _ = writeln!(out, "tls:          none");
        }
    }
    let from = if msg.from.is_empty() {
        "<>".to_string()
    } else {
        msg.from.clone()
    };
    let _ = writeln!(out, "from:         {from}");
    let p = &msg.mail_params;
    let _ = writeln!(
        out,
        "parameters:   size={:?} body={:?} smtputf8={} ret={:?} envid={:?}",
        p.size, p.body, p.smtputf8, p.ret, p.envid
    );
    let _ = writeln!(
        out,
        "size:         {} octets in {} chunk(s)",
        msg.size, msg.chunks
    );
    let _ = writeln!(out, "sha256:       {}", msg.body_sha256);
    match spool.inspection(msg.id)? {
        Some(i) => {
            let found: Vec<String> = i
                .findings
                .iter()
                .map(|f| format!("{} ({}, {} distinct)", f.detector, f.confidence, f.count))
                .collect();
            let _ = writeln!(
                out,
                "dlp:          {}",
                if found.is_empty() {
                    "no findings".to_string()
                } else {
                    found.join(", ")
                }
            );
            let _ = writeln!(
                out,
                "dlp action:   {}",
                i.action.as_deref().unwrap_or("none")
            );
            if !i.unscannable.is_empty() {
                let u: Vec<String> = i
                    .unscannable
                    .iter()
                    .map(|(c, n)| format!("{c} x{n}"))
                    .collect();
                let _ = writeln!(out, "unscannable:  {}", u.join(", "));
            }
        }
        None => {
            let _ = writeln!(out, "dlp:          not inspected yet");
        }
    }
    let _ = writeln!(out, "recipients:");
    for r in &msg.recipients {
        let _ = writeln!(
            out,
            "  {:<40} {:?} notify={:?} orcpt={:?}",
            r.address.to_string(),
            r.state,
            r.notify,
            r.orcpt
        );
    }
    Ok(out.into_bytes())
}

/// `queue verify`: every message intact, and no orphan chunks.
pub fn verify(loc: &Location, json: bool) -> Result<(String, bool), QueueError> {
    let report = loc.read_only()?.verify()?;
    let clean = report.damaged.is_empty() && report.orphan_chunks == 0;
    if json {
        return Ok((
            serde_json::to_string_pretty(&report).expect("serialisable") + "\n",
            clean,
        ));
    }
    let mut out = format!(
        "{} message(s) intact, {} damaged, {} orphan chunk(s)\n",
        report.ok,
        report.damaged.len(),
        report.orphan_chunks
    );
    for (id, why) in &report.damaged {
        let _ = writeln!(out, "  {id}: {why}");
    }
    Ok((out, clean))
}

/// `queue delete ID`: directly when the gateway is stopped, else via its API.
pub async fn delete(loc: &Location, id: QueueId) -> Result<String, QueueError> {
    if !loc.spool_dir.join("CURRENT").exists() {
        return Err(QueueError::NoSpool(loc.spool_dir.clone()));
    }
    let keys = Keyring::load(&loc.key_file)?;
    match Spool::open(&loc.spool_dir, keys, Arc::new(Metrics::new())) {
        Ok(spool) => match spool.delete(id).await? {
            true => Ok(format!("deleted {id}\n")),
            false => Err(QueueError::NotFound(id)),
        },
        Err(SpoolError::Db(e)) if e.to_string().to_lowercase().contains("lock") => {
            let loc = loc.clone();
            tokio::task::spawn_blocking(move || delete_via_api(&loc, id))
                .await
                .map_err(|e| QueueError::Api {
                    addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                    reason: e.to_string(),
                })?
        }
        Err(e) => Err(e.into()),
    }
}

fn delete_via_api(loc: &Location, id: QueueId) -> Result<String, QueueError> {
    let api = |reason: String| QueueError::Api {
        addr: loc.admin,
        reason,
    };
    let base = format!("http://{}", loc.admin);
    let token = match &loc.token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| api(format!("token file {}: {e}", f.display())))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let mut get = ureq::get(&format!("{base}/api/v1/instance"));
    if let Some(t) = &token {
        get = get.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = get.call().map_err(|e| {
        api(format!(
            "the spool is locked by a running gateway, but its API did not answer: {e}"
        ))
    })?;
    let inst: serde_json::Value = resp
        .body_mut()
        .read_json()
        .map_err(|e| api(e.to_string()))?;
    let ours = std::fs::canonicalize(&loc.data_dir).unwrap_or_else(|_| loc.data_dir.clone());
    if inst["data_dir"].as_str() != Some(ours.to_string_lossy().as_ref()) {
        return Err(api(format!(
            "that gateway serves {} , not {}",
            inst["data_dir"].as_str().unwrap_or("?"),
            ours.display()
        )));
    }
    let mut req = ureq::delete(&format!("{base}/api/v1/queue/{id}"));
    if let Some(t) = &token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    match req.call() {
        Ok(_) => Ok(format!("deleted {id}\n")),
        Err(ureq::Error::StatusCode(404)) => Err(QueueError::NotFound(id)),
        Err(e) => Err(api(e.to_string())),
    }
}
