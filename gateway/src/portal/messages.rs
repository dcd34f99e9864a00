//! What a signed-in recipient does: list their messages, read one (the
//! first read sends the sender a receipt), download an attachment, reply.

use super::signin::{expired_form, require_session};
use super::{auth, pages, reply, see_other, view, Portal, Refusal, Shared};
use crate::model::address::Mailbox;
use crate::model::escrow::{EscrowEntry, EscrowState};
use crate::seal::notice::{self, Mail};
use crate::seal::portal::direction_to;
use crate::spool::{Submission, PORTAL_ORIGIN};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

pub(super) async fn inbox(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (cookie, s) = match require_session(&p, &headers).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let entries = match p.escrow.entries_for(&s.address).await {
        Ok(l) => l,
        Err(e) => return p.failed(e),
    };
    let now = chrono::Utc::now();
    // Nothing of an expired message shows, even before the sweep erases it.
    let mut mine: Vec<(EscrowEntry, String)> = Vec::new();
    for e in entries
        .into_iter()
        .filter(|e| e.recipient == s.address && e.erased_at.is_none() && e.expires_at > now)
    {
        let subject = p
            .escrow
            .peek(&e.id)
            .await
            .ok()
            .and_then(|raw| crate::model::header_fields::subject(&raw))
            .unwrap_or_default();
        mine.push((e, subject));
    }
    mine.sort_by_key(|e| std::cmp::Reverse(e.0.created_at));
    p.signed_in_page(StatusCode::OK, "Your messages", &cookie, &s.address, |_| {
        pages::inbox(&mine)
    })
}

/// Whether opening a message counts as reading it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    /// The recipient reads it: the first time marks it read.
    Read,
    /// Only its parts are needed (a download, a reply).
    Peek,
}

/// The session, the entry `id` and its content, if it is the signed-in
/// recipient's (else the sign-in, not-found or failure page).
async fn own_message(
    p: &Portal,
    headers: &HeaderMap,
    id: &str,
    open: Open,
) -> Result<(String, auth::Session, EscrowEntry, Vec<u8>), Refusal> {
    let (cookie, s) = require_session(p, headers).await?;
    let entry = own_entry(p, &s, id).await?;
    let content = match open {
        Open::Read => p.escrow.read(&entry.id).await,
        Open::Peek => p.escrow.peek(&entry.id).await,
    };
    let raw = content.map_err(|e| Box::new(p.failed(e)))?;
    Ok((cookie, s, entry, raw))
}

/// The entry `id` if the signed-in recipient may open it (else a 404 that
/// does not say whether it exists).
pub(super) async fn own_entry(
    p: &Portal,
    s: &auth::Session,
    id: &str,
) -> Result<EscrowEntry, Refusal> {
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
    match p.escrow.entry(id).await {
        Ok(Some(e)) if e.recipient == s.address => p.available(e),
        Ok(_) => Err(Box::new(nothing())),
        Err(e) => Err(Box::new(p.failed(e))),
    }
}

#[derive(Deserialize)]
pub(super) struct ReadQuery {
    #[serde(default)]
    sent: Option<String>,
}

pub(super) async fn read(
    State(p): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ReadQuery>,
) -> Response {
    let (cookie, s, entry, raw) = match own_message(&p, &headers, &id, Open::Read).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if entry.state == EscrowState::Unread {
        p.event("read", &entry.id, &entry.recipient).await;
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
    let note = q.sent.is_some().then_some("Your reply was sent.");
    let title = if rendered.subject.is_empty() {
        "Secure message".to_string()
    } else {
        rendered.subject.clone()
    };
    let max_reply = p.config.portal.max_reply_size;
    p.signed_in_page(StatusCode::OK, &title, &cookie, &s.address, |csrf| {
        pages::message(&entry, &rendered, csrf, max_reply, note)
    })
}

/// Tells the sender that the recipient opened the message (never its content).
pub(super) async fn read_receipt(p: &Portal, entry: &EscrowEntry) {
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
        Ok(()) => p.event("receipt_sent", &entry.id, &entry.sender).await,
        Err(e) => {
            tracing::warn!(error = %e, escrow = %entry.id, "portal: cannot queue a read receipt")
        }
    }
}

pub(super) async fn download(
    State(p): State<Shared>,
    Path((id, n)): Path<(String, usize)>,
    headers: HeaderMap,
) -> Response {
    let (_, _, entry, raw) = match own_message(&p, &headers, &id, Open::Peek).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some((name, bytes)) = view::parse(&raw).and_then(|m| view::attachment(&m, n)) else {
        return p.say(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such attachment.",
        );
    };
    p.event("download", &entry.id, &format!("attachment {n}"))
        .await;
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
    let encoded = view::percent_encoded(&name);
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

pub(super) async fn reply(
    State(p): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    let (cookie, s, entry, raw) = match own_message(&p, &headers, &id, Open::Peek).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    // Before the body is read: the disk has room, and the quota is not used up.
    if p.spool
        .free_bytes()
        .is_ok_and(|f| f < p.config.spool.min_free_space)
    {
        tracing::warn!("portal: spool file system nearly full; reply refused");
        return p.say(
            StatusCode::INSUFFICIENT_STORAGE,
            "Not sent",
            "Your reply cannot be accepted just now. Please try again later.",
        );
    }
    let limits = (
        p.config.portal.max_replies_per_day,
        p.config.portal.max_replies_per_message,
    );
    match auth::take_reply(p.sign_in.as_ref(), &s.address, &entry.id, limits).await {
        Ok(auth::ReplyQuota::Granted) => {}
        Ok(auth::ReplyQuota::DayUsed) => {
            return p.say(
                StatusCode::TOO_MANY_REQUESTS,
                "Not sent",
                "You have sent many replies today. Please try again tomorrow.",
            )
        }
        Ok(auth::ReplyQuota::MessageUsed) => {
            return p.say(
                StatusCode::TOO_MANY_REQUESTS,
                "Not sent",
                "You have sent as many replies to this message as one message may have.",
            )
        }
        Err(e) => return p.failed(e),
    }
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
            if let Err(e) = p.escrow.mark_replied(&entry.id).await {
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
            )
            .await;
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
