//! Console users: adding one (argon2id password, a TOTP secret sealed under
//! the console keyring), and signing one in with password and code under a
//! lockout as strict as the portal's: a try is counted before the slow
//! argon2 check, so tries in parallel (from any node) each use one of the
//! `max_failures`, and the one that uses the last locks the user.

use crate::portal::auth::{hash_password, password_matches};
use crate::store::console::{ConsoleStoreError, ConsoleUser, ConsoleUsers};
use crate::store::keyring::{KeyError, Keyring};
use crate::store::tokens::Role;
use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicBool, Ordering};

/// Shortest password a console user may have.
pub const MIN_PASSWORD: usize = 12;

/// The issuer authenticator apps show beside the code.
const ISSUER: &str = "Sealgate";

/// Why a user could not be added or signed in.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name is not usable.
    #[error("user name {0:?}: use 1-64 letters, digits, '.', '_', '-' or '@'")]
    BadName(String),
    /// A domain is not a domain.
    #[error("domain {0:?} is not a domain name")]
    BadDomain(String),
    /// The password is too short.
    #[error("the password must have at least {MIN_PASSWORD} characters")]
    ShortPassword,
    /// Only admins may be limited to domains.
    #[error("--domains limits an admin; archivists and auditors see by role")]
    DomainsNotForRole,
    /// The store failed (or the name is taken).
    #[error(transparent)]
    Store(#[from] ConsoleStoreError),
    /// The TOTP secret could not be opened (another node's key file?).
    #[error("console key file: {0}")]
    Key(#[from] KeyError),
    /// Hashing failed.
    #[error("password hashing: {0}")]
    Hash(String),
}

/// What the new user enrols in their authenticator app, shown once.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The secret, base32, to type in.
    pub secret: String,
    /// The `otpauth://` URI to paste or turn into a QR code.
    pub uri: String,
}

/// Sign-in rules from `[console]`.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Wrong tries in a row that lock.
    pub max_failures: u32,
    /// How long a lock lasts.
    pub lockout: Duration,
}

/// The result of a sign-in attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum SignIn {
    /// Right password and code: the user, as stored.
    Ok(Box<ConsoleUser>),
    /// Wrong name, password or code (which one is not said).
    Wrong,
    /// The user is locked (this try may have locked it).
    Locked,
}

fn name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

/// `domains` in ASCII lower case, each checked.
fn domains_of(domains: &[String]) -> Result<Vec<String>, UserError> {
    domains
        .iter()
        .map(|d| {
            let d = d.trim().trim_end_matches('.');
            let a = crate::model::address::ascii_domain(d);
            let labels_ok = a.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
            if labels_ok && a.contains('.') {
                Ok(a)
            } else {
                Err(UserError::BadDomain(d.to_string()))
            }
        })
        .collect()
}

/// Keyring associated data binding a sealed secret to its user.
fn aad(name: &str) -> Vec<u8> {
    format!("console-totp\n{name}").into_bytes()
}

/// Checks a new user's name, role, domains and password (so a refused
/// one is not audited as added); the domains as stored.
pub fn check_new(
    name: &str,
    role: Role,
    domains: &[String],
    password: &str,
) -> Result<Vec<String>, UserError> {
    if !name_ok(name) {
        return Err(UserError::BadName(name.to_string()));
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(UserError::ShortPassword);
    }
    if !domains.is_empty() && role != Role::Admin {
        return Err(UserError::DomainsNotForRole);
    }
    domains_of(domains)
}

/// Adds user `name` with `role` (an admin limited to `domains` when any
/// are given) and `password`; returns the TOTP enrolment to show once.
pub async fn add(
    store: &dyn ConsoleUsers,
    keys: &Keyring,
    name: &str,
    role: Role,
    domains: &[String],
    password: &str,
) -> Result<Enrolment, UserError> {
    let domains = check_new(name, role, domains, password)?;
    let password = password.to_string();
    let phc = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| UserError::Hash(e.to_string()))?
        .map_err(|e| UserError::Hash(e.to_string()))?;
    let secret = super::totp::new_secret();
    store
        .insert(ConsoleUser {
            name: name.to_string(),
            role,
            domains,
            password: phc,
            totp: Some(hex::encode(keys.seal(&aad(name), &secret))),
            totp_step: None,
            failures: 0,
            locked_until: None,
            created_at: Utc::now(),
        })
        .await?;
    Ok(Enrolment {
        secret: super::totp::secret_base32(&secret),
        uri: super::totp::otpauth_uri(ISSUER, name, &secret),
    })
}

/// The user's TOTP secret, opened.
fn secret(keys: &Keyring, user: &ConsoleUser) -> Result<Option<Vec<u8>>, UserError> {
    let Some(sealed) = &user.totp else {
        return Ok(None);
    };
    let sealed = hex::decode(sealed).map_err(|_| KeyError::Corrupt)?;
    Ok(Some(keys.open(&aad(&user.name), &sealed)?))
}

fn locked(u: &ConsoleUser, now: DateTime<Utc>) -> bool {
    u.locked_until.is_some_and(|t| t > now)
}

/// A PHC string to check against for unknown names, so they take as long
/// as known ones (the name is not revealed by timing).
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never matches").unwrap_or_default())
}

/// Checks `name`'s `password` and TOTP `code`. The try is counted (and the
/// user locked at `max_failures`) before the slow check; only a right
/// password and a code not used before reset the count.
pub async fn sign_in(
    store: &dyn ConsoleUsers,
    keys: &Keyring,
    rules: &Rules,
    name: &str,
    password: &str,
    code: &str,
) -> Result<SignIn, UserError> {
    let now = Utc::now();
    let was_locked = AtomicBool::new(false);
    let counted = match store
        .update(name, &|u| {
            if locked(u, now) {
                was_locked.store(true, Ordering::SeqCst);
                return;
            }
            u.failures += 1;
            if u.failures >= rules.max_failures {
                u.failures = 0;
                u.locked_until = Some(now + rules.lockout);
            }
        })
        .await
    {
        Ok(u) => Some(u),
        Err(ConsoleStoreError::Missing(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if was_locked.load(Ordering::SeqCst) {
        return Ok(SignIn::Locked);
    }
    let phc = counted.as_ref().map(|u| u.password.clone());
    let given = password.to_string();
    let good = tokio::task::spawn_blocking(move || {
        password_matches(phc.as_deref().unwrap_or_else(|| decoy()), &given)
    })
    .await
    .map_err(|e| UserError::Hash(e.to_string()))?;
    let Some(user) = counted else {
        return Ok(SignIn::Wrong);
    };
    let step = match secret(keys, &user)? {
        Some(s) => super::totp::check(&s, code, now, user.totp_step),
        None => None,
    };
    let (true, Some(step)) = (good, step) else {
        return Ok(if locked(&user, now) {
            SignIn::Locked
        } else {
            SignIn::Wrong
        });
    };
    // The code is taken once: a second sign-in with it, even in parallel,
    // finds the step used.
    let replayed = AtomicBool::new(false);
    let user = store
        .update(name, &|u| {
            if u.totp_step.is_some_and(|s| s >= step) {
                replayed.store(true, Ordering::SeqCst);
                return;
            }
            u.totp_step = Some(step);
            u.failures = 0;
            u.locked_until = None;
        })
        .await?;
    if replayed.load(Ordering::SeqCst) {
        return Ok(SignIn::Wrong);
    }
    Ok(SignIn::Ok(Box::new(user)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rocksdb::console::ConsoleFiles;

    fn rules() -> Rules {
        Rules {
            max_failures: 5,
            lockout: Duration::minutes(15),
        }
    }

    fn setup() -> (tempfile::TempDir, ConsoleFiles, Keyring) {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::load_or_create(&dir.path().join("console.keys")).unwrap();
        let files = ConsoleFiles::new(dir.path());
        (dir, files, keys)
    }

    fn code(e: &Enrolment, at: DateTime<Utc>) -> String {
        let secret = data_encoding::BASE32_NOPAD
            .decode(e.secret.as_bytes())
            .unwrap();
        super::super::totp::code_at(&secret, super::super::totp::step_at(at))
    }

    #[tokio::test]
    async fn users_are_checked_when_added() {
        let (_d, s, k) = setup();
        let pw = "correct horse battery";
        assert!(matches!(
            add(&s, &k, "bad name", Role::Admin, &[], pw).await,
            Err(UserError::BadName(_))
        ));
        assert!(matches!(
            add(&s, &k, "ann", Role::Admin, &[], "short").await,
            Err(UserError::ShortPassword)
        ));
        assert!(matches!(
            add(&s, &k, "ann", Role::Auditor, &["a.test".into()], pw).await,
            Err(UserError::DomainsNotForRole)
        ));
        let e = add(&s, &k, "ann", Role::Admin, &["Hospital.TEST".into()], pw)
            .await
            .unwrap();
        assert!(e.uri.starts_with("otpauth://totp/Sealgate:ann?secret="));
        let u = s.get("ann").await.unwrap().unwrap();
        assert_eq!(u.domains, ["hospital.test"]);
        assert!(u.password.starts_with("$argon2id$"));
        let stored = u.totp.unwrap();
        assert!(!stored.contains(&e.secret), "the secret is sealed");
        assert!(matches!(
            add(&s, &k, "ann", Role::Admin, &[], pw).await,
            Err(UserError::Store(ConsoleStoreError::Exists(_)))
        ));
    }

    #[tokio::test]
    async fn password_and_code_sign_in_once_and_wrong_tries_lock() {
        let (_d, s, k) = setup();
        let r = rules();
        let pw = "correct horse battery";
        let e = add(&s, &k, "ann", Role::Admin, &[], pw).await.unwrap();
        let now = Utc::now();
        assert_eq!(
            sign_in(&s, &k, &r, "ann", "wrong password", &code(&e, now))
                .await
                .unwrap(),
            SignIn::Wrong
        );
        let right = code(&e, now);
        let wrong: String = right
            .chars()
            .map(|c| if c == '9' { '0' } else { (c as u8 + 1) as char })
            .collect();
        assert_eq!(
            sign_in(&s, &k, &r, "ann", pw, &wrong).await.unwrap(),
            SignIn::Wrong,
            "a wrong code alone fails"
        );
        let c = code(&e, Utc::now());
        let SignIn::Ok(u) = sign_in(&s, &k, &r, "ann", pw, &c).await.unwrap() else {
            panic!("the right password and code are refused")
        };
        assert_eq!(u.failures, 0, "a sign-in resets the count");
        assert_eq!(
            sign_in(&s, &k, &r, "ann", pw, &c).await.unwrap(),
            SignIn::Wrong,
            "a code is taken once"
        );
        assert_eq!(
            sign_in(&s, &k, &r, "nobody", pw, &c).await.unwrap(),
            SignIn::Wrong
        );
        for _ in 0..3 {
            assert_eq!(
                sign_in(&s, &k, &r, "ann", "guess guess guess", &c)
                    .await
                    .unwrap(),
                SignIn::Wrong
            );
        }
        // The fifth wrong try in a row (the replayed code was the first) locks.
        assert_eq!(
            sign_in(&s, &k, &r, "ann", "guess guess guess", &c)
                .await
                .unwrap(),
            SignIn::Locked
        );
        let later = code(&e, Utc::now() + Duration::seconds(30));
        assert_eq!(
            sign_in(&s, &k, &r, "ann", pw, &later).await.unwrap(),
            SignIn::Locked,
            "the lock holds against the right password and code"
        );
    }
}
