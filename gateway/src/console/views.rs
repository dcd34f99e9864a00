//! The signed-in pages: the trace and a recipient's detail (admins), the
//! audit log (auditors), the archive (archivists). Each checks the role on
//! the server, and each trace query and view is audited before it runs.

use super::access::{self, Area};
use super::pages::{self, Event, Nav};
use super::Shared;
use crate::admin::trace::{self, TraceForm, TraceRow};
use crate::model::record::{QueuedMessage, QueuedRecipient};
use crate::model::verdict::Verdict;
use crate::spool::QueueId;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// `GET /console/trace`: the form; with a CSRF token, the search too.
pub async fn trace(
    State(c): State<Shared>,
    headers: HeaderMap,
    Query(f): Query<TraceForm>,
) -> Response {
    let v = match c.viewer_for(&headers, Area::Trace, "trace").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let nav = Nav::of(&c, &v);
    let scoped = (!v.user.domains.is_empty()).then_some(v.user.domains.as_slice());
    let Some(token) = f.csrf.as_deref() else {
        return c.page(StatusCode::OK, pages::trace(&nav, &f, None, None, scoped));
    };
    if !c.csrf_ok(&v.cookie, token) {
        let why = "The form expired; search again.";
        return c.page(
            StatusCode::FORBIDDEN,
            pages::trace(&nav, &f, Some(why), None, scoped),
        );
    }
    let q = match f.query(chrono::Utc::now()) {
        Ok(q) => q,
        Err(e) => {
            let why = e.to_string();
            return c.page(
                StatusCode::BAD_REQUEST,
                pages::trace(&nav, &f, Some(&why), None, scoped),
            );
        }
    };
    let export = match f.format.as_deref() {
        None | Some("") => None,
        Some(x @ ("csv" | "json")) => Some(x),
        Some(_) => {
            let why = "format: csv or json";
            return c.page(
                StatusCode::BAD_REQUEST,
                pages::trace(&nav, &f, Some(why), None, scoped),
            );
        }
    };
    let action = match export {
        Some("csv") => "console.trace.export-csv",
        Some(_) => "console.trace.export-json",
        None => "console.trace",
    };
    if let Err(r) = c.record(&v.user.name, action, "", &q.describe()).await {
        return r;
    }
    let user = v.user.clone();
    let visible = move |from: &str, to: &str| access::sees(&user, from, to);
    match trace::search(&c.spool, &q, &visible).await {
        Ok(found) => match export {
            Some(format) => download(format, &found.rows),
            None => c.page(
                StatusCode::OK,
                pages::trace(&nav, &f, None, Some(&found), scoped),
            ),
        },
        Err(e) => {
            tracing::error!(error = %e, "console: trace failed");
            c.failed()
        }
    }
}

/// The rows as a file to save: `trace.csv` or `trace.json`.
fn download(format: &str, rows: &[TraceRow]) -> Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let (body, kind) = match format {
        "csv" => (trace::csv(rows), "text/csv; charset=utf-8"),
        _ => (
            serde_json::to_string_pretty(rows).expect("trace rows serialise"),
            "application/json",
        ),
    };
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"trace.{format}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /console/trace/{id}/{n}`: recipient `n` of message `id`, with its events.
pub async fn detail(
    State(c): State<Shared>,
    headers: HeaderMap,
    Path((id, n)): Path<(String, usize)>,
) -> Response {
    let v = match c.viewer_for(&headers, Area::Trace, "trace detail").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let nav = Nav::of(&c, &v);
    let missing = || {
        c.page(
            StatusCode::NOT_FOUND,
            pages::notice(
                Some(&nav),
                "Not found",
                "No such message or recipient is kept.",
            ),
        )
    };
    let Ok(id) = id.parse::<QueueId>() else {
        return missing();
    };
    let found = match trace::message(&c.spool, id).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "console: trace detail failed");
            return c.failed();
        }
    };
    let Some((msg, finished)) = found else {
        return missing();
    };
    // Another domain's recipient answers as a missing one would: its
    // existence is not revealed either.
    let Some(r) = msg
        .recipients
        .get(n)
        .filter(|r| access::sees(&v.user, &msg.from, &r.address.to_string()))
    else {
        return missing();
    };
    if let Err(resp) = c
        .record(
            &v.user.name,
            "console.trace.view",
            &id.to_string(),
            &format!("recipient {}", r.address),
        )
        .await
    {
        return resp;
    }
    let inspection = match finished {
        true => None,
        false => c.spool.inspection(id).await.ok().flatten(),
    };
    let row = row_of(&msg, n, r);
    let events = events(&msg, r, inspection.as_ref());
    c.page(StatusCode::OK, pages::detail(&nav, &row, &events, finished))
}

fn row_of(msg: &QueuedMessage, index: usize, r: &QueuedRecipient) -> TraceRow {
    TraceRow {
        queue_id: msg.id,
        index,
        received_at: msg.received_at,
        from: if msg.from.is_empty() {
            "<>".into()
        } else {
            msg.from.clone()
        },
        to: r.address.to_string(),
        size: msg.size,
        direction: msg.origin.direction,
        status: trace::TraceStatus::of(msg, r),
        next_retry: r.next_attempt,
        seal: trace::seal_of(r),
        dlp: r.verdict.as_ref().map(trace::dlp_rules).unwrap_or_default(),
    }
}

/// The inbound checks' verdicts on `msg`, as events at its arrival:
/// sender authentication and the content scan (rule and signature names,
/// scores; never content).
fn inbound_events(msg: &QueuedMessage) -> Vec<Event> {
    let mut out = Vec::new();
    if let Some(a) = &msg.auth {
        out.push(Event {
            at: Some(msg.received_at),
            event: "SENDER AUTH",
            data: vec![
                ("SPF", a.spf.as_str().to_string()),
                ("DKIM", a.dkim.as_str().to_string()),
                ("ARC", a.arc.as_str().to_string()),
                ("DMARC", a.dmarc.as_str().to_string()),
                ("From domain", a.dmarc_domain.clone().unwrap_or_default()),
                (
                    "domain's policy",
                    a.dmarc_policy.clone().unwrap_or_default(),
                ),
                ("action", a.action.as_str().to_string()),
            ],
        });
    }
    if let Some(v) = &msg.scan {
        out.push(Event {
            at: Some(msg.received_at),
            event: "CONTENT SCAN",
            data: vec![
                (
                    "spam score",
                    v.spam_score.map(|s| format!("{s:.2}")).unwrap_or_default(),
                ),
                ("rspamd action", v.spam_action.clone().unwrap_or_default()),
                ("rspamd symbols", v.symbols.join(", ")),
                ("malware", v.malware.clone().unwrap_or_default()),
                ("not scanned by", v.unscanned.join(", ")),
                ("action", v.action.as_str().to_string()),
            ],
        });
    }
    out
}

/// The events the gateway records for recipient `r` of `msg`.
fn events(
    msg: &QueuedMessage,
    r: &QueuedRecipient,
    inspection: Option<&crate::model::record::InspectionRecord>,
) -> Vec<Event> {
    let o = &msg.origin;
    let mut out = vec![Event {
        at: Some(msg.received_at),
        event: "RECEIVE",
        data: [
            Some(("client", o.peer.ip().to_string())),
            Some(("HELO", o.helo.clone())),
            Some(("listener", o.listener.clone())),
            o.connector.clone().map(|c| ("connector", c)),
            Some(("direction", o.direction.as_str().to_string())),
            Some((
                "TLS",
                o.tls.as_ref().map_or("none".to_string(), |t| {
                    format!("{} {}", t.version, t.cipher)
                }),
            )),
            Some(("size", msg.size.to_string())),
            Some(("SHA-256", msg.body_sha256.clone())),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }];
    out.extend(inbound_events(msg));
    if let Some(i) = inspection {
        let detectors = i
            .findings
            .iter()
            .map(|f| format!("{} ×{} ({})", f.detector, f.count, f.confidence))
            .collect::<Vec<_>>()
            .join(", ");
        let unscannable = i
            .unscannable
            .iter()
            .map(|(why, n)| format!("{why} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(Event {
            at: Some(i.inspected_at),
            event: "INSPECT",
            data: vec![
                ("detectors", detectors),
                ("policy rules", i.policy_hits.join(", ")),
                ("action", i.action.clone().unwrap_or_default()),
                ("unscannable parts", unscannable),
                ("attachment types", i.extensions.join(", ")),
            ],
        });
    }
    if let Some(v) = &r.verdict {
        let data = match v {
            Verdict::Deliver {
                seal,
                escalated,
                why,
                key,
                fallback,
            } => vec![
                ("decision", format!("deliver, {}", seal.as_str())),
                ("escalated", escalated.to_string()),
                ("why", why.join(", ")),
                ("key", key.clone().unwrap_or_default()),
                (
                    "fallback if TLS fails",
                    fallback
                        .as_ref()
                        .map(|f| f.seal.as_str().to_string())
                        .unwrap_or_default(),
                ),
            ],
            Verdict::Quarantine { reason } => {
                vec![("decision", "quarantine".into()), ("why", reason.clone())]
            }
            Verdict::Block { reason } => {
                vec![("decision", "block".into()), ("why", reason.clone())]
            }
        };
        out.push(Event {
            at: None,
            event: "POLICY",
            data,
        });
    }
    if let Some(s) = &r.sealed {
        out.push(Event {
            at: Some(s.at),
            event: "SEAL",
            data: vec![
                ("method", s.method.as_str().to_string()),
                ("key", s.label.clone()),
                ("key source", s.key_source.clone()),
                ("sealed size", s.size.to_string()),
            ],
        });
    }
    if let Some(e) = &r.evidence {
        let mut data = vec![
            ("host", format!("{}:{}", e.host, e.port)),
            ("address", e.ip.map(|i| i.to_string()).unwrap_or_default()),
            (
                "TLS level",
                format!(
                    "{} (set by {})",
                    e.tls_level.as_str(),
                    e.policy_source.as_str()
                ),
            ),
            ("reply", e.reply.clone()),
            ("attempts", r.attempts.to_string()),
        ];
        if let Some(t) = &e.tls {
            data.push(("TLS", format!("{} {}", t.version, t.cipher)));
            data.push(("certificate verified", t.verified.to_string()));
            data.push(("certificate SHA-256", t.peer_cert_sha256.clone()));
        }
        if let Some(why) = &r.tls_refused {
            data.push(("TLS refused, sealed copy sent", why.clone()));
        }
        out.push(Event {
            at: Some(e.at),
            event: match r.state {
                crate::model::record::RecipientState::Delivered => "DELIVER",
                crate::model::record::RecipientState::Bounced => "FAIL",
                crate::model::record::RecipientState::Dropped => "DROP",
                _ => "DEFER",
            },
            data,
        });
    }
    if let Some(next) = r
        .next_attempt
        .filter(|_| r.state == crate::model::record::RecipientState::Deferred)
    {
        out.push(Event {
            at: Some(next),
            event: "NEXT RETRY",
            data: vec![],
        });
    }
    if let Some(d) = &r.dsn {
        let what = match d {
            crate::model::record::DsnState::Pending => "owed, not yet queued".to_string(),
            crate::model::record::DsnState::Sent(id) => format!("queued as {id}"),
            crate::model::record::DsnState::NotRequested => "not requested".to_string(),
        };
        out.push(Event {
            at: None,
            event: "DSN",
            data: vec![("to the sender", what)],
        });
    }
    out
}

/// `GET /console/dashboard`: counts over the last days (admins, in their scope).
pub async fn dashboard(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let v = match c.viewer_for(&headers, Area::Dashboard, "dashboard").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let user = v.user.clone();
    let visible = move |from: &str, to: &str| access::sees(&user, from, to);
    let scoped = (!v.user.domains.is_empty()).then_some(v.user.domains.as_slice());
    match super::dashboard::gather(&c.spool, &visible).await {
        Ok(d) => c.page(
            StatusCode::OK,
            pages::dashboard(&Nav::of(&c, &v), &d, scoped),
        ),
        Err(e) => {
            tracing::error!(error = %e, "console: dashboard failed");
            c.failed()
        }
    }
}

/// `GET /console/audit`: the audit log's last entries (auditors).
pub async fn audit(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let v = match c.viewer_for(&headers, Area::Audit, "audit").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(r) = c
        .record(&v.user.name, "console.audit.read", "", "last 200")
        .await
    {
        return r;
    }
    match c.audit.read(Some(200)).await {
        Ok(entries) => c.page(StatusCode::OK, pages::audit(&Nav::of(&c, &v), &entries)),
        Err(e) => {
            tracing::error!(error = %e, "console: audit log read failed");
            c.failed()
        }
    }
}

/// `GET /console/archive`: not built yet, and the page says so.
pub async fn archive(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let v = match c.viewer_for(&headers, Area::Archive, "archive").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    c.page(
        StatusCode::NOT_IMPLEMENTED,
        pages::notice(
            Some(&Nav::of(&c, &v)),
            "Archive",
            "The archive's console pages are not built yet. Use `sealgate archive search|show|export` or the /api/v1/archive API with an archivist token meanwhile.",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::inbound::{AuthVerdict, InboundAction, ScanVerdict};

    #[test]
    fn inbound_verdicts_show_in_the_detail_by_name_and_score_only() {
        let mut msg = crate::store::spool::testing::message();
        assert!(inbound_events(&msg).is_empty());
        msg.auth = Some(AuthVerdict::quarantined_dmarc_failure());
        msg.scan = Some(ScanVerdict {
            spam_score: Some(7.25),
            spam_action: Some("add header".into()),
            symbols: vec!["BAYES_SPAM".into()],
            malware: None,
            unscanned: vec!["clamd".into()],
            action: InboundAction::Deliver,
        });
        let e = inbound_events(&msg);
        assert_eq!(
            e.iter().map(|e| e.event).collect::<Vec<_>>(),
            ["SENDER AUTH", "CONTENT SCAN"]
        );
        let find = |i: usize, k: &str| {
            e[i].data
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(find(0, "DMARC").as_deref(), Some("fail"));
        assert_eq!(find(0, "action").as_deref(), Some("quarantine"));
        assert_eq!(find(1, "spam score").as_deref(), Some("7.25"));
        assert_eq!(find(1, "not scanned by").as_deref(), Some("clamd"));
    }
}
