//! Files that hold secrets (tokens, keys): read only when no one but their
//! owner, the user Sealgate runs as, can read or change them, and created
//! that way.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a secret file was not used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Group or others may read or write it.
    #[error("{path}: mode {mode:04o} lets others read or change it; chmod 600 it")]
    Mode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A private key others may read, or its group change.
    #[error("{path}: mode {mode:04o} lets others read or change this private key; chmod 600 (or 640 for a root-owned key shared through a group) it")]
    KeyMode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Another user owns it.
    #[error("{path}: owned by uid {owner}, not by uid {us} that Sealgate runs as")]
    Owner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        us: u32,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretFileError + '_ {
    move |source| SecretFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Who besides Sealgate's user may touch a file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sharing {
    /// Nobody: a file Sealgate made (0600, ours).
    None,
    /// Its group may read it, and root may own it: a key an admin provides.
    GroupRead,
}

fn check_as(path: &Path, sharing: Sharing) -> Result<(), SecretFileError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let mode = meta.mode() & 0o7777;
    let (forbidden, root_owned_ok) = match sharing {
        Sharing::None => (0o077, false),
        Sharing::GroupRead => (0o027, true),
    };
    if mode & forbidden != 0 {
        let path = path.to_path_buf();
        return Err(match sharing {
            Sharing::None => SecretFileError::Mode { path, mode },
            Sharing::GroupRead => SecretFileError::KeyMode { path, mode },
        });
    }
    let us = rustix::process::geteuid().as_raw();
    // root may use files of a service account it manages.
    if meta.uid() != us && us != 0 && !(root_owned_ok && meta.uid() == 0) {
        return Err(SecretFileError::Owner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            us,
        });
    }
    Ok(())
}

/// Checks that only we own and can use `path`.
pub fn check(path: &Path) -> Result<(), SecretFileError> {
    check_as(path, Sharing::None)
}

/// Checks a private key file Sealgate reads but may not have made (TLS,
/// DKIM, signing keys): no access for others and no group write, owned by
/// us or by root. Group read stays allowed for the common set-up where
/// root owns the key and Sealgate's user is in its group (Debian's
/// `ssl-cert`, mode 0640).
pub fn check_key(path: &Path) -> Result<(), SecretFileError> {
    check_as(path, Sharing::GroupRead)
}

/// The contents of `path`, trimmed, after [`check`].
pub fn read(path: &Path) -> Result<String, SecretFileError> {
    check(path)?;
    Ok(std::fs::read_to_string(path)
        .map_err(io(path))?
        .trim()
        .to_string())
}

/// The token in `path`, made first (32 random bytes, hex, mode 0600) when
/// the file does not exist yet.
pub fn ensure_token(path: &Path) -> Result<String, SecretFileError> {
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(path))?;
        }
        let token = hex::encode(rand::random::<[u8; 32]>());
        crate::durable_file::replace(path, format!("{token}\n").as_bytes(), 0o600)
            .map_err(io(path))?;
    }
    read(path)
}

/// Creates `dir` (and its parents) and makes it 0700, also when it exists:
/// for directories holding message text (the search index, exports).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_files_others_can_read_are_refused_group_read_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        std::fs::write(&key, "x").unwrap();
        for (mode, ok) in [
            (0o600, true),
            (0o640, true),
            (0o644, false),
            (0o660, false),
            (0o604, false),
        ] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            let r = check_key(&key);
            assert_eq!(r.is_ok(), ok, "{mode:o}: {r:?}");
            if let Err(e) = r {
                assert!(e.to_string().contains("chmod 600"), "{e}");
            }
        }
    }

    #[test]
    fn private_dirs_are_0700_made_or_found() {
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("a/b");
        private_dir(&made).unwrap();
        let found = dir.path().join("open");
        std::fs::create_dir(&found).unwrap();
        std::fs::set_permissions(&found, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&found).unwrap();
        for d in [made, found] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
    }

    #[test]
    fn tokens_are_made_private_and_loose_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub/admin.token");
        let t = ensure_token(&f).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(ensure_token(&f).unwrap(), t, "made once");
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read(&f).unwrap_err().to_string();
        assert!(e.contains("mode 0644"), "{e}");
    }
}
