//! Who may read: a recipient proves their address with a one-time code
//! sent to it, then (if policy allows) sets a password, kept as an
//! argon2id hash. Wrong codes and passwords count towards a lockout per
//! address. A session is a random cookie whose SHA-256 names the stored
//! session; forms carry a CSRF token bound to the session or, before
//! sign-in, to a random cookie.
//!
//! Each address's account is read and written under its own lock (the
//! store's [`SignInRecords::lock`]), and a password try is counted before the slow
//! argon2 check: parallel tries cannot get more than `max_failures`
//! guesses per lockout, nor overwrite the lock.

use crate::model::escrow::SignInRecord;
use crate::store::escrow::{token_hash, EscrowError, SignInRecords};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// Shortest password a recipient may set.
pub const MIN_PASSWORD: usize = 12;
/// Most codes sent to one address per hour.
const CODES_PER_HOUR: usize = 5;
/// Sessions end after this long even while in use.
const SESSION_MAX: Duration = Duration::hours(12);
/// A password is changed only within this long of signing in (a code or
/// the old password), not by whoever finds a session left open.
pub const REAUTH_WINDOW: Duration = Duration::minutes(10);

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
    /// When replies were sent in the last 24 hours.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    replies_sent: Vec<DateTime<Utc>>,
    /// Replies sent to each message (escrow entry id), ever.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    replies_to: BTreeMap<String, u32>,
}

/// Why a reply may not be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyQuota {
    /// It may: the reply is counted.
    Granted,
    /// The account sent its replies for the last 24 hours.
    DayUsed,
    /// The message has had its replies.
    MessageUsed,
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

fn decode<T: serde::de::DeserializeOwned>(what: &str, json: &[u8]) -> Result<T, EscrowError> {
    serde_json::from_slice(json).map_err(|e| EscrowError::Corrupt(what.into(), e.to_string()))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("a sign-in record serialises")
}

/// Reads `address`'s account (a new one if none).
pub async fn account(records: &dyn SignInRecords, address: &str) -> Result<Account, EscrowError> {
    match records.get(SignInRecord::Account, &key(address)).await? {
        Some(json) => decode("account", &json),
        None => Ok(Account::default()),
    }
}

async fn save(records: &dyn SignInRecords, address: &str, a: &Account) -> Result<(), EscrowError> {
    records
        .put(SignInRecord::Account, &key(address), encode(a))
        .await
}

async fn get_session(records: &dyn SignInRecords, k: &str) -> Result<Option<Session>, EscrowError> {
    match records.get(SignInRecord::Session, k).await? {
        Some(json) => decode("session", &json).map(Some),
        None => Ok(None),
    }
}

fn locked(a: &Account, now: DateTime<Utc>) -> bool {
    a.locked_until.is_some_and(|t| t > now)
}

/// `address`'s account, or `None` while it is locked.
async fn unlocked(
    records: &dyn SignInRecords,
    address: &str,
    now: DateTime<Utc>,
) -> Result<Option<Account>, EscrowError> {
    let a = account(records, address).await?;
    Ok((!locked(&a, now)).then_some(a))
}

/// A new 8-digit code for `address`, unless it is locked or asked too often.
pub async fn request_code(
    records: &dyn SignInRecords,
    address: &str,
    rules: &Rules,
) -> Result<CodeRequest, EscrowError> {
    let _held = records.lock(address).await?;
    let now = Utc::now();
    let mut a = account(records, address).await?;
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
    save(records, address, &a).await?;
    Ok(CodeRequest::Send(code))
}

/// Counts a wrong try; returns the attempt's result.
async fn wrong(
    records: &dyn SignInRecords,
    address: &str,
    mut a: Account,
    rules: &Rules,
) -> Result<Attempt, EscrowError> {
    a.failures += 1;
    if a.failures >= rules.max_failures {
        a.failures = 0;
        a.code = None;
        a.locked_until = Some(Utc::now() + rules.lockout);
        save(records, address, &a).await?;
        return Ok(Attempt::Locked);
    }
    let left = rules.max_failures - a.failures;
    save(records, address, &a).await?;
    Ok(Attempt::Wrong { left })
}

/// A new session for `address`; returns its cookie value.
async fn start_session(records: &dyn SignInRecords, address: &str) -> Result<String, EscrowError> {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let now = Utc::now();
    let s = Session {
        address: key(address),
        created_at: now,
        last_seen: now,
    };
    records
        .put(SignInRecord::Session, &token_hash(&token), encode(&s))
        .await?;
    Ok(token)
}

/// Checks a one-time code; the right one (once) starts a session.
pub async fn check_code(
    records: &dyn SignInRecords,
    address: &str,
    code: &str,
    rules: &Rules,
) -> Result<Attempt, EscrowError> {
    let _held = records.lock(address).await?;
    let now = Utc::now();
    let Some(mut a) = unlocked(records, address, now).await? else {
        return Ok(Attempt::Locked);
    };
    let Some(pending) = a.code.clone().filter(|c| c.expires_at > now) else {
        return Ok(Attempt::NoCode);
    };
    let code: String = code.chars().filter(|c| c.is_ascii_digit()).collect();
    let given = code_hash(&key(address), &code);
    if !bool::from(given.as_bytes().ct_eq(pending.hash.as_bytes())) {
        return wrong(records, address, a, rules).await;
    }
    a.code = None;
    a.failures = 0;
    save(records, address, &a).await?;
    start_session(records, address).await.map(Attempt::Ok)
}

/// Checks a password (argon2id, slow on purpose: run on the blocking
/// pool). The try is counted first, so tries in parallel each use one of
/// the `max_failures`; the one that uses the last locks the address at once,
/// and only a right password lifts that.
pub async fn check_password(
    records: &dyn SignInRecords,
    address: &str,
    password: &str,
    rules: &Rules,
) -> Result<Attempt, EscrowError> {
    let (phc, n) = {
        let _held = records.lock(address).await?;
        let now = Utc::now();
        let Some(mut a) = unlocked(records, address, now).await? else {
            return Ok(Attempt::Locked);
        };
        a.failures += 1;
        let n = a.failures;
        if n >= rules.max_failures {
            a.failures = 0;
            a.code = None;
            a.locked_until = Some(now + rules.lockout);
        }
        save(records, address, &a).await?;
        (a.password, n)
    };
    let password = password.to_string();
    let good = tokio::task::spawn_blocking(move || {
        phc.as_deref()
            .is_some_and(|phc| password_matches(phc, &password))
    })
    .await
    .map_err(|e| EscrowError::Corrupt("password check".into(), e.to_string()))?;
    if !good {
        return Ok(if n >= rules.max_failures {
            Attempt::Locked
        } else {
            Attempt::Wrong {
                left: rules.max_failures - n,
            }
        });
    }
    let _held = records.lock(address).await?;
    let mut a = account(records, address).await?;
    a.failures = 0;
    a.locked_until = None;
    save(records, address, &a).await?;
    start_session(records, address).await.map(Attempt::Ok)
}

/// The argon2id PHC string of `password` with a random salt. Slow on
/// purpose (~19 MiB, tens of milliseconds): call it on the blocking pool.
/// The portal's recipients and the console's users share it.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}

/// True when `password` is the one `phc` was made from (false for a
/// damaged PHC string). Slow: call it on the blocking pool.
pub fn password_matches(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Counts one reply from `address` to `message` against `limits` (per
/// 24 hours, per message); not counted when either is used up.
pub async fn take_reply(
    records: &dyn SignInRecords,
    address: &str,
    message: &str,
    limits: (u32, u32),
) -> Result<ReplyQuota, EscrowError> {
    let (per_day, per_message) = limits;
    let _held = records.lock(address).await?;
    let now = Utc::now();
    let mut a = account(records, address).await?;
    a.replies_sent.retain(|t| now - *t < Duration::hours(24));
    if a.replies_sent.len() >= per_day as usize {
        return Ok(ReplyQuota::DayUsed);
    }
    let to_this = a.replies_to.entry(message.to_string()).or_default();
    if *to_this >= per_message {
        return Ok(ReplyQuota::MessageUsed);
    }
    *to_this += 1;
    a.replies_sent.push(now);
    save(records, address, &a).await?;
    Ok(ReplyQuota::Granted)
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

/// Sets `address`'s password (argon2id with a random salt, hashed on the
/// blocking pool).
pub async fn set_password(
    records: &dyn SignInRecords,
    address: &str,
    password: &str,
) -> Result<(), EscrowError> {
    let password = password.to_string();
    let phc = tokio::task::spawn_blocking(move || {
        hash_password(&password).map_err(|e| EscrowError::Corrupt("password".into(), e.to_string()))
    })
    .await
    .map_err(|e| EscrowError::Corrupt("password".into(), e.to_string()))??;
    let _held = records.lock(address).await?;
    let mut a = account(records, address).await?;
    a.password = Some(phc);
    save(records, address, &a).await
}

/// The session a cookie value names, if it is still valid; using it
/// extends it.
pub async fn session(
    records: &dyn SignInRecords,
    cookie: &str,
    rules: &Rules,
) -> Result<Option<Session>, EscrowError> {
    let k = token_hash(cookie);
    let Some(mut s) = get_session(records, &k).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    if now - s.last_seen > rules.session_idle || now - s.created_at > SESSION_MAX {
        records.delete(SignInRecord::Session, &k).await?;
        return Ok(None);
    }
    if now - s.last_seen > Duration::seconds(60) {
        s.last_seen = now;
        records.put(SignInRecord::Session, &k, encode(&s)).await?;
    }
    Ok(Some(s))
}

/// Whether `s` may change its address's password now: an address without
/// one may set it; changing one needs a sign-in within [`REAUTH_WINDOW`].
pub async fn may_change_password(
    records: &dyn SignInRecords,
    s: &Session,
) -> Result<bool, EscrowError> {
    let has = account(records, &s.address).await?.has_password();
    Ok(!has || Utc::now() - s.created_at <= REAUTH_WINDOW)
}

/// Ends every session of `address` but the one `keep` names (after a
/// password change, whoever else was signed in is signed out).
pub async fn end_other_sessions(
    records: &dyn SignInRecords,
    address: &str,
    keep: &str,
) -> Result<usize, EscrowError> {
    let keep = token_hash(keep);
    let address = key(address);
    let mut n = 0;
    for k in records.keys(SignInRecord::Session).await? {
        if k == keep {
            continue;
        }
        if let Ok(Some(s)) = get_session(records, &k).await {
            if s.address == address {
                records.delete(SignInRecord::Session, &k).await?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Ends a session.
pub async fn end_session(records: &dyn SignInRecords, cookie: &str) -> Result<(), EscrowError> {
    records
        .delete(SignInRecord::Session, &token_hash(cookie))
        .await
}

/// Removes sessions past their time; returns how many.
pub async fn sweep_sessions(
    records: &dyn SignInRecords,
    rules: &Rules,
) -> Result<usize, EscrowError> {
    let now = Utc::now();
    let mut n = 0;
    for k in records.keys(SignInRecord::Session).await? {
        let stale = match get_session(records, &k).await {
            Ok(Some(s)) => {
                now - s.last_seen > rules.session_idle || now - s.created_at > SESSION_MAX
            }
            _ => true,
        };
        if stale {
            records.delete(SignInRecord::Session, &k).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keyring::Keyring;
    use crate::store::rocksdb::escrow::EscrowDb;

    fn rules() -> Rules {
        Rules {
            code_ttl: Duration::minutes(10),
            max_failures: 10,
            lockout: Duration::hours(1),
            session_idle: Duration::minutes(30),
        }
    }

    fn store(dir: &std::path::Path) -> EscrowDb {
        let keys = Keyring::load_or_create(&dir.join("k")).unwrap();
        EscrowDb::open(&dir.join("e"), keys).unwrap()
    }

    #[tokio::test]
    async fn a_code_works_once_and_ten_wrong_tries_lock_even_the_right_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = store(dir.path());
        let r = rules();
        let CodeRequest::Send(code) = request_code(&e, "Pat@X.test", &r).await.unwrap() else {
            panic!("no code")
        };
        assert_eq!(code.len(), 8);
        let Attempt::Ok(cookie) = check_code(&e, "pat@x.test", &code, &r).await.unwrap() else {
            panic!("right code refused")
        };
        assert_eq!(
            session(&e, &cookie, &r).await.unwrap().unwrap().address,
            "pat@x.test"
        );
        assert_eq!(
            check_code(&e, "pat@x.test", &code, &r).await.unwrap(),
            Attempt::NoCode,
            "used once"
        );
        let CodeRequest::Send(code) = request_code(&e, "pat@x.test", &r).await.unwrap() else {
            panic!("no second code")
        };
        let wrong_code = if code == "00000000" {
            "00000001"
        } else {
            "00000000"
        };
        for i in 1..10 {
            assert_eq!(
                check_code(&e, "pat@x.test", wrong_code, &r).await.unwrap(),
                Attempt::Wrong { left: 10 - i }
            );
        }
        assert_eq!(
            check_code(&e, "pat@x.test", wrong_code, &r).await.unwrap(),
            Attempt::Locked
        );
        assert_eq!(
            check_code(&e, "pat@x.test", &code, &r).await.unwrap(),
            Attempt::Locked
        );
        assert_eq!(
            request_code(&e, "pat@x.test", &r).await.unwrap(),
            CodeRequest::Locked
        );
        // Another address is not affected.
        assert!(matches!(
            request_code(&e, "other@x.test", &r).await.unwrap(),
            CodeRequest::Send(_)
        ));
    }

    #[tokio::test]
    async fn passwords_are_argon2id_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let e = store(dir.path());
        let r = rules();
        assert!(password_problem("short", "short").is_some());
        assert!(password_problem("long enough pass", "other").is_some());
        set_password(&e, "pat@x.test", "correct horse battery")
            .await
            .unwrap();
        let a = account(&e, "pat@x.test").await.unwrap();
        assert!(a.password.as_deref().unwrap().starts_with("$argon2id$"));
        assert!(matches!(
            check_password(&e, "pat@x.test", "correct horse battery", &r)
                .await
                .unwrap(),
            Attempt::Ok(_)
        ));
        assert_eq!(
            check_password(&e, "pat@x.test", "wrong", &r).await.unwrap(),
            Attempt::Wrong { left: 9 }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_password_tries_get_no_more_than_the_allowed_guesses() {
        let dir = tempfile::tempdir().unwrap();
        let e = store(dir.path());
        let r = rules();
        set_password(&e, "pat@x.test", "correct horse battery")
            .await
            .unwrap();
        let tries: Vec<_> = (0..40)
            .map(|i| {
                let e = e.clone();
                tokio::spawn(async move {
                    check_password(&e, "pat@x.test", &format!("guess {i}"), &rules())
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut results: Vec<Attempt> = Vec::new();
        for t in tries {
            results.push(t.await.unwrap());
        }
        let wrong = results
            .iter()
            .filter(|a| matches!(a, Attempt::Wrong { .. }))
            .count();
        assert_eq!(
            wrong, 9,
            "nine tries say wrong, the tenth locks: {results:?}"
        );
        assert!(account(&e, "pat@x.test")
            .await
            .unwrap()
            .locked_until
            .is_some());
        assert_eq!(
            check_password(&e, "pat@x.test", "correct horse battery", &r)
                .await
                .unwrap(),
            Attempt::Locked,
            "the lock holds against the right password"
        );
        assert_eq!(e.account_locks(), 0, "no lock entries left behind");
    }

    #[tokio::test]
    async fn a_password_change_needs_a_fresh_sign_in_and_ends_other_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let e = store(dir.path());
        let r = rules();
        let fresh = Session {
            address: "pat@x.test".into(),
            created_at: Utc::now(),
            last_seen: Utc::now(),
        };
        assert!(
            may_change_password(&e, &fresh).await.unwrap(),
            "no password yet"
        );
        set_password(&e, "pat@x.test", "correct horse battery")
            .await
            .unwrap();
        let old = Session {
            created_at: Utc::now() - Duration::minutes(11),
            ..fresh.clone()
        };
        assert!(may_change_password(&e, &fresh).await.unwrap());
        assert!(!may_change_password(&e, &old).await.unwrap());
        let Attempt::Ok(a) = check_password(&e, "pat@x.test", "correct horse battery", &r)
            .await
            .unwrap()
        else {
            panic!()
        };
        let Attempt::Ok(b) = check_password(&e, "pat@x.test", "correct horse battery", &r)
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(end_other_sessions(&e, "pat@x.test", &a).await.unwrap(), 1);
        assert!(session(&e, &a, &r).await.unwrap().is_some());
        assert!(session(&e, &b, &r).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn replies_are_counted_per_day_and_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let e = store(dir.path());
        let take = |who: &'static str, msg: &'static str| {
            let e = e.clone();
            async move { take_reply(&e, who, msg, (3, 2)).await.unwrap() }
        };
        assert_eq!(take("pat@x.test", "m1").await, ReplyQuota::Granted);
        assert_eq!(take("pat@x.test", "m1").await, ReplyQuota::Granted);
        assert_eq!(take("pat@x.test", "m1").await, ReplyQuota::MessageUsed);
        assert_eq!(take("pat@x.test", "m2").await, ReplyQuota::Granted);
        assert_eq!(take("PAT@x.test", "m3").await, ReplyQuota::DayUsed);
        assert_eq!(take("other@x.test", "m1").await, ReplyQuota::Granted);
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
