//! Console users in `<data_dir>/console-users.json` and their sessions in
//! `console-sessions.json` (both 0600), each replaced atomically under its
//! own flock, as the API tokens are: a handful of records, where a
//! database would add nothing.

use super::json_file::JsonFile;
use crate::store::console::{
    ConsoleSession, ConsoleStoreError, ConsoleUser, ConsoleUsers, UserChange,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A session as the file keeps it: under its cookie's SHA-256.
#[derive(Serialize, Deserialize)]
struct Stored {
    key: String,
    #[serde(flatten)]
    session: ConsoleSession,
}

/// The console's files in one data directory.
pub struct ConsoleFiles {
    users: JsonFile,
    sessions: JsonFile,
}

impl ConsoleFiles {
    /// The console users and sessions of `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        ConsoleFiles {
            users: JsonFile::new(data_dir, "console-users.json", 0o600, "console users"),
            sessions: JsonFile::new(data_dir, "console-sessions.json", 0o600, "console sessions"),
        }
    }
}

#[async_trait]
impl ConsoleUsers for ConsoleFiles {
    async fn list(&self) -> Result<Vec<ConsoleUser>, ConsoleStoreError> {
        Ok(self.users.read()?)
    }

    async fn get(&self, name: &str) -> Result<Option<ConsoleUser>, ConsoleStoreError> {
        Ok(self
            .users
            .read::<ConsoleUser>()?
            .into_iter()
            .find(|u| u.name == name))
    }

    async fn insert(&self, user: ConsoleUser) -> Result<(), ConsoleStoreError> {
        self.users.change(|users: &mut Vec<ConsoleUser>| {
            if users.iter().any(|u| u.name == user.name) {
                return Err(ConsoleStoreError::Exists(user.name.clone()));
            }
            users.push(user);
            Ok(())
        })
    }

    async fn update(
        &self,
        name: &str,
        change: UserChange<'_>,
    ) -> Result<ConsoleUser, ConsoleStoreError> {
        self.users.change(|users: &mut Vec<ConsoleUser>| {
            let user = users
                .iter_mut()
                .find(|u| u.name == name)
                .ok_or_else(|| ConsoleStoreError::Missing(name.to_string()))?;
            change(user);
            Ok(user.clone())
        })
    }

    async fn remove(&self, name: &str) -> Result<ConsoleUser, ConsoleStoreError> {
        let user = self.users.change(|users: &mut Vec<ConsoleUser>| {
            let at = users
                .iter()
                .position(|u| u.name == name)
                .ok_or_else(|| ConsoleStoreError::Missing(name.to_string()))?;
            Ok::<_, ConsoleStoreError>(users.remove(at))
        })?;
        self.sessions.change(|s: &mut Vec<Stored>| {
            s.retain(|s| s.session.user != name);
            Ok::<_, ConsoleStoreError>(())
        })?;
        Ok(user)
    }

    async fn put_session(
        &self,
        key: &str,
        session: &ConsoleSession,
    ) -> Result<(), ConsoleStoreError> {
        self.sessions.change(|s: &mut Vec<Stored>| {
            s.retain(|s| s.key != key);
            s.push(Stored {
                key: key.to_string(),
                session: session.clone(),
            });
            Ok(())
        })
    }

    async fn session(&self, key: &str) -> Result<Option<ConsoleSession>, ConsoleStoreError> {
        Ok(self
            .sessions
            .read::<Stored>()?
            .into_iter()
            .find(|s| s.key == key)
            .map(|s| s.session))
    }

    async fn end_session(&self, key: &str) -> Result<(), ConsoleStoreError> {
        self.sessions.change(|s: &mut Vec<Stored>| {
            s.retain(|s| s.key != key);
            Ok(())
        })
    }

    async fn sweep_sessions(
        &self,
        idle_since: DateTime<Utc>,
        started_before: DateTime<Utc>,
    ) -> Result<usize, ConsoleStoreError> {
        self.sessions.change(|s: &mut Vec<Stored>| {
            let before = s.len();
            s.retain(|s| {
                s.session.last_seen >= idle_since && s.session.created_at >= started_before
            });
            Ok(before - s.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_console_files_keep_the_promises() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        crate::store::conformance::console_users(&|| Box::new(ConsoleFiles::new(&path))).await;
        use std::os::unix::fs::PermissionsExt;
        for f in ["console-users.json", "console-sessions.json"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
}
