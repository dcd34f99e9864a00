//! The admin HTTP listener: `/metrics` (Prometheus) and a small JSON API for
//! the queue, used by `sealgate queue` while the gateway runs.

use super::metrics::Metrics;
use super::queue::QueueSummary;
use crate::spool::{QueueId, Spool};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

/// What the handlers need.
#[derive(Clone)]
pub struct AdminState {
    /// The live spool.
    pub spool: Spool,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Canonical data directory, so a CLI can tell it reached the right instance.
    pub data_dir: String,
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/v1/instance", get(instance))
        .route("/api/v1/queue", get(list))
        .route("/api/v1/queue/{id}", get(show).delete(delete))
        .route("/api/v1/queue/{id}/message", get(message))
        .with_state(state)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": msg.into() }))).into_response()
}

fn parse_id(id: &str) -> Result<QueueId, Response> {
    id.parse()
        .map_err(|e: String| error(StatusCode::BAD_REQUEST, e))
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

async fn list(State(s): State<AdminState>) -> Response {
    match s.spool.list() {
        Ok(l) => Json(l.iter().map(QueueSummary::from).collect::<Vec<_>>()).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn show(State(s): State<AdminState>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    match s.spool.get(id) {
        Ok(Some(m)) => Json(m).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no message {id} in the queue"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn message(State(s): State<AdminState>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let msg = match s.spool.get(id) {
        Ok(Some(m)) => m,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no message {id} in the queue"),
            )
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match s.spool.read_body(&msg) {
        Ok(body) => {
            tracing::info!(id = %id, "message body read through the admin API");
            let mut full = msg.received_header.into_bytes();
            full.extend_from_slice(&body);
            ([(header::CONTENT_TYPE, "message/rfc822")], full).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn delete(State(s): State<AdminState>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    match s.spool.delete(id).await {
        Ok(true) => {
            tracing::info!(id = %id, "message deleted from the queue by an admin");
            Json(serde_json::json!({ "deleted": id.to_string() })).into_response()
        }
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            format!("no message {id} in the queue"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
