//! Console sessions: a random cookie (`__Host-`, Secure, HttpOnly,
//! SameSite=Strict) whose SHA-256 names the stored session, so any node
//! sharing the store knows it; the user is read again on every request, so
//! a removed user or changed role counts at once. Forms carry a CSRF token
//! bound to the session cookie, or before sign-in to a form cookie (the
//! portal's HMAC tokens).

use crate::store::console::{ConsoleSession, ConsoleStoreError, ConsoleUser, ConsoleUsers};
use crate::store::escrow::token_hash;
use axum::http::{HeaderMap, HeaderValue};
use chrono::{Duration, Utc};

/// The session cookie (its own name: the portal may share the host).
pub const SESSION_COOKIE: &str = "__Host-sealgate-console";
/// The cookie the sign-in form's CSRF token is bound to.
pub const FORM_COOKIE: &str = "__Host-sealgate-console-form";
/// Sessions end after this long even while in use.
pub const SESSION_MAX: Duration = Duration::hours(12);

/// A `Set-Cookie` value for `name`; `None` clears it.
pub fn set_cookie(name: &str, value: Option<&str>) -> HeaderValue {
    let v = match value {
        Some(v) => format!("{name}={v}; Path=/; Secure; HttpOnly; SameSite=Strict"),
        None => format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    HeaderValue::from_str(&v).expect("a valid cookie")
}

/// A signed-in request: the session's cookie and its user as stored now.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The cookie value (forms' CSRF tokens are bound to it).
    pub cookie: String,
    /// The user.
    pub user: ConsoleUser,
}

/// Starts a session for `user`; returns its cookie value.
pub async fn start(users: &dyn ConsoleUsers, user: &str) -> Result<String, ConsoleStoreError> {
    let cookie = hex::encode(rand::random::<[u8; 32]>());
    let now = Utc::now();
    let s = ConsoleSession {
        user: user.to_string(),
        created_at: now,
        last_seen: now,
    };
    users.put_session(&token_hash(&cookie), &s).await?;
    Ok(cookie)
}

/// The signed-in viewer of a request, if its session is valid (not idle
/// longer than `idle`, not older than [`SESSION_MAX`], its user still
/// there); using it extends it.
pub async fn viewer(
    users: &dyn ConsoleUsers,
    headers: &HeaderMap,
    idle: Duration,
) -> Result<Option<Viewer>, ConsoleStoreError> {
    let Some(cookie) = crate::portal::cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let key = token_hash(&cookie);
    let Some(mut s) = users.session(&key).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    if now - s.last_seen > idle || now - s.created_at > SESSION_MAX {
        users.end_session(&key).await?;
        return Ok(None);
    }
    let Some(user) = users.get(&s.user).await? else {
        users.end_session(&key).await?;
        return Ok(None);
    };
    if now - s.last_seen > Duration::seconds(60) {
        s.last_seen = now;
        users.put_session(&key, &s).await?;
    }
    Ok(Some(Viewer { cookie, user }))
}

/// Ends the session of `cookie`.
pub async fn end(users: &dyn ConsoleUsers, cookie: &str) -> Result<(), ConsoleStoreError> {
    users.end_session(&token_hash(cookie)).await
}

/// The form cookie of the request, or a new one with its `Set-Cookie`.
pub fn form_cookie(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match crate::portal::cookie(headers, FORM_COOKIE) {
        Some(v) => (v, None),
        None => {
            let v = hex::encode(rand::random::<[u8; 32]>());
            let h = set_cookie(FORM_COOKIE, Some(&v));
            (v, Some(h))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rocksdb::console::ConsoleFiles;
    use axum::http::header;

    fn with_cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{SESSION_COOKIE}={v}")).unwrap(),
        );
        h
    }

    #[tokio::test]
    async fn sessions_need_their_cookie_a_live_user_and_recent_use() {
        let dir = tempfile::tempdir().unwrap();
        let users = ConsoleFiles::new(dir.path());
        let mut u = crate::store::conformance::console_user_for_tests("ann");
        u.domains = vec!["a.test".into()];
        users.insert(u).await.unwrap();
        let idle = Duration::minutes(30);
        let cookie = start(&users, "ann").await.unwrap();
        let v = viewer(&users, &with_cookie(&cookie), idle).await.unwrap();
        assert_eq!(v.unwrap().user.domains, ["a.test"]);
        let forged = hex::encode([7u8; 32]);
        assert!(viewer(&users, &with_cookie(&forged), idle)
            .await
            .unwrap()
            .is_none());
        assert!(viewer(&users, &HeaderMap::new(), idle)
            .await
            .unwrap()
            .is_none());
        // Idle too long: refused and gone.
        let key = token_hash(&cookie);
        let mut s = users.session(&key).await.unwrap().unwrap();
        s.last_seen = Utc::now() - Duration::minutes(31);
        users.put_session(&key, &s).await.unwrap();
        assert!(viewer(&users, &with_cookie(&cookie), idle)
            .await
            .unwrap()
            .is_none());
        assert!(users.session(&key).await.unwrap().is_none());
        // A removed user's session is refused.
        let cookie = start(&users, "ann").await.unwrap();
        users.remove("ann").await.unwrap();
        assert!(viewer(&users, &with_cookie(&cookie), idle)
            .await
            .unwrap()
            .is_none());
    }

    #[test]
    fn cookies_are_strict_and_host_only() {
        let c = set_cookie(SESSION_COOKIE, Some("ab"));
        let c = c.to_str().unwrap();
        assert!(c.starts_with("__Host-"));
        for part in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!c.contains("Domain"), "{c}");
    }
}
