//! The message trace: one row per recipient, built from what the spool
//! keeps through its store trait (queued envelopes with their inspection,
//! and finished records in the done set), so every node that shares the
//! store answers alike. Rows carry envelope facts, states, seals, evidence
//! and DLP rule ids: never content, subjects or matched values.

use crate::model::record::{Direction, QueuedMessage, QueuedRecipient, RecipientState};
use crate::model::verdict::{Seal, Verdict};
use crate::spool::{QueueId, Spool, SpoolError};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// The longest window one search covers (Microsoft 365's is 10 days too).
pub const MAX_WINDOW: Duration = Duration::days(10);
/// The default window: the last 48 hours.
pub const DEFAULT_WINDOW: Duration = Duration::hours(48);
/// Rows one search returns at most.
pub const MAX_ROWS: usize = 1000;
/// Finished records read per search at most (each may hold many recipients).
const MAX_DONE: usize = 5000;

/// Where one recipient of a message stands, as the trace shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceStatus {
    /// Accepted; policy has not decided yet.
    Received,
    /// Decided, waiting for sealing or its first attempt.
    Queued,
    /// Tried and failed for now; tried again later.
    Deferred,
    /// The next hop took it.
    Delivered,
    /// Held in the escrow portal; the recipient was sent a notice.
    InPortal,
    /// Failed for good or expired; the sender gets a DSN.
    Bounced,
    /// Dropped by policy without a DSN (`exclusive` TLS).
    Dropped,
    /// Held by a DLP rule for an admin.
    Quarantined,
}

impl TraceStatus {
    /// Every status, in the form's order.
    pub const ALL: [TraceStatus; 8] = [
        TraceStatus::Received,
        TraceStatus::Queued,
        TraceStatus::Deferred,
        TraceStatus::Delivered,
        TraceStatus::InPortal,
        TraceStatus::Bounced,
        TraceStatus::Dropped,
        TraceStatus::Quarantined,
    ];

    /// The name in forms and pages.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceStatus::Received => "received",
            TraceStatus::Queued => "queued",
            TraceStatus::Deferred => "deferred",
            TraceStatus::Delivered => "delivered",
            TraceStatus::InPortal => "in-portal",
            TraceStatus::Bounced => "bounced",
            TraceStatus::Dropped => "dropped",
            TraceStatus::Quarantined => "quarantined",
        }
    }

    /// The status of recipient `r` of `msg`.
    pub fn of(msg: &QueuedMessage, r: &QueuedRecipient) -> TraceStatus {
        let portal = r.sealed.as_ref().is_some_and(|s| s.method == Seal::Portal);
        match r.state {
            RecipientState::Queued if !msg.decided => TraceStatus::Received,
            RecipientState::Queued => TraceStatus::Queued,
            RecipientState::Deferred => TraceStatus::Deferred,
            RecipientState::Delivered if portal => TraceStatus::InPortal,
            RecipientState::Delivered => TraceStatus::Delivered,
            RecipientState::Bounced => TraceStatus::Bounced,
            RecipientState::Dropped => TraceStatus::Dropped,
            RecipientState::Quarantined => TraceStatus::Quarantined,
        }
    }
}

/// The search form as submitted (every field optional, as text).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TraceForm {
    /// CSRF token (the search is audited, so a foreign page may not run one).
    #[serde(default)]
    pub csrf: Option<String>,
    /// Start, `YYYY-MM-DDTHH:MM` in UTC.
    #[serde(default)]
    pub from: Option<String>,
    /// End, `YYYY-MM-DDTHH:MM` in UTC.
    #[serde(default)]
    pub to: Option<String>,
    /// Envelope sender contains.
    #[serde(default)]
    pub sender: Option<String>,
    /// Any recipient contains.
    #[serde(default)]
    pub recipient: Option<String>,
    /// Queue id.
    #[serde(default)]
    pub queue_id: Option<String>,
    /// Message-ID (of messages still queued).
    #[serde(default)]
    pub message_id: Option<String>,
    /// A status name.
    #[serde(default)]
    pub status: Option<String>,
    /// `inbound` or `outbound`.
    #[serde(default)]
    pub direction: Option<String>,
    /// `csv` or `json` to download the rows instead of a page.
    #[serde(default)]
    pub format: Option<String>,
}

/// A checked search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceQuery {
    /// Received at or after.
    pub from: DateTime<Utc>,
    /// Received before.
    pub to: DateTime<Utc>,
    /// Envelope sender contains (lower-case).
    pub sender: Option<String>,
    /// A recipient contains (lower-case).
    pub recipient: Option<String>,
    /// Exactly this queue id.
    pub queue_id: Option<QueueId>,
    /// Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// Only rows in this status.
    pub status: Option<TraceStatus>,
    /// Only this direction.
    pub direction: Option<Direction>,
}

/// Why a search was refused (shown beside the form).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A time does not parse.
    #[error("{0}: use YYYY-MM-DDTHH:MM (UTC)")]
    Time(&'static str),
    /// The window is empty or too long.
    #[error("the time range must end after it starts and span at most 10 days")]
    Window,
    /// Not a queue id.
    #[error("queue id: 16 hexadecimal digits")]
    QueueId,
    /// Not a status.
    #[error("status: choose one of the list")]
    Status,
    /// Not a direction.
    #[error("direction: inbound or outbound")]
    Direction,
    /// A field longer than any address.
    #[error("{0}: at most 320 characters")]
    TooLong(&'static str),
}

/// The form's time format (`<input type="datetime-local">`).
pub const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M";

fn time(v: Option<&str>, field: &'static str) -> Result<Option<DateTime<Utc>>, FormError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => NaiveDateTime::parse_from_str(v, TIME_FORMAT)
            .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"))
            .map(|t| Some(t.and_utc()))
            .map_err(|_| FormError::Time(field)),
    }
}

/// A text field, trimmed and lower-cased; `None` when empty.
fn text(v: Option<&str>, field: &'static str) -> Result<Option<String>, FormError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.chars().count() > 320 => Err(FormError::TooLong(field)),
        Some(v) => Ok(Some(v.to_lowercase())),
    }
}

impl TraceForm {
    /// The search this form asks for, at `now` (default: the last 48 hours).
    pub fn query(&self, now: DateTime<Utc>) -> Result<TraceQuery, FormError> {
        let to = time(self.to.as_deref(), "to")?.unwrap_or(now);
        let from = time(self.from.as_deref(), "from")?.unwrap_or(to - DEFAULT_WINDOW);
        if to <= from || to - from > MAX_WINDOW {
            return Err(FormError::Window);
        }
        let queue_id = match text(self.queue_id.as_deref(), "queue id")? {
            None => None,
            Some(q) => Some(q.to_uppercase().parse().map_err(|_| FormError::QueueId)?),
        };
        let status = match text(self.status.as_deref(), "status")? {
            None => None,
            Some(s) => Some(
                *TraceStatus::ALL
                    .iter()
                    .find(|t| t.as_str() == s)
                    .ok_or(FormError::Status)?,
            ),
        };
        let direction = match text(self.direction.as_deref(), "direction")?.as_deref() {
            None => None,
            Some("inbound") => Some(Direction::Inbound),
            Some("outbound") => Some(Direction::Outbound),
            Some(_) => return Err(FormError::Direction),
        };
        let message_id = text(self.message_id.as_deref(), "Message-ID")?
            .map(|m| m.trim_start_matches('<').trim_end_matches('>').to_string());
        Ok(TraceQuery {
            from,
            to,
            sender: text(self.sender.as_deref(), "sender")?,
            recipient: text(self.recipient.as_deref(), "recipient")?,
            queue_id,
            message_id,
            status,
            direction,
        })
    }
}

impl TraceQuery {
    /// A short text of the search for the audit log.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!(
            "{} .. {}",
            self.from.format(TIME_FORMAT),
            self.to.format(TIME_FORMAT)
        )];
        let mut add = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        };
        add("sender", self.sender.clone());
        add("recipient", self.recipient.clone());
        add("queue_id", self.queue_id.map(|q| q.to_string()));
        add("message_id", self.message_id.clone());
        add("status", self.status.map(|s| s.as_str().to_string()));
        add("direction", self.direction.map(|d| d.as_str().to_string()));
        parts.join(" ")
    }
}

/// One recipient of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceRow {
    /// The message's queue id.
    pub queue_id: QueueId,
    /// The recipient's index in the envelope (its detail view's address).
    pub index: usize,
    /// When the message was received.
    pub received_at: DateTime<Utc>,
    /// Envelope sender (`<>` for the null sender).
    pub from: String,
    /// The recipient.
    pub to: String,
    /// Size in octets as received.
    pub size: u64,
    /// Which way it travels.
    pub direction: Direction,
    /// Where it stands.
    pub status: TraceStatus,
    /// When a deferred recipient is tried next.
    pub next_retry: Option<DateTime<Utc>>,
    /// How it was (or will be) protected, e.g. `pgp`, `tls verify`, `plain`.
    pub seal: Option<String>,
    /// DLP policy rule ids that fired (never what they matched).
    pub dlp: Vec<String>,
}

/// How recipient `r` was protected, or will be once delivered.
pub fn seal_of(r: &QueuedRecipient) -> Option<String> {
    if let Some(s) = &r.sealed {
        return Some(s.method.as_str().to_string());
    }
    if let Some(e) = &r.evidence {
        return Some(match &e.tls {
            Some(t) if t.verified => format!("tls {} (verified)", e.tls_level.as_str()),
            Some(_) => format!("tls {}", e.tls_level.as_str()),
            None if r.state == RecipientState::Delivered => "plain".to_string(),
            None => format!("tls {}", e.tls_level.as_str()),
        });
    }
    match &r.verdict {
        Some(Verdict::Deliver { seal, .. }) => Some(seal.as_str().to_string()),
        _ => None,
    }
}

/// The DLP rule ids a verdict names (policy writes them as `DLP a, b` or
/// `... DLP policy (a, b)`).
pub fn dlp_rules(v: &Verdict) -> Vec<String> {
    let list = match v {
        Verdict::Deliver { why, .. } => why
            .iter()
            .find_map(|w| w.strip_prefix("DLP "))
            .map(str::to_string),
        Verdict::Quarantine { reason } | Verdict::Block { reason } => reason
            .split_once("DLP policy (")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(inside, _)| inside.to_string()),
    };
    list.map(|l| {
        l.split(", ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// The rows of `msg` that `q` and `visible` let through; `policy_hits` are
/// the inspection's rule ids while policy has not decided yet.
pub fn rows_of(
    msg: &QueuedMessage,
    policy_hits: &[String],
    q: &TraceQuery,
    visible: &(dyn Fn(&str, &str) -> bool + Sync),
) -> Vec<TraceRow> {
    let from = if msg.from.is_empty() {
        "<>".to_string()
    } else {
        msg.from.clone()
    };
    if q.sender
        .as_ref()
        .is_some_and(|s| !from.to_lowercase().contains(s))
        || q.queue_id.is_some_and(|id| id != msg.id)
        || q.direction.is_some_and(|d| d != msg.origin.direction)
        || msg.received_at < q.from
        || msg.received_at >= q.to
    {
        return Vec::new();
    }
    msg.recipients
        .iter()
        .enumerate()
        .filter(|(_, r)| visible(&msg.from, &r.address.to_string()))
        .filter(|(_, r)| {
            q.recipient
                .as_ref()
                .is_none_or(|want| r.address.to_string().to_lowercase().contains(want))
        })
        .map(|(index, r)| TraceRow {
            queue_id: msg.id,
            index,
            received_at: msg.received_at,
            from: from.clone(),
            to: r.address.to_string(),
            size: msg.size,
            direction: msg.origin.direction,
            status: TraceStatus::of(msg, r),
            next_retry: (r.state == RecipientState::Deferred)
                .then_some(r.next_attempt)
                .flatten(),
            seal: seal_of(r),
            dlp: match &r.verdict {
                Some(v) => dlp_rules(v),
                None => policy_hits.to_vec(),
            },
        })
        .filter(|row| q.status.is_none_or(|s| s == row.status))
        .collect()
}

/// The Message-ID of a queued message's header block, without brackets
/// and lower-cased; nothing else of the header is kept.
fn message_id_of(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("message-id") {
            let mut v = value.trim().to_string();
            while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
                v.push_str(next.trim());
            }
            return Some(
                v.trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_lowercase(),
            );
        }
    }
    None
}

/// What a search found.
#[derive(Debug, Default)]
pub struct TraceResult {
    /// The rows, newest message first.
    pub rows: Vec<TraceRow>,
    /// True when more rows matched than are shown.
    pub truncated: bool,
}

/// Runs `q` over the queue and the done set; `visible(sender, recipient)`
/// is the viewer's domain scope.
pub async fn search(
    spool: &Spool,
    q: &TraceQuery,
    visible: &(dyn Fn(&str, &str) -> bool + Sync),
) -> Result<TraceResult, SpoolError> {
    search_up_to(spool, q, visible, MAX_ROWS).await
}

/// [`search`] returning up to `max_rows` rows.
pub async fn search_up_to(
    spool: &Spool,
    q: &TraceQuery,
    visible: &(dyn Fn(&str, &str) -> bool + Sync),
    max_rows: usize,
) -> Result<TraceResult, SpoolError> {
    let (lo, hi) = (QueueId::at(q.from), QueueId::at(q.to));
    let mut rows = Vec::new();
    // A Message-ID lives in the message's header, which finished records
    // no longer keep: that filter reaches queued messages only.
    if q.message_id.is_none() {
        for msg in spool.done_between(lo, hi, MAX_DONE).await? {
            rows.extend(rows_of(&msg, &[], q, visible));
        }
    }
    for msg in spool.list().await? {
        if msg.id < lo || msg.id >= hi {
            continue;
        }
        if let Some(want) = &q.message_id {
            let head = spool.read_head(&msg).await?;
            if message_id_of(&head).as_deref() != Some(want.as_str()) {
                continue;
            }
        }
        let hits = match msg.decided {
            true => Vec::new(),
            false => spool
                .inspection(msg.id)
                .await?
                .map(|i| i.policy_hits)
                .unwrap_or_default(),
        };
        rows.extend(rows_of(&msg, &hits, q, visible));
    }
    rows.sort_by(|a, b| (b.queue_id, a.index).cmp(&(a.queue_id, b.index)));
    let truncated = rows.len() > max_rows;
    rows.truncate(max_rows);
    Ok(TraceResult { rows, truncated })
}

/// The rows as CSV (RFC 4180, a header line). A cell that a spreadsheet
/// would take for a formula (`=`, `+`, `-`, `@` first) gets a `'` in
/// front: addresses are chosen by senders.
pub fn csv(rows: &[TraceRow]) -> String {
    fn cell(v: &str) -> String {
        let v = match v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            true => format!("'{v}"),
            false => v.to_string(),
        };
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v
        }
    }
    let mut out = String::from(
        "received,from,to,size,direction,status,next_retry,protection,dlp_rules,queue_id,recipient_index\r\n",
    );
    for r in rows {
        let line = [
            r.received_at.to_rfc3339(),
            r.from.clone(),
            r.to.clone(),
            r.size.to_string(),
            r.direction.as_str().to_string(),
            r.status.as_str().to_string(),
            r.next_retry.map(|t| t.to_rfc3339()).unwrap_or_default(),
            r.seal.clone().unwrap_or_default(),
            r.dlp.join(" "),
            r.queue_id.to_string(),
            r.index.to_string(),
        ]
        .iter()
        .map(|c| cell(c))
        .collect::<Vec<_>>()
        .join(",");
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out
}

/// A finished or queued message by id: `(record, finished)`.
pub async fn message(
    spool: &Spool,
    id: QueueId,
) -> Result<Option<(QueuedMessage, bool)>, SpoolError> {
    if let Some(m) = spool.get(id).await? {
        return Ok(Some((m, false)));
    }
    Ok(spool.done(id).await?.map(|m| (m, true)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::{DeliveryEvidence, Origin, SealRecord};
    use crate::model::tls::{PolicySource, TlsLevel};

    fn msg() -> QueuedMessage {
        let mut m = crate::store::spool::testing::message();
        m.id = QueueId::at(Utc::now() - Duration::hours(1));
        m.received_at = Utc::now() - Duration::hours(1);
        m.from = "nurse@hospital.test".into();
        m.origin = Origin::test_outbound();
        m.recipients = ["a@bank.test", "b@other.test", "c@patient.test"]
            .iter()
            .map(|a| {
                QueuedRecipient::new(
                    crate::model::address::Mailbox::parse(a).unwrap(),
                    None,
                    None,
                )
            })
            .collect();
        m.decided = true;
        m
    }

    fn q() -> TraceQuery {
        TraceForm::default().query(Utc::now()).unwrap()
    }

    #[test]
    fn the_form_defaults_to_48_hours_and_refuses_bad_fields() {
        let now = Utc::now();
        let d = TraceForm::default().query(now).unwrap();
        assert_eq!((d.to, d.to - d.from), (now, Duration::hours(48)));
        let bad = |f: TraceForm| f.query(now).unwrap_err();
        assert_eq!(
            bad(TraceForm {
                from: Some("2026-01-01T00:00".into()),
                to: Some("2026-02-01T00:00".into()),
                ..Default::default()
            }),
            FormError::Window
        );
        assert_eq!(
            bad(TraceForm {
                from: Some("yesterday".into()),
                ..Default::default()
            }),
            FormError::Time("from")
        );
        assert_eq!(
            bad(TraceForm {
                queue_id: Some("'; DROP TABLE x".into()),
                ..Default::default()
            }),
            FormError::QueueId
        );
        assert_eq!(
            bad(TraceForm {
                status: Some("<script>".into()),
                ..Default::default()
            }),
            FormError::Status
        );
        let f = TraceForm {
            queue_id: Some("00000000000000ab".into()),
            message_id: Some("<X@Y>".into()),
            status: Some("in-portal".into()),
            direction: Some("Outbound".into()),
            ..Default::default()
        }
        .query(now)
        .unwrap();
        assert_eq!(f.queue_id, Some(QueueId(0xab)));
        assert_eq!(f.message_id.as_deref(), Some("x@y"));
        assert_eq!(f.status, Some(TraceStatus::InPortal));
        assert_eq!(f.direction, Some(Direction::Outbound));
    }

    #[test]
    fn one_row_per_recipient_with_status_seal_and_dlp() {
        let mut m = msg();
        m.recipients[0].state = RecipientState::Delivered;
        m.recipients[0].evidence = Some(DeliveryEvidence {
            at: Utc::now(),
            host: "mx.bank.test".into(),
            ip: None,
            port: 25,
            tls: Some(crate::model::record::OutboundTls {
                version: "TLSv1.3".into(),
                cipher: "TLS13_AES_256_GCM_SHA384".into(),
                peer_cert_sha256: String::new(),
                verified: true,
            }),
            tls_level: TlsLevel::Verify,
            policy_source: PolicySource::Config,
            reply: "250 ok".into(),
        });
        m.recipients[1].state = RecipientState::Quarantined;
        m.recipients[1].verdict = Some(Verdict::Quarantine {
            reason: "held by DLP policy (hipaa:ssn, pci:pan)".into(),
        });
        m.recipients[2].state = RecipientState::Delivered;
        m.recipients[2].sealed = Some(SealRecord {
            method: Seal::Portal,
            key: String::new(),
            label: String::new(),
            key_source: String::new(),
            at: Utc::now(),
            size: 1,
        });
        let rows = rows_of(&m, &[], &q(), &|_, _| true);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].status, TraceStatus::Delivered);
        assert_eq!(rows[0].seal.as_deref(), Some("tls verify (verified)"));
        assert_eq!(rows[1].status, TraceStatus::Quarantined);
        assert_eq!(rows[1].dlp, ["hipaa:ssn", "pci:pan"]);
        assert_eq!(rows[2].status, TraceStatus::InPortal);
        assert_eq!(rows[2].seal.as_deref(), Some("portal"));

        let only = |f: TraceForm| rows_of(&m, &[], &f.query(Utc::now()).unwrap(), &|_, _| true);
        assert_eq!(
            only(TraceForm {
                recipient: Some("OTHER.test".into()),
                ..Default::default()
            })
            .len(),
            1
        );
        assert_eq!(
            only(TraceForm {
                status: Some("in-portal".into()),
                ..Default::default()
            })[0]
                .index,
            2
        );
        assert!(only(TraceForm {
            direction: Some("inbound".into()),
            ..Default::default()
        })
        .is_empty());
        assert!(only(TraceForm {
            sender: Some("doctor".into()),
            ..Default::default()
        })
        .is_empty());
        // The viewer's scope hides rows.
        let scoped = rows_of(&m, &[], &q(), &|_, r| r.ends_with("@bank.test"));
        assert_eq!(scoped.len(), 1);
        assert_eq!(scoped[0].to, "a@bank.test");
    }

    #[test]
    fn undecided_messages_are_received_with_the_inspections_rules() {
        let mut m = msg();
        m.decided = false;
        let rows = rows_of(&m, &["hipaa:ssn".into()], &q(), &|_, _| true);
        assert_eq!(rows[0].status, TraceStatus::Received);
        assert_eq!(rows[0].dlp, ["hipaa:ssn"]);
        m.recipients[0].state = RecipientState::Deferred;
        m.recipients[0].next_attempt = Some(Utc::now());
        m.decided = true;
        let rows = rows_of(&m, &[], &q(), &|_, _| true);
        assert_eq!(rows[0].status, TraceStatus::Deferred);
        assert!(rows[0].next_retry.is_some());
    }

    #[test]
    fn csv_quotes_cells_and_defuses_formulas() {
        let mut m = msg();
        m.from = "=HYPERLINK(\"x\",1)@evil.test".into();
        let rows = rows_of(&m, &[], &q(), &|_, _| true);
        let out = csv(&rows[..1]);
        let mut lines = out.split("\r\n");
        assert!(lines.next().unwrap().starts_with("received,from,to,"));
        let row = lines.next().unwrap();
        assert!(
            row.contains(",\"'=HYPERLINK(\"\"x\"\",1)@evil.test\",a@bank.test,"),
            "{row}"
        );
        assert_eq!(lines.next(), Some(""), "one row, CRLF-terminated");
    }

    #[test]
    fn the_message_id_is_read_from_the_header_only() {
        let head = b"From: a@b\r\nMessage-ID:\r\n <Abc@X.test>\r\nSubject: s\r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(message_id_of(head).as_deref(), Some("abc@x.test"));
        assert_eq!(
            message_id_of(b"Subject: s\r\n\r\nMessage-ID: <b@x>\r\n"),
            None
        );
    }
}
