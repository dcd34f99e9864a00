//! The sender's withdraw link: a page that asks, and the form that erases.

use super::revoke;
use super::signin::{expired_form, form_ok, CsrfForm};
use super::{form_cookie, pages, with_cookie, Portal, Refusal, Shared};
use crate::audit::Actor;
use crate::model::escrow::EscrowEntry;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// The entry a withdraw link names, or the page to show instead.
pub(super) async fn by_revoke_token(p: &Portal, token: &str) -> Result<EscrowEntry, Refusal> {
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
    match p.escrow.by_revoke_token(token).await {
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

pub(super) async fn revoke_page(
    State(p): State<Shared>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let entry = match by_revoke_token(&p, &token).await {
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

pub(super) async fn revoke_confirm(
    State(p): State<Shared>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let entry = match by_revoke_token(&p, &token).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    if !form_ok(&p, &headers, &f.csrf) {
        return expired_form(&p);
    }
    match revoke(
        p.escrow.as_ref(),
        p.audit.as_ref(),
        &p.metrics,
        &entry.id,
        Actor::Portal,
    )
    .await
    {
        Ok(_) => p.say(
            StatusCode::OK,
            "Message withdrawn",
            "The message was withdrawn and erased. The recipient can no longer read it.",
        ),
        Err(e) => p.failed(e),
    }
}
