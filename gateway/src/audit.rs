//! The audit log: one JSON line per admin action, archive access or policy
//! event an auditor would ask about, appended to `<data_dir>/audit.log`
//! and synced. Each line carries `prev`, the SHA-256 of the line before
//! (`genesis` for the first), so an edited, removed or reordered line
//! breaks the chain at that point (`sealgate audit verify`). Writers take
//! an exclusive lock on the file, so the gateway and the command line
//! append in one order.
//!
//! Events are mirrored to the general log under the `sealgate::audit`
//! target with actor, action and id only: their detail (recipient addresses,
//! client addresses, search text) stays in the 0600 audit file.
//!
//! An admin's or archivist's action is written here before it is done, and
//! not done when it cannot be written ([`record`]
//! returns the failure); only the gateway's own events ([`note`]) go on with
//! a logged error, since mail must not stop for them. The file is 0600.

use chrono::Utc;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Who did it.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    /// The command line, with the gateway stopped.
    Cli,
    /// The admin API (the command line while the gateway runs).
    Api,
    /// The gateway itself (expiry).
    Gateway,
    /// Someone using the escrow portal: a recipient, or a sender's withdraw link.
    Portal,
}

impl Actor {
    fn as_str(self) -> &'static str {
        match self {
            Actor::Cli => "cli",
            Actor::Api => "api",
            Actor::Gateway => "gateway",
            Actor::Portal => "portal",
        }
    }
}

/// The audit log could not be written: the action it was for is not done.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the audit log {path}, so the action was not done: {source}")]
pub struct AuditError {
    /// The audit log.
    pub path: std::path::PathBuf,
    /// The cause.
    pub source: std::io::Error,
}

/// Appends one admin event or archive access, before the action it
/// records is done; the detail (addresses, a search text that may quote
/// content) goes to the audit file only.
pub fn record(
    data_dir: &Path,
    actor: Actor,
    action: &str,
    id: &str,
    detail: &str,
) -> Result<(), AuditError> {
    tracing::info!(target: "sealgate::audit", actor = actor.as_str(), action, id, "audit");
    append(data_dir, actor, action, id, detail)
}

/// Appends one of the gateway's own events (an expiry, a notice sent); a
/// failure is logged, and the mail goes on.
pub fn note(data_dir: &Path, actor: Actor, action: &str, id: &str, detail: &str) {
    if let Err(e) = record(data_dir, actor, action, id, detail) {
        tracing::error!(error = %e.source, path = %e.path.display(), action, "cannot write the audit log");
    }
}

fn append(
    data_dir: &Path,
    actor: Actor,
    action: &str,
    id: &str,
    detail: &str,
) -> Result<(), AuditError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = data_dir.join("audit.log");
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        // Logs made before it was private become private.
        if f.metadata()?.permissions().mode() & 0o077 != 0 {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.lock()?;
        let prev = match last_line(&mut f)? {
            Some((line, ended)) => {
                // A line torn by a crash is ended first, so this entry
                // stays whole (the torn line shows as broken in `verify`).
                if !ended {
                    f.write_all(b"\n")?;
                }
                hex::encode(Sha256::digest(&line))
            }
            None => "genesis".to_string(),
        };
        let line = serde_json::json!({
            "at": Utc::now().to_rfc3339(),
            "actor": actor.as_str(),
            "action": action,
            "id": id,
            "detail": detail,
            "prev": prev,
        });
        f.write_all(format!("{line}\n").as_bytes())?;
        f.sync_data()
        // The lock goes with the file.
    })();
    written.map_err(|source| AuditError { path, source })
}

/// The last line of `f` without its newline, and whether it had one; `None`
/// for an empty file.
fn last_line(f: &mut std::fs::File) -> std::io::Result<Option<(Vec<u8>, bool)>> {
    let len = f.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    // Lines are short; read back far enough to hold the last whole one.
    let mut back = 4096u64;
    loop {
        let start = len.saturating_sub(back);
        f.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::with_capacity((len - start) as usize);
        Read::by_ref(f).take(len - start).read_to_end(&mut tail)?;
        let ended = tail.ends_with(b"\n");
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if let Some(i) = body.iter().rposition(|&b| b == b'\n') {
            return Ok(Some((body[i + 1..].to_vec(), ended)));
        }
        if start == 0 {
            return Ok(Some((body.to_vec(), ended)));
        }
        back *= 4;
    }
}

/// What [`verify`] found.
#[derive(Debug, Default, serde::Serialize)]
pub struct AuditReport {
    /// Lines whose `prev` matched.
    pub lines_ok: usize,
    /// Lines without a `prev` field (each one is damage).
    pub unchained: usize,
    /// The first line (1-based) that does not follow from the one before, and why.
    pub first_broken: Option<(usize, String)>,
}

/// Walks `<data_dir>/audit.log`: every line must name the SHA-256 of the
/// line before it.
pub fn verify(data_dir: &Path) -> std::io::Result<AuditReport> {
    let path = data_dir.join("audit.log");
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AuditReport::default()),
        Err(e) => return Err(e),
    };
    let mut report = AuditReport::default();
    let mut prev: Option<&[u8]> = None;
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let broken = |why: &str| Some((n + 1, why.to_string()));
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
            report.first_broken = broken("not a JSON line (edited?)");
            return Ok(report);
        };
        match v["prev"].as_str() {
            // Every line is chained: one without `prev` was inserted, or
            // the chain was stripped.
            None => {
                report.unchained += 1;
                report.first_broken = broken("no prev field (inserted, or the chain was stripped)");
                return Ok(report);
            }
            Some(claimed) => {
                let want = match prev {
                    Some(p) => hex::encode(Sha256::digest(p)),
                    None => "genesis".to_string(),
                };
                if claimed != want {
                    report.first_broken = broken(
                        "prev does not match the line before (edited, removed or reordered)",
                    );
                    return Ok(report);
                }
                report.lines_ok += 1;
            }
        }
        prev = Some(line);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_holds_and_an_edit_or_removal_is_found() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            record(
                dir.path(),
                Actor::Cli,
                "test.action",
                &i.to_string(),
                "detail",
            )
            .unwrap();
        }
        let r = verify(dir.path()).unwrap();
        assert_eq!((r.lines_ok, r.first_broken.clone()), (5, None));
        let path = dir.path().join("audit.log");
        let text = std::fs::read_to_string(&path).unwrap();
        // Edit line 3.
        std::fs::write(&path, text.replacen("\"id\":\"2\"", "\"id\":\"9\"", 1)).unwrap();
        let r = verify(dir.path()).unwrap();
        assert_eq!(
            r.first_broken.map(|(n, _)| n),
            Some(4),
            "the line after the edit no longer follows"
        );
        // Remove line 2.
        let lines: Vec<&str> = text.lines().collect();
        let removed = [lines[0], lines[2], lines[3], lines[4]].join("\n") + "\n";
        std::fs::write(&path, removed).unwrap();
        assert_eq!(
            verify(dir.path()).unwrap().first_broken.map(|(n, _)| n),
            Some(2)
        );
        // Lines stripped of their chain are damage, not "older lines".
        std::fs::write(&path, "{\"action\":\"old\"}\n").unwrap();
        record(dir.path(), Actor::Cli, "new", "1", "").unwrap();
        let r = verify(dir.path()).unwrap();
        assert_eq!((r.unchained, r.first_broken.map(|(n, _)| n)), (1, Some(1)));
        // A line torn by a crash: the next entry starts on a line of its own.
        std::fs::write(&path, "").unwrap();
        record(dir.path(), Actor::Cli, "a", "1", "").unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"torn").unwrap();
        drop(f);
        record(dir.path(), Actor::Cli, "b", "2", "").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.lines().last().unwrap().contains("\"action\":\"b\""));
        assert_eq!(
            verify(dir.path()).unwrap().first_broken.map(|(n, _)| n),
            Some(2)
        );
    }

    #[test]
    fn the_log_is_private_and_a_failed_write_is_an_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        record(dir.path(), Actor::Cli, "a", "1", "").unwrap();
        let path = dir.path().join("audit.log");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        record(dir.path(), Actor::Cli, "b", "2", "").unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Where the log cannot be written (its place is a directory), the caller hears of it.
        let blocked = tempfile::tempdir().unwrap();
        std::fs::create_dir(blocked.path().join("audit.log")).unwrap();
        assert!(record(blocked.path(), Actor::Cli, "c", "3", "").is_err());
    }
}
