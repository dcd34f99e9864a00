//! The web console admins, archivists and auditors work in, served at
//! `/console/` on the admin listener: server-rendered HTML (maud), no
//! scripts, a strict Content-Security-Policy, sign-in with password and
//! TOTP, roles checked on the server for every request, every sign-in,
//! failure, trace query and view written to the audit log.
//!
//! `users` adds users and signs them in (shared with `sealgate user`),
//! `totp` is RFC 6238, `session` the cookies and sessions, `access` the
//! roles' areas and domain scope, `dashboard` the trace's counts, `pages`
//! the HTML; `signin` and `views` are the handlers. The message trace
//! itself is `admin::trace`, which the API's `/api/v1/trace` shares.
//!
//! The API's refusal of requests with an `Origin` header stays on
//! `/api/v1/...`; the console's routes take their own pages' `Origin`
//! and refuse others, refuse foreign `Host` names the same way, and
//! check a CSRF token on every form.

pub mod access;
pub mod dashboard;
mod pages;
pub mod session;
mod signin;
pub mod totp;
pub mod users;
mod views;

use crate::audit::{self, Actor};
use crate::config::Config;
use crate::net::http_server::Peer;
use crate::portal::auth::{csrf_ok, csrf_token};
use crate::portal::limiter::Limiter;
use crate::spool::Spool;
use crate::store::audit_log::AuditLog;
use crate::store::console::ConsoleUsers;
use crate::store::keyring::Keyring;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// Every console page's Content-Security-Policy: no scripts at all.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// argon2 checks at once, at most (each takes ~19 MiB).
const ARGON2_AT_ONCE: usize = 2;

/// What the console's handlers share.
pub struct Console {
    users: Arc<dyn ConsoleUsers>,
    audit: Arc<dyn AuditLog>,
    keys: Keyring,
    spool: Spool,
    config: Arc<Config>,
    limiter: Limiter,
    csrf_key: ring::hmac::Key,
    argon2: Arc<tokio::sync::Semaphore>,
    rules: users::Rules,
    idle: chrono::Duration,
}

type Shared = Arc<Console>;

fn span(s: crate::config::Span) -> chrono::Duration {
    chrono::Duration::from_std(s.0).unwrap_or(chrono::Duration::minutes(15))
}

impl Console {
    /// The console over `users`, tracing `spool`, auditing into `audit`,
    /// with the TOTP secrets' key file `keys`.
    pub fn new(
        config: Arc<Config>,
        users: Arc<dyn ConsoleUsers>,
        audit: Arc<dyn AuditLog>,
        keys: Keyring,
        spool: Spool,
    ) -> Self {
        let c = &config.console;
        Console {
            limiter: Limiter::new(c.requests_per_minute),
            csrf_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()),
            argon2: Arc::new(tokio::sync::Semaphore::new(ARGON2_AT_ONCE)),
            rules: users::Rules {
                max_failures: c.max_failures,
                lockout: span(c.lockout),
            },
            idle: span(c.session_idle),
            users,
            audit,
            keys,
            spool,
            config,
        }
    }

    /// The CSRF token for forms bound to `bound` (a session or form cookie).
    fn csrf(&self, bound: &str) -> String {
        csrf_token(&self.csrf_key, bound)
    }

    /// True when `token` is the CSRF token for `bound`.
    fn csrf_ok(&self, bound: &str, token: &str) -> bool {
        csrf_ok(&self.csrf_key, bound, token)
    }

    /// Writes `action` by `who` to the audit log; `Err` (the page to show)
    /// when it cannot be written, so the action is not done.
    async fn record(
        &self,
        who: &str,
        action: &str,
        id: &str,
        detail: &str,
    ) -> Result<(), Response> {
        let detail = format!("by {who}: {detail}");
        audit::record(self.audit.as_ref(), Actor::Console, action, id, &detail)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, action, "console: audit log not written");
                self.failed()
            })
    }

    /// A page with `status`.
    fn page(&self, status: StatusCode, page: maud::Markup) -> Response {
        (status, Html(page.into_string())).into_response()
    }

    /// The generic failure page (the log has the reason).
    fn failed(&self) -> Response {
        self.page(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::notice(
                None,
                "Something went wrong",
                "Something went wrong on the server; the log says what. Try again later.",
            ),
        )
    }

    /// The signed-in viewer, or the response to give instead (the
    /// sign-in page, or the failure page when the store fails).
    async fn viewer(&self, headers: &HeaderMap) -> Result<session::Viewer, Response> {
        match session::viewer(self.users.as_ref(), headers, self.idle).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(axum::response::Redirect::to("/console/").into_response()),
            Err(e) => {
                tracing::error!(error = %e, "console: session lookup failed");
                Err(self.failed())
            }
        }
    }

    /// The viewer when their role may use `area`; the refusal (403,
    /// audited) otherwise.
    async fn viewer_for(
        &self,
        headers: &HeaderMap,
        area: access::Area,
        what: &str,
    ) -> Result<session::Viewer, Response> {
        let v = self.viewer(headers).await?;
        if access::may(v.user.role, area) {
            return Ok(v);
        }
        self.record(&v.user.name, "console.denied", what, v.user.role.as_str())
            .await?;
        Err(self.page(
            StatusCode::FORBIDDEN,
            pages::notice(
                Some(&pages::Nav::of(self, &v)),
                "Not for your role",
                "Your role does not include this part of the console.",
            ),
        ))
    }
}

/// The console's routes, to merge into the admin listener's router.
pub fn router(console: Shared) -> Router {
    Router::new()
        .route(
            "/console",
            get(|| async { axum::response::Redirect::to("/console/") }),
        )
        .route("/console/", get(signin::home))
        .route("/console/console.css", get(css))
        .route("/console/sign-in", post(signin::sign_in))
        .route("/console/sign-out", post(signin::sign_out))
        .route("/console/trace", get(views::trace))
        .route("/console/trace/{id}/{n}", get(views::detail))
        .route("/console/dashboard", get(views::dashboard))
        .route("/console/audit", get(views::audit))
        .route("/console/archive", get(views::archive))
        .route("/console/{*rest}", get(not_found))
        .layer(middleware::from_fn_with_state(console.clone(), guard))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(console)
}

/// The `Origin` a browser sends for the console's own pages, if any
/// other is present: the request is then refused.
fn foreign_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin = origin.to_str().unwrap_or("");
    let own = ["https://", "http://"]
        .iter()
        .any(|scheme| origin.strip_prefix(scheme) == Some(host));
    !own
}

/// Host and Origin checks and the rate limit first, then the security
/// headers on every response.
async fn guard(
    State(c): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    let tls_name = c.config.admin.tls.then(|| c.config.admin_server_name());
    let refused = crate::admin::http::host_allowed(req.headers(), tls_name)
        .err()
        .or_else(|| foreign_origin(req.headers()).then_some("a request from another site"));
    let mut resp = if let Some(why) = refused {
        tracing::warn!(reason = why, "console request refused");
        c.page(
            StatusCode::FORBIDDEN,
            pages::notice(None, "Refused", "This request is refused."),
        )
    } else if !c.limiter.allow(peer.0.ip()) {
        c.page(
            StatusCode::TOO_MANY_REQUESTS,
            pages::notice(None, "Too many requests", "Wait a minute and try again."),
        )
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    for (k, v) in [
        ("content-security-policy", CSP),
        ("x-frame-options", "DENY"),
        // Not `no-referrer`: under it browsers send `Origin: null` with the
        // console's own forms, and the Origin check would refuse them.
        ("referrer-policy", "same-origin"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    if c.config.admin.tls {
        h.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::STYLESHEET,
    )
        .into_response()
}

async fn not_found(State(c): State<Shared>) -> Response {
    c.page(
        StatusCode::NOT_FOUND,
        pages::notice(None, "Not found", "There is nothing here."),
    )
}

/// Ends stale sessions every minute.
pub async fn sweep(console: Shared) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let now = chrono::Utc::now();
        if let Err(e) = console
            .users
            .sweep_sessions(now - console.idle, now - session::SESSION_MAX)
            .await
        {
            tracing::error!(error = %e, "console: session sweep failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::http_server::test_headers as headers;

    use crate::store::tokens::Role;
    use axum::body::Body;

    const PW: &str = "correct horse battery";

    struct Setup {
        _dir: tempfile::TempDir,
        c: Shared,
        app: Router,
        audit: Arc<dyn AuditLog>,
        secrets: Vec<Vec<u8>>,
    }

    /// A console over temporary stores with an admin `ann` and an auditor `aud`.
    async fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.data_dir = dir.path().to_path_buf();
        let users: Arc<dyn ConsoleUsers> = Arc::new(
            crate::store::rocksdb::console::ConsoleFiles::new(dir.path()),
        );
        let audit: Arc<dyn AuditLog> = Arc::new(crate::store::rocksdb::audit_file::AuditFile::new(
            dir.path(),
        ));
        let key_file = dir.path().join("console.keys");
        let keys = Keyring::load_or_create(&key_file).unwrap();
        let mut secrets = Vec::new();
        for (name, role) in [("ann", Role::Admin), ("aud", Role::Auditor)] {
            let e = users::add(users.as_ref(), &keys, name, role, &[], PW)
                .await
                .unwrap();
            secrets.push(
                data_encoding::BASE32_NOPAD
                    .decode(e.secret.as_bytes())
                    .unwrap(),
            );
        }
        let spool = Spool::open(
            &dir.path().join("spool"),
            Keyring::load_or_create(&dir.path().join("spool.keys")).unwrap(),
            Arc::new(crate::telemetry::metrics::Metrics::new()),
        )
        .await
        .unwrap();
        let c = Arc::new(Console::new(
            Arc::new(config),
            users,
            audit.clone(),
            Keyring::load(&key_file).unwrap(),
            spool,
        ));
        Setup {
            _dir: dir,
            app: router(c.clone()),
            c,
            audit,
            secrets,
        }
    }

    fn req(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Request {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "localhost:9025");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if method == "POST" {
            b = b.header("content-type", "application/x-www-form-urlencoded");
        }
        let mut r = b.body(Body::from(body.to_string())).unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(Peer("127.0.0.1:1".parse().unwrap())));
        r
    }

    async fn send(app: &Router, r: Request) -> Response {
        tower_service::Service::call(&mut app.clone(), r)
            .await
            .unwrap()
    }

    /// The value `Set-Cookie` gives cookie `name`.
    fn set_cookie_value(r: &Response, name: &str) -> Option<String> {
        r.headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .map(|v| v.split(';').next().unwrap_or("").to_string())
    }

    /// Signs user `i` of the setup in; the session cookie.
    async fn signed_in(s: &Setup, name: &str, i: usize) -> String {
        let r = send(&s.app, req("GET", "/console/", &[], "")).await;
        let form = set_cookie_value(&r, session::FORM_COOKIE).expect("a form cookie");
        let code = totp::code_at(&s.secrets[i], totp::step_at(chrono::Utc::now()));
        let cookie = format!("{}={form}", session::FORM_COOKIE);
        let body = format!(
            "csrf={}&name={name}&password={}&code={code}",
            s.c.csrf(&form),
            PW.replace(' ', "+")
        );
        let r = send(
            &s.app,
            req("POST", "/console/sign-in", &[("cookie", &cookie)], &body),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{name} signs in");
        set_cookie_value(&r, session::SESSION_COOKIE).expect("a session cookie")
    }

    #[tokio::test]
    async fn forms_need_their_csrf_token_and_the_consoles_own_origin() {
        let s = setup().await;
        let r = send(&s.app, req("GET", "/console/", &[], "")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'"));
        let form = set_cookie_value(&r, session::FORM_COOKIE).unwrap();
        let cookie = format!("{}={form}", session::FORM_COOKIE);
        let code = totp::code_at(&s.secrets[0], totp::step_at(chrono::Utc::now()));
        let body = |csrf: &str| {
            format!(
                "csrf={csrf}&name=ann&password={}&code={code}",
                PW.replace(' ', "+")
            )
        };
        let other = s.c.csrf(&"0".repeat(64));
        for (headers, csrf, why) in [
            (vec![], s.c.csrf(&form), "no form cookie"),
            (
                vec![("cookie", cookie.as_str())],
                other.clone(),
                "a token bound to another cookie",
            ),
            (
                vec![("cookie", cookie.as_str())],
                "00".to_string(),
                "a forged token",
            ),
        ] {
            let r = send(
                &s.app,
                req("POST", "/console/sign-in", &headers, &body(&csrf)),
            )
            .await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{why}");
            assert!(
                set_cookie_value(&r, session::SESSION_COOKIE).is_none(),
                "{why}"
            );
        }
        let foreign = [("cookie", cookie.as_str()), ("origin", "https://evil.test")];
        let r = send(
            &s.app,
            req(
                "POST",
                "/console/sign-in",
                &foreign,
                &body(&s.c.csrf(&form)),
            ),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "a foreign Origin");
        let mut rebound = req("GET", "/console/", &[], "");
        rebound
            .headers_mut()
            .insert("host", HeaderValue::from_static("evil.test"));
        assert_eq!(
            send(&s.app, rebound).await.status(),
            StatusCode::FORBIDDEN,
            "a foreign Host"
        );

        // Signed in: a search needs the session's token too.
        let session = signed_in(&s, "ann", 0).await;
        let cookie = format!("{}={session}", session::SESSION_COOKIE);
        let search = |csrf: &str| {
            req(
                "GET",
                &format!("/console/trace?csrf={csrf}"),
                &[("cookie", &cookie)],
                "",
            )
        };
        assert_eq!(
            send(&s.app, search(&other)).await.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            send(&s.app, search(&s.c.csrf(&session))).await.status(),
            StatusCode::OK
        );
        let log = s.audit.read(None).await.unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["console.sign-in", "console.trace"],
            "one search audited, the refused one not run"
        );
        assert!(log[1].detail.starts_with("by ann: "), "{}", log[1].detail);
    }

    #[tokio::test]
    async fn roles_are_enforced_on_the_server() {
        let s = setup().await;
        let aud = signed_in(&s, "aud", 1).await;
        let cookie = format!("{}={aud}", session::SESSION_COOKIE);
        let get = |uri: &str| req("GET", uri, &[("cookie", &cookie)], "");
        for uri in [
            "/console/trace",
            "/console/trace/0000000000000001/0",
            "/console/dashboard",
            "/console/archive",
        ] {
            assert_eq!(
                send(&s.app, get(uri)).await.status(),
                StatusCode::FORBIDDEN,
                "{uri}"
            );
        }
        assert_eq!(
            send(&s.app, get("/console/audit")).await.status(),
            StatusCode::OK
        );
        let ann = signed_in(&s, "ann", 0).await;
        let cookie = format!("{}={ann}", session::SESSION_COOKIE);
        let get = |uri: &str| req("GET", uri, &[("cookie", &cookie)], "");
        assert_eq!(
            send(&s.app, get("/console/audit")).await.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            send(&s.app, get("/console/archive")).await.status(),
            StatusCode::FORBIDDEN,
            "admins never read the archive"
        );
        assert_eq!(
            send(&s.app, get("/console/dashboard")).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            send(&s.app, get("/console/trace/0000000000000001/0"))
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
        let denied = s
            .audit
            .read(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "console.denied")
            .count();
        assert_eq!(denied, 6, "every refusal audited");
        // Without a session: to the sign-in page.
        let r = send(&s.app, req("GET", "/console/trace", &[], "")).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }

    #[test]
    fn only_the_consoles_own_origin_is_taken() {
        assert!(!foreign_origin(&headers(&[("host", "localhost:9025")])));
        assert!(!foreign_origin(&headers(&[
            ("host", "localhost:9025"),
            ("origin", "https://localhost:9025")
        ])));
        assert!(foreign_origin(&headers(&[
            ("host", "localhost:9025"),
            ("origin", "https://evil.test")
        ])));
        assert!(foreign_origin(&headers(&[
            ("host", "localhost:9025"),
            ("origin", "https://localhost:9026")
        ])));
        assert!(foreign_origin(&headers(&[
            ("host", "localhost:9025"),
            ("origin", "null")
        ])));
    }
}
