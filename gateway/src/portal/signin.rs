//! Signing in from a notice's link: a one-time code by mail, or the
//! password set after the first visit; choosing that password; signing out.

use super::auth::{Attempt, CodeRequest};
use super::client_ip::ClientIp;
use super::{
    auth, clear_cookie, cookie, form_cookie, pages, see_other, set_cookie, with_cookie, Portal,
    Refusal, Shared, FORM_COOKIE, SESSION_COOKIE,
};
use crate::config::PortalLogin;
use crate::model::address::Mailbox;
use crate::model::escrow::EscrowEntry;
use crate::seal::notice::{self, Mail};
use crate::seal::portal::notice_from;
use crate::store::escrow::EscrowError;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use std::net::IpAddr;

/// The sign-in page for `entry`, with an optional message and status.
pub(super) async fn sign_in_page(
    p: &Portal,
    token: &str,
    entry: &EscrowEntry,
    headers: &HeaderMap,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let (form, set) = form_cookie(headers);
    let password = p.config.portal.login == PortalLogin::Password
        && auth::account(p.sign_in.as_ref(), &entry.recipient)
            .await
            .is_ok_and(|a| a.has_password());
    let body = pages::sign_in(token, &entry.recipient, &p.csrf(&form), password, message);
    with_cookie(p.page(status, "Secure message", None, &body), set)
}

pub(super) async fn landing(
    State(p): State<Shared>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let entry = match p.by_token(&token).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    if let Some((_, s)) = p.session(&headers).await {
        if s.address == entry.recipient {
            return see_other(&format!("/msg/{}", entry.id));
        }
    }
    sign_in_page(&p, &token, &entry, &headers, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

/// Checks a pre-sign-in form's CSRF token.
pub(super) fn form_ok(p: &Portal, headers: &HeaderMap, csrf: &str) -> bool {
    cookie(headers, FORM_COOKIE).is_some_and(|c| auth::csrf_ok(&p.csrf_key, &c, csrf))
}

pub(super) fn expired_form(p: &Portal) -> Response {
    p.say(
        StatusCode::FORBIDDEN,
        "Please try again",
        "This form has expired. Go back, reload the page and try again.",
    )
}

/// The entry a link token opens, once the form's CSRF token checks out.
pub(super) async fn token_form(
    p: &Portal,
    token: &str,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<EscrowEntry, Refusal> {
    let entry = p.by_token(token).await?;
    if !form_ok(p, headers, csrf) {
        return Err(Box::new(expired_form(p)));
    }
    Ok(entry)
}

pub(super) async fn send_code(
    State(p): State<Shared>,
    Path(token): Path<String>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let entry = match token_form(&p, &token, &headers, &f.csrf).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let ttl_min = p.config.portal.code_ttl.0.as_secs() / 60;
    match auth::request_code(p.sign_in.as_ref(), &entry.recipient, &p.rules).await {
        Ok(CodeRequest::Send(code)) => {
            let from = notice_from(&p.config, &entry.sender);
            let text = format!(
                "Your code for the {org} secure message portal is:\r\n\r\n    {code}\r\n\r\n\
                 It is valid for {ttl_min} minutes. If you did not ask for it, ignore this e-mail; nobody can read your messages without it.\r\n",
                org = notice::header_safe(p.org()),
            );
            let bytes = notice::compose(&Mail {
                from_name: p.org(),
                from: &from,
                to: &entry.recipient,
                subject: &format!("Your code: {code}"),
                text: &text,
                html: None,
                in_reply_to: None,
            });
            let Ok(to) = Mailbox::parse(&entry.recipient) else {
                return p.failed(EscrowError::Corrupt(entry.id, "recipient address".into()));
            };
            if let Err(e) = p.send(&from, &to, &bytes).await {
                tracing::error!(error = %e, "portal: cannot queue a code");
                return p.failed(EscrowError::Corrupt(entry.id, "queue".into()));
            }
            p.event(
                "code_sent",
                &entry.id,
                &format!("{} from {ip}", entry.recipient),
            )
            .await;
            let msg = format!(
                "We sent a code to {}. It is valid for {ttl_min} minutes.",
                pages::masked(&entry.recipient)
            );
            sign_in_page(&p, &token, &entry, &headers, StatusCode::OK, Some(&msg)).await
        }
        Ok(CodeRequest::TooMany) => sign_in_page(
            &p,
            &token,
            &entry,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            Some(
                "Several codes were sent in the last hour. Use the latest one, or try again later.",
            ),
        )
        .await,
        Ok(CodeRequest::Locked) => locked(&p),
        Err(e) => p.failed(e),
    }
}

pub(super) fn locked(p: &Portal) -> Response {
    p.say(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "There were too many wrong attempts, so sign-in is locked for a while. Try again later.",
    )
}

/// After a sign-in attempt: the session cookie and the next page, or the form again.
pub(super) async fn signed_in(
    p: &Portal,
    token: &str,
    entry: &EscrowEntry,
    headers: &HeaderMap,
    a: Result<Attempt, EscrowError>,
    how: &str,
    ip: IpAddr,
) -> Response {
    match a {
        Ok(Attempt::Ok(cookie)) => {
            p.event(
                "login_ok",
                &entry.id,
                &format!("{} by {how} from {ip}", entry.recipient),
            )
            .await;
            let wants_password = p.config.portal.login == PortalLogin::Password
                && !auth::account(p.sign_in.as_ref(), &entry.recipient)
                    .await
                    .is_ok_and(|a| a.has_password());
            let next = format!("/msg/{}", entry.id);
            let to = if wants_password {
                format!("/password?next={next}")
            } else {
                next
            };
            with_cookie(see_other(&to), Some(set_cookie(SESSION_COOKIE, &cookie)))
        }
        Ok(Attempt::Wrong { left }) => {
            p.event(
                "login_failed",
                &entry.id,
                &format!("{} by {how} from {ip}", entry.recipient),
            )
            .await;
            let msg = format!(
                "That {how} is not right. {left} more tries before sign-in is locked for a while."
            );
            sign_in_page(
                p,
                token,
                entry,
                headers,
                StatusCode::UNAUTHORIZED,
                Some(&msg),
            )
            .await
        }
        Ok(Attempt::Locked) => {
            p.event(
                "locked",
                &entry.id,
                &format!("{} from {ip}", entry.recipient),
            )
            .await;
            locked(p)
        }
        Ok(Attempt::NoCode) => {
            sign_in_page(
                p,
                token,
                entry,
                headers,
                StatusCode::UNAUTHORIZED,
                Some("There is no valid code. Ask for a new one."),
            )
            .await
        }
        Err(e) => p.failed(e),
    }
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

pub(super) async fn verify_code(
    State(p): State<Shared>,
    Path(token): Path<String>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let entry = match token_form(&p, &token, &headers, &f.csrf).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let a = auth::check_code(p.sign_in.as_ref(), &entry.recipient, &f.code, &p.rules).await;
    signed_in(&p, &token, &entry, &headers, a, "code", ip).await
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn login(
    State(p): State<Shared>,
    Path(token): Path<String>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let entry = match token_form(&p, &token, &headers, &f.csrf).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    if p.config.portal.login != PortalLogin::Password {
        return sign_in_page(
            &p,
            &token,
            &entry,
            &headers,
            StatusCode::BAD_REQUEST,
            Some("Sign in with a code."),
        )
        .await;
    }
    let permit = match p.argon2_permit() {
        Ok(permit) => permit,
        Err(r) => return *r,
    };
    let a = auth::check_password(p.sign_in.as_ref(), &entry.recipient, &f.password, &p.rules).await;
    drop(permit);
    signed_in(&p, &token, &entry, &headers, a, "password", ip).await
}

/// The signed-in session, or the page saying to sign in.
pub(super) async fn require_session(
    p: &Portal,
    headers: &HeaderMap,
) -> Result<(String, auth::Session), Refusal> {
    p.session(headers).await.ok_or_else(|| {
        Box::new(p.say(
            StatusCode::UNAUTHORIZED,
            "Please sign in",
            "You are not signed in, or your session ended. Open the link in your e-mail again to sign in.",
        ))
    })
}

#[derive(Deserialize)]
pub(super) struct Next_ {
    #[serde(default)]
    next: String,
}

/// Only our own message pages are followed after a form (no open redirect).
pub(super) fn safe_next(next: &str) -> String {
    match next.strip_prefix("/msg/") {
        Some(id)
            if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            next.to_string()
        }
        _ => "/inbox".into(),
    }
}

pub(super) async fn password_page(
    State(p): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Next_>,
) -> Response {
    let (cookie, s) = match require_session(&p, &headers).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let next = safe_next(&q.next);
    p.signed_in_page(
        StatusCode::OK,
        "Choose a password",
        &cookie,
        &s.address,
        |csrf| pages::set_password(csrf, &next, None),
    )
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    next: String,
}

pub(super) async fn password_set(
    State(p): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    let (cookie, s) = match require_session(&p, &headers).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if !auth::csrf_ok(&p.csrf_key, &cookie, &f.csrf) {
        return expired_form(&p);
    }
    let next = safe_next(&f.next);
    if p.config.portal.login != PortalLogin::Password {
        return see_other(&next);
    }
    match auth::may_change_password(p.sign_in.as_ref(), &s).await {
        Ok(true) => {}
        Ok(false) => {
            return p.say(
                StatusCode::FORBIDDEN,
                "Sign in again",
                "To change your password, sign in again first: open the link in your e-mail.",
            )
        }
        Err(e) => return p.failed(e),
    }
    if let Some(problem) = auth::password_problem(&f.password, &f.confirm) {
        return p.signed_in_page(
            StatusCode::BAD_REQUEST,
            "Choose a password",
            &cookie,
            &s.address,
            |csrf| pages::set_password(csrf, &next, Some(&problem)),
        );
    }
    let permit = match p.argon2_permit() {
        Ok(permit) => permit,
        Err(r) => return *r,
    };
    let r = auth::set_password(p.sign_in.as_ref(), &s.address, &f.password).await;
    drop(permit);
    match r {
        Ok(()) => {
            if let Err(e) = auth::end_other_sessions(p.sign_in.as_ref(), &s.address, &cookie).await
            {
                tracing::warn!(error = %e, "portal: cannot end other sessions");
            }
            p.event("password_set", "-", &s.address).await;
            see_other(&next)
        }
        Err(e) => p.failed(e),
    }
}

pub(super) async fn logout(
    State(p): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(cookie) = cookie(&headers, SESSION_COOKIE) {
        if auth::csrf_ok(&p.csrf_key, &cookie, &f.csrf) {
            let _ = auth::end_session(p.sign_in.as_ref(), &cookie).await;
        } else {
            return expired_form(&p);
        }
    }
    let r = p.say(StatusCode::OK, "Signed out", "You are signed out.");
    with_cookie(r, Some(clear_cookie(SESSION_COOKIE)))
}
