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
        /// For a TLS verdict that requires TLS (an `encrypt`, `verify` or
        /// `dane` destination, or an escalated recipient): the next method
        /// of the chain, sealed ahead so delivery can switch to it at once
        /// when the TLS session fails instead of only deferring.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback: Option<Fallback>,
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

/// The method a TLS recipient falls back to when TLS fails at delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    /// PGP or S/MIME (the portal, once built, needs no key).
    pub seal: Seal,
    /// The keystore id of the key to seal with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Verdict {
    /// The PGP or S/MIME copy the seal stage must make for this verdict
    /// (its own method, or its fallback's), with the key policy chose.
    pub fn copy_wanted(&self) -> Option<(Seal, Option<&str>)> {
        match self {
            Verdict::Deliver {
                seal: seal @ (Seal::Pgp | Seal::Smime),
                key,
                ..
            } => Some((*seal, key.as_deref())),
            Verdict::Deliver {
                fallback: Some(f), ..
            } if matches!(f.seal, Seal::Pgp | Seal::Smime) => Some((f.seal, f.key.as_deref())),
            _ => None,
        }
    }

    /// True when the recipient's message is held in the escrow portal.
    pub fn holds_in_portal(&self) -> bool {
        matches!(
            self,
            Verdict::Deliver {
                seal: Seal::Portal,
                ..
            }
        )
    }

    /// True when delivery sends this recipient a sealed copy rather than
    /// the message itself.
    pub fn sends_sealed_copy(&self) -> bool {
        matches!(
            self,
            Verdict::Deliver {
                seal: Seal::Pgp | Seal::Smime,
                ..
            }
        )
    }

    /// Switches a TLS verdict to its fallback after TLS failed (`why`);
    /// false, and no change, when it has none.
    pub fn fall_back(&mut self, why: &str) -> bool {
        let Verdict::Deliver {
            seal,
            why: reasons,
            key,
            fallback,
            ..
        } = self
        else {
            return false;
        };
        let Some(f) = fallback.take() else {
            return false;
        };
        reasons.push(format!("{} after TLS failed: {why}", f.seal.as_str()));
        *seal = f.seal;
        *key = f.key;
        true
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Deliver {
                seal,
                escalated,
                why,
                fallback,
                ..
            } => {
                write!(f, "deliver ({}", seal.as_str())?;
                if *escalated {
                    write!(f, ", escalated")?;
                }
                if !why.is_empty() {
                    write!(f, ": {}", why.join(", "))?;
                }
                if let Some(fb) = fallback {
                    write!(f, "; {} if TLS fails", fb.seal.as_str())?;
                }
                write!(f, ")")
            }
            Verdict::Quarantine { reason } => write!(f, "quarantine ({reason})"),
            Verdict::Block { reason } => write!(f, "block ({reason})"),
        }
    }
}
