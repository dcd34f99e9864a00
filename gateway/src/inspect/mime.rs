//! The MIME walk: every part of a message, its free-text headers, and nested messages.
//!
//! mail-parser decodes transfer encodings and charsets (and never panics); this module
//! decides what each part is, numbers it as IMAP does, and hands attachments to `blob`.

use super::blob::{self, Blob};
use super::{html, Ctx, PartKind, PartPath, UnscannableReason};
use mail_parser::{
    Address, HeaderName, HeaderValue, Message, MessageParser, MimeHeaders, PartType,
};

/// Parses `bytes` as a message at `path` and walks it.
pub(crate) fn walk_message(ctx: &mut Ctx<'_>, bytes: &[u8], path: &PartPath, depth: usize) {
    match MessageParser::default().parse(bytes) {
        Some(msg) if !msg.headers().is_empty() => walk_parsed(ctx, &msg, path, depth),
        _ => {
            // Not a message at all (no header block): still scan what is there.
            ctx.unscannable(
                path.clone(),
                UnscannableReason::corrupt("mime", "no header block; scanned as raw text"),
            );
            if ctx.charge(path, bytes.len() as u64) {
                ctx.text(path.clone(), PartKind::Raw, blob::decode_text(bytes));
            }
        }
    }
}

/// Walks an already parsed message: headers, then the body tree from the root part.
fn walk_parsed(ctx: &mut Ctx<'_>, msg: &Message<'_>, path: &PartPath, depth: usize) {
    headers(ctx, msg, path);
    if msg.parts.is_empty() {
        return;
    }
    let mut w = Walk {
        msg,
        depth,
        visited: vec![false; msg.parts.len()],
    };
    w.part(ctx, 0, path, 0, true);
}

/// Free-text headers: each field is its own text (proximity never crosses fields).
fn headers(ctx: &mut Ctx<'_>, msg: &Message<'_>, path: &PartPath) {
    let mut subject = Vec::new();
    let mut names = Vec::new();
    let mut other = Vec::new();
    for h in msg.headers() {
        match (&h.name, h.value()) {
            (HeaderName::Subject, HeaderValue::Text(t)) => subject.push(t.to_string()),
            (
                HeaderName::From
                | HeaderName::To
                | HeaderName::Cc
                | HeaderName::Bcc
                | HeaderName::ReplyTo
                | HeaderName::Sender,
                HeaderValue::Address(a),
            ) => display_names(a, &mut names),
            (HeaderName::Comments | HeaderName::Keywords | HeaderName::ContentDescription, v) => {
                text_of(v, &mut other)
            }
            (HeaderName::Other(n), v) if n.eq_ignore_ascii_case("Thread-Topic") => {
                text_of(v, &mut other)
            }
            _ => {}
        }
    }
    for (field, vals) in [("subject", subject), ("names", names), ("other", other)] {
        if !vals.is_empty() {
            ctx.text(path.header(field), PartKind::Header, vals.join("\n"));
        }
    }
}

fn display_names(a: &Address<'_>, out: &mut Vec<String>) {
    match a {
        Address::List(l) => out.extend(
            l.iter()
                .filter_map(|x| x.name.as_ref().map(|n| n.to_string())),
        ),
        Address::Group(g) => {
            for grp in g {
                out.extend(grp.name.as_ref().map(|n| n.to_string()));
                out.extend(
                    grp.addresses
                        .iter()
                        .filter_map(|x| x.name.as_ref().map(|n| n.to_string())),
                );
            }
        }
    }
}

fn text_of(v: &HeaderValue<'_>, out: &mut Vec<String>) {
    match v {
        HeaderValue::Text(t) => out.push(t.to_string()),
        HeaderValue::TextList(l) => out.extend(l.iter().map(|t| t.to_string())),
        _ => {}
    }
}

/// A text or HTML part: its file name (if any) and its text, within the budget.
fn body_text(
    ctx: &mut Ctx<'_>,
    name: Option<&str>,
    path: PartPath,
    raw: &str,
    attachment: bool,
    html: bool,
) {
    if let Some(n) = name {
        ctx.text(path.clone(), PartKind::FileName, n.to_string());
    }
    let kind = match (html, attachment) {
        (true, true) => PartKind::HtmlAttachment,
        (true, false) => PartKind::HtmlBody,
        (false, true) => PartKind::TextAttachment,
        (false, false) => PartKind::TextBody,
    };
    if ctx.charge(&path, raw.len() as u64) {
        let text = if html {
            html::html_to_text(raw)
        } else {
            raw.to_string()
        };
        ctx.text(path, kind, text);
    }
}

/// One message's part tree.
struct Walk<'m, 'x> {
    msg: &'m Message<'x>,
    depth: usize,
    /// Parts already walked: a crafted tree must not make us visit one twice.
    visited: Vec<bool>,
}

impl Walk<'_, '_> {
    /// Walks part `id` at `path`; `nesting` counts multipart levels, `root` is true for
    /// the message's own top part (whose single body is numbered `1`).
    fn part(&mut self, ctx: &mut Ctx<'_>, id: usize, path: &PartPath, nesting: usize, root: bool) {
        let Some(part) = self.msg.parts.get(id) else {
            return;
        };
        if std::mem::replace(&mut self.visited[id], true) {
            return;
        }
        let name = part.attachment_name();
        let mime = part.content_type().map(|ct| {
            let sub = ct.subtype().unwrap_or("");
            format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase()
        });
        let is_attachment = name.is_some()
            || part
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
        // A non-multipart top part is the body, part `1` in IMAP numbering.
        let here = if root && !matches!(part.body, PartType::Multipart(_)) {
            path.child(1)
        } else {
            path.clone()
        };
        let here_named = here.named(name);
        // A part's own description is free text a sender writes ("scan of Jo's
        // card"); the top part's headers are the message's, read by `headers`.
        if let Some(d) = part.content_description().filter(|_| !root) {
            ctx.text(here_named.clone(), PartKind::Header, d.to_string());
        }
        // mail-parser also flags a nested message it stopped parsing at its own depth
        // limit; `blob` parses that one itself, so it is not an encoding problem.
        let nested_left = matches!(part.body, PartType::Binary(_))
            && mime.as_deref().is_some_and(|m| m.starts_with("message/"));
        if part.is_encoding_problem && !matches!(part.body, PartType::Multipart(_)) && !nested_left
        {
            ctx.unscannable(here_named.clone(), UnscannableReason::BadTransferEncoding);
        }
        match &part.body {
            PartType::Multipart(children) => {
                if nesting >= ctx.limits.max_multipart_nesting {
                    return ctx.unscannable(
                        here,
                        UnscannableReason::TooDeep {
                            limit: ctx.limits.max_multipart_nesting,
                        },
                    );
                }
                for (i, &c) in children.iter().enumerate() {
                    self.part(ctx, c as usize, &here.child(i + 1), nesting + 1, false);
                }
            }
            PartType::Text(t) => body_text(ctx, name, here_named, t, is_attachment, false),
            PartType::Html(h) => body_text(ctx, name, here_named, h, is_attachment, true),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                if ctx.charge(&here_named, b.len() as u64) {
                    blob::extract(
                        ctx,
                        Blob {
                            path: here_named,
                            name,
                            mime,
                            bytes: b,
                            depth: self.depth,
                        },
                    );
                }
            }
            PartType::Message(m) => {
                if let Some(n) = name {
                    ctx.text(here_named.clone(), PartKind::FileName, n.to_string());
                }
                if ctx.depth_ok(&here_named, self.depth + 1) {
                    walk_parsed(ctx, m, &here_named, self.depth + 1);
                }
            }
        }
    }
}
