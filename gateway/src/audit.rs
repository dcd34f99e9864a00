//! Writing to the audit log (`store::audit_log`): what an admin, an
//! archivist or the gateway did, for an auditor.
//!
//! Events are mirrored to the general log under the `sealgate::audit`
//! target with actor, action and id only: their detail (recipient addresses,
//! client addresses, search text) stays in the audit store.
//!
//! An admin's or archivist's action is written there before it is done, and
//! not done when it cannot be written ([`record`] returns the failure);
//! only the gateway's own events ([`note`]) go on with a logged error,
//! since mail must not stop for them.

pub use crate::store::audit_log::Actor;
use crate::store::audit_log::AuditLog;
use crate::store::BackendError;

/// The audit log could not be written: the action it was for is not done.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the audit log, so the action was not done: {0}")]
pub struct AuditError(#[from] pub BackendError);

/// Appends one admin event or archive access, before the action it
/// records is done; the detail (addresses, a search text that may quote
/// content) goes to the audit store only.
pub async fn record(
    log: &dyn AuditLog,
    actor: Actor,
    action: &str,
    id: &str,
    detail: &str,
) -> Result<(), AuditError> {
    tracing::info!(target: "sealgate::audit", actor = actor.as_str(), action, id, "audit");
    Ok(log.append(actor, action, id, detail).await?)
}

/// Appends one of the gateway's own events (an expiry, a notice sent); a
/// failure is logged, and the mail goes on.
pub async fn note(log: &dyn AuditLog, actor: Actor, action: &str, id: &str, detail: &str) {
    if let Err(e) = record(log, actor, action, id, detail).await {
        tracing::error!(error = %e.0, action, "cannot write the audit log");
    }
}
