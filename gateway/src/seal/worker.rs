//! The seal stage as a running task: for each decided message, make the
//! PGP/MIME or S/MIME copy every recipient's verdict asks for, with exactly
//! the key policy chose, store the copies and the seal facts in the spool
//! with fsync, then hand the id on to delivery. A copy that cannot be made
//! turns the recipient's verdict into a block (a DSN naming why), never
//! into plain delivery.

use super::pgp::{self, PgpOptions, PgpSigner};
use super::portal::{Outgoing, PortalHoldError, PortalSeal};
use super::smime::{self, SmimeOptions, SmimeSigner};
use crate::config::Config;
use crate::keys::{Found, Keys, Parsed};
use crate::model::verdict::{Seal, Verdict};
use crate::spool::pipe::{Handoff, Pipe};
use crate::spool::{
    QueueId, QueuedMessage, SealRecord, Spool, SpoolError, Submission, PORTAL_ORIGIN,
};
use chrono::Utc;
use std::sync::Arc;

/// Why the seal stage cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SealSetupError {
    /// An organisation signing key (PGP or S/MIME) does not load.
    #[error("[seal] signing key {path}: {reason}")]
    Signer {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The keystore or its roots do not load.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyStoreError),
}

/// Why one recipient's sealed copy could not be made (the recipient is
/// then blocked, or only its fallback copy is dropped).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The verdict names no key to seal with.
    #[error("policy chose no key")]
    NoKey,
    /// The key policy chose cannot be used now.
    #[error(transparent)]
    Key(#[from] crate::keys::Unusable),
    /// The key is of the other kind than the seal asks for.
    #[error("key {key} is not a {} key", seal.as_str())]
    WrongKind {
        /// The key id.
        key: String,
        /// The seal asked for.
        seal: Seal,
    },
    /// OpenPGP encryption failed.
    #[error(transparent)]
    Pgp(#[from] crate::keys::pgp_key::PgpError),
    /// S/MIME encryption failed.
    #[error(transparent)]
    Smime(#[from] crate::keys::smime_cert::SmimeError),
}

/// Makes sealed copies with the keystore and `[seal]`'s options.
#[derive(Debug, Clone)]
pub struct Sealer {
    keys: Keys,
    pgp: PgpOptions,
    smime: SmimeOptions,
}

impl Sealer {
    /// Reloads the keystore when it changed, so the key policy chose is there.
    pub async fn refresh_keys(&self) -> Result<(), crate::keys::KeyStoreError> {
        self.keys.store.refresh().await
    }

    /// The sealer `config` describes.
    pub fn from_config(config: &Config, keys: Keys) -> Result<Self, SealSetupError> {
        let signer = match &config.seal.pgp_signing_key {
            Some(path) => {
                let err = |reason: String| SealSetupError::Signer {
                    path: path.display().to_string(),
                    reason,
                };
                crate::secret_file::check_key(path).map_err(|e| err(e.to_string()))?;
                let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
                Some(Arc::new(
                    PgpSigner::from_tsk(&bytes).map_err(|e| err(e.to_string()))?,
                ))
            }
            None => None,
        };
        // The config's pair wins; else an identity installed from PKCS#12.
        let (installed_cert, installed_key) =
            crate::keys::signing::smime_paths(&config.keystore_dir());
        let configured = (
            config.seal.smime_signing_cert.as_ref(),
            config.seal.smime_signing_key.as_ref(),
        );
        let pair = match configured {
            (None, None) if installed_cert.exists() && installed_key.exists() => {
                (Some(&installed_cert), Some(&installed_key))
            }
            pair => pair,
        };
        let smime_signer = match pair {
            (Some(cert), Some(key)) => {
                let err = |reason: String| SealSetupError::Signer {
                    path: cert.display().to_string(),
                    reason,
                };
                let c = std::fs::read(cert).map_err(|e| err(e.to_string()))?;
                crate::secret_file::check_key(key).map_err(|e| err(e.to_string()))?;
                let k = std::fs::read(key).map_err(|e| err(format!("{}: {e}", key.display())))?;
                Some(Arc::new(
                    SmimeSigner::from_pem(&c, &k).map_err(|e| err(e.to_string()))?,
                ))
            }
            (None, None) => None,
            (Some(p), None) | (None, Some(p)) => {
                return Err(SealSetupError::Signer {
                    path: p.display().to_string(),
                    reason: "smime_signing_cert and smime_signing_key go together".into(),
                })
            }
        };
        Ok(Sealer {
            keys,
            pgp: PgpOptions {
                protect_subject: config.seal.protect_subject,
                signer,
            },
            smime: SmimeOptions {
                rsa_oaep: config.seal.smime_oaep,
                aead: config.seal.smime_aead,
                signer: smime_signer,
            },
        })
    }

    /// Seals `message` (as it leaves) for `address` with key `key_id`,
    /// which must still be usable; returns the copy and its seal facts.
    pub fn seal_for(
        &self,
        message: &[u8],
        address: &str,
        seal: Seal,
        key_id: &str,
    ) -> Result<(Vec<u8>, SealRecord), SealError> {
        let Found { entry, key } = self.keys.load(key_id, address)?;
        let bytes = match (seal, &key) {
            (Seal::Pgp, Parsed::Pgp(k)) => pgp::seal(message, &[&**k], &self.pgp)?,
            (Seal::Smime, Parsed::Smime(c)) => smime::seal(message, &[&**c], &self.smime)?,
            _ => {
                return Err(SealError::WrongKind {
                    key: key_id.to_string(),
                    seal,
                })
            }
        };
        let record = SealRecord {
            method: seal,
            key: entry.id.clone(),
            label: entry.label(),
            key_source: entry.source.as_str().to_string(),
            at: Utc::now(),
            size: bytes.len() as u64,
        };
        Ok((bytes, record))
    }
}

/// Seals every recipient of `msg` that waits for a copy; returns the
/// copies (recipient index, bytes) and records the outcome in `msg`.
pub fn seal_message(sealer: &Sealer, msg: &mut QueuedMessage, body: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let outgoing = msg.outgoing(body);
    let mut copies = Vec::new();
    for i in msg.unsealed().collect::<Vec<_>>() {
        let r = &mut msg.recipients[i];
        let Some(verdict) = r.verdict.clone() else {
            continue;
        };
        let Some((seal, key)) = verdict.copy_wanted() else {
            continue;
        };
        let address = crate::keys::filed_as(&r.address);
        let result = match key {
            Some(k) => sealer.seal_for(&outgoing, &address, seal, k),
            None => Err(SealError::NoKey),
        };
        match result {
            Ok((bytes, record)) => {
                tracing::info!(id = %msg.id, recipient = i, method = seal.as_str(), key = %record.key, size = record.size, "sealed");
                r.sealed = Some(record);
                copies.push((i as u32, bytes));
            }
            Err(why) if !verdict.sends_sealed_copy() => {
                // Only the fallback failed: TLS still goes ahead, and a TLS
                // failure then defers rather than switching.
                tracing::warn!(id = %msg.id, recipient = i, method = seal.as_str(), reason = %why, "cannot seal the fallback copy; TLS only");
                if let Some(Verdict::Deliver { fallback, .. }) = &mut r.verdict {
                    *fallback = None;
                }
            }
            Err(why) => {
                // The reason names keys and problems, never content.
                tracing::warn!(id = %msg.id, recipient = i, method = seal.as_str(), reason = %why, "cannot seal; the recipient is blocked");
                r.verdict = Some(Verdict::Block {
                    reason: format!("sealing with {} failed: {why}", seal.as_str()),
                });
            }
        }
    }
    copies
}

/// What holding `msg` in the portal gave: the mail to send about it, and
/// for the audit log each deposit's escrow id with its detail.
#[derive(Debug, Default)]
pub struct Held {
    /// Notices and senders' confirmations.
    pub mail: Vec<Outgoing>,
    /// (escrow id, detail) of each deposit.
    pub deposits: Vec<(String, String)>,
}

/// Holds every portal recipient of `msg` that waits for it: deposits the
/// message and returns the mail to send about it. Without a portal (or
/// when a deposit fails) the recipient is blocked, never sent in plain.
pub async fn hold_in_portal(
    portal: Option<&PortalSeal>,
    msg: &mut QueuedMessage,
    body: &[u8],
    dlp_hits: &[String],
) -> Held {
    let waiting: Vec<usize> = msg
        .unsealed()
        .filter(|&i| {
            msg.recipients[i]
                .verdict
                .as_ref()
                .is_some_and(Verdict::holds_in_portal)
        })
        .collect();
    if waiting.is_empty() {
        return Held::default();
    }
    let outgoing = msg.outgoing(body);
    let mut held = Held::default();
    for i in waiting {
        let result = match portal {
            Some(p) => p.hold(msg, i, &outgoing, dlp_hits).await,
            None => Err(PortalHoldError::Off),
        };
        let r = &mut msg.recipients[i];
        match result {
            Ok((record, m)) => {
                tracing::info!(id = %msg.id, recipient = i, method = "portal", escrow = %record.key, "held in the portal");
                let recipient = crate::keys::filed_as(&r.address);
                held.deposits.push((
                    record.key.clone(),
                    format!("queue id {}, recipient {recipient}", msg.id),
                ));
                r.sealed = Some(record);
                held.mail.extend(m);
            }
            Err(why) => {
                tracing::warn!(id = %msg.id, recipient = i, method = "portal", reason = %why, "cannot hold in the portal; the recipient is blocked");
                r.verdict = Some(Verdict::Block {
                    reason: format!("holding in the portal failed: {why}"),
                });
            }
        }
    }
    held
}

struct Stage {
    spool: Spool,
    sealer: Sealer,
    portal: Option<PortalSeal>,
    audit: Arc<dyn crate::store::audit_log::AuditLog>,
    hostname: String,
    next: Handoff,
}

impl Stage {
    async fn seal_one(&self, id: QueueId) -> Result<(), SpoolError> {
        let Some(mut msg) = self.spool.get(id).await? else {
            return Ok(());
        };
        if msg.awaits_seal() {
            if let Err(e) = self.sealer.refresh_keys().await {
                tracing::error!(id = %id, error = %e, "cannot reload the keystore; sealing with the keys loaded before");
            }
            let body = self.spool.read_body(&msg).await?;
            let sealer = self.sealer.clone();
            let portal = self.portal.clone();
            // The DLP rules that fired decide how long a portal copy stays;
            // read them only when a recipient waits for the portal.
            let for_portal = msg.recipients.iter().any(|r| {
                r.sealed.is_none() && r.verdict.as_ref().is_some_and(Verdict::holds_in_portal)
            });
            let hits = match for_portal {
                true => self
                    .spool
                    .inspection(id)
                    .await?
                    .map(|found| found.policy_hits)
                    .unwrap_or_default(),
                false => Vec::new(),
            };
            // Sealing a large message takes CPU time; keep it off the async workers.
            let (msg2, copies, body) = tokio::task::spawn_blocking(move || {
                let copies = seal_message(&sealer, &mut msg, &body);
                (msg, copies, body)
            })
            .await?;
            msg = msg2;
            let held = hold_in_portal(portal.as_ref(), &mut msg, &body, &hits).await;
            for (escrow_id, detail) in &held.deposits {
                crate::audit::note(
                    self.audit.as_ref(),
                    crate::audit::Actor::Gateway,
                    "portal.notice",
                    escrow_id,
                    detail,
                )
                .await;
            }
            // The notices are durable before the deposit is recorded: a
            // crash in between deposits again (a second notice), never none.
            for m in held.mail {
                let queued = self
                    .spool
                    .submit(Submission {
                        from: &m.from,
                        to: vec![m.to],
                        origin: PORTAL_ORIGIN,
                        direction: m.direction,
                        hostname: &self.hostname,
                        bytes: &m.bytes,
                    })
                    .await?;
                tracing::info!(id = %msg.id, notice = %queued, "portal notice queued");
            }
            self.spool.put_sealed(&msg, copies).await?;
        }
        self.next.send(id);
        Ok(())
    }
}

/// Runs until `pipe` closes; first seals what a previous run left decided
/// but unsealed.
pub async fn run(
    spool: Spool,
    sealer: Sealer,
    portal: Option<PortalSeal>,
    audit: Arc<dyn crate::store::audit_log::AuditLog>,
    hostname: String,
    mut pipe: Pipe,
    next: Handoff,
) {
    let stage = Arc::new(Stage {
        spool,
        sealer,
        portal,
        audit,
        hostname,
        next,
    });
    match pipe.backlog(QueuedMessage::awaits_seal).await {
        Ok(list) => {
            for m in &list {
                if let Err(e) = stage.seal_one(m.id).await {
                    tracing::error!(id = %m.id, error = %e, "sealing failed");
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot list the queue for sealing"),
    }
    // Sealing is CPU work: one message per core at a time, so a large
    // message does not hold up the small ones behind it.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let limit = Arc::new(tokio::sync::Semaphore::new(cores));
    // A permit first, then the next id: ids wait in the pipe (counted)
    // rather than taken and held.
    while let Ok(permit) = limit.clone().acquire_owned().await {
        let Some(taken) = pipe.next().await else {
            break;
        };
        let stage = stage.clone();
        tokio::spawn(async move {
            let id = taken.id();
            if let Err(e) = stage.seal_one(id).await {
                // Left unsealed: delivery waits, and the next start retries.
                tracing::error!(id = %id, error = %e, "sealing failed");
            }
            taken.done();
            drop(permit);
        });
    }
}
