//! What the archive records: one immutable event per journaled message (or
//! per later action on an item), each linked into the hash chain. The
//! shapes are the archive's own, kept stable for years of records; they
//! reuse the spool's fact types (evidence, verdict, seal record) as data.
//! The archive stage builds them; `store::archive` keeps them.

use crate::model::record::{
    DeliveryEvidence, Direction, InspectionRecord, QueuedMessage, RecipientState, SealRecord,
    TlsFacts,
};
use crate::model::verdict::Verdict;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One archive event; its sequence number is its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// A message whose content was not yet in the archive: a new item.
    Ingest(Box<Capture>),
    /// The same bytes relayed again: more envelopes for item `item`.
    Merge {
        /// The item (sequence number of its ingest).
        item: u64,
        /// This relay's facts.
        capture: Box<Capture>,
    },
    /// Items past retention and under no hold were removed: their content
    /// and these events' records are gone; their chain entries stay.
    Purge {
        /// The items removed.
        items: Vec<u64>,
        /// The event records removed (each item's ingest and merges).
        events: Vec<u64>,
        /// When.
        at: DateTime<Utc>,
        /// Why (for the audit trail).
        reason: String,
    },
}

/// Everything known about one relayed message when its last recipient
/// reached a final state: the envelope (the only place Bcc recipients
/// exist), the session, DLP findings and, per recipient, what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capture {
    /// The spool's queue id (journaling is idempotent per queue id).
    pub queue_id: String,
    /// SHA-256 (hex) of the message bytes as received: the content key.
    pub sha256: String,
    /// Size in octets.
    pub size: u64,
    /// When the message was received.
    pub received_at: DateTime<Utc>,
    /// When it was journaled.
    pub journaled_at: DateTime<Utc>,
    /// Which way it travelled.
    pub direction: Direction,
    /// The connector it came through, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// The listener that took it.
    pub listener: String,
    /// The peer's address.
    pub peer: String,
    /// The name the peer gave in EHLO.
    pub helo: String,
    /// TLS of the inbound session, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    /// MAIL FROM (empty for the null sender).
    pub mail_from: String,
    /// Every RCPT TO with its outcome.
    pub recipients: Vec<Outcome>,
    /// DLP findings (detector ids and counts), when DLP ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlp: Option<InspectionRecord>,
    /// Header facts for listings and search.
    pub headers: HeaderFacts,
    /// The message came inside a Microsoft 365 journal report: the
    /// envelope is the one the report lists, not the relay's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_journal_report: bool,
    /// Kept at least until then (set at ingest by the retention rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<DateTime<Utc>>,
    /// The retention rule that set it (`None`: the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_rule: Option<String>,
}

/// One envelope recipient and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The address from RCPT TO.
    pub address: String,
    /// Final state: delivered, bounced or dropped.
    pub state: RecipientState,
    /// The policy verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// How the copy was sealed (method, key id, source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<SealRecord>,
    /// The last delivery attempt: host, TLS, level, reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<DeliveryEvidence>,
    /// Why TLS failed when the recipient fell back to a sealed copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_refused: Option<String>,
}

impl Outcome {
    /// A recipient known only by address and taken as delivered: one
    /// listed in a journal report, or a generated one.
    pub fn delivered(address: &str) -> Self {
        Outcome {
            address: address.to_string(),
            state: RecipientState::Delivered,
            verdict: None,
            sealed: None,
            evidence: None,
            tls_refused: None,
        }
    }
}

/// The header fields an archivist lists and searches by (decoded).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeaderFacts {
    /// `Message-ID`, without angle brackets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// `Subject`, decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `From` addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// `To` addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// `Cc` addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    /// `Date`, when it parses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<DateTime<Utc>>,
    /// True when the message did not parse as MIME at all (archived as is).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unparsable: bool,
}

impl HeaderFacts {
    /// Reads the header of `raw`; never fails (a message that does not
    /// parse is archived byte-exact all the same, flagged).
    pub fn of(raw: &[u8]) -> Self {
        let Some(m) = mail_parser::MessageParser::new().parse_headers(raw) else {
            return HeaderFacts {
                unparsable: true,
                ..Default::default()
            };
        };
        let addrs = |a: Option<&mail_parser::Address>| -> Vec<String> {
            a.map(|a| {
                a.iter()
                    .filter_map(|x| x.address().map(|s| s.to_ascii_lowercase()))
                    .collect()
            })
            .unwrap_or_default()
        };
        HeaderFacts {
            message_id: m.message_id().map(str::to_string),
            subject: m.subject().map(str::to_string),
            from: addrs(m.from()),
            to: addrs(m.to()),
            cc: addrs(m.cc()),
            date: m
                .date()
                .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0)),
            unparsable: false,
        }
    }
}

impl Capture {
    /// The capture of `msg` (every recipient final) whose bytes are `raw`.
    pub fn of(msg: &QueuedMessage, raw: &[u8], dlp: Option<InspectionRecord>) -> Self {
        Capture {
            queue_id: msg.id.to_string(),
            sha256: msg.body_sha256.clone(),
            size: raw.len() as u64,
            received_at: msg.received_at,
            journaled_at: Utc::now(),
            direction: msg.origin.direction,
            connector: msg.origin.connector.clone(),
            listener: msg.origin.listener.clone(),
            peer: msg.origin.peer.to_string(),
            helo: msg.origin.helo.clone(),
            tls: msg.origin.tls.clone(),
            mail_from: msg.from.clone(),
            recipients: msg
                .recipients
                .iter()
                .map(|r| Outcome {
                    address: r.address.to_string(),
                    state: r.state,
                    verdict: r.verdict.clone(),
                    sealed: r.sealed.clone(),
                    evidence: r.evidence.clone(),
                    tls_refused: r.tls_refused.clone(),
                })
                .collect(),
            dlp,
            headers: HeaderFacts::of(raw),
            from_journal_report: false,
            retain_until: None,
            retention_rule: None,
        }
    }
}
