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
pub mod client_ip;
pub mod limiter;
mod messages;
mod pages;
pub mod reply;
mod signin;
pub mod view;
mod withdraw;

use crate::audit::{self, Actor};
use crate::config::Config;
use crate::model::address::Mailbox;
use crate::model::escrow::{EscrowEntry, EscrowState};
use crate::net::http_server::Peer;
use crate::seal::portal::direction_to;
use crate::spool::{Spool, Submission, PORTAL_ORIGIN};
use crate::store::audit_log::AuditLog;
use crate::store::escrow::{EscrowError, EscrowStore, PortalStores, SignInRecords};
use crate::telemetry::metrics::Metrics;
use auth::Rules;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// The session cookie (`__Host-`: Secure, path `/`, this host only).
const SESSION_COOKIE: &str = "__Host-sealgate-session";
/// The cookie pre-sign-in forms' CSRF tokens are bound to.
const FORM_COOKIE: &str = "__Host-sealgate-form";

/// Every page's security headers.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the portal's handlers share.
pub struct Portal {
    escrow: Arc<dyn EscrowStore>,
    /// Accounts and sessions.
    sign_in: Arc<dyn SignInRecords>,
    audit: Arc<dyn AuditLog>,
    config: Arc<Config>,
    spool: Spool,
    metrics: Arc<Metrics>,
    limiter: limiter::Limiter,
    csrf_key: ring::hmac::Key,
    rules: Rules,
    /// argon2 runs at most this many at once (each takes ~19 MiB); more
    /// sign-ins get 429 rather than exhaust memory.
    argon2: Arc<tokio::sync::Semaphore>,
}

/// argon2 hashes computed at once, at most.
const ARGON2_AT_ONCE: usize = 4;

type Shared = Arc<Portal>;

/// The page shown instead of what was asked for (boxed: a response is large).
type Refusal = Box<Response>;

fn span(s: crate::config::Span) -> chrono::Duration {
    chrono::Duration::from_std(s.0).unwrap_or(chrono::Duration::days(1))
}

impl Portal {
    /// The portal over `stores`, sending its mail through `spool`.
    pub fn new(
        config: Arc<Config>,
        stores: PortalStores,
        spool: Spool,
        audit: Arc<dyn AuditLog>,
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
            argon2: Arc::new(tokio::sync::Semaphore::new(ARGON2_AT_ONCE)),
            escrow: stores.messages,
            sign_in: stores.sign_in,
            audit,
            config,
            spool,
            metrics,
        }
    }

    /// A permit to run argon2, or the 429 page when all are in use.
    fn argon2_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
        self.argon2.clone().try_acquire_owned().map_err(|_| {
            self.metrics
                .portal_events
                .with_label_values(&["argon2_busy"])
                .inc();
            Box::new(self.say(
                StatusCode::TOO_MANY_REQUESTS,
                "Busy",
                "Many people are signing in right now. Please try again in a moment.",
            ))
        })
    }

    async fn event(&self, event: &str, id: &str, detail: &str) {
        self.metrics.portal_events.with_label_values(&[event]).inc();
        audit::note(
            self.audit.as_ref(),
            Actor::Portal,
            &format!("portal.{event}"),
            id,
            detail,
        )
        .await;
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

    /// A page for the recipient signed in with session `cookie`: `body`
    /// gets the CSRF token for its forms.
    fn signed_in_page(
        &self,
        status: StatusCode,
        title: &str,
        cookie: &str,
        address: &str,
        body: impl FnOnce(&str) -> String,
    ) -> Response {
        let csrf = self.csrf(cookie);
        let who = pages::SignedIn {
            address,
            csrf: &csrf,
        };
        self.page(status, title, Some(&who), &body(&csrf))
    }

    /// A page that only says `text`.
    fn say(&self, status: StatusCode, title: &str, text: &str) -> Response {
        self.page(status, title, None, &pages::notice(text))
    }

    /// The generic failure page (the log has the reason; the page does not).
    fn failed(&self, e: impl std::fmt::Display) -> Response {
        tracing::error!(error = %e, "portal: store error");
        self.say(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Something went wrong on our side. Please try again later.",
        )
    }

    /// Sends mail the portal writes.
    async fn send(
        &self,
        from: &str,
        to: &Mailbox,
        bytes: &[u8],
    ) -> Result<(), crate::spool::SpoolError> {
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
    }

    /// The entry a link token opens, or the page to show instead.
    async fn by_token(&self, token: &str) -> Result<EscrowEntry, Refusal> {
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
        match self.escrow.by_token(token).await {
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
    async fn session(&self, headers: &HeaderMap) -> Option<(String, auth::Session)> {
        let cookie = cookie(headers, SESSION_COOKIE)?;
        match auth::session(self.sign_in.as_ref(), &cookie, &self.rules).await {
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

/// The value of cookie `name` when it is 64 hex digits, as every cookie
/// the portal and the console set is.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
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
        .route("/m/{token}", get(signin::landing))
        .route("/m/{token}/code", post(signin::send_code))
        .route("/m/{token}/verify", post(signin::verify_code))
        .route("/m/{token}/login", post(signin::login))
        .route(
            "/password",
            get(signin::password_page).post(signin::password_set),
        )
        .route("/inbox", get(messages::inbox))
        .route("/msg/{id}", get(messages::read))
        .route("/msg/{id}/a/{n}", get(messages::download))
        .route(
            "/msg/{id}/reply",
            // Room for the multipart framing around the allowed size.
            post(messages::reply).layer(DefaultBodyLimit::max(max_reply + 64 * 1024)),
        )
        .route("/logout", post(signin::logout))
        .route(
            "/r/{token}",
            get(withdraw::revoke_page).post(withdraw::revoke_confirm),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(portal.clone(), guard))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(portal)
}

/// Rate limit first, then the security headers on every response.
async fn guard(
    State(p): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    mut req: Request,
    next: Next,
) -> Response {
    let ip = client_ip::client_ip(peer.0.ip(), req.headers(), &p.config.portal.trusted_proxies);
    req.extensions_mut().insert(client_ip::ClientIp(ip));
    let mut resp = if p.limiter.allow(ip) {
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

/// Why a withdrawal was not done.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// The escrow store failed.
    #[error(transparent)]
    Escrow(#[from] EscrowError),
    /// The audit log could not be written first.
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
}

/// Withdraws held message `id` (content and key erased), audited first and counted.
pub async fn revoke(
    escrow: &dyn EscrowStore,
    audit_log: &dyn AuditLog,
    metrics: &Metrics,
    id: &str,
    actor: Actor,
) -> Result<Option<EscrowEntry>, RevokeError> {
    let Some(before) = escrow.entry(id).await? else {
        return Ok(None);
    };
    let fresh = before.erased_at.is_none();
    if fresh {
        audit::record(audit_log, actor, "portal.revoke", id, &before.recipient).await?;
    }
    let after = escrow.revoke(id).await?;
    if fresh && after.is_some() {
        metrics.portal_events.with_label_values(&["revoke"]).inc();
    }
    Ok(after)
}

/// Erases expired messages and stale sessions once a minute.
pub async fn sweep(portal: Shared) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let r: Result<_, EscrowError> = async {
            let expired = portal.escrow.sweep(chrono::Utc::now()).await?;
            auth::sweep_sessions(portal.sign_in.as_ref(), &portal.rules).await?;
            Ok(expired)
        }
        .await;
        match r {
            Ok(expired) => {
                for e in expired {
                    portal.event("expire", &e.id, &e.recipient).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "portal: sweep failed"),
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
    use crate::net::tls::{https_pair, https_server_config};
    https_pair(config, &config.portal.cert_file, &config.portal.key_file)
        .and_then(|(cert, key)| https_server_config(&cert, &key))
        .map_err(|e| PortalError::Tls(e.to_string()))
}

/// Serves the portal on `tcp` until `stop` changes.
pub async fn serve(
    portal: Shared,
    tcp: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    tokio::spawn(sweep(portal.clone()));
    let limits = crate::net::http_server::HttpLimits::from(&portal.config.portal.http);
    let app = router(portal);
    crate::net::http_server::serve("portal", tcp, tls, app, limits, stop).await;
}
