//! The admin HTTP listener: `/metrics` (Prometheus) and a small JSON API for
//! the queue, used by `sealgate queue` while the gateway runs, and the
//! message trace (`/api/v1/trace`, the console's search).

use super::queue::AdminAction;
use super::queue::QueueSummary;
use crate::model::id::BadQueueId;
use crate::spool::{Durability, QueueId, QueuedMessage, Spool, SpoolError};
use crate::telemetry::metrics::Metrics;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete as delete_route, get, post};
use axum::{Json, Router};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What the handlers need.
#[derive(Clone)]
pub struct AdminState {
    /// The live spool.
    pub spool: Spool,
    /// Destinations that once took TLS.
    pub tls_memory: Arc<dyn crate::store::tls_memory::TlsMemory>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Canonical data directory, so a CLI can tell it reached the right instance.
    pub data_dir: String,
    /// Bearer token required by `/api/v1/...` (the admin token file's).
    pub token: Arc<str>,
    /// The running deliver stage, if delivery is enabled.
    pub deliver: Option<crate::deliver::scheduler::Commands>,
    /// The seal stage's input: a released message goes there next.
    pub seal: crate::spool::pipe::Handoff,
    /// The configuration (policy, for releases).
    pub config: Arc<crate::config::Config>,
    /// The keystore.
    pub keys: crate::keys::Keys,
    /// The MTA-STS cache delivery uses (for `explain`).
    pub mta_sts: Option<Arc<crate::deliver::mta_sts::MtaSts>>,
    /// The DLP rules in force, when DLP is on (for `explain`).
    pub rules: Option<crate::inspect::worker::SharedRules>,
    /// The escrow store, when the portal is on.
    pub escrow: Option<Arc<dyn crate::store::escrow::EscrowStore>>,
    /// The archive and audit API (role tokens of its own), when the archive is on.
    pub archive: Option<super::archive_api::ArchiveApi>,
    /// The node's stores (the audit log).
    pub stores: crate::store::Stores,
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    let api = Router::new()
        .route("/api/v1/instance", get(instance))
        .route("/api/v1/queue", get(list))
        .route("/api/v1/queue/{id}", get(show).delete(delete))
        .route("/api/v1/queue/{id}/message", get(message))
        .route("/api/v1/queue/{id}/retry", post(retry))
        .route("/api/v1/queue-retry-all", post(retry_all))
        .route(
            "/api/v1/explain",
            post(explain).layer(axum::extract::DefaultBodyLimit::max(
                state.config.limits.max_message_size as usize,
            )),
        )
        .route("/api/v1/quarantine/{id}/release", post(quarantine_release))
        .route("/api/v1/quarantine/{id}", delete_route(quarantine_delete))
        .route("/api/v1/portal/{id}/revoke", post(portal_revoke))
        .route("/api/v1/trace", get(trace))
        .route("/api/v1/tls-memory", get(tls_memory))
        .route("/api/v1/tls-memory/{domain}", delete_route(tls_forget))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    // Metrics and health carry no content and stay open for scrapers.
    let archive = state.archive.clone();
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(api)
        .with_state(state.clone());
    // The archive routes check their own role tokens; foreign pages are
    // refused there as here.
    match archive {
        Some(a) => app.merge(
            super::archive_api::router(a)
                .route_layer(middleware::from_fn_with_state(state, refuse_foreign)),
        ),
        None => app,
    }
}

/// Refuses what a browser would send for a foreign page (see [`same_host`]).
async fn refuse_foreign(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    match same_host(req.headers(), s.tls_name()) {
        Ok(()) => next.run(req).await,
        Err(why) => {
            tracing::warn!(reason = why, "admin API request refused");
            ApiError(StatusCode::FORBIDDEN, why.into()).into_response()
        }
    }
}

impl AdminState {
    /// The certificate's name, which clients of an HTTPS listener send as
    /// `Host`; a rebinding page cannot present it, as TLS checks the name.
    fn tls_name(&self) -> Option<&str> {
        self.config
            .admin
            .tls
            .then(|| self.config.admin_server_name())
    }
}

/// Checks `Authorization: Bearer <token>`, and refuses what a browser
/// would send for a foreign page: an `Origin` header (the API has no web
/// client of its own) or a `Host` that is a name other than `localhost`
/// (DNS rebinding points a foreign name at this address).
async fn require_token(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    if let Err(why) = same_host(req.headers(), s.tls_name()) {
        tracing::warn!(reason = why, "admin API request refused");
        return ApiError(StatusCode::FORBIDDEN, why.into()).into_response();
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compared without an early exit, so timing does not reveal the token.
    if !bool::from(given.as_bytes().ct_eq(s.token.as_bytes())) {
        tracing::warn!("admin API request with a missing or wrong token");
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (the admin token file's; `sealgate` commands send it)"
                .into(),
        )
        .into_response();
    }
    next.run(req).await
}

/// `Ok` unless the request carries an `Origin` or names a host other than
/// an IP address, `localhost` or `tls_name`.
fn same_host(headers: &axum::http::HeaderMap, tls_name: Option<&str>) -> Result<(), &'static str> {
    if headers.contains_key(header::ORIGIN) {
        return Err("requests from web pages (with an Origin header) are refused");
    }
    host_allowed(headers, tls_name)
}

/// `Ok` when the `Host` header names an IP address, `localhost` or
/// `tls_name`: a DNS-rebinding page names a foreign host. The API's check
/// and the console's (which takes its own pages' `Origin`) share it.
pub fn host_allowed(
    headers: &axum::http::HeaderMap,
    tls_name: Option<&str>,
) -> Result<(), &'static str> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Strip a port: `[::1]:9025`, `127.0.0.1:9025`, `localhost:9025`.
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    if name.is_empty()
        || name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok()
        || tls_name.is_some_and(|n| name.eq_ignore_ascii_case(n))
    {
        Ok(())
    } else {
        Err("the Host header must be an IP address, localhost or the admin certificate's name")
    }
}

/// Writes an admin action to the audit log before it is done.
async fn audit(
    s: &AdminState,
    action: AdminAction,
    subject: &str,
    n: usize,
) -> Result<(), ApiError> {
    super::queue::audit(
        s.stores.audit.as_ref(),
        crate::audit::Actor::Api,
        action,
        subject,
        n,
    )
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::http_server::test_headers as headers;

    #[test]
    fn foreign_pages_and_rebound_names_are_refused() {
        for ok in [
            "127.0.0.1:9025",
            "localhost:9025",
            "[::1]:9025",
            "10.0.0.5",
            "",
        ] {
            assert!(same_host(&headers(&[("host", ok)]), None).is_ok(), "{ok}");
        }
        assert!(same_host(&headers(&[("host", "evil.example:9025")]), None).is_err());
        assert!(same_host(
            &headers(&[
                ("host", "127.0.0.1:9025"),
                ("origin", "https://evil.example")
            ]),
            None
        )
        .is_err());
        // Over HTTPS the certificate's name is the host, and only it.
        let tls = Some("mx1.example.org");
        assert!(same_host(&headers(&[("host", "MX1.example.org:9025")]), tls).is_ok());
        assert!(same_host(&headers(&[("host", "evil.example:9025")]), tls).is_err());
        assert!(same_host(&headers(&[("host", "mx1.example.org:9025")]), None).is_err());
    }
}

/// An API error: a status and a JSON `{"error": ...}` body.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<crate::store::BackendError> for ApiError {
    fn from(e: crate::store::BackendError) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// In a cluster, makes this node the holder of message `id`, so the
/// stages here work the change an operator made through this node.
async fn claim(s: &AdminState, id: QueueId) -> Result<(), ApiError> {
    if let Some(c) = &s.stores.cluster {
        c.nodes.claim(id).await.map_err(cluster_error)?;
    }
    Ok(())
}

fn cluster_error(e: crate::store::postgres::PgError) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

impl From<SpoolError> for ApiError {
    fn from(e: SpoolError) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

fn commands(s: &AdminState) -> Result<&crate::deliver::scheduler::Commands, ApiError> {
    s.deliver.as_ref().ok_or_else(|| {
        ApiError(
            StatusCode::CONFLICT,
            "delivery is disabled on this gateway ([delivery] enabled = false)".into(),
        )
    })
}

async fn retry(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let msg = find(&s, &id).await?;
    let commands = commands(&s)?;
    audit(&s, AdminAction::Retry, &msg.id.to_string(), 0).await?;
    match &s.stores.cluster {
        // Another node holds it: that node retries (its heartbeat reads the ask).
        Some(c) if !s.spool.owns(msg.id).await? => {
            c.nodes
                .ask_retry(Some(msg.id))
                .await
                .map_err(cluster_error)?;
        }
        _ => {
            let _ = commands.send(crate::deliver::scheduler::Command::Retry(msg.id));
        }
    }
    tracing::info!(id = %msg.id, "retry requested by an admin");
    Ok(Json(
        serde_json::json!({ "retrying": [msg.id.to_string()] }),
    ))
}

/// `?from=&to=a,b[&inbound=true]` of an explain request.
#[derive(serde::Deserialize)]
struct ExplainQuery {
    from: String,
    to: String,
    #[serde(default)]
    inbound: bool,
}

/// `POST /api/v1/explain?from=A&to=B,C` with the message as the body: what
/// `sealgate explain --json` prints, for a mail client add-in or a policy
/// review. Nothing is queued or sent.
async fn explain(
    State(s): State<AdminState>,
    axum::extract::Query(q): axum::extract::Query<ExplainQuery>,
    body: axum::body::Bytes,
) -> Result<Json<super::explain::Explanation>, ApiError> {
    let bad = |e: String| ApiError(StatusCode::BAD_REQUEST, e);
    crate::model::address::Mailbox::parse(&q.from).map_err(|e| bad(format!("from: {e}")))?;
    let rcpts = q
        .to
        .split(',')
        .map(|t| {
            crate::model::address::Mailbox::parse(t.trim()).map_err(|e| bad(format!("to {t}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rules = s.rules.as_ref().map(|r| crate::locks::read(r).clone());
    let direction = if q.inbound {
        crate::spool::Direction::Inbound
    } else {
        crate::spool::Direction::Outbound
    };
    // Inspection is CPU work: off the async workers.
    let (config, message) = (s.config.clone(), body.clone());
    let dlp = tokio::task::spawn_blocking(move || {
        super::explain::inspect_message(&config, rules.as_deref(), &message)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    s.keys
        .store
        .refresh()
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let raised = super::explain::raised_for(
        &s.config,
        &s.keys,
        s.mta_sts.as_deref(),
        direction,
        &body,
        &rcpts,
        dlp.as_ref(),
    )
    .await;
    Ok(Json(super::explain::explain(
        &s.config, &s.keys, dlp, direction, &body, &rcpts, &raised,
    )))
}

/// `?seal=` of a release.
#[derive(serde::Deserialize)]
struct ReleaseQuery {
    seal: Option<crate::model::verdict::Seal>,
}

async fn quarantine_release(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ReleaseQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut msg = find(&s, &id).await?;
    s.keys
        .store
        .refresh()
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let n = super::quarantine::release(&mut msg, &s.config, &s.keys, q.seal)
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    audit(&s, AdminAction::Release(q.seal), &msg.id.to_string(), n).await?;
    claim(&s, msg.id).await?;
    s.spool.update(&msg, Durability::Synced).await?;
    // Through the seal stage, which hands it on to delivery.
    s.seal.send(msg.id);
    Ok(Json(
        serde_json::json!({ "released": msg.id.to_string(), "recipients": n }),
    ))
}

async fn quarantine_delete(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut msg = find(&s, &id).await?;
    let n = super::quarantine::delete(&mut msg, &s.config)
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    audit(&s, AdminAction::DeleteQuarantined, &msg.id.to_string(), n).await?;
    claim(&s, msg.id).await?;
    s.spool.update(&msg, Durability::Synced).await?;
    // Delivery sends the sender's DSN now.
    if let Some(c) = &s.deliver {
        let _ = c.send(crate::deliver::scheduler::Command::Retry(msg.id));
    }
    Ok(Json(
        serde_json::json!({ "deleted": msg.id.to_string(), "recipients": n }),
    ))
}

async fn retry_all(State(s): State<AdminState>) -> Result<Json<serde_json::Value>, ApiError> {
    let ids: Vec<String> = s
        .spool
        .list()
        .await?
        .iter()
        .map(|m| m.id.to_string())
        .collect();
    let commands = commands(&s)?;
    audit(&s, AdminAction::RetryAll, "*", ids.len()).await?;
    match &s.stores.cluster {
        // Every node (this one too) retries its own mail at its next heartbeat.
        Some(c) => {
            c.nodes.ask_retry(None).await.map_err(cluster_error)?;
        }
        None => {
            let _ = commands.send(crate::deliver::scheduler::Command::RetryAll);
        }
    }
    tracing::info!(
        messages = ids.len(),
        "retry of the whole queue requested by an admin"
    );
    Ok(Json(serde_json::json!({ "retrying": ids })))
}

async fn tls_memory(State(s): State<AdminState>) -> Result<Json<serde_json::Value>, ApiError> {
    let list = s.tls_memory.list().await?;
    Ok(Json(serde_json::json!(list
        .into_iter()
        .map(|r| serde_json::json!({"domain": r.domain, "since": r.since.to_rfc3339()}))
        .collect::<Vec<_>>())))
}

async fn tls_forget(
    State(s): State<AdminState>,
    Path(domain): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let domain = crate::model::address::ascii_domain(&domain);
    let known = s.tls_memory.remembered(&domain).await?;
    if known.is_some() {
        audit(&s, AdminAction::ForgetTls, &domain, 0).await?;
    }
    if !s.tls_memory.forget(&domain).await? {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("{domain} is not in the TLS memory"),
        ));
    }
    tracing::info!(domain = %domain, "TLS memory cleared by an admin");
    Ok(Json(serde_json::json!({ "forgotten": domain })))
}

async fn portal_revoke(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let escrow = s.escrow.as_ref().ok_or_else(|| {
        ApiError(
            StatusCode::CONFLICT,
            "the portal is off on this gateway ([portal] enabled = false)".into(),
        )
    })?;
    match crate::portal::revoke(
        escrow.as_ref(),
        s.stores.audit.as_ref(),
        &s.metrics,
        &id,
        crate::audit::Actor::Api,
    )
    .await
    {
        Ok(Some(e)) => Ok(Json(
            serde_json::json!({ "revoked": e.id, "state": e.state }),
        )),
        Ok(None) => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no portal message {id}"),
        )),
        Err(e) => Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

fn parse_id(id: &str) -> Result<QueueId, ApiError> {
    id.parse()
        .map_err(|e: BadQueueId| ApiError(StatusCode::BAD_REQUEST, e.to_string()))
}

async fn find(s: &AdminState, id: &str) -> Result<QueuedMessage, ApiError> {
    let id = parse_id(id)?;
    s.spool.get(id).await?.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no message {id} in the queue"),
        )
    })
}

async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn instance(State(s): State<AdminState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "data_dir": s.data_dir }))
}

/// `GET /api/v1/trace?from=&to=&sender=&recipient=&queue_id=&message_id=&status=&direction=`:
/// the console's trace search (one row per recipient), audited first.
async fn trace(
    State(s): State<AdminState>,
    axum::extract::Query(f): axum::extract::Query<super::trace::TraceForm>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let q = f
        .query(chrono::Utc::now())
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    crate::audit::record(
        s.stores.audit.as_ref(),
        crate::audit::Actor::Api,
        "trace",
        "",
        &q.describe(),
    )
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let found = super::trace::search(&s.spool, &q, &|_, _| true).await?;
    Ok(Json(serde_json::json!({
        "rows": found.rows,
        "truncated": found.truncated,
    })))
}

async fn list(State(s): State<AdminState>) -> Result<Json<Vec<QueueSummary>>, ApiError> {
    Ok(Json(
        s.spool
            .list()
            .await?
            .iter()
            .map(QueueSummary::from)
            .collect(),
    ))
}

async fn show(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<QueuedMessage>, ApiError> {
    // A finished message's record (with its delivery evidence) is kept a while.
    match find(&s, &id).await {
        Err(ApiError(StatusCode::NOT_FOUND, why)) => s
            .spool
            .done(parse_id(&id)?)
            .await?
            .map(Json)
            .ok_or(ApiError(StatusCode::NOT_FOUND, why)),
        other => other.map(Json),
    }
}

async fn message(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let msg = find(&s, &id).await?;
    audit(&s, AdminAction::Read, &msg.id.to_string(), 0).await?;
    let body = s.spool.read_body(&msg).await?;
    tracing::info!(id = %msg.id, "message read through the admin API");
    let mut full = msg.received_header.into_bytes();
    full.extend_from_slice(&body);
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], full).into_response())
}

async fn delete(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let msg = find(&s, &id).await?;
    super::queue::refuse_quarantined_delete(&msg)
        .map_err(|e| ApiError(StatusCode::CONFLICT, e.to_string()))?;
    let id = msg.id;
    audit(&s, AdminAction::Delete, &id.to_string(), 0).await?;
    if !s.spool.delete(id).await? {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no message {id} in the queue"),
        ));
    }
    tracing::info!(id = %id, "message deleted from the queue by an admin");
    Ok(Json(serde_json::json!({ "deleted": id.to_string() })))
}
