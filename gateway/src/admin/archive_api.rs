//! The archive and audit API on the admin listener, for archivists'
//! tools: every route takes `Authorization: Bearer <token>` of a token
//! made with `sealgate token create`, and checks its role. Every access is
//! written to the audit log with the token's name.
//!
//! - `GET  /api/v1/archive/search?q=&limit=`      archivist
//! - `GET  /api/v1/archive/items/{id}[?raw=true]`  archivist
//! - `POST /api/v1/archive/exports {query, format}` archivist: written sealed
//!   under `<data_dir>/exports/<name>/` (`export_shelf.rs`), each file fetched
//!   once with `GET /api/v1/archive/exports/{name}/{file}`
//! - `GET  /api/v1/archive/verify`                 archivist, auditor
//! - `POST /api/v1/archive/checkpoint`             admin, auditor: sign the head now
//! - `GET|POST /api/v1/archive/holds`, `DELETE /api/v1/archive/holds/{name}`  admin
//! - `GET  /api/v1/audit[?tail=N]`, `GET /api/v1/audit/verify`  auditor

use super::tokens::{self, Role};
use crate::archive::retention::HoldError;
use crate::archive::worker::Journal;
use crate::audit::{self, Actor};
use crate::config::Config;
use crate::store::holds::HoldStoreError;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;

/// What the archive routes need.
#[derive(Clone)]
pub struct ArchiveApi {
    /// The gateway's journal: its archive and search index.
    pub journal: Arc<Journal>,
    /// The configuration.
    pub config: Arc<Config>,
    /// The node's stores: API tokens (by which callers are known), legal
    /// holds, the audit log.
    pub stores: crate::store::Stores,
    /// Exports waiting for their download, sealed.
    pub exports: Arc<super::export_shelf::ExportShelf>,
}

/// The archive and audit routes.
pub fn router(state: ArchiveApi) -> Router {
    Router::new()
        .route("/api/v1/archive/search", get(search))
        .route("/api/v1/archive/items/{id}", get(item))
        .route("/api/v1/archive/exports", axum::routing::post(export))
        .route("/api/v1/archive/exports/{name}/{file}", get(export_file))
        .route("/api/v1/archive/verify", get(verify))
        .route(
            "/api/v1/archive/checkpoint",
            axum::routing::post(checkpoint),
        )
        .route("/api/v1/archive/holds", get(holds).post(hold_add))
        .route("/api/v1/archive/holds/{name}", delete(hold_rm))
        .route("/api/v1/audit", get(audit_log))
        .route("/api/v1/audit/verify", get(audit_verify))
        .with_state(state)
}

/// An API error: a status and a JSON `{"error": ...}` body.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// The caller's token name, if its role is one of `allowed`.
async fn caller(s: &ArchiveApi, headers: &HeaderMap, allowed: &[Role]) -> Result<String, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "a bearer token is required".into(),
            )
        })?;
    let entry = tokens::lookup(s.stores.tokens.as_ref(), token)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            tracing::warn!("archive API request with an unknown token");
            ApiError(StatusCode::UNAUTHORIZED, "unknown or revoked token".into())
        })?;
    if !allowed.contains(&entry.role) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("role {} may not do this", entry.role.as_str()),
        ));
    }
    Ok(entry.name)
}

/// Writes an access to the audit log; when it cannot be written, the
/// request fails and nothing is given out.
async fn record(
    s: &ArchiveApi,
    who: &str,
    action: &str,
    id: &str,
    detail: &str,
) -> Result<(), ApiError> {
    audit::record(
        s.stores.audit.as_ref(),
        Actor::Api,
        action,
        id,
        &format!("token {who}: {detail}"),
    )
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

async fn search(
    State(s): State<ArchiveApi>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = caller(&s, &headers, &[Role::Archivist]).await?;
    let j = s.journal.clone();
    let query = q.q.clone();
    let limit = q.limit;
    let hits = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        // Each hit is read and decrypted: keep a page small.
        let hits = j.index().search(&query, limit.min(1000));
        if hits.is_ok() {
            j.metrics()
                .archive_search_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        hits
    })
    .await
    .map_err(internal)?;
    let found = match hits {
        Ok(hits) => summaries(s.journal.archive().as_ref(), &hits.ids)
            .await
            .map(|items| (hits.total, items)),
        Err(e) => Err(e),
    };
    let (total, items) = match found {
        Ok(x) => x,
        Err(crate::archive::SearchError::Query(e)) => {
            return Err(ApiError(StatusCode::BAD_REQUEST, e.to_string()))
        }
        Err(e) => return Err(internal(e)),
    };
    record(
        &s,
        &who,
        "archive.search",
        &format!("{total} hits"),
        &format!("query {:?}", q.q),
    )
    .await?;
    Ok(Json(
        serde_json::json!({ "query": q.q, "total": total, "items": items }),
    ))
}

/// The summaries of the items `ids` that are there.
async fn summaries(
    archive: &dyn crate::archive::ArchiveStore,
    ids: &[u64],
) -> Result<Vec<serde_json::Value>, crate::archive::SearchError> {
    let mut items = Vec::new();
    for id in ids {
        if let Some(item) = archive.item(*id).await? {
            items.push(super::archive::summary(&item));
        }
    }
    Ok(items)
}

#[derive(Deserialize)]
struct ItemQuery {
    #[serde(default)]
    raw: bool,
}

async fn item(
    State(s): State<ArchiveApi>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Query(q): Query<ItemQuery>,
) -> Result<Response, ApiError> {
    let who = caller(&s, &headers, &[Role::Archivist]).await?;
    let archive = s.journal.archive().clone();
    let item = async {
        let Some(item) = archive.item(id).await? else {
            return Ok(None);
        };
        let raw = if q.raw {
            archive.raw(&item.captures[0].1.sha256).await?
        } else {
            None
        };
        Ok::<_, crate::archive::ArchiveError>(Some((item, raw)))
    }
    .await
    .map_err(internal)?;
    let Some((item, raw)) = item else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no archived item {id}"),
        ));
    };
    record(
        &s,
        &who,
        if q.raw {
            "archive.read"
        } else {
            "archive.view"
        },
        &id.to_string(),
        "",
    )
    .await?;
    Ok(match raw {
        Some(bytes) => ([(header::CONTENT_TYPE, "message/rfc822")], bytes).into_response(),
        None => Json(item).into_response(),
    })
}

#[derive(Deserialize)]
struct ExportRequest {
    query: String,
    #[serde(default)]
    format: Option<String>,
}

/// Why an export the API was asked for was not written.
#[derive(Debug, thiserror::Error)]
enum ExportFailed {
    /// The query does not parse, or the index cannot be searched.
    #[error(transparent)]
    Query(#[from] crate::archive::SearchError),
    /// The archive's signing key cannot be loaded.
    #[error(transparent)]
    Key(#[from] crate::archive::ArchiveError),
    /// Writing the export failed.
    #[error(transparent)]
    Write(#[from] crate::archive::export::ExportError),
}

async fn export(
    State(s): State<ArchiveApi>,
    headers: HeaderMap,
    Json(req): Json<ExportRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = caller(&s, &headers, &[Role::Archivist]).await?;
    let format = match req.format.as_deref().unwrap_or("mbox") {
        "mbox" => crate::archive::export::Format::Mbox,
        "eml" => crate::archive::export::Format::Eml,
        other => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("format {other:?}: use mbox or eml"),
            ))
        }
    };
    let (name, out, seal) = s.exports.reserve();
    let (j, config, query) = (s.journal.clone(), s.config.clone(), req.query.clone());
    let (out2, seal2) = (out.clone(), seal.clone());
    // The export writes its files as it goes: all of it off the async
    // workers, the store's reads driven from there.
    let runtime = tokio::runtime::Handle::current();
    let done = tokio::task::spawn_blocking(move || -> Result<_, ExportFailed> {
        let mut ids = j.index().search_all(&query)?;
        ids.reverse();
        let key = crate::archive::signer(&config)?;
        let dest = crate::archive::export::Destination::Sealed(&out2, &seal2);
        Ok(runtime.block_on(crate::archive::export::export(
            j.archive().as_ref(),
            &ids,
            &query,
            format,
            dest,
            &key,
            |_, _| {},
        ))?)
    })
    .await
    .map_err(internal)?;
    let done = match done {
        Ok(done) => done,
        Err(e) => {
            s.exports.discard(&out);
            return Err(ApiError(StatusCode::BAD_REQUEST, e.to_string()));
        }
    };
    record(
        &s,
        &who,
        "archive.export",
        &format!("{} items", done.items),
        &format!("query {:?} as {name}", req.query),
    )
    .await?;
    let files = s.exports.store(&name, seal).map_err(internal)?;
    Ok(Json(serde_json::json!({
        "export": name,
        "items": done.items,
        "bytes": done.bytes,
        "files": files,
    })))
}

/// One file of an export, once: it is deleted as it is handed out.
async fn export_file(
    State(s): State<ArchiveApi>,
    headers: HeaderMap,
    Path((name, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let who = caller(&s, &headers, &[Role::Archivist]).await?;
    // Names are ours (timestamp-hex, file names we wrote): refuse anything else.
    let safe = |x: &str| {
        !x.is_empty()
            && x.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            && !x.starts_with('.')
    };
    if !safe(&name) || !safe(&file) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "bad export or file name".into(),
        ));
    }
    record(&s, &who, "archive.export.download", &name, &file).await?;
    let shelf = s.exports.clone();
    let (name2, file2) = (name.clone(), file.clone());
    let bytes = tokio::task::spawn_blocking(move || shelf.take(&name2, &file2))
        .await
        .map_err(internal)?
        .map_err(|e| match e {
            super::export_shelf::ShelfError::NotFound => {
                ApiError(StatusCode::NOT_FOUND, e.to_string())
            }
            other => internal(other),
        })?;
    let kind = if file.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    };
    Ok(([(header::CONTENT_TYPE, kind)], bytes).into_response())
}

async fn verify(
    State(s): State<ArchiveApi>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = caller(&s, &headers, &[Role::Archivist, Role::Auditor]).await?;
    let archive = s.journal.archive();
    let key = archive.signer_public_key();
    let r = archive
        .verify_signed_by(1, key.as_deref())
        .await
        .map_err(internal)?;
    if r.damaged.is_empty() {
        s.journal.metrics().archive_verified.set(r.head_seq as i64);
    }
    record(
        &s,
        &who,
        "archive.verify",
        &format!("head {}", r.head_seq),
        &format!("{} damaged", r.damaged.len()),
    )
    .await?;
    Ok(Json(
        serde_json::json!({ "ok": r.damaged.is_empty(), "report": r }),
    ))
}

async fn checkpoint(
    State(s): State<ArchiveApi>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = caller(&s, &headers, &[Role::Admin, Role::Auditor]).await?;
    let cp = s.journal.archive().checkpoint().await.map_err(internal)?;
    let what = cp.as_ref().map_or("head already covered".to_string(), |c| {
        format!("head {} at {}", c.head, c.covers)
    });
    record(&s, &who, "archive.checkpoint", &what, "").await?;
    Ok(Json(serde_json::json!({ "checkpoint": cp })))
}

async fn holds(
    State(s): State<ArchiveApi>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller(&s, &headers, &[Role::Admin]).await?;
    let h = s.stores.holds.list().await.map_err(internal)?;
    Ok(Json(serde_json::to_value(h).map_err(internal)?))
}

#[derive(Deserialize)]
struct HoldRequest {
    name: String,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    addresses: Vec<String>,
}

async fn hold_add(
    State(s): State<ArchiveApi>,
    headers: HeaderMap,
    Json(req): Json<HoldRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let who = caller(&s, &headers, &[Role::Admin]).await?;
    let hold = crate::store::holds::Hold {
        name: req.name.clone(),
        query: req.query,
        addresses: req
            .addresses
            .iter()
            .map(|a| a.to_ascii_lowercase())
            .collect(),
        created_at: chrono::Utc::now(),
    };
    let detail = serde_json::to_string(&hold).unwrap_or_default();
    crate::archive::retention::place(s.stores.holds.as_ref(), hold)
        .await
        .map_err(|e| match e {
            HoldError::Store(HoldStoreError::Backend(e)) => internal(e),
            e => ApiError(StatusCode::BAD_REQUEST, e.to_string()),
        })?;
    record(&s, &who, "archive.hold.add", &req.name, &detail).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "placed": req.name })),
    ))
}

async fn hold_rm(
    State(s): State<ArchiveApi>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = caller(&s, &headers, &[Role::Admin]).await?;
    let gone = s.stores.holds.release(&name).await.map_err(|e| match e {
        HoldStoreError::Backend(e) => internal(e),
        e => ApiError(StatusCode::NOT_FOUND, e.to_string()),
    })?;
    record(
        &s,
        &who,
        "archive.hold.remove",
        &name,
        &serde_json::to_string(&gone).unwrap_or_default(),
    )
    .await?;
    Ok(Json(serde_json::json!({ "released": name })))
}

#[derive(Deserialize)]
struct AuditQuery {
    tail: Option<usize>,
}

async fn audit_log(
    State(s): State<ArchiveApi>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = caller(&s, &headers, &[Role::Auditor]).await?;
    let entries = s.stores.audit.read(q.tail).await.map_err(internal)?;
    record(
        &s,
        &who,
        "audit.read",
        &format!("{} lines", entries.len()),
        "",
    )
    .await?;
    Ok(Json(serde_json::to_value(entries).map_err(internal)?))
}

async fn audit_verify(
    State(s): State<ArchiveApi>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller(&s, &headers, &[Role::Auditor]).await?;
    let r = s.stores.audit.verify().await.map_err(internal)?;
    Ok(Json(
        serde_json::json!({ "ok": r.first_broken.is_none(), "report": r }),
    ))
}
