//! What the spool keeps about each message: the envelope and where it came from.

use super::address::Mailbox;
use super::envelope::{MailParams, Notify};
use super::id::QueueId;
use super::tls::{PolicySource, TlsLevel};
use super::verdict::{Seal, Verdict};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// The origin listener of mail the portal writes (notices, codes,
/// receipts, replies); an SMTP listener may not take this name.
pub const PORTAL_ORIGIN: &str = "portal";

/// The origin listener of delivery status notifications.
pub const DSN_ORIGIN: &str = "dsn";

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

#[cfg(test)]
impl Origin {
    /// (tests) A plain outbound session from 127.0.0.1:1 on listener `smtp`.
    pub fn test_outbound() -> Self {
        Origin {
            listener: "smtp".into(),
            peer: "127.0.0.1:1".parse().expect("a socket address"),
            helo: "h".into(),
            tls: None,
            connector: None,
            direction: Direction::Outbound,
        }
    }
}

/// Where a recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientState {
    /// Accepted, not yet tried.
    Queued,
    /// Tried, failed temporarily; tried again at `next_attempt`.
    Deferred,
    /// The next hop accepted it (final).
    Delivered,
    /// Failed permanently or expired; the sender gets a DSN (final).
    Bounced,
    /// Dropped by policy without a bounce, e.g. TLS level `exclusive` (final).
    Dropped,
    /// Held by policy for an admin; not delivered until released.
    Quarantined,
}

impl RecipientState {
    /// True once nothing more will be done for the recipient.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RecipientState::Delivered | RecipientState::Bounced | RecipientState::Dropped
        )
    }

    /// Lower-case name, for listings and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::Queued => "queued",
            RecipientState::Deferred => "deferred",
            RecipientState::Delivered => "delivered",
            RecipientState::Bounced => "bounced",
            RecipientState::Dropped => "dropped",
            RecipientState::Quarantined => "quarantined",
        }
    }
}

/// TLS facts of an outbound session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundTls {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: String,
    /// Negotiated cipher suite, IANA name.
    pub cipher: String,
    /// SHA-256 (hex) of the peer's end-entity certificate.
    pub peer_cert_sha256: String,
    /// True when the certificate was authenticated (`verify`, MTA-STS or DANE).
    pub verified: bool,
}

/// What happened on the last delivery attempt for a recipient: where, how
/// protected, under which policy, and what the next hop said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryEvidence {
    /// When the attempt ended.
    pub at: DateTime<Utc>,
    /// The MX or relay host name tried last (empty when none was reached).
    pub host: String,
    /// Its address, if a connection was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Its port.
    pub port: u16,
    /// TLS facts; `None` for a plain session or no session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<OutboundTls>,
    /// The TLS level the delivery was held to.
    pub tls_level: TlsLevel,
    /// What set that level.
    pub policy_source: PolicySource,
    /// The remote reply (`250 2.0.0 Ok: queued as ...`) or our own reason.
    pub reply: String,
}

impl DeliveryEvidence {
    /// Evidence of a decision made without contacting any server (policy,
    /// quarantine, an admin): only the time, the level and our reason.
    pub fn by_policy(reply: String, tls_level: TlsLevel) -> Self {
        DeliveryEvidence {
            at: Utc::now(),
            host: String::new(),
            ip: None,
            port: 0,
            tls: None,
            tls_level,
            policy_source: PolicySource::Policy,
            reply,
        }
    }
}

/// Whether the sender has been told about a bounced recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DsnState {
    /// A DSN is owed and not yet queued (a crash here queues it on restart).
    Pending,
    /// Queued as this message id.
    Sent(String),
    /// None owed: null sender, or NOTIFY did not ask for it.
    NotRequested,
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
    /// Delivery attempts made.
    #[serde(default)]
    pub attempts: u32,
    /// When a deferred recipient is tried next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<DateTime<Utc>>,
    /// Evidence of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<DeliveryEvidence>,
    /// DSN bookkeeping for a bounced (or delayed) recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsn: Option<DsnState>,
    /// True once a delay notice has been queued for this recipient.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delay_notified: bool,
    /// What policy decided, before delivery started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// How the seal stage sealed this recipient's copy (PGP, S/MIME).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<SealRecord>,
    /// Why TLS failed when this recipient fell back from TLS to its sealed
    /// copy; the copy then goes without the TLS level that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_refused: Option<String>,
}

/// How one recipient's copy was sealed: the journal's seal facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealRecord {
    /// The method.
    pub method: Seal,
    /// Keystore id: OpenPGP fingerprint or certificate SHA-256.
    pub key: String,
    /// How to name the key: fingerprint, or certificate serial and issuer.
    pub label: String,
    /// Where the key came from (`imported`, `wkd`, `harvested`).
    pub key_source: String,
    /// When it was sealed.
    pub at: DateTime<Utc>,
    /// Size of the sealed copy in octets.
    pub size: u64,
}

impl QueuedRecipient {
    /// A freshly accepted recipient.
    pub fn new(address: Mailbox, notify: Option<Notify>, orcpt: Option<String>) -> Self {
        QueuedRecipient {
            address,
            notify,
            orcpt,
            state: RecipientState::Queued,
            attempts: 0,
            next_attempt: None,
            evidence: None,
            dsn: None,
            delay_notified: false,
            verdict: None,
            sealed: None,
            tls_refused: None,
        }
    }
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
    /// The trace fields Sealgate adds in front of the message, CRLF-terminated:
    /// `Authentication-Results:` for checked inbound mail, then `Received:`.
    pub received_header: String,
    /// The subject to deliver with, when policy removed tags from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_subject: Option<String>,
    /// True once the policy stage has decided every recipient.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decided: bool,
    /// Sender authentication's results, for inbound mail that was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<super::inbound::AuthVerdict>,
    /// The content scanners' verdict, for inbound mail that was scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<super::inbound::ScanVerdict>,
}

impl QueuedMessage {
    /// Recipients whose verdict asks for a PGP or S/MIME copy (as its
    /// method or its fallback), or for the portal, that the seal stage has
    /// not made yet.
    pub fn unsealed(&self) -> impl Iterator<Item = usize> + '_ {
        self.recipients.iter().enumerate().filter_map(|(i, r)| {
            let wants = r
                .verdict
                .as_ref()
                .is_some_and(|v| v.copy_wanted().is_some() || v.holds_in_portal());
            (wants && r.sealed.is_none() && r.state == RecipientState::Queued).then_some(i)
        })
    }

    /// True when the seal stage still has work on this message: delivery waits.
    pub fn awaits_seal(&self) -> bool {
        self.decided && self.unsealed().next().is_some()
    }

    /// The message as it leaves: our trace fields in front, the subject
    /// policy freed of its tags, and fields that claimed to be our verdicts
    /// before we gave any (Authentication-Results with our authserv-id,
    /// X-Sealgate-Spam-*) removed.
    pub fn outgoing(&self, body: &[u8]) -> Vec<u8> {
        let unforged;
        let body = if self.auth.is_some() || self.scan.is_some() {
            let id = self.auth.as_ref().map(|a| a.authserv_id.as_str());
            unforged = super::header_fields::drop_forged_verdicts(body, id);
            &unforged[..]
        } else {
            body
        };
        let rewritten;
        let body = match &self.new_subject {
            Some(subject) => {
                rewritten = super::header_fields::rewrite_subject(body, subject);
                &rewritten[..]
            }
            None => body,
        };
        let mut out = Vec::with_capacity(self.received_header.len() + body.len());
        out.extend_from_slice(self.received_header.as_bytes());
        out.extend_from_slice(body);
        out
    }
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
    /// Attachment and archive-entry file extensions found (never the names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
}

impl InspectionRecord {
    /// An inspection made now that found nothing and had nothing unscannable.
    pub fn clean() -> InspectionRecord {
        InspectionRecord {
            inspected_at: chrono::Utc::now(),
            findings: Vec::new(),
            unscannable: Vec::new(),
            action: None,
            policy_hits: Vec::new(),
            extensions: Vec::new(),
        }
    }
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
