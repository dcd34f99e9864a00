//! Who may read: a recipient proves their address with a one-time code
//! sent to it, then (if policy allows) sets a password, kept as an
//! argon2id hash. Wrong codes and passwords count towards a lockout per
//! address. A session is a random cookie whose SHA-256 names the stored
//! session; forms carry a CSRF token bound to the session or, before
//! sign-in, to a random cookie.

use crate::seal::escrow::{token_hash, Escrow, EscrowError, Record};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Shortest password a recipient may set.
pub const MIN_PASSWORD: usize = 12;
/// Most codes sent to one address per hour.
const CODES_PER_HOUR: usize = 5;
/// Sessions end after this long even while in use.
const SESSION_MAX: Duration = Duration::hours(12);

/// A pending one-time code (its hash only).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingCode {
    hash: String,
    expires_at: DateTime<Utc>,
}

/// A recipient's sign-in state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Account {
    /// argon2id PHC string, once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    /// Wrong codes or passwords in a row.
    #[serde(default)]
    failures: u32,
    /// Locked until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    locked_until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<PendingCode>,
    /// When codes were sent in the last hour.
    #[serde(default)]
    codes_sent: Vec<DateTime<Utc>>,
}

impl Account {
    /// True once the recipient has set a password.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }
}

/// A signed-in session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The recipient address it proves.
    pub address: String,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it was last used.
    pub last_seen: DateTime<Utc>,
}

/// The result of a sign-in attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Right: a session was made (its cookie value).
    Ok(String),
    /// Wrong; `left` more tries before the address locks.
    Wrong {
        /// Tries left.
        left: u32,
    },
    /// The address is locked (this attempt may have locked it).
    Locked,
    /// No code is pending or it expired.
    NoCode,
}

/// What happened when a code was asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeRequest {
    /// Send this code.
    Send(String),
    /// Too many codes lately; none sent.
    TooMany,
    /// The address is locked.
    Locked,
}

/// Sign-in rules from `[portal]`.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// How long a code is valid.
    pub code_ttl: Duration,
    /// Wrong tries in a row that lock.
    pub max_failures: u32,
    /// How long a lock lasts.
    pub lockout: Duration,
    /// Session idle time.
    pub session_idle: Duration,
}

fn code_hash(address: &str, code: &str) -> String {
    token_hash(&format!("{address}\n{code}"))
}

/// The account key: addresses compare case-insensitively.
fn key(address: &str) -> String {
    address.to_ascii_lowercase()
}

/// Reads `address`'s account (a new one if none).
pub fn account(escrow: &Escrow, address: &str) -> Result<Account, EscrowError> {
    Ok(escrow
        .get_record(Record::Account, &key(address))?
        .unwrap_or_default())
}

fn save(escrow: &Escrow, address: &str, a: &Account) -> Result<(), EscrowError> {
    escrow.put_record(Record::Account, &key(address), a)
}

fn locked(a: &Account, now: DateTime<Utc>) -> bool {
    a.locked_until.is_some_and(|t| t > now)
}

/// `address`'s account, or `None` while it is locked.
fn unlocked(
    escrow: &Escrow,
    address: &str,
    now: DateTime<Utc>,
) -> Result<Option<Account>, EscrowError> {
    let a = account(escrow, address)?;
    Ok((!locked(&a, now)).then_some(a))
}

/// A new 8-digit code for `address`, unless it is locked or asked too often.
pub fn request_code(
    escrow: &Escrow,
    address: &str,
    rules: &Rules,
) -> Result<CodeRequest, EscrowError> {
    let now = Utc::now();
    let mut a = account(escrow, address)?;
    if locked(&a, now) {
        return Ok(CodeRequest::Locked);
    }
    a.codes_sent.retain(|t| now - *t < Duration::hours(1));
    if a.codes_sent.len() >= CODES_PER_HOUR {
        return Ok(CodeRequest::TooMany);
    }
    // Uniform over 00000000..99999999 (rejection keeps it unbiased).
    let code = loop {
        let n: u32 = rand::random();
        if n < 4_200_000_000 {
            break format!("{:08}", n % 100_000_000);
        }
    };
    a.code = Some(PendingCode {
        hash: code_hash(&key(address), &code),
        expires_at: now + rules.code_ttl,
    });
    a.codes_sent.push(now);
    save(escrow, address, &a)?;
    Ok(CodeRequest::Send(code))
}

/// Counts a wrong try; returns the attempt's result.
fn wrong(
    escrow: &Escrow,
    address: &str,
    mut a: Account,
    rules: &Rules,
) -> Result<Attempt, EscrowError> {
    a.failures += 1;
    if a.failures >= rules.max_failures {
        a.failures = 0;
        a.code = None;
        a.locked_until = Some(Utc::now() + rules.lockout);
        save(escrow, address, &a)?;
        return Ok(Attempt::Locked);
    }
    let left = rules.max_failures - a.failures;
    save(escrow, address, &a)?;
    Ok(Attempt::Wrong { left })
}

/// A new session for `address`; returns its cookie value.
fn start_session(escrow: &Escrow, address: &str) -> Result<String, EscrowError> {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let now = Utc::now();
    escrow.put_record(
        Record::Session,
        &token_hash(&token),
        &Session {
            address: key(address),
            created_at: now,
            last_seen: now,
        },
    )?;
    Ok(token)
}

/// Checks a one-time code; the right one (once) starts a session.
pub fn check_code(
    escrow: &Escrow,
    address: &str,
    code: &str,
    rules: &Rules,
) -> Result<Attempt, EscrowError> {
    let now = Utc::now();
    let Some(mut a) = unlocked(escrow, address, now)? else {
        return Ok(Attempt::Locked);
    };
    let Some(pending) = a.code.clone().filter(|c| c.expires_at > now) else {
        return Ok(Attempt::NoCode);
    };
    let code: String = code.chars().filter(|c| c.is_ascii_digit()).collect();
    if !constant_time_eq(&code_hash(&key(address), &code), &pending.hash) {
        return wrong(escrow, address, a, rules);
    }
    a.code = None;
    a.failures = 0;
    save(escrow, address, &a)?;
    start_session(escrow, address).map(Attempt::Ok)
}

/// Checks a password (argon2id; slow on purpose: call off the async workers).
pub fn check_password(
    escrow: &Escrow,
    address: &str,
    password: &str,
    rules: &Rules,
) -> Result<Attempt, EscrowError> {
    let now = Utc::now();
    let Some(mut a) = unlocked(escrow, address, now)? else {
        return Ok(Attempt::Locked);
    };
    let good = a.password.as_deref().is_some_and(|phc| {
        PasswordHash::new(phc)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    });
    if !good {
        return wrong(escrow, address, a, rules);
    }
    a.failures = 0;
    save(escrow, address, &a)?;
    start_session(escrow, address).map(Attempt::Ok)
}

/// Why a new password is refused.
pub fn password_problem(password: &str, confirm: &str) -> Option<String> {
    if password != confirm {
        return Some("The two passwords are not the same.".into());
    }
    if password.chars().count() < MIN_PASSWORD {
        return Some(format!(
            "Choose a password of at least {MIN_PASSWORD} characters."
        ));
    }
    None
}

/// Sets `address`'s password (argon2id with a random salt).
pub fn set_password(escrow: &Escrow, address: &str, password: &str) -> Result<(), EscrowError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes encode");
    let phc = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| EscrowError::Corrupt("password".into(), e.to_string()))?
        .to_string();
    let mut a = account(escrow, address)?;
    a.password = Some(phc);
    save(escrow, address, &a)
}

/// The session a cookie value names, if it is still valid; using it
/// extends it.
pub fn session(
    escrow: &Escrow,
    cookie: &str,
    rules: &Rules,
) -> Result<Option<Session>, EscrowError> {
    let k = token_hash(cookie);
    let Some(mut s) = escrow.get_record::<Session>(Record::Session, &k)? else {
        return Ok(None);
    };
    let now = Utc::now();
    if now - s.last_seen > rules.session_idle || now - s.created_at > SESSION_MAX {
        escrow.delete_record(Record::Session, &k)?;
        return Ok(None);
    }
    if now - s.last_seen > Duration::seconds(60) {
        s.last_seen = now;
        escrow.put_record(Record::Session, &k, &s)?;
    }
    Ok(Some(s))
}

/// Ends a session.
pub fn end_session(escrow: &Escrow, cookie: &str) -> Result<(), EscrowError> {
    escrow.delete_record(Record::Session, &token_hash(cookie))
}

/// Removes sessions past their time; returns how many.
pub fn sweep_sessions(escrow: &Escrow, rules: &Rules) -> Result<usize, EscrowError> {
    let now = Utc::now();
    let mut n = 0;
    for k in escrow.record_keys(Record::Session)? {
        let stale = match escrow.get_record::<Session>(Record::Session, &k) {
            Ok(Some(s)) => {
                now - s.last_seen > rules.session_idle || now - s.created_at > SESSION_MAX
            }
            _ => true,
        };
        if stale {
            escrow.delete_record(Record::Session, &k)?;
            n += 1;
        }
    }
    Ok(n)
}

/// The CSRF token for forms bound to `bound` (a session or pre-sign-in cookie).
pub fn csrf_token(key: &ring::hmac::Key, bound: &str) -> String {
    hex::encode(ring::hmac::sign(key, bound.as_bytes()).as_ref())
}

/// True when `token` is the CSRF token for `bound`.
pub fn csrf_ok(key: &ring::hmac::Key, bound: &str, token: &str) -> bool {
    match hex::decode(token) {
        Ok(tag) => ring::hmac::verify(key, bound.as_bytes(), &tag).is_ok(),
        Err(_) => false,
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::Keyring;

    fn rules() -> Rules {
        Rules {
            code_ttl: Duration::minutes(10),
            max_failures: 10,
            lockout: Duration::hours(1),
            session_idle: Duration::minutes(30),
        }
    }

    fn store(dir: &std::path::Path) -> Escrow {
        let keys = Keyring::load_or_create(&dir.join("k")).unwrap();
        Escrow::open(&dir.join("e"), keys).unwrap()
    }

    #[test]
    fn a_code_works_once_and_ten_wrong_tries_lock_even_the_right_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = store(dir.path());
        let r = rules();
        let CodeRequest::Send(code) = request_code(&e, "Pat@X.test", &r).unwrap() else {
            panic!("no code")
        };
        assert_eq!(code.len(), 8);
        let Attempt::Ok(cookie) = check_code(&e, "pat@x.test", &code, &r).unwrap() else {
            panic!("right code refused")
        };
        assert_eq!(
            session(&e, &cookie, &r).unwrap().unwrap().address,
            "pat@x.test"
        );
        assert_eq!(
            check_code(&e, "pat@x.test", &code, &r).unwrap(),
            Attempt::NoCode,
            "used once"
        );
        let CodeRequest::Send(code) = request_code(&e, "pat@x.test", &r).unwrap() else {
            panic!("no second code")
        };
        let wrong_code = if code == "00000000" {
            "00000001"
        } else {
            "00000000"
        };
        for i in 1..10 {
            assert_eq!(
                check_code(&e, "pat@x.test", wrong_code, &r).unwrap(),
                Attempt::Wrong { left: 10 - i }
            );
        }
        assert_eq!(
            check_code(&e, "pat@x.test", wrong_code, &r).unwrap(),
            Attempt::Locked
        );
        assert_eq!(
            check_code(&e, "pat@x.test", &code, &r).unwrap(),
            Attempt::Locked
        );
        assert_eq!(
            request_code(&e, "pat@x.test", &r).unwrap(),
            CodeRequest::Locked
        );
        // Another address is not affected.
        assert!(matches!(
            request_code(&e, "other@x.test", &r).unwrap(),
            CodeRequest::Send(_)
        ));
    }

    #[test]
    fn passwords_are_argon2id_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let e = store(dir.path());
        let r = rules();
        assert!(password_problem("short", "short").is_some());
        assert!(password_problem("long enough pass", "other").is_some());
        set_password(&e, "pat@x.test", "correct horse battery").unwrap();
        let a = account(&e, "pat@x.test").unwrap();
        assert!(a.password.as_deref().unwrap().starts_with("$argon2id$"));
        assert!(matches!(
            check_password(&e, "pat@x.test", "correct horse battery", &r).unwrap(),
            Attempt::Ok(_)
        ));
        assert_eq!(
            check_password(&e, "pat@x.test", "wrong", &r).unwrap(),
            Attempt::Wrong { left: 9 }
        );
    }

    #[test]
    fn csrf_tokens_are_bound() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k");
        let t = csrf_token(&key, "session-a");
        assert!(csrf_ok(&key, "session-a", &t));
        assert!(!csrf_ok(&key, "session-b", &t));
        assert!(!csrf_ok(&key, "session-a", "zz"));
    }
}
