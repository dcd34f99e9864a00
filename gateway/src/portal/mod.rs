//! The escrow portal: the web app where a recipient no key or verified TLS
//! could reach picks up a message held for them (`seal::portal` deposits
//! it). It runs on its own listener (HTTPS with rustls), serves plain HTML
//! with no scripts under a strict Content-Security-Policy, and keeps its
//! sign-in state in the escrow store.
//!
//! Routes: `/m/{token}` (the notice's link: sign in with a code or
//! password), `/password`, `/inbox`, `/msg/{id}` (read, `/a/{n}` download,
//! `/reply`), `/logout`, `/r/{token}` (the sender's withdraw link).

pub mod auth;
mod limiter;
pub mod listener;
mod pages;
pub mod reply;
pub mod view;

use crate::admin::metrics::Metrics;
use crate::audit::{self, Actor};
use crate::config::{Config, PortalLogin};
use crate::seal::escrow::{Escrow, EscrowEntry, EscrowError, EscrowState};
use crate::seal::notice::{self, Mail};
use crate::seal::portal::{direction_to, notice_from};
use crate::smtp::address::Mailbox;
use crate::spool::{Spool, Submission, PORTAL_ORIGIN};
use auth::{Attempt, CodeRequest, Rules};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use listener::Peer;
use serde::Deserialize;
use std::sync::Arc;

/// The session cookie (`__Host-`: Secure, path `/`, this host only).
const SESSION_COOKIE: &str = "__Host-sealgate-session";
/// The cookie pre-sign-in forms' CSRF tokens are bound to.
const FORM_COOKIE: &str = "__Host-sealgate-form";

/// Every page's security headers.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the portal's handlers share.
pub struct Portal {
    escrow: Arc<Escrow>,
    config: Arc<Config>,
    spool: Spool,
    metrics: Arc<Metrics>,
    limiter: limiter::Limiter,
    csrf_key: ring::hmac::Key,
    rules: Rules,
}

type Shared = Arc<Portal>;

/// The page shown instead of what was asked for (boxed: a response is large).
type Refusal = Box<Response>;

fn span(s: crate::config::Span) -> chrono::Duration {
    chrono::Duration::from_std(s.0).unwrap_or(chrono::Duration::days(1))
}

impl Portal {
    /// The portal over `escrow`, sending its mail through `spool`.
    pub fn new(
        config: Arc<Config>,
        escrow: Arc<Escrow>,
        spool: Spool,
        metrics: Arc<Metrics>,
    ) -> Self {
        let p = &config.portal;
        let rules = Rules {
            code_ttl: span(p.code_ttl),
            max_failures: p.max_failures,
            lockout: span(p.lockout),
            session_idle: span(p.session_idle),
        };
        Portal {
            limiter: limiter::Limiter::new(p.requests_per_minute),
            csrf_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()),
            rules,
            escrow,
            config,
            spool,
            metrics,
        }
    }

    fn event(&self, event: &str, id: &str, detail: &str) {
        self.metrics.portal_events.with_label_values(&[event]).inc();
        audit::record(
            &self.config.server.data_dir,
            Actor::Portal,
            &format!("portal.{event}"),
            id,
            detail,
        );
    }

    fn org(&self) -> &str {
        &self.config.portal.organisation
    }

    /// A page with `status`.
    fn page(
        &self,
        status: StatusCode,
        title: &str,
        who: Option<&pages::SignedIn>,
        body: &str,
    ) -> Response {
        (status, Html(pages::page(self.org(), title, who, body))).into_response()
    }

    /// A page that only says `text`.
    fn say(&self, status: StatusCode, title: &str, text: &str) -> Response {
        self.page(status, title, None, &pages::notice(text))
    }

    /// The generic failure page (the log has the reason; the page does not).
    fn failed(&self, e: EscrowError) -> Response {
        tracing::error!(error = %e, "portal: store error");
        self.say(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Something went wrong on our side. Please try again later.",
        )
    }

    /// Sends mail the portal writes.
    async fn send(&self, from: &str, to: &Mailbox, bytes: &[u8]) -> Result<(), String> {
        self.spool
            .submit(Submission {
                from,
                to: vec![to.clone()],
                origin: PORTAL_ORIGIN,
                direction: direction_to(&self.config, to),
                hostname: &self.config.server.hostname,
                bytes,
            })
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The entry a link token opens, or the page to show instead.
    fn by_token(&self, token: &str) -> Result<EscrowEntry, Refusal> {
        let unknown = || {
            self.say(
                StatusCode::NOT_FOUND,
                "Link not valid",
                "This link is not valid. Check that you opened the whole link from the e-mail.",
            )
        };
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Box::new(unknown()));
        }
        match self.escrow.by_token(token) {
            Ok(Some(e)) => self.available(e),
            Ok(None) => Err(Box::new(unknown())),
            Err(e) => Err(Box::new(self.failed(e))),
        }
    }

    /// `e` if it can still be read, else the expired or withdrawn page.
    fn available(&self, e: EscrowEntry) -> Result<EscrowEntry, Refusal> {
        let expired = e.state == EscrowState::Expired || e.expires_at <= chrono::Utc::now();
        if e.state == EscrowState::Revoked {
            return Err(Box::new(self.say(
                StatusCode::GONE,
                "Message withdrawn",
                "The sender withdrew this message. It can no longer be read; contact the sender if you still need it.",
            )));
        }
        if expired {
            return Err(Box::new(self.say(
                StatusCode::GONE,
                "Message expired",
                "This message has expired and was erased. Contact the sender if you still need it.",
            )));
        }
        Ok(e)
    }

    /// The signed-in session of this request, if any.
    fn session(&self, headers: &HeaderMap) -> Option<(String, auth::Session)> {
        let cookie = cookie(headers, SESSION_COOKIE)?;
        match auth::session(&self.escrow, &cookie, &self.rules) {
            Ok(Some(s)) => Some((cookie, s)),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "portal: session lookup failed");
                None
            }
        }
    }

    fn csrf(&self, bound: &str) -> String {
        auth::csrf_token(&self.csrf_key, bound)
    }
}

/// The value of cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn set_cookie(name: &str, value: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax"
    ))
    .expect("a valid cookie")
}

fn clear_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
    ))
    .expect("a valid cookie")
}

/// The pre-sign-in form cookie: the request's, or a new one to set.
fn form_cookie(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, FORM_COOKIE) {
        Some(v) => (v, None),
        None => {
            let v = hex::encode(rand::random::<[u8; 32]>());
            let h = set_cookie(FORM_COOKIE, &v);
            (v, Some(h))
        }
    }
}

fn with_cookie(mut r: Response, c: Option<HeaderValue>) -> Response {
    if let Some(c) = c {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The portal's router.
pub fn router(portal: Shared) -> Router {
    let max_reply = portal.config.portal.max_reply_size;
    Router::new()
        .route("/", get(home))
        .route("/portal.css", get(css))
        .route("/m/{token}", get(landing))
        .route("/m/{token}/code", post(send_code))
        .route("/m/{token}/verify", post(verify_code))
        .route("/m/{token}/login", post(login))
        .route("/password", get(password_page).post(password_set))
        .route("/inbox", get(inbox))
        .route("/msg/{id}", get(read))
        .route("/msg/{id}/a/{n}", get(download))
        .route(
            "/msg/{id}/reply",
            // Room for the multipart framing around the allowed size.
            post(reply).layer(DefaultBodyLimit::max(max_reply + 64 * 1024)),
        )
        .route("/logout", post(logout))
        .route("/r/{token}", get(revoke_page).post(revoke_confirm))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(portal.clone(), guard))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(portal)
}

/// Rate limit first, then the security headers on every response.
async fn guard(
    State(p): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    let mut resp = if p.limiter.allow(peer.0.ip()) {
        next.run(req).await
    } else {
        p.say(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "Too many requests from your network. Wait a minute and try again.",
        )
    };
    let h = resp.headers_mut();
    for (k, v) in [
        ("content-security-policy", CSP),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        ),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    resp
}

async fn home(State(p): State<Shared>) -> Response {
    p.say(
        StatusCode::OK,
        "Secure messages",
        "To read a secure message, open the link in the e-mail that told you about it.",
    )
}

async fn css(State(p): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::stylesheet(&p.config.portal.brand_color),
    )
        .into_response()
}

async fn not_found(State(p): State<Shared>) -> Response {
    p.say(StatusCode::NOT_FOUND, "Not found", "There is nothing here.")
}

/// The sign-in page for `entry`, with an optional message and status.
fn sign_in_page(
    p: &Portal,
    token: &str,
    entry: &EscrowEntry,
    headers: &HeaderMap,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let (form, set) = form_cookie(headers);
    let password = p.config.portal.login == PortalLogin::Password
        && auth::account(&p.escrow, &entry.recipient).is_ok_and(|a| a.has_password());
    let body = pages::sign_in(token, &entry.recipient, &p.csrf(&form), password, message);
    with_cookie(p.page(status, "Secure message", None, &body), set)
}

async fn landing(
    State(p): State<Shared>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let entry = match p.by_token(&token) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    if let Some((_, s)) = p.session(&headers) {
        if s.address == entry.recipient {
            return see_other(&format!("/msg/{}", entry.id));
        }
    }
    sign_in_page(&p, &token, &entry, &headers, StatusCode::OK, None)
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Checks a pre-sign-in form's CSRF token.
fn form_ok(p: &Portal, headers: &HeaderMap, csrf: &str) -> bool {
    cookie(headers, FORM_COOKIE).is_some_and(|c| auth::csrf_ok(&p.csrf_key, &c, csrf))
}

fn expired_form(p: &Portal) -> Response {
    p.say(
        StatusCode::FORBIDDEN,
        "Please try again",
        "This form has expired. Go back, reload the page and try again.",
    )
}

async fn send_code(
    State(p): State<Shared>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let entry = match p.by_token(&token) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    if !form_ok(&p, &headers, &f.csrf) {
        return expired_form(&p);
    }
    let ttl_min = p.config.portal.code_ttl.0.as_secs() / 60;
    match auth::request_code(&p.escrow, &entry.recipient, &p.rules) {
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
            p.event("code_sent", &entry.id, &entry.recipient);
            let msg = format!(
                "We sent a code to {}. It is valid for {ttl_min} minutes.",
                pages::masked(&entry.recipient)
            );
            sign_in_page(&p, &token, &entry, &headers, StatusCode::OK, Some(&msg))
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
        ),
        Ok(CodeRequest::Locked) => locked(&p),
        Err(e) => p.failed(e),
    }
}

fn locked(p: &Portal) -> Response {
    p.say(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "There were too many wrong attempts, so sign-in is locked for a while. Try again later.",
    )
}

/// After a sign-in attempt: the session cookie and the next page, or the form again.
fn signed_in(
    p: &Portal,
    token: &str,
    entry: &EscrowEntry,
    headers: &HeaderMap,
    a: Result<Attempt, EscrowError>,
    how: &str,
) -> Response {
    match a {
        Ok(Attempt::Ok(cookie)) => {
            p.event(
                "login_ok",
                &entry.id,
                &format!("{} by {how}", entry.recipient),
            );
            let wants_password = p.config.portal.login == PortalLogin::Password
                && !auth::account(&p.escrow, &entry.recipient).is_ok_and(|a| a.has_password());
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
                &format!("{} by {how}", entry.recipient),
            );
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
        }
        Ok(Attempt::Locked) => {
            p.event("locked", &entry.id, &entry.recipient);
            locked(p)
        }
        Ok(Attempt::NoCode) => sign_in_page(
            p,
            token,
            entry,
            headers,
            StatusCode::UNAUTHORIZED,
            Some("There is no valid code. Ask for a new one."),
        ),
        Err(e) => p.failed(e),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

async fn verify_code(
    State(p): State<Shared>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let entry = match p.by_token(&token) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    if !form_ok(&p, &headers, &f.csrf) {
        return expired_form(&p);
    }
    let a = auth::check_code(&p.escrow, &entry.recipient, &f.code, &p.rules);
    signed_in(&p, &token, &entry, &headers, a, "code")
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(p): State<Shared>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let entry = match p.by_token(&token) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    if !form_ok(&p, &headers, &f.csrf) {
        return expired_form(&p);
    }
    if p.config.portal.login != PortalLogin::Password {
        return sign_in_page(
            &p,
            &token,
            &entry,
            &headers,
            StatusCode::BAD_REQUEST,
            Some("Sign in with a code."),
        );
    }
    let (p2, address) = (p.clone(), entry.recipient.clone());
    // argon2id is slow on purpose: off the async workers.
    let a = tokio::task::spawn_blocking(move || {
        auth::check_password(&p2.escrow, &address, &f.password, &p2.rules)
    })
    .await
    .unwrap_or_else(|e| Err(EscrowError::Corrupt("password".into(), e.to_string())));
    signed_in(&p, &token, &entry, &headers, a, "password")
}

/// The signed-in session, or the page saying to sign in.
fn require_session(p: &Portal, headers: &HeaderMap) -> Result<(String, auth::Session), Refusal> {
    p.session(headers).ok_or_else(|| {
        Box::new(p.say(
            StatusCode::UNAUTHORIZED,
            "Please sign in",
            "You are not signed in, or your session ended. Open the link in your e-mail again to sign in.",
        ))
    })
}

#[derive(Deserialize)]
struct Next_ {
    #[serde(default)]
    next: String,
}

/// Only our own message pages are followed after a form (no open redirect).
fn safe_next(next: &str) -> String {
    match next.strip_prefix("/msg/") {
        Some(id)
            if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            next.to_string()
        }
        _ => "/inbox".into(),
    }
}

async fn password_page(
    State(p): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Next_>,
) -> Response {
    let (cookie, s) = match require_session(&p, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let csrf = p.csrf(&cookie);
    let who = pages::SignedIn {
        address: &s.address,
        csrf: &csrf,
    };
    p.page(
        StatusCode::OK,
        "Choose a password",
        Some(&who),
        &pages::set_password(&csrf, &safe_next(&q.next), None),
    )
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    next: String,
}

async fn password_set(
    State(p): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    let (cookie, s) = match require_session(&p, &headers) {
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
    let csrf = p.csrf(&cookie);
    if let Some(problem) = auth::password_problem(&f.password, &f.confirm) {
        let who = pages::SignedIn {
            address: &s.address,
            csrf: &csrf,
        };
        return p.page(
            StatusCode::BAD_REQUEST,
            "Choose a password",
            Some(&who),
            &pages::set_password(&csrf, &next, Some(&problem)),
        );
    }
    let (p2, address) = (p.clone(), s.address.clone());
    let r =
        tokio::task::spawn_blocking(move || auth::set_password(&p2.escrow, &address, &f.password))
            .await
            .unwrap_or_else(|e| Err(EscrowError::Corrupt("password".into(), e.to_string())));
    match r {
        Ok(()) => {
            p.event("password_set", "-", &s.address);
            see_other(&next)
        }
        Err(e) => p.failed(e),
    }
}

async fn inbox(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (cookie, s) = match require_session(&p, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let entries = match p.escrow.list() {
        Ok(l) => l,
        Err(e) => return p.failed(e),
    };
    let mut mine: Vec<(EscrowEntry, String)> = entries
        .into_iter()
        .filter(|e| e.recipient == s.address && e.erased_at.is_none())
        .map(|e| {
            let subject = p
                .escrow
                .peek(&e.id)
                .ok()
                .and_then(|raw| crate::policy::worker::header_facts(&raw, "").subject)
                .unwrap_or_default();
            (e, subject)
        })
        .collect();
    mine.sort_by_key(|e| std::cmp::Reverse(e.0.created_at));
    let csrf = p.csrf(&cookie);
    let who = pages::SignedIn {
        address: &s.address,
        csrf: &csrf,
    };
    p.page(
        StatusCode::OK,
        "Your messages",
        Some(&who),
        &pages::inbox(&mine),
    )
}

/// The entry `id` if the signed-in recipient may open it (else a 404 that
/// does not say whether it exists).
fn own_entry(p: &Portal, s: &auth::Session, id: &str) -> Result<EscrowEntry, Refusal> {
    let nothing = || {
        p.say(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such message for you.",
        )
    };
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Box::new(nothing()));
    }
    match p.escrow.entry(id) {
        Ok(Some(e)) if e.recipient == s.address => p.available(e),
        Ok(_) => Err(Box::new(nothing())),
        Err(e) => Err(Box::new(p.failed(e))),
    }
}

#[derive(Deserialize)]
struct ReadQuery {
    #[serde(default)]
    sent: Option<String>,
}

async fn read(
    State(p): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ReadQuery>,
) -> Response {
    let (cookie, s) = match require_session(&p, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let entry = match own_entry(&p, &s, &id) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let raw = match p.escrow.read(&entry.id) {
        Ok(r) => r,
        Err(e) => return p.failed(e),
    };
    if entry.state == EscrowState::Unread {
        p.event("read", &entry.id, &entry.recipient);
        if p.config.portal.read_receipts {
            read_receipt(&p, &entry).await;
        }
    }
    let Some(m) = view::parse(&raw) else {
        return p.say(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Cannot show",
            "This message cannot be shown.",
        );
    };
    let rendered = view::render(&m);
    let csrf = p.csrf(&cookie);
    let who = pages::SignedIn {
        address: &s.address,
        csrf: &csrf,
    };
    let note = q.sent.is_some().then_some("Your reply was sent.");
    let title = if rendered.subject.is_empty() {
        "Secure message".to_string()
    } else {
        rendered.subject.clone()
    };
    p.page(
        StatusCode::OK,
        &title,
        Some(&who),
        &pages::message(
            &entry,
            &rendered,
            &csrf,
            p.config.portal.max_reply_size,
            note,
        ),
    )
}

/// Tells the sender that the recipient opened the message (never its content).
async fn read_receipt(p: &Portal, entry: &EscrowEntry) {
    let Ok(sender) = Mailbox::parse(&entry.sender) else {
        return;
    };
    let from = format!("postmaster@{}", p.config.server.hostname);
    let text = format!(
        "{} opened the secure message you sent on {} in the {} portal.\r\n",
        entry.recipient,
        entry.created_at.format("%-d %B %Y %H:%M UTC"),
        notice::header_safe(p.org()),
    );
    let bytes = notice::compose(&Mail {
        from_name: p.org(),
        from: &from,
        to: &entry.sender,
        subject: &format!("Read: your secure message to {}", entry.recipient),
        text: &text,
        html: None,
        in_reply_to: Some(entry.message_id.as_str()),
    });
    match p.send("", &sender, &bytes).await {
        Ok(()) => p.event("receipt_sent", &entry.id, &entry.sender),
        Err(e) => {
            tracing::warn!(error = %e, escrow = %entry.id, "portal: cannot queue a read receipt")
        }
    }
}

async fn download(
    State(p): State<Shared>,
    Path((id, n)): Path<(String, usize)>,
    headers: HeaderMap,
) -> Response {
    let (_, s) = match require_session(&p, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let entry = match own_entry(&p, &s, &id) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let raw = match p.escrow.peek(&entry.id) {
        Ok(r) => r,
        Err(e) => return p.failed(e),
    };
    let Some((name, bytes)) = view::parse(&raw).and_then(|m| view::attachment(&m, n)) else {
        return p.say(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such attachment.",
        );
    };
    p.event("download", &entry.id, &format!("attachment {n}"));
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

async fn reply(
    State(p): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    let (cookie, s) = match require_session(&p, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let entry = match own_entry(&p, &s, &id) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let too_large = || {
        p.say(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Reply too large",
            &format!(
                "The reply and its attachments are larger than {} MB. Go back and attach less.",
                p.config.portal.max_reply_size / (1024 * 1024)
            ),
        )
    };
    let (mut csrf, mut text, mut all, mut files, mut total) =
        (String::new(), String::new(), false, Vec::new(), 0usize);
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
            Err(_) => {
                return p.say(
                    StatusCode::BAD_REQUEST,
                    "Cannot send",
                    "The form could not be read. Go back and try again.",
                )
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let data = match field.bytes().await {
            Ok(d) => d,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
            Err(_) => {
                return p.say(
                    StatusCode::BAD_REQUEST,
                    "Cannot send",
                    "The form could not be read. Go back and try again.",
                )
            }
        };
        total += data.len();
        if total > p.config.portal.max_reply_size {
            return too_large();
        }
        match name.as_str() {
            "csrf" => csrf = String::from_utf8_lossy(&data).into_owned(),
            "text" => text = String::from_utf8_lossy(&data).into_owned(),
            "all" => all = true,
            "files" if !data.is_empty() => files.push(reply::Upload {
                name: view::safe_name(file_name.as_deref(), &format!("file-{}", files.len() + 1)),
                bytes: data.to_vec(),
            }),
            _ => {}
        }
    }
    if !auth::csrf_ok(&p.csrf_key, &cookie, &csrf) {
        return expired_form(&p);
    }
    if text.trim().is_empty() && files.is_empty() {
        return see_other(&format!("/msg/{}", entry.id));
    }
    let raw = match p.escrow.peek(&entry.id) {
        Ok(r) => r,
        Err(e) => return p.failed(e),
    };
    let Some(m) = view::parse(&raw) else {
        return p.say(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Cannot send",
            "This message cannot be answered.",
        );
    };
    // To the original author, and for reply-all the other participants
    // inside the organisation; the portal sends nothing to third parties.
    let author = view::address_list(m.reply_to().or(m.from()))
        .into_iter()
        .next()
        .unwrap_or_else(|| entry.sender.to_ascii_lowercase());
    let mut to = vec![author];
    if all {
        for a in view::address_list(m.to())
            .into_iter()
            .chain(view::address_list(m.cc()))
        {
            let local = a
                .rsplit_once('@')
                .is_some_and(|(_, d)| p.config.is_local_domain(d));
            if local && a != s.address && !to.contains(&a) {
                to.push(a);
            }
        }
    }
    let mailboxes: Vec<Mailbox> = to.iter().filter_map(|a| Mailbox::parse(a).ok()).collect();
    let Some(first) = mailboxes.first().cloned() else {
        return p.say(
            StatusCode::BAD_REQUEST,
            "Cannot send",
            "This message has no address to reply to.",
        );
    };
    let bytes = reply::build(&reply::ReplyInput {
        from: &s.address,
        to: &to,
        subject: m.subject().unwrap_or_default(),
        in_reply_to: m.message_id().unwrap_or_default(),
        escrow_id: &entry.id,
        text: &text,
        files: &files,
    });
    let queued = p
        .spool
        .submit(Submission {
            from: &s.address,
            to: mailboxes,
            origin: PORTAL_ORIGIN,
            direction: direction_to(&p.config, &first),
            hostname: &p.config.server.hostname,
            bytes: &bytes,
        })
        .await;
    match queued {
        Ok(qid) => {
            if let Err(e) = p.escrow.mark_replied(&entry.id) {
                tracing::warn!(error = %e, "portal: cannot record a reply");
            }
            p.event(
                "reply",
                &entry.id,
                &format!(
                    "queued as {qid}, {} recipient(s), {} file(s)",
                    to.len(),
                    files.len()
                ),
            );
            see_other(&format!("/msg/{}?sent=1", entry.id))
        }
        Err(e) => {
            tracing::error!(error = %e, "portal: cannot queue a reply");
            p.say(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not sent",
                "Your reply could not be sent just now. Please try again.",
            )
        }
    }
}

async fn logout(State(p): State<Shared>, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
    if let Some(cookie) = cookie(&headers, SESSION_COOKIE) {
        if auth::csrf_ok(&p.csrf_key, &cookie, &f.csrf) {
            let _ = auth::end_session(&p.escrow, &cookie);
        } else {
            return expired_form(&p);
        }
    }
    let r = p.say(StatusCode::OK, "Signed out", "You are signed out.");
    with_cookie(r, Some(clear_cookie(SESSION_COOKIE)))
}

/// The entry a withdraw link names, or the page to show instead.
fn by_revoke_token(p: &Portal, token: &str) -> Result<EscrowEntry, Refusal> {
    let unknown = || {
        p.say(
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This link is not valid.",
        )
    };
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Box::new(unknown()));
    }
    match p.escrow.by_revoke_token(token) {
        Ok(Some(e)) if e.erased_at.is_some() => Err(Box::new(p.say(
            StatusCode::GONE,
            "Already erased",
            "This message was already withdrawn or has expired; nobody can read it.",
        ))),
        Ok(Some(e)) => Ok(e),
        Ok(None) => Err(Box::new(unknown())),
        Err(e) => Err(Box::new(p.failed(e))),
    }
}

async fn revoke_page(
    State(p): State<Shared>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let entry = match by_revoke_token(&p, &token) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let (form, set) = form_cookie(&headers);
    let body = pages::revoke(&token, &entry, &p.csrf(&form));
    with_cookie(
        p.page(StatusCode::OK, "Withdraw a secure message", None, &body),
        set,
    )
}

async fn revoke_confirm(
    State(p): State<Shared>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let entry = match by_revoke_token(&p, &token) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    if !form_ok(&p, &headers, &f.csrf) {
        return expired_form(&p);
    }
    match revoke(&p.escrow, &p.config, &p.metrics, &entry.id, Actor::Portal) {
        Ok(_) => p.say(
            StatusCode::OK,
            "Message withdrawn",
            "The message was withdrawn and erased. The recipient can no longer read it.",
        ),
        Err(e) => p.failed(e),
    }
}

/// Withdraws held message `id` (content and key erased), audited and counted.
pub fn revoke(
    escrow: &Escrow,
    config: &Config,
    metrics: &Metrics,
    id: &str,
    actor: Actor,
) -> Result<Option<EscrowEntry>, EscrowError> {
    let before = escrow.entry(id)?;
    let after = escrow.revoke(id)?;
    if let (Some(b), Some(a)) = (&before, &after) {
        if b.erased_at.is_none() {
            metrics.portal_events.with_label_values(&["revoke"]).inc();
            audit::record(
                &config.server.data_dir,
                actor,
                "portal.revoke",
                id,
                &a.recipient,
            );
        }
    }
    Ok(after)
}

/// Erases expired messages and stale sessions once a minute.
pub async fn sweep(portal: Shared) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let p = portal.clone();
        let r = tokio::task::spawn_blocking(move || -> Result<(), EscrowError> {
            for e in p.escrow.sweep(chrono::Utc::now())? {
                p.event("expire", &e.id, &e.recipient);
            }
            auth::sweep_sessions(&p.escrow, &p.rules)?;
            Ok(())
        })
        .await;
        if let Ok(Err(e)) = r {
            tracing::error!(error = %e, "portal: sweep failed");
        }
    }
}

/// Why the portal cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// The certificate or key does not load.
    #[error("[portal] TLS: {0}")]
    Tls(String),
}

/// The rustls configuration for the portal's HTTPS listener.
pub fn tls_config(config: &Config) -> Result<Arc<rustls::ServerConfig>, PortalError> {
    let (cert, key) = match (&config.portal.cert_file, &config.portal.key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => match (&config.tls.cert_file, &config.tls.key_file) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => {
                crate::smtp::tls::ensure_dev_cert(&config.server.data_dir, &config.server.hostname)
                    .map_err(|e| PortalError::Tls(e.to_string()))?
            }
        },
    };
    let mut sc = crate::smtp::tls::server_config_from_files(&cert, &key)
        .map_err(|e| PortalError::Tls(e.to_string()))?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(sc))
}

/// Serves the portal on `tcp` until `stop` changes.
pub async fn serve(
    portal: Shared,
    tcp: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    tokio::spawn(sweep(portal.clone()));
    let app = router(portal);
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    let r = match tls {
        Some(tls) => match listener::TlsListener::new(tcp, tls) {
            Ok(l) => {
                axum::serve(l, app.into_make_service_with_connect_info::<Peer>())
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            Err(e) => Err(e),
        },
        None => {
            axum::serve(tcp, app.into_make_service_with_connect_info::<Peer>())
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    if let Err(e) = r {
        tracing::error!(error = %e, "portal stopped");
    }
}
