//! `sealgate queue ls|show|delete|verify`. Reads open the spool read-only,
//! which works whether or not the gateway is running; a delete needs write
//! access, so while the gateway holds the spool it goes through the admin API.

use crate::config::Config;
use crate::spool::{Durability, Keyring, QueueId, QueuedMessage, Spool, SpoolError};
use crate::telemetry::metrics::Metrics;
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
    /// Per recipient: state, attempts, next attempt, last reply.
    pub states: Vec<RecipientSummary>,
}

/// One recipient's line in `queue ls`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecipientSummary {
    /// The address.
    pub address: String,
    /// `queued`, `deferred`, `delivered`, `bounced` or `dropped`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// RFC 3339 time of the next attempt, for a deferred recipient.
    pub next_attempt: Option<String>,
    /// The last reply or reason.
    pub last_reply: Option<String>,
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
            states: m
                .recipients
                .iter()
                .map(|r| RecipientSummary {
                    address: r.address.to_string(),
                    state: r.state.as_str().to_string(),
                    attempts: r.attempts,
                    next_attempt: r.next_attempt.map(|t| t.to_rfc3339()),
                    last_reply: r.evidence.as_ref().map(|e| e.reply.clone()),
                })
                .collect(),
        }
    }
}

/// Queue command failures.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The spool could not be read.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] crate::store::BackendError),
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
    /// The domain is not in the TLS memory.
    #[error("{0} is not in the TLS memory")]
    NotRemembered(String),
    /// The message is finished; only its record is kept.
    #[error("message {0} is finished; its content is no longer kept")]
    Finished(QueueId),
    /// No spool at the path.
    #[error("no spool at {0} (wrong --data or --config?)")]
    NoSpool(PathBuf),
    /// The change is not possible (the reason says why).
    #[error("{0}")]
    Refused(String),
    /// The audit log could not be written, so nothing was done.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// An admin action on the queue, as the audit log names it. Each is
/// written before it is done; when it cannot be written, it is not done.
#[derive(Debug, Clone, Copy)]
pub enum AdminAction {
    /// A message's content was read.
    Read,
    /// A message was deleted from the queue.
    Delete,
    /// A message's waits were cleared.
    Retry,
    /// Every queued message's waits were cleared.
    RetryAll,
    /// A domain was removed from the TLS memory.
    ForgetTls,
    /// Quarantined recipients were released (with the seal chosen, if any).
    Release(Option<crate::model::verdict::Seal>),
    /// Quarantined recipients were bounced.
    DeleteQuarantined,
}

impl AdminAction {
    fn name(self) -> &'static str {
        match self {
            AdminAction::Read => "queue.read",
            AdminAction::Delete => "queue.delete",
            AdminAction::Retry => "queue.retry",
            AdminAction::RetryAll => "queue.retry_all",
            AdminAction::ForgetTls => "tls.forget",
            AdminAction::Release(_) => "quarantine.release",
            AdminAction::DeleteQuarantined => "quarantine.delete",
        }
    }
}

/// Writes `action` on `subject` (a queue id or a domain; `n` recipients
/// where that applies) to the audit log.
pub async fn audit(
    log: &dyn crate::store::audit_log::AuditLog,
    actor: crate::audit::Actor,
    action: AdminAction,
    subject: &str,
    n: usize,
) -> Result<(), crate::audit::AuditError> {
    let detail = match action {
        AdminAction::Release(seal) => format!(
            "{n} recipient(s), seal {}",
            seal.map_or("by the method chain", |s| s.as_str())
        ),
        AdminAction::DeleteQuarantined => format!("{n} recipient(s) bounced"),
        _ => String::new(),
    };
    crate::audit::record(log, actor, action.name(), subject, &detail).await
}

/// Refuses a plain delete of a message that holds quarantined recipients:
/// `quarantine delete` bounces them with a DSN to the sender, a delete would
/// drop them silently.
pub fn refuse_quarantined_delete(m: &QueuedMessage) -> Result<(), QueueError> {
    if m.recipients
        .iter()
        .any(|r| r.state == crate::spool::RecipientState::Quarantined)
    {
        return Err(QueueError::Refused(format!(
            "message {} holds quarantined recipients: `sealgate quarantine delete {}` bounces them with a DSN to the sender",
            m.id, m.id
        )));
    }
    Ok(())
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
    /// Admin API token file.
    pub token_file: PathBuf,
    /// The instance's configuration (policy and keystore, for releases).
    pub config: Arc<Config>,
    /// The instance's stores (the audit log).
    pub stores: crate::store::Stores,
}

impl Location {
    /// From a loaded config, with its stores opened.
    pub async fn from_config(c: &Config) -> Result<Self, crate::store::OpenError> {
        Ok(Location {
            data_dir: c.server.data_dir.clone(),
            spool_dir: c.spool_dir(),
            key_file: c.spool_key_file(),
            admin: c.admin.address,
            token_file: c.admin_token_file(),
            config: Arc::new(c.clone()),
            stores: crate::store::Stores::open(c).await?,
        })
    }

    fn read_only(&self) -> Result<Spool, QueueError> {
        // A cluster's spool is in the database, read beside every node.
        if let (Some(c), Some(meta)) = (&self.stores.cluster, &self.stores.meta) {
            return Ok(Spool::reader(c.spool.clone(), meta));
        }
        if !self.spool_dir.join("CURRENT").exists() {
            return Err(QueueError::NoSpool(self.spool_dir.clone()));
        }
        let keys = Keyring::load(&self.key_file)?;
        Ok(Spool::open_read_only(&self.spool_dir, keys)?.with_meta(self.stores.meta.as_ref()))
    }
}

/// A queued message, or the kept record of a finished one (`true`).
async fn get_or_done(
    loc: &Location,
    id: QueueId,
) -> Result<(Spool, QueuedMessage, bool), QueueError> {
    let spool = loc.read_only()?;
    if let Some(m) = spool.get(id).await? {
        return Ok((spool, m, false));
    }
    let m = spool.done(id).await?.ok_or(QueueError::NotFound(id))?;
    Ok((spool, m, true))
}

/// `queue ls`: a table, or a JSON array of [`QueueSummary`].
pub async fn ls(loc: &Location, json: bool) -> Result<String, QueueError> {
    let list = loc.read_only()?.list().await?;
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
        for st in &r.states {
            let next = st
                .next_attempt
                .as_deref()
                .map(|t| format!(", next {}", &t[..19.min(t.len())]))
                .unwrap_or_default();
            let reply = st
                .last_reply
                .as_deref()
                .map(|t| format!(": {t}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    {:<40} {} ({} attempt(s){next}){reply}",
                st.address, st.state, st.attempts
            );
        }
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
pub async fn show(
    loc: &Location,
    id: QueueId,
    json: bool,
    body: bool,
) -> Result<Vec<u8>, QueueError> {
    let (spool, msg, finished) = get_or_done(loc, id).await?;
    if body && finished {
        return Err(QueueError::Finished(id));
    }
    if body {
        audit(
            loc.stores.audit.as_ref(),
            crate::audit::Actor::Cli,
            AdminAction::Read,
            &id.to_string(),
            0,
        )
        .await?;
        let mut full = msg.received_header.clone().into_bytes();
        full.extend_from_slice(&spool.read_body(&msg).await?);
        return Ok(full);
    }
    if json {
        let mut v = serde_json::to_value(&msg).expect("serialisable");
        v["inspection"] =
            serde_json::to_value(spool.inspection(msg.id).await?).expect("serialisable");
        return Ok((serde_json::to_string_pretty(&v).expect("serialisable") + "\n").into_bytes());
    }
    let mut out = String::new();
    let o = &msg.origin;
    let _ = writeln!(out, "id:           {}", msg.id);
    if finished {
        let _ = writeln!(out, "queue:        finished (content deleted; record kept)");
    }
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
    match spool.inspection(msg.id).await? {
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
        write_recipient(&mut out, r);
    }
    Ok(out.into_bytes())
}

/// One recipient of `queue show`: state, DSN, and the last attempt's evidence.
fn write_recipient(out: &mut String, r: &crate::spool::QueuedRecipient) {
    let _ = writeln!(
        out,
        "  {}  {}  attempts={}  notify={:?}  orcpt={}",
        r.address,
        r.state.as_str(),
        r.attempts,
        r.notify,
        r.orcpt.as_deref().unwrap_or("-")
    );
    if let Some(t) = r.next_attempt {
        let _ = writeln!(out, "      next attempt:  {}", t.to_rfc3339());
    }
    if let Some(d) = &r.dsn {
        let _ = writeln!(out, "      dsn:           {d:?}");
    }
    if let Some(v) = &r.verdict {
        let _ = writeln!(out, "      verdict:       {v}");
    }
    if let Some(s) = &r.sealed {
        let _ = writeln!(
            out,
            "      sealed:        {} with {} ({}), {} octets, {}",
            s.method.as_str(),
            s.label,
            s.key_source,
            s.size,
            s.at.to_rfc3339()
        );
    }
    let Some(e) = &r.evidence else {
        return;
    };
    let ip = e.ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into());
    let _ = writeln!(out, "      last attempt:  {}", e.at.to_rfc3339());
    let _ = writeln!(
        out,
        "      host:          {} [{ip}]:{}",
        if e.host.is_empty() { "-" } else { &e.host },
        e.port
    );
    match &e.tls {
        Some(t) => {
            let _ = writeln!(
                out,
                "      tls:           {} {} ({})",
                t.version,
                t.cipher,
                if t.verified {
                    "verified"
                } else {
                    "not verified"
                }
            );
            let _ = writeln!(out, "      peer cert:     sha256:{}", t.peer_cert_sha256);
        }
        None => {
            let _ = writeln!(out, "      tls:           none");
        }
    }
    let _ = writeln!(
        out,
        "      policy:        level {} from {}",
        e.tls_level, e.policy_source
    );
    let _ = writeln!(out, "      reply:         {}", e.reply);
}

/// `queue verify`: every message intact, and no orphan chunks.
pub async fn verify(loc: &Location, json: bool) -> Result<(String, bool), QueueError> {
    let report = loc.read_only()?.verify().await?;
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

/// A change to a spool: made directly when the gateway is stopped, else
/// through the running gateway's admin API (which holds the spool's lock).
#[derive(Debug, Clone)]
pub enum Change {
    /// `queue delete ID`
    Delete(QueueId),
    /// `queue retry ID`
    Retry(QueueId),
    /// `queue retry --all`
    RetryAll,
    /// `tls forget DOMAIN`
    ForgetTls(String),
    /// `quarantine release ID [--seal M]`
    Release(QueueId, Option<crate::model::verdict::Seal>),
    /// `quarantine delete ID`
    DeleteQuarantined(QueueId),
    /// `portal revoke ID`
    RevokePortal(String),
}

impl Change {
    /// Applies the change to a spool opened for writing.
    async fn direct(&self, spool: &Spool, loc: &Location) -> Result<String, QueueError> {
        use crate::audit::Actor::Cli;
        match self {
            Change::Release(id, seal) => {
                let mut m = spool.get(*id).await?.ok_or(QueueError::NotFound(*id))?;
                let keys = crate::keys::Keys::open(&loc.config, loc.stores.keys.clone())
                    .await
                    .map_err(|e| QueueError::Refused(e.to_string()))?;
                let n = super::quarantine::release(&mut m, &loc.config, &keys, *seal)
                    .map_err(|e| QueueError::Refused(e.to_string()))?;
                audit(
                    loc.stores.audit.as_ref(),
                    Cli,
                    AdminAction::Release(*seal),
                    &id.to_string(),
                    n,
                )
                .await?;
                spool.update(&m, Durability::Synced).await?;
                Ok(format!(
                    "released {n} recipient(s) of {id}; they are sealed and delivered when the gateway starts\n"
                ))
            }
            Change::DeleteQuarantined(id) => {
                let mut m = spool.get(*id).await?.ok_or(QueueError::NotFound(*id))?;
                let n = super::quarantine::delete(&mut m, &loc.config)
                    .map_err(|e| QueueError::Refused(e.to_string()))?;
                audit(
                    loc.stores.audit.as_ref(),
                    Cli,
                    AdminAction::DeleteQuarantined,
                    &id.to_string(),
                    n,
                )
                .await?;
                spool.update(&m, Durability::Synced).await?;
                Ok(format!(
                    "deleted {n} quarantined recipient(s) of {id}; the sender is told when the gateway starts\n"
                ))
            }
            Change::Delete(id) => {
                let m = spool.get(*id).await?.ok_or(QueueError::NotFound(*id))?;
                refuse_quarantined_delete(&m)?;
                audit(
                    loc.stores.audit.as_ref(),
                    Cli,
                    AdminAction::Delete,
                    &id.to_string(),
                    0,
                )
                .await?;
                match spool.delete(*id).await? {
                    true => Ok(format!("deleted {id}\n")),
                    false => Err(QueueError::NotFound(*id)),
                }
            }
            Change::Retry(id) => {
                let mut m = spool.get(*id).await?.ok_or(QueueError::NotFound(*id))?;
                audit(
                    loc.stores.audit.as_ref(),
                    Cli,
                    AdminAction::Retry,
                    &id.to_string(),
                    0,
                )
                .await?;
                retry_now(&mut m);
                spool.update(&m, Durability::Synced).await?;
                Ok(format!("{id} will be retried when the gateway starts\n"))
            }
            Change::RetryAll => {
                let list = spool.list().await?;
                audit(
                    loc.stores.audit.as_ref(),
                    Cli,
                    AdminAction::RetryAll,
                    "*",
                    list.len(),
                )
                .await?;
                for mut m in list.clone() {
                    retry_now(&mut m);
                    spool.update(&m, Durability::Synced).await?;
                }
                Ok(format!(
                    "{} message(s) will be retried when the gateway starts\n",
                    list.len()
                ))
            }
            Change::ForgetTls(d) => {
                if spool.tls_memory().remembered(d).await?.is_none() {
                    return Err(QueueError::NotRemembered(d.clone()));
                }
                audit(loc.stores.audit.as_ref(), Cli, AdminAction::ForgetTls, d, 0).await?;
                match spool.tls_memory().forget(d).await? {
                    true => Ok(format!("forgot TLS memory of {d}\n")),
                    false => Err(QueueError::NotRemembered(d.clone())),
                }
            }
            Change::RevokePortal(id) => {
                let c = &loc.config;
                let refused = |e: &dyn std::fmt::Display| QueueError::Refused(e.to_string());
                let escrow = crate::store::Stores::open_portal(c).map_err(|e| refused(&e))?;
                let metrics = Metrics::new();
                match crate::portal::revoke(
                    escrow.messages.as_ref(),
                    loc.stores.audit.as_ref(),
                    &metrics,
                    id,
                    crate::audit::Actor::Cli,
                )
                .await
                .map_err(|e| refused(&e))?
                {
                    Some(_) => Ok(self.done()),
                    None => Err(self.not_found()),
                }
            }
        }
    }

    /// The admin API call that makes the change: method and path.
    fn api(&self) -> (&'static str, String) {
        match self {
            Change::Delete(id) => ("DELETE", format!("/api/v1/queue/{id}")),
            Change::Retry(id) => ("POST", format!("/api/v1/queue/{id}/retry")),
            Change::RetryAll => ("POST", "/api/v1/queue-retry-all".into()),
            Change::ForgetTls(d) => ("DELETE", format!("/api/v1/tls-memory/{d}")),
            Change::Release(id, seal) => (
                "POST",
                format!(
                    "/api/v1/quarantine/{id}/release{}",
                    seal.map(|s| format!("?seal={}", s.as_str()))
                        .unwrap_or_default()
                ),
            ),
            Change::DeleteQuarantined(id) => ("DELETE", format!("/api/v1/quarantine/{id}")),
            Change::RevokePortal(id) => ("POST", format!("/api/v1/portal/{id}/revoke")),
        }
    }

    fn done(&self) -> String {
        match self {
            Change::Delete(id) => format!("deleted {id}\n"),
            Change::Retry(id) => format!("retrying {id}\n"),
            Change::RetryAll => "retrying every queued message\n".into(),
            Change::ForgetTls(d) => format!("forgot TLS memory of {d}\n"),
            Change::RevokePortal(id) => {
                format!("withdrew portal message {id}: its content and key are erased\n")
            }
            Change::Release(id, _) => format!("released {id}\n"),
            Change::DeleteQuarantined(id) => {
                format!("deleted the quarantined recipients of {id}; the sender is told\n")
            }
        }
    }

    fn not_found(&self) -> QueueError {
        match self {
            Change::Delete(id)
            | Change::Retry(id)
            | Change::Release(id, _)
            | Change::DeleteQuarantined(id) => QueueError::NotFound(*id),
            Change::RetryAll => QueueError::NotFound(QueueId(0)),
            Change::ForgetTls(d) => QueueError::NotRemembered(d.clone()),
            Change::RevokePortal(id) => QueueError::Refused(format!("no portal message {id}")),
        }
    }
}

/// Clears the waits of a message's pending recipients.
fn retry_now(m: &mut QueuedMessage) {
    for r in &mut m.recipients {
        if !r.state.is_final() {
            r.next_attempt = None;
        }
    }
}

/// Makes `change`: directly when the gateway is stopped, else via its API.
pub async fn apply(loc: &Location, change: Change) -> Result<String, QueueError> {
    if loc.stores.cluster.is_some() {
        // In a cluster a change goes through this node's gateway, whose
        // stages and leases see it (and which asks the other nodes).
        let loc = loc.clone();
        return tokio::task::spawn_blocking(move || via_api(&loc, &change))
            .await
            .map_err(|e| QueueError::Api {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                reason: e.to_string(),
            })?;
    }
    if !loc.spool_dir.join("CURRENT").exists() {
        return Err(QueueError::NoSpool(loc.spool_dir.clone()));
    }
    let keys = Keyring::load(&loc.key_file)?;
    match Spool::open(&loc.spool_dir, keys, Arc::new(Metrics::new())).await {
        Ok(spool) => {
            change
                .direct(&spool.with_meta(loc.stores.meta.as_ref()), loc)
                .await
        }
        Err(SpoolError::InUse(_)) => {
            let loc = loc.clone();
            tokio::task::spawn_blocking(move || via_api(&loc, &change))
                .await
                .map_err(|e| QueueError::Api {
                    addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                    reason: e.to_string(),
                })?
        }
        Err(e) => Err(e.into()),
    }
}

/// `quarantine ls`, read-only (works while the gateway runs).
pub async fn quarantined(loc: &Location, json: bool) -> Result<String, QueueError> {
    Ok(super::quarantine::list(
        &loc.read_only()?.list().await?,
        json,
    ))
}

/// Remembered TLS domains, read-only (works while the gateway runs).
pub async fn tls_memory(
    loc: &Location,
) -> Result<Vec<crate::store::tls_memory::Remembered>, QueueError> {
    Ok(loc.read_only()?.tls_memory().list().await?)
}

fn via_api(loc: &Location, change: &Change) -> Result<String, QueueError> {
    let api = |reason: String| QueueError::Api {
        addr: loc.admin,
        reason,
    };
    let client =
        super::client::ApiClient::from_token_file(&loc.config).map_err(|e| api(e.to_string()))?;
    let mut resp = client.get("/api/v1/instance").call().map_err(|e| {
        api(format!(
            "the spool is locked by a running gateway, but its API did not answer: {e}"
        ))
    })?;
    if resp.status() != 200 {
        return Err(api(format!(
            "the spool is locked by a running gateway, but its API answered HTTP {}",
            resp.status().as_u16()
        )));
    }
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
    let (method, path) = change.api();
    // Errors are read, not raised: the gateway says why in `{"error": ...}`.
    let result = match method {
        "DELETE" => client.delete(&path).call(),
        _ => client.post(&path).send_empty(),
    };
    let mut resp = result.map_err(|e| api(e.to_string()))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(change.done());
    }
    let said = resp
        .body_mut()
        .read_json::<serde_json::Value>()
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("HTTP {status}"));
    match status {
        404 => Err(change.not_found()),
        409 | 422 => Err(QueueError::Refused(format!("the gateway refused: {said}"))),
        _ => Err(api(said)),
    }
}
