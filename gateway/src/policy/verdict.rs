//! What policy decided for one recipient, stored in the spool before
//! delivery starts so a restart never re-decides.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How a recipient's copy is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seal {
    /// TLS to the next hop: the destination's own level, or (escalated)
    /// verified TLS (`verify`, `dane`, MTA-STS enforce).
    Tls,
    /// PGP/MIME to the recipient's key.
    Pgp,
    /// S/MIME to the recipient's certificate.
    Smime,
    /// Held in the escrow portal; the recipient gets a notice.
    Portal,
}

impl Seal {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Seal::Tls => "tls",
            Seal::Pgp => "pgp",
            Seal::Smime => "smime",
            Seal::Portal => "portal",
        }
    }
}

/// The decision for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// Deliver, protected by `seal`. `escalated` means "more than
    /// opportunistic TLS" was asked for (tag, header, DLP or rule), so the
    /// seal must hold or the recipient bounces, never goes plain.
    Deliver {
        /// The method.
        seal: Seal,
        /// Whether the message was escalated.
        escalated: bool,
        /// Why: the tag, header, DLP rule ids or config rule that decided.
        why: Vec<String>,
        /// For PGP and S/MIME: the keystore id of the key to seal with, so
        /// the seal stage uses exactly the key policy (and `explain`) chose.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// Held for an admin (DLP `quarantine`).
    Quarantine {
        /// The rule that held it.
        reason: String,
    },
    /// Refused: the sender gets a DSN with the reason.
    Block {
        /// The rule, or why no seal is possible.
        reason: String,
    },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Deliver {
                seal,
                escalated,
                why,
                ..
            } => {
                write!(f, "deliver ({}", seal.as_str())?;
                if *escalated {
                    write!(f, ", escalated")?;
                }
                if !why.is_empty() {
                    write!(f, ": {}", why.join(", "))?;
                }
                write!(f, ")")
            }
            Verdict::Quarantine { reason } => write!(f, "quarantine ({reason})"),
            Verdict::Block { reason } => write!(f, "block ({reason})"),
        }
    }
}
