//! The console's HTML: compile-time templates (maud escapes every value),
//! no scripts, one stylesheet of our own. Pages name envelope facts, states
//! and rule ids; nothing here is given message content to render.

use super::access::{self, Area};
use super::session::Viewer;
use super::Console;
use crate::admin::trace::{TraceForm, TraceResult, TraceRow, TraceStatus, TIME_FORMAT};
use maud::{html, Markup, DOCTYPE};

/// The stylesheet: plain, readable, high contrast.
pub const STYLESHEET: &str = "\
body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#111;background:#fff}\
header{background:#0b3d6b;color:#fff;padding:.5rem 1rem;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}\
header a{color:#fff}header form{margin-left:auto}\
main{padding:1rem;max-width:80rem}\
label{display:block;font-weight:600;margin-top:.5rem}\
input,select{font:inherit;padding:.25rem;border:1px solid #555}\
button{font:inherit;padding:.3rem .9rem;background:#0b3d6b;color:#fff;border:0;cursor:pointer}\
table{border-collapse:collapse;width:100%;margin-top:1rem}\
th,td{border:1px solid #999;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#e8eef4}\
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:0 1rem}\
.error{color:#8b0000;font-weight:600}\
.note{color:#333}";

/// What the header shows a signed-in viewer.
pub struct Nav {
    name: String,
    role: &'static str,
    csrf: String,
    areas: Vec<Area>,
}

impl Nav {
    /// The header of `v`'s pages.
    pub fn of(c: &Console, v: &Viewer) -> Nav {
        Nav {
            name: v.user.name.clone(),
            role: v.user.role.as_str(),
            csrf: c.csrf(&v.cookie),
            areas: access::areas(v.user.role).collect(),
        }
    }

    /// The CSRF token for this viewer's forms.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn area_link(a: Area) -> (&'static str, &'static str) {
    match a {
        Area::Trace => ("/console/trace", "Message trace"),
        Area::Dashboard => ("/console/dashboard", "Dashboard"),
        Area::Audit => ("/console/audit", "Audit log"),
        Area::Archive => ("/console/archive", "Archive"),
    }
}

/// The frame of every page.
fn layout(nav: Option<&Nav>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Sealgate console" }
                link rel="stylesheet" href="/console/console.css";
            }
            body {
                header {
                    strong { "Sealgate console" }
                    @if let Some(n) = nav {
                        nav aria-label="Console" {
                            @for a in &n.areas {
                                @let (href, label) = area_link(*a);
                                a href=(href) { (label) } " "
                            }
                        }
                        span { (n.name) " (" (n.role) ")" }
                        form method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(n.csrf);
                            button id="sign-out" type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// A page that only says `text`.
pub fn notice(nav: Option<&Nav>, title: &str, text: &str) -> Markup {
    layout(nav, title, html! { p { (text) } })
}

/// The sign-in form; `error` says why the last try failed.
pub fn sign_in(csrf: &str, error: Option<&str>) -> Markup {
    layout(
        None,
        "Sign in",
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/console/sign-in" {
                input type="hidden" name="csrf" value=(csrf);
                label for="name" { "User name" }
                input #name name="name" autocomplete="username" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                label for="code" { "Code from your authenticator app" }
                input #code name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required;
                p { button #sign-in type="submit" { "Sign in" } }
            }
        },
    )
}

/// The start page of a signed-in viewer.
pub fn home(nav: &Nav) -> Markup {
    layout(
        Some(nav),
        "Welcome",
        html! {
            p { "Choose what to work on:" }
            ul {
                @for a in &nav.areas {
                    @let (href, label) = area_link(*a);
                    li { a href=(href) { (label) } }
                }
            }
        },
    )
}

fn field(id: &str, label: &str, value: Option<&str>, kind: &str) -> Markup {
    html! {
        div {
            label for=(id) { (label) }
            input id=(id) name=(id) type=(kind) value=(value.unwrap_or(""));
        }
    }
}

fn time_or(v: Option<&str>, dflt: chrono::DateTime<chrono::Utc>) -> String {
    v.filter(|v| !v.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| dflt.format(TIME_FORMAT).to_string())
}

/// The trace's search form with `f`'s values (times default to the last
/// 48 hours), and `found` or `error` under it.
pub fn trace(
    nav: &Nav,
    f: &TraceForm,
    error: Option<&str>,
    found: Option<&TraceResult>,
    scoped: Option<&[String]>,
) -> Markup {
    let now = chrono::Utc::now();
    let from = time_or(f.from.as_deref(), now - crate::admin::trace::DEFAULT_WINDOW);
    // An empty end means "now" when the search runs (a time shown here
    // would be cut to the minute and miss what arrived since).
    let to = f.to.clone().unwrap_or_default();
    let status = f.status.as_deref().unwrap_or("");
    let direction = f.direction.as_deref().unwrap_or("");
    layout(
        Some(nav),
        "Message trace",
        html! {
            @if let Some(d) = scoped {
                p.note { "You see mail of " (d.join(", ")) " only." }
            }
            form method="get" action="/console/trace" {
                input type="hidden" name="csrf" value=(nav.csrf());
                div.grid {
                    div {
                        label for="from" { "From (UTC)" }
                        input #from name="from" type="datetime-local" value=(from);
                    }
                    div {
                        label for="to" { "To (UTC; empty: now)" }
                        input #to name="to" type="datetime-local" value=(to);
                    }
                    (field("sender", "Envelope sender", f.sender.as_deref(), "text"))
                    (field("recipient", "Any recipient", f.recipient.as_deref(), "text"))
                    (field("queue_id", "Queue id", f.queue_id.as_deref(), "text"))
                    (field("message_id", "Message-ID (queued mail)", f.message_id.as_deref(), "text"))
                    div {
                        label for="status" { "Status" }
                        select #status name="status" {
                            option value="" selected[status.is_empty()] { "any" }
                            @for s in TraceStatus::ALL {
                                option value=(s.as_str()) selected[status == s.as_str()] { (s.as_str()) }
                            }
                        }
                    }
                    div {
                        label for="direction" { "Direction" }
                        select #direction name="direction" {
                            option value="" selected[direction.is_empty()] { "any" }
                            option value="inbound" selected[direction == "inbound"] { "inbound" }
                            option value="outbound" selected[direction == "outbound"] { "outbound" }
                        }
                    }
                }
                p {
                    button #search type="submit" { "Search" } " "
                    button #export-csv type="submit" name="format" value="csv" { "Download CSV" } " "
                    button #export-json type="submit" name="format" value="json" { "Download JSON" }
                }
            }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if let Some(r) = found { (rows(r)) }
        },
    )
}

fn rows(r: &TraceResult) -> Markup {
    html! {
        p #count { (r.rows.len()) " recipient(s)" @if r.truncated { " (more matched: narrow the search)" } }
        @if !r.rows.is_empty() {
            table #trace {
                caption { "One row per recipient, newest first; times in UTC" }
                thead { tr {
                    th scope="col" { "Received" } th scope="col" { "From" } th scope="col" { "To" }
                    th scope="col" { "Size" } th scope="col" { "Direction" } th scope="col" { "Status" }
                    th scope="col" { "Protection" } th scope="col" { "DLP rules" } th scope="col" { "Queue id" }
                } }
                tbody {
                    @for row in &r.rows { (row_markup(row)) }
                }
            }
        }
    }
}

fn row_markup(row: &TraceRow) -> Markup {
    html! {
        tr {
            td { (row.received_at.format("%Y-%m-%d %H:%M:%S")) }
            td { (row.from) }
            td { a href=(format!("/console/trace/{}/{}", row.queue_id, row.index)) { (row.to) } }
            td { (row.size) }
            td { (row.direction.as_str()) }
            td.status {
                (row.status.as_str())
                @if let Some(t) = row.next_retry { " (next " (t.format("%H:%M:%S")) ")" }
            }
            td { (row.seal.as_deref().unwrap_or("")) }
            td { (row.dlp.join(", ")) }
            td { code { (row.queue_id) } }
        }
    }
}

/// One event of a recipient's timeline.
pub struct Event {
    /// When, if known.
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// RECEIVE, INSPECT, POLICY, SEAL, DELIVER...
    pub event: &'static str,
    /// What the gateway recorded: facts, never content.
    pub data: Vec<(&'static str, String)>,
}

/// A recipient's detail: its row and the events the gateway records.
pub fn detail(nav: &Nav, row: &TraceRow, events: &[Event], finished: bool) -> Markup {
    layout(
        Some(nav),
        "Message detail",
        html! {
            p { a href="/console/trace" { "Back to the trace" } }
            dl {
                dt { "Queue id" } dd { code #queue-id { (row.queue_id) } }
                dt { "From" } dd { (row.from) }
                dt { "To" } dd #recipient { (row.to) }
                dt { "Status" } dd #status { (row.status.as_str()) }
                dt { "Protection" } dd { (row.seal.as_deref().unwrap_or("not yet decided")) }
                dt { "Record" } dd { @if finished { "finished (kept for [spool] keep_finished)" } @else { "in the queue" } }
            }
            table #events {
                caption { "Events, oldest first; times in UTC" }
                thead { tr { th scope="col" { "Time" } th scope="col" { "Event" } th scope="col" { "Data" } } }
                tbody {
                    @for e in events {
                        tr {
                            td { @if let Some(t) = e.at { (t.format("%Y-%m-%d %H:%M:%S")) } }
                            td.event { (e.event) }
                            td { @for (k, v) in e.data.iter().filter(|(_, v)| !v.is_empty()) { div { strong { (k) ": " } (v) } } }
                        }
                    }
                }
            }
            p.note { "Not recorded yet, so not shown: key lookups, MTA-STS/DANE decisions per attempt, each failed connection before the last, portal opens and replies, and the journal's archive sequence." }
        },
    )
}

/// The audit log, newest entries first (read-only).
pub fn audit(nav: &Nav, entries: &[crate::store::audit_log::AuditRecord]) -> Markup {
    layout(
        Some(nav),
        "Audit log",
        html! {
            p { "The last " (entries.len()) " entries, newest first." }
            table #audit {
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Actor" } th scope="col" { "Action" }
                    th scope="col" { "Subject" } th scope="col" { "Detail" }
                } }
                tbody {
                    @for e in entries.iter().rev() {
                        tr { td { (e.at) } td { (e.actor) } td { (e.action) } td { (e.id) } td { (e.detail) } }
                    }
                }
            }
        },
    )
}

/// One table of counts with a bar per row, drawn as SVG (no scripts).
fn counts(
    id: &str,
    caption: &str,
    what: &str,
    rows: &std::collections::BTreeMap<impl AsRef<str>, usize>,
) -> Markup {
    let max = rows.values().copied().max().unwrap_or(1).max(1);
    html! {
        table id=(id) {
            caption { (caption) }
            thead { tr { th scope="col" { (what) } th scope="col" { "Recipients" } th scope="col" { span.note { "share" } } } }
            tbody {
                @if rows.is_empty() { tr { td colspan="3" { "none" } } }
                @for (k, n) in rows {
                    tr {
                        td { (k.as_ref()) }
                        td { (n) }
                        td {
                            svg width="200" height="14" role="img" aria-label=(format!("{n} of {max}")) {
                                rect width=((n * 200 / max).max(1)) height="14" fill="#0b3d6b" {}
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The dashboard.
pub fn dashboard(nav: &Nav, d: &super::dashboard::Dashboard, scoped: Option<&[String]>) -> Markup {
    layout(
        Some(nav),
        "Dashboard",
        html! {
            @if let Some(s) = scoped { p.note { "Counts of mail of " (s.join(", ")) " only." } }
            p { (d.recipients) " recipients received in the last 10 days"
                @if d.truncated { " (the oldest were not counted)" } "." }
            (counts("by-status", "Recipients by status", "Status", &d.by_status))
            (counts("deferred", "Deferred, by destination", "Domain", &d.deferred_by_domain))
            (counts("protection", "Delivered, by protection", "Method / TLS level", &d.delivered_by_protection))
            (counts("dlp", "DLP rules that fired", "Rule", &d.dlp_by_rule))
            p.note { "Not drawn yet: mail over time, certificate and key expiry." }
        },
    )
}
