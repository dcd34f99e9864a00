//! What the spool keeps about each message: the envelope and where it came from.

use crate::smtp::address::Mailbox;
use crate::smtp::command::{MailParams, Notify};
use crate::spool::QueueId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the internet to the organisation's own domains.
    Inbound,
    /// From the tenant (a connector) to anywhere.
    Outbound,
}

impl Direction {
    /// Lower-case name, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// TLS facts of the session a message arrived on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFacts {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: String,
    /// Negotiated cipher suite, IANA name.
    pub cipher: String,
    /// Subject CN / DNS names of the verified client certificate, if one was sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_names: Vec<String>,
}

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Listener name.
    pub listener: String,
    /// Peer address.
    pub peer: SocketAddr,
    /// Name the client gave in EHLO/HELO.
    pub helo: String,
    /// TLS facts, `None` for a plain session.
    pub tls: Option<TlsFacts>,
    /// The connector that matched, if any.
    pub connector: Option<String>,
    /// Direction, decided by the connector match.
    pub direction: Direction,
}

/// Where a recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientState {
    /// Accepted, waiting for the next stage.
    Queued,
}

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecipient {
    /// The address from RCPT TO.
    pub address: Mailbox,
    /// DSN NOTIFY as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// DSN ORCPT as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcpt: Option<String>,
    /// Current state.
    pub state: RecipientState,
}

/// The spool record of one message (everything but its bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    /// Queue id.
    pub id: QueueId,
    /// When the end of DATA was received.
    pub received_at: DateTime<Utc>,
    /// MAIL FROM; empty for the null reverse path.
    pub from: String,
    /// MAIL FROM parameters.
    pub mail_params: MailParams,
    /// Every RCPT, in order.
    pub recipients: Vec<QueuedRecipient>,
    /// Session facts.
    pub origin: Origin,
    /// Size of the message as received, in octets.
    pub size: u64,
    /// SHA-256 (hex) of the message exactly as the client sent it in DATA,
    /// after dot-unstuffing and before our `Received:` header.
    pub body_sha256: String,
    /// Number of stored chunks.
    pub chunks: u32,
    /// The `Received:` header Sealgate adds in front of the message (CRLF-terminated).
    pub received_header: String,
}

/// What the inspect stage found in a message: detector ids and counts, never
/// values. Written back to the spool by the inspect stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionRecord {
    /// When it was inspected.
    pub inspected_at: DateTime<Utc>,
    /// Per detector: id, confidence, distinct values.
    pub findings: Vec<FindingRecord>,
    /// Reason codes of parts that could not be scanned, with counts.
    pub unscannable: Vec<(String, usize)>,
    /// The strongest policy action, if any policy fired.
    pub action: Option<String>,
    /// Policy rule ids that fired.
    pub policy_hits: Vec<String>,
}

/// One detector's result for a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingRecord {
    /// Detector id, e.g. `us_ssn`.
    pub detector: String,
    /// `low`, `medium` or `high`.
    pub confidence: String,
    /// Distinct values found.
    pub count: usize,
}
