//! The audit log as `<data_dir>/audit.log`: one JSON line per entry,
//! appended and synced under an exclusive lock on the file (the gateway
//! and the command line append in one order). Each line's `prev` is the
//! SHA-256 of the line before. The file is 0600.

use crate::store::audit_log::{Actor, AuditLog, AuditRecord, AuditReport};
use crate::store::BackendError;
use async_trait::async_trait;
use chrono::Utc;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The audit file of one data directory.
pub struct AuditFile {
    path: PathBuf,
}

impl AuditFile {
    /// The audit log of `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        AuditFile {
            path: data_dir.join("audit.log"),
        }
    }

    fn error(&self, e: std::io::Error) -> BackendError {
        BackendError::new("audit log", format!("{}: {e}", self.path.display()))
    }

    fn append_line(
        &self,
        actor: Actor,
        action: &str,
        id: &str,
        detail: &str,
    ) -> std::io::Result<()> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
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
        let record = AuditRecord {
            action: action.to_string(),
            actor: actor.as_str().to_string(),
            at: Utc::now().to_rfc3339(),
            detail: detail.to_string(),
            id: id.to_string(),
            prev,
        };
        let mut line = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        f.write_all(&line)?;
        f.sync_data()
        // The lock goes with the file.
    }

    fn contents(&self) -> std::io::Result<Vec<u8>> {
        match std::fs::read(&self.path) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
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

#[async_trait]
impl AuditLog for AuditFile {
    async fn append(
        &self,
        actor: Actor,
        action: &str,
        id: &str,
        detail: &str,
    ) -> Result<(), BackendError> {
        self.append_line(actor, action, id, detail)
            .map_err(|e| self.error(e))
    }

    async fn read(&self, tail: Option<usize>) -> Result<Vec<AuditRecord>, BackendError> {
        let text = self.contents().map_err(|e| self.error(e))?;
        let records: Vec<AuditRecord> = text
            .split(|&b| b == b'\n')
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect();
        let start = tail.map_or(0, |n| records.len().saturating_sub(n));
        Ok(records[start..].to_vec())
    }

    async fn verify(&self) -> Result<AuditReport, BackendError> {
        Ok(crate::store::audit_log::verify_lines(
            &self.contents().map_err(|e| self.error(e))?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_audit_file_keeps_the_promises() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        crate::store::conformance::audit_log(&|| Box::new(AuditFile::new(&path))).await;
    }

    #[tokio::test]
    async fn an_edit_a_removal_a_stripped_chain_and_a_torn_line_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditFile::new(dir.path());
        for i in 0..5 {
            log.append(Actor::Cli, "test.action", &i.to_string(), "detail")
                .await
                .unwrap();
        }
        let r = log.verify().await.unwrap();
        assert_eq!((r.lines_ok, r.first_broken.clone()), (5, None));
        let path = dir.path().join("audit.log");
        let text = std::fs::read_to_string(&path).unwrap();
        // Edit line 3.
        std::fs::write(&path, text.replacen("\"id\":\"2\"", "\"id\":\"9\"", 1)).unwrap();
        let r = log.verify().await.unwrap();
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
            log.verify().await.unwrap().first_broken.map(|(n, _)| n),
            Some(2)
        );
        // Lines stripped of their chain are damage, not "older lines".
        std::fs::write(&path, "{\"action\":\"old\"}\n").unwrap();
        log.append(Actor::Cli, "new", "1", "").await.unwrap();
        let r = log.verify().await.unwrap();
        assert_eq!((r.unchained, r.first_broken.map(|(n, _)| n)), (1, Some(1)));
        // A line torn by a crash: the next entry starts on a line of its own.
        std::fs::write(&path, "").unwrap();
        log.append(Actor::Cli, "a", "1", "").await.unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"torn").unwrap();
        drop(f);
        log.append(Actor::Cli, "b", "2", "").await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.lines().last().unwrap().contains("\"action\":\"b\""));
        assert_eq!(
            log.verify().await.unwrap().first_broken.map(|(n, _)| n),
            Some(2)
        );
    }

    #[tokio::test]
    async fn the_log_is_private_and_a_failed_write_is_an_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let log = AuditFile::new(dir.path());
        log.append(Actor::Cli, "a", "1", "").await.unwrap();
        let path = dir.path().join("audit.log");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        log.append(Actor::Cli, "b", "2", "").await.unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Where the log cannot be written (its place is a directory), the caller hears of it.
        let blocked = tempfile::tempdir().unwrap();
        std::fs::create_dir(blocked.path().join("audit.log")).unwrap();
        assert!(AuditFile::new(blocked.path())
            .append(Actor::Cli, "c", "3", "")
            .await
            .is_err());
    }
}
