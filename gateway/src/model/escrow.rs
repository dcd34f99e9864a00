//! What the escrow portal keeps about a held message, never its content:
//! the entry, where it stands, and what a deposit hands back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a deposited message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EscrowState {
    /// Waiting for its recipient.
    Unread,
    /// Opened at least once.
    Read,
    /// The recipient replied.
    Replied,
    /// The sender or an admin withdrew it (content erased).
    Revoked,
    /// Past its expiry (content erased).
    Expired,
}

/// One deposited message (never its content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscrowEntry {
    /// Random id (hex).
    pub id: String,
    /// The spool's queue id of the message it came from.
    pub queue_id: String,
    /// The original sender (envelope).
    pub sender: String,
    /// The original Message-ID, to thread replies.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message_id: String,
    /// The one recipient it is for.
    pub recipient: String,
    /// When it was deposited.
    pub created_at: DateTime<Utc>,
    /// When it is erased unless revoked before.
    pub expires_at: DateTime<Utc>,
    /// Where it stands.
    pub state: EscrowState,
    /// When it was first opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<DateTime<Utc>>,
    /// When the recipient last replied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replied_at: Option<DateTime<Utc>>,
    /// When its content and key were erased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<DateTime<Utc>>,
}

/// A message to deposit.
#[derive(Debug, Clone, Copy)]
pub struct NewDeposit<'a> {
    /// The spool's queue id of the message.
    pub queue_id: &'a str,
    /// The envelope sender.
    pub sender: &'a str,
    /// The one recipient it is held for.
    pub recipient: &'a str,
    /// The message as the recipient will read it.
    pub message: &'a [u8],
    /// When it is erased unless withdrawn before.
    pub expires_at: DateTime<Utc>,
}

/// What a deposit hands back: the entry and the two links' tokens, each
/// shown once (in the notice and in the sender's confirmation).
#[derive(Debug)]
pub struct Deposit {
    /// The new entry.
    pub entry: EscrowEntry,
    /// Opens the message (the recipient's link).
    pub token: String,
    /// Withdraws the message (the sender's link).
    pub revoke_token: String,
}

/// Portal sign-in state kept beside the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRecord {
    /// Per recipient address: password hash, failures, pending code.
    Account,
    /// Per signed-in session (keyed by the SHA-256 of its cookie).
    Session,
}
