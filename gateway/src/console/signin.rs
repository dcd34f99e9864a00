//! Signing in and out: one form with name, password and TOTP code; every
//! sign-in, failure, lock and sign-out goes into the audit log (with the
//! client's address), and a try is refused when the log cannot be written.

use super::pages::{self, Nav};
use super::session::{self, FORM_COOKIE, SESSION_COOKIE};
use super::users::{self, SignIn};
use super::Shared;
use crate::net::http_server::Peer;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// `GET /console/`: the start page, or the sign-in form.
pub async fn home(State(c): State<Shared>, headers: HeaderMap) -> Response {
    match super::session::viewer(c.users.as_ref(), &headers, c.idle).await {
        Ok(Some(v)) => c.page(StatusCode::OK, pages::home(&Nav::of(&c, &v))),
        Ok(None) => sign_in_page(&c, &headers, StatusCode::OK, None),
        Err(e) => {
            tracing::error!(error = %e, "console: session lookup failed");
            c.failed()
        }
    }
}

/// The sign-in form, bound to the form cookie (set when missing).
fn sign_in_page(
    c: &super::Console,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let (bound, set) = session::form_cookie(headers);
    let mut r = c.page(status, pages::sign_in(&c.csrf(&bound), error));
    if let Some(set) = set {
        r.headers_mut().append(header::SET_COOKIE, set);
    }
    r
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignInForm {
    csrf: String,
    name: String,
    password: String,
    code: String,
}

/// `POST /console/sign-in`.
pub async fn sign_in(
    State(c): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    let bound = crate::portal::cookie(&headers, FORM_COOKIE).unwrap_or_default();
    if bound.is_empty() || !c.csrf_ok(&bound, &f.csrf) {
        return sign_in_page(
            &c,
            &headers,
            StatusCode::FORBIDDEN,
            Some("The form expired. Please sign in again."),
        );
    }
    let ip = peer.0.ip().to_string();
    let name = f.name.trim();
    let Ok(_permit) = c.argon2.clone().try_acquire_owned() else {
        return sign_in_page(
            &c,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Many sign-ins are running; try again in a moment."),
        );
    };
    let result = users::sign_in(
        c.users.as_ref(),
        &c.keys,
        &c.rules,
        name,
        &f.password,
        &f.code,
    )
    .await;
    let (action, status, error) = match &result {
        Ok(SignIn::Ok(_)) => ("console.sign-in", StatusCode::OK, None),
        Ok(SignIn::Wrong) => (
            "console.sign-in.failed",
            StatusCode::UNAUTHORIZED,
            Some("Wrong user name, password or code.".to_string()),
        ),
        Ok(SignIn::Locked) => (
            "console.sign-in.locked",
            StatusCode::TOO_MANY_REQUESTS,
            Some(format!(
                "Too many wrong tries: this user is locked for {} minutes.",
                c.rules.lockout.num_minutes()
            )),
        ),
        Err(e) => {
            tracing::error!(error = %e, "console: sign-in failed");
            return c.failed();
        }
    };
    // The name as typed (a password typed in the wrong field, perhaps)
    // goes only to the audit store's detail; the general log gets the
    // entry's id, which names only a user that exists.
    let shown_name: String = name.chars().take(64).collect();
    let id = match &result {
        Ok(SignIn::Ok(_) | SignIn::Locked) => shown_name.as_str(),
        _ => "",
    };
    if let Err(r) = c
        .record(&shown_name, action, id, &format!("from {ip}"))
        .await
    {
        return r;
    }
    match result {
        Ok(SignIn::Ok(user)) => match session::start(c.users.as_ref(), &user.name).await {
            Ok(cookie) => {
                let mut r = Redirect::to("/console/").into_response();
                let h = r.headers_mut();
                h.append(
                    header::SET_COOKIE,
                    session::set_cookie(SESSION_COOKIE, Some(&cookie)),
                );
                h.append(header::SET_COOKIE, session::set_cookie(FORM_COOKIE, None));
                r
            }
            Err(e) => {
                tracing::error!(error = %e, "console: session not stored");
                c.failed()
            }
        },
        _ => sign_in_page(&c, &headers, status, error.as_deref()),
    }
}

/// The sign-out form's field.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /console/sign-out`.
pub async fn sign_out(
    State(c): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let v = match c.viewer(&headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !c.csrf_ok(&v.cookie, &f.csrf) {
        return c.page(
            StatusCode::FORBIDDEN,
            pages::notice(
                Some(&Nav::of(&c, &v)),
                "Refused",
                "The form expired; reload the page.",
            ),
        );
    }
    if let Err(r) = c
        .record(&v.user.name, "console.sign-out", &v.user.name, "")
        .await
    {
        return r;
    }
    if let Err(e) = session::end(c.users.as_ref(), &v.cookie).await {
        tracing::error!(error = %e, "console: session not ended");
        return c.failed();
    }
    let mut r = Redirect::to("/console/").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, None),
    );
    r
}
