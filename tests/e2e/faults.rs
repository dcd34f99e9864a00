//! A remote MX that misbehaves: 4xx and 5xx at RCPT, 4xx after the dot, a
//! connection cut halfway through DATA, a server that never greets, broken
//! STARTTLS, an expired certificate — and a gateway killed with SIGKILL
//! while deliveries are in flight. Every case must end in the right state
//! (retry, bounce with a DSN to the sender, or drop for `exclusive`), with
//! the reason in the recipient's evidence, and nothing lost.
//!
//! The remote side is the scripted server of `sealgate_e2e::fault`, reached
//! through static `[[route]]`s (no DNS), except for the expired certificate,
//! which a real Postfix presents. The sender's domain, hospital.test, is
//! local: its DSNs go to a Postfix smart host that keeps them in a Maildir.

use sealgate_e2e::fault::{Fault, FaultServer};
use sealgate_e2e::{postfix_mailbox, queued_id, swaks, Dns, Gateway, Postfix, Smtp, TestCa};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const SENDER: &str = "nurse@hospital.test";

/// Short timings, so a fault costs seconds; `{life}` is `max_lifetime`.
const TIMINGS: &str = "retry_schedule = [\"1s\"]\nconnect_timeout = \"2s\"\ncommand_timeout = \"2s\"\ndata_timeout = \"3s\"\nmax_lifetime = \"{life}\"\n";

/// A static `[[route]]`: recipient domain, next hop and port, TLS level.
struct Route<'a> {
    domain: &'a str,
    host: &'a str,
    port: u16,
    tls: &'a str,
}

fn route<'a>(domain: &'a str, port: u16, tls: &'a str) -> Route<'a> {
    Route {
        domain,
        host: "127.0.0.1",
        port,
        tls,
    }
}

/// A gateway delivering through `routes`, with `home` (a Postfix holding
/// hospital.test mailboxes) as smart host; `delivery` is extra `[delivery]`
/// lines (the timings, at least).
fn gateway(home: &Postfix, routes: &[Route], delivery: &str, tls: &str) -> Gateway {
    let mut extra = format!(
        "[delivery]\n{delivery}smart_host = {{ host = \"127.0.0.1\", port = {}, tls = \"may\" }}\n\n\
         [tls]\ndane = false\nmta_sts = false\nremember = false\n{tls}\n",
        home.port
    );
    for r in routes {
        extra.push_str(&format!(
            "\n[[route]]\ndomains = [\"{}\"]\nhost = \"{}\"\nport = {}\ntls = \"{}\"\n",
            r.domain, r.host, r.port, r.tls
        ));
    }
    Gateway::start(&extra)
}

fn timings(life: &str) -> String {
    TIMINGS.replace("{life}", life)
}

/// The smart host for the sender's domain, where DSNs arrive.
fn home() -> Postfix {
    postfix_mailbox("home", "hospital.test", "")
}

/// Sends one message from [`SENDER`] with swaks; returns its queue id.
fn send(g: &Gateway, to: &str, message_id: &str) -> String {
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", g.smtp),
        "--from",
        SENDER,
        "--to",
        to,
        "--header",
        "Subject: fault test",
        "--header",
        &format!("Message-Id: <{message_id}>"),
        "--body",
        "Results attached.",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{out}");
    queued_id(&out).expect("queued id")
}

/// Sends `data` (a whole message) from [`SENDER`] with swaks; returns its queue id.
fn send_data(g: &Gateway, to: &str, data: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("msg.eml");
    std::fs::write(&f, data).unwrap();
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", g.smtp),
        "--from",
        SENDER,
        "--to",
        to,
        "--data",
        &format!("@{}", f.display()),
    ]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", &out[..out.len().min(4000)]);
    queued_id(&out).expect("queued id")
}

/// The first recipient of a message.
fn rcpt(g: &Gateway, id: &str) -> Value {
    g.queue_show(id)["recipients"][0].clone()
}

fn reply(r: &Value) -> String {
    r["evidence"]["reply"].as_str().unwrap_or("").to_string()
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits until the message's first recipient satisfies `ok`; on timeout
/// panics with the last record and the end of the gateway's log.
fn wait_rcpt(g: &Gateway, id: &str, secs: u64, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = rcpt(g, id);
        if ok(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {id} to be {what}; last record:\n{r:#}\nlog:\n{}",
            tail(&g.log(), 40)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_state(g: &Gateway, id: &str, want: &str, secs: u64) -> Value {
    wait_rcpt(g, id, secs, want, |r| r["state"] == want)
}

/// True while `id` is still in the queue (not finished).
fn queued(g: &Gateway, id: &str) -> bool {
    g.queue().iter().any(|m| m["id"] == id)
}

/// Waits until the queue is empty: every message, bounce notices included,
/// has reached a final state and left it.
fn wait_empty(g: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let q = g.queue();
        if q.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the queue does not empty: {q:#?}\nlog:\n{}",
            tail(&g.log(), 40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The DSNs in the home Maildir, line ends LF and folded fields unfolded.
fn dsns(home: &Postfix) -> Vec<String> {
    home.mailbox()
        .iter()
        .map(|m| String::from_utf8_lossy(m).replace("\r\n", "\n"))
        .filter(|m| m.contains("report-type=delivery-status"))
        .map(|m| m.replace("\n ", " ").replace("\n\t", " "))
        .collect()
}

/// Waits for the DSN reporting `recipient`.
fn wait_dsn(home: &Postfix, g: &Gateway, recipient: &str, secs: u64) -> String {
    let needle = format!("Final-Recipient: rfc822; {recipient}");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(d) = dsns(home).into_iter().find(|d| d.contains(&needle)) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "no DSN for {recipient} reached the sender; log:\n{}\nhome:\n{}",
            tail(&g.log(), 40),
            tail(&home.log(), 20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks a bounce DSN: failed, for `recipient`, from the null sender, and
/// naming `reason` in its Diagnostic-Code.
fn assert_failed_dsn(dsn: &str, recipient: &str, reason: &str) {
    assert!(dsn.contains("Return-Path: <>"), "{dsn}");
    assert!(dsn.contains(&format!("\nTo: <{SENDER}>\n")), "{dsn}");
    assert!(
        dsn.contains(&format!("Final-Recipient: rfc822; {recipient}")),
        "{dsn}"
    );
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("Status: "), "{dsn}");
    let diag = dsn
        .lines()
        .find(|l| l.starts_with("Diagnostic-Code: smtp; "))
        .unwrap_or_else(|| panic!("no Diagnostic-Code in\n{dsn}"));
    assert!(diag.contains(reason), "{diag:?} does not name {reason:?}");
}

/// The recipients the fault server accepted messages for.
fn accepted_rcpts(s: &FaultServer) -> Vec<String> {
    s.accepted().into_iter().flat_map(|m| m.rcpts).collect()
}

#[test]
fn temporary_failures_defer_and_retry_until_accepted() {
    let home = home();
    let busy = FaultServer::start(Fault::RcptTemp);
    let data_temp = FaultServer::start(Fault::DataTemp);
    let flaky = FaultServer::start(Fault::FailFirstThenAccept(2));
    let g = gateway(
        &home,
        &[
            route("busy.test", busy.port, "may"),
            route("data-temp.test", data_temp.port, "may"),
            route("flaky.test", flaky.port, "may"),
        ],
        &timings("60s"),
        "",
    );

    let busy_id = send(&g, "x@busy.test", "busy-1@hospital.test");
    let data_id = send(&g, "x@data-temp.test", "data-temp-1@hospital.test");
    let flaky_id = send(&g, "x@flaky.test", "flaky-1@hospital.test");

    // 450 at RCPT: deferred, tried again and again, never bounced.
    let r = wait_rcpt(&g, &busy_id, 30, "deferred after 3 attempts", |r| {
        r["state"] == "deferred" && r["attempts"].as_u64() >= Some(3)
    });
    let why = reply(&r);
    assert!(why.starts_with("450 4.2.1"), "{r:#}");
    assert!(why.contains("mailbox busy"), "{r:#}");
    assert_eq!(r["evidence"]["host"], "127.0.0.1", "{r:#}");
    assert_eq!(r["evidence"]["port"], busy.port, "{r:#}");
    assert!(r["next_attempt"].is_string(), "{r:#}");
    assert!(r["dsn"].is_null(), "{r:#}");
    assert!(busy.transactions() >= 3, "{}", busy.transcript());
    assert!(busy.accepted().is_empty(), "{}", busy.transcript());

    // 451 after the dot: the whole message went, and is retried.
    let r = wait_rcpt(&g, &data_id, 30, "deferred after 2 attempts", |r| {
        r["state"] == "deferred" && r["attempts"].as_u64() >= Some(2)
    });
    assert!(reply(&r).starts_with("451 4.3.0"), "{r:#}");
    assert!(reply(&r).contains("queue file write error"), "{r:#}");
    assert!(data_temp.accepted().is_empty());

    // 450 twice, then accepted: delivered on the third attempt, once.
    let r = wait_state(&g, &flaky_id, "delivered", 30);
    assert_eq!(r["attempts"], 3, "{r:#}\n{}", flaky.transcript());
    assert!(reply(&r).starts_with("250 2.0.0"), "{r:#}");
    assert!(r["evidence"]["tls"].is_null(), "{r:#}");
    sealgate_e2e::wait_for(30, "the flaky message to leave the queue", || {
        (!queued(&g, &flaky_id)).then_some(())
    });
    let got = flaky.accepted();
    assert_eq!(got.len(), 1, "{}", flaky.transcript());
    assert_eq!(got[0].rcpts, ["x@flaky.test"]);
    assert_eq!(got[0].from, SENDER);
    assert_eq!(
        got[0].message_id().as_deref(),
        Some("<flaky-1@hospital.test>")
    );
    assert_eq!(flaky.transactions(), 3, "{}", flaky.transcript());

    // The other two are still waiting, and nobody was told anything yet.
    assert!(queued(&g, &busy_id) && queued(&g, &data_id));
    assert!(dsns(&home).is_empty(), "{:#?}", dsns(&home));
    assert!(g.metric("sealgate_deliveries_total{result=\"deferred\"") >= 7.0);
}

#[test]
fn a_server_hanging_up_between_messages_costs_no_retry() {
    let home = home();
    let rude = FaultServer::start(Fault::HangUpAfterMessage);
    let g = gateway(
        &home,
        &[route("rude.test", rude.port, "may")],
        &timings("60s"),
        "",
    );
    // The first message leaves its connection idle for reuse; the server has
    // closed it by the time the second comes: a new connection, no deferral.
    let first = send(&g, "x@rude.test", "rude-1@hospital.test");
    wait_state(&g, &first, "delivered", 30);
    let second = send(&g, "y@rude.test", "rude-2@hospital.test");
    let r = wait_state(&g, &second, "delivered", 30);
    assert_eq!(r["attempts"], 1, "{r:#}\n{}", rude.transcript());
    assert!(reply(&r).starts_with("250 2.0.0"), "{r:#}");
    assert_eq!(accepted_rcpts(&rude), ["x@rude.test", "y@rude.test"]);
    assert_eq!(rude.connections(), 2, "{}", rude.transcript());
}

#[test]
fn permanent_refusal_at_rcpt_bounces_at_once() {
    let home = home();
    let perm = FaultServer::start(Fault::RcptPerm);
    let g = gateway(
        &home,
        &[route("perm.test", perm.port, "may")],
        &timings("60s"),
        "",
    );
    let id = send(&g, "x@perm.test", "perm-1@hospital.test");
    let r = wait_state(&g, &id, "bounced", 30);
    assert_eq!(r["attempts"], 1, "{r:#}");
    assert!(reply(&r).starts_with("550 5.1.1"), "{r:#}");
    assert!(reply(&r).contains("no such mailbox here"), "{r:#}");
    let dsn = wait_dsn(&home, &g, "x@perm.test", 30);
    assert_failed_dsn(
        &dsn,
        "x@perm.test",
        "550 5.1.1 <x@perm.test>: no such mailbox here (fault rcpt-perm)",
    );
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(dsn.contains("Remote-MTA: dns; 127.0.0.1"), "{dsn}");
    // The DSN names the message it reports on (headers only).
    assert!(dsn.contains("perm-1@hospital.test"), "{dsn}");
    let r = rcpt(&g, &id);
    assert!(r["dsn"]["sent"].is_string(), "{r:#}");
    assert_eq!(perm.transactions(), 1, "{}", perm.transcript());
    assert!(perm.accepted().is_empty());
    wait_empty(&g);
}

/// A message of about 200 kB, so the cut falls well inside it.
fn big_message(to: &str, message_id: &str) -> String {
    let mut m = format!(
        "From: <{SENDER}>\r\nTo: <{to}>\r\nSubject: big fault test\r\nMessage-ID: <{message_id}>\r\n\r\n"
    );
    let mut n = 0u64;
    while m.len() < 200_000 {
        n += 1;
        m.push_str(&format!(
            "{n:08} the quick brown fox jumps over the lazy dog 0123456789\r\n"
        ));
    }
    m
}

#[test]
fn connection_cut_mid_data_defers_then_bounces_at_expiry() {
    let home = home();
    let cut = FaultServer::start(Fault::DropMidData);
    let g = gateway(
        &home,
        &[route("cut.test", cut.port, "may")],
        &timings("8s"),
        "",
    );
    let id = send_data(
        &g,
        "x@cut.test",
        &big_message("x@cut.test", "cut-1@hospital.test"),
    );
    let r = wait_state(&g, &id, "deferred", 30);
    assert!(reply(&r).contains("connection lost"), "{r:#}");
    assert!(reply(&r).starts_with("451 4.4.2"), "{r:#}");
    assert!(cut.cut_mid_data() >= 1, "{}", cut.transcript());

    let r = wait_state(&g, &id, "bounced", 40);
    assert!(r["attempts"].as_u64() >= Some(2), "{r:#}");
    assert!(reply(&r).contains("connection lost"), "{r:#}");
    let dsn = wait_dsn(&home, &g, "x@cut.test", 30);
    assert_failed_dsn(&dsn, "x@cut.test", "connection lost");
    // Never taken: every attempt was cut.
    assert!(cut.accepted().is_empty(), "{}", cut.transcript());
    assert_eq!(
        cut.cut_mid_data() as u64,
        r["attempts"].as_u64().unwrap(),
        "{}",
        cut.transcript()
    );
    wait_empty(&g);
}

#[test]
fn silent_server_times_out_then_bounces_at_expiry() {
    let home = home();
    let silent = FaultServer::start(Fault::Silent);
    let g = gateway(
        &home,
        &[route("silent.test", silent.port, "may")],
        &timings("8s"),
        "",
    );
    let id = send(&g, "x@silent.test", "silent-1@hospital.test");
    let r = wait_state(&g, &id, "deferred", 30);
    assert!(reply(&r).contains("timeout during greeting"), "{r:#}");
    let r = wait_state(&g, &id, "bounced", 40);
    assert!(reply(&r).contains("greeting"), "{r:#}");
    assert!(silent.connections() >= 2);
    let dsn = wait_dsn(&home, &g, "x@silent.test", 30);
    assert_failed_dsn(&dsn, "x@silent.test", "timeout during greeting");
    wait_empty(&g);
}

#[test]
fn broken_starttls_defers_falls_back_or_drops_by_level() {
    let home = home();
    let broken = FaultServer::start(Fault::BrokenStarttls);
    let g = gateway(
        &home,
        &[
            route("tls-encrypt.test", broken.port, "encrypt"),
            route("tls-may.test", broken.port, "may"),
            route("tls-exclusive.test", broken.port, "exclusive"),
        ],
        &timings("8s"),
        "",
    );
    let may = send(&g, "x@tls-may.test", "starttls-may@hospital.test");
    let excl = send(
        &g,
        "x@tls-exclusive.test",
        "starttls-exclusive@hospital.test",
    );
    let enc = send(&g, "x@tls-encrypt.test", "starttls-encrypt@hospital.test");

    // may: the failed handshake falls back to plain on a new connection.
    let r = wait_state(&g, &may, "delivered", 30);
    assert!(r["evidence"]["tls"].is_null(), "{r:#}");
    assert_eq!(r["evidence"]["tls_level"], "may");
    assert!(broken.starttls() >= 1, "{}", broken.transcript());

    // exclusive: dropped without a bounce.
    let r = wait_state(&g, &excl, "dropped", 30);
    assert!(reply(&r).contains("TLS"), "{r:#}");
    assert!(r["dsn"].is_null(), "{r:#}");
    assert_eq!(r["evidence"]["tls_level"], "exclusive");

    // encrypt: deferred, then bounced at max_lifetime.
    let r = wait_state(&g, &enc, "deferred", 30);
    assert!(reply(&r).contains("TLS"), "{r:#}");
    let r = wait_state(&g, &enc, "bounced", 40);
    assert!(reply(&r).contains("TLS"), "{r:#}");
    let dsn = wait_dsn(&home, &g, "x@tls-encrypt.test", 30);
    assert_failed_dsn(&dsn, "x@tls-encrypt.test", "TLS");

    // Only the `may` message reached the server; no DSN for the dropped one.
    assert_eq!(
        accepted_rcpts(&broken),
        ["x@tls-may.test"],
        "{}",
        broken.transcript()
    );
    let all = dsns(&home);
    assert!(
        !all.iter().any(|d| d.contains("tls-exclusive.test")),
        "{all:#?}"
    );
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(
        g.metric("sealgate_deliveries_total{result=\"dropped\",tls_level=\"exclusive\"}") >= 1.0
    );
    wait_empty(&g);
}

#[test]
fn expired_certificate_is_refused_under_verify() {
    let ca = TestCa::new();
    let (cert, key) = ca.issue("expired", &["mx.expired.test"], -1);
    let mx = postfix_mailbox(
        "expired",
        "verify.test may.test hospital.test",
        &format!(
            "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n",
            cert.display(),
            key.display()
        ),
    );
    let dns = Dns::start(&[
        "--local=/test/".into(),
        "--host-record=mx.expired.test,127.0.0.1".into(),
    ]);
    let routes = [
        Route {
            domain: "verify.test",
            host: "mx.expired.test",
            port: mx.port,
            tls: "verify",
        },
        Route {
            domain: "may.test",
            host: "mx.expired.test",
            port: mx.port,
            tls: "may",
        },
    ];
    let g = gateway(
        &mx,
        &routes,
        &format!(
            "{}resolvers = [\"127.0.0.1:{}\"]\n",
            timings("60s"),
            dns.port
        ),
        &format!("extra_roots_file = \"{}\"", ca.ca().display()),
    );
    let verify = send(&g, "x@verify.test", "expired-verify@hospital.test");
    let may = send(&g, "x@may.test", "expired-may@hospital.test");

    // may: an expired certificate still encrypts (not authenticated).
    let r = wait_state(&g, &may, "delivered", 30);
    assert_eq!(r["evidence"]["tls"]["verified"], false, "{r:#}");
    assert!(r["evidence"]["tls"]["version"].is_string(), "{r:#}");

    // verify: refused, retried, never sent in plain.
    let r = wait_rcpt(&g, &verify, 30, "deferred after 2 attempts", |r| {
        r["state"] == "deferred" && r["attempts"].as_u64() >= Some(2)
    });
    let why = reply(&r);
    assert!(why.contains("TLS"), "{r:#}");
    assert!(why.to_ascii_lowercase().contains("expired"), "{r:#}");
    assert_eq!(r["evidence"]["host"], "mx.expired.test", "{r:#}");
    assert_eq!(r["evidence"]["tls_level"], "verify", "{r:#}");
    let mail = mx.mailbox();
    assert_eq!(mail.len(), 1, "only the `may` message is delivered");
    let text = String::from_utf8_lossy(&mail[0]);
    assert!(text.contains("expired-may@hospital.test"), "{text}");
    assert!(!text.contains("expired-verify"), "{text}");
}

/// One message of the crash test, with a Message-ID that names it.
fn crash_message(i: usize, nonce: u64) -> (String, Vec<u8>) {
    let mid = format!("<crash-{i}-{nonce:016x}@hospital.test>");
    let body = format!(
        "From: <{SENDER}>\r\nTo: <r{i}@slow.test>\r\nSubject: crash {i}\r\nMessage-ID: {mid}\r\n\r\nMessage {i}.\r\n"
    );
    (mid, body.into_bytes())
}

#[test]
fn sigkill_during_delivery_loses_nothing() {
    const N: usize = 20;
    let home = home();
    let slow = FaultServer::start(Fault::SlowData(Duration::from_secs(2)));
    let mut g = gateway(
        &home,
        &[route("slow.test", slow.port, "may")],
        // Five at a time: when the second five are in flight, the last ten
        // have not been tried yet.
        "retry_schedule = [\"1s\"]\nconnect_timeout = \"2s\"\ncommand_timeout = \"2s\"\n\
         data_timeout = \"10s\"\nmax_lifetime = \"5m\"\nmax_connections_per_domain = 5\n",
        "",
    );

    let nonce: u64 = rand::random();
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO crash.test").unwrap();
    let mut ids = BTreeMap::new(); // Message-ID -> queue id
    for i in 0..N {
        let (mid, body) = crash_message(i, nonce);
        let (code, text) = c
            .message(SENDER, &[&format!("r{i}@slow.test")], &body)
            .unwrap();
        assert_eq!(code, 250, "{text}");
        ids.insert(mid, queued_id(&text).expect("queued id"));
    }
    let _ = c.cmd("QUIT");

    // Kill while the server holds replies to messages it has whole, once
    // some others have been taken long enough ago for the gateway to have
    // recorded them.
    sealgate_e2e::wait_for(30, "deliveries in flight", || {
        let settled = slow
            .accepted()
            .iter()
            .any(|m| m.at.elapsed() >= Duration::from_millis(1500));
        (settled && slow.in_flight() >= 1).then_some(())
    });
    let in_flight = slow.in_flight();
    let killed_at = Instant::now();
    g.kill9();
    // Taken at least a second before the kill: the gateway heard the 250
    // and must have recorded the delivery; these may not come again.
    let settled: BTreeSet<String> = slow
        .accepted()
        .iter()
        .filter(|m| m.at + Duration::from_secs(1) <= killed_at)
        .filter_map(|m| m.message_id())
        .collect();
    assert!(!settled.is_empty());
    // The held replies go out to a dead peer: those messages are taken
    // (as at a real MTA) though the gateway never heard it.
    sealgate_e2e::wait_for(10, "held replies to go out", || {
        (slow.in_flight() == 0).then_some(())
    });
    let before: BTreeSet<String> = slow
        .accepted()
        .iter()
        .filter_map(|m| m.message_id())
        .collect();
    g.run();

    // Every message arrives, and the queue empties.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: BTreeSet<String> = slow
            .accepted()
            .iter()
            .filter_map(|m| m.message_id())
            .collect();
        let missing: Vec<&String> = ids.keys().filter(|m| !got.contains(*m)).collect();
        if missing.is_empty() && g.queue().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the restart, not delivered: {missing:?}; queue: {:#?}\nlog:\n{}",
            g.queue(),
            tail(&g.log(), 40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (mid, id) in &ids {
        let r = rcpt(&g, id);
        assert_eq!(r["state"], "delivered", "{mid} ({id}): {r:#}");
    }
    let got = slow.accepted();
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for m in &got {
        *copies
            .entry(m.message_id().expect("Message-ID"))
            .or_default() += 1;
    }
    assert!(copies.keys().all(|m| ids.contains_key(m)), "{copies:?}");
    let dups: Vec<(&String, &usize)> = copies.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "crash during delivery: {N} messages, {} accepted by the server before the restart \
         ({} settled before the kill, {in_flight} with replies held at the kill, {} not yet \
         tried), {} deliveries in all, {} duplicated: {dups:?}",
        before.len(),
        settled.len(),
        N - before.len(),
        got.len(),
        dups.len()
    );
    // Only what the server had taken before the restart can come twice,
    // and no message three times.
    for (mid, n) in &dups {
        assert!(
            before.contains(*mid),
            "{mid} delivered twice after the restart"
        );
        assert_eq!(**n, 2, "{mid} delivered {n} times");
    }
    assert!(dsns(&home).is_empty(), "{:#?}", dsns(&home));
}

/// A message for two domains, one quick and one whose server never
/// answers: the quick domain's delivery should be on record as soon as it
/// is done, not when the slow domain's attempt ends. Otherwise a crash in
/// between delivers the quick domain again (a duplicate), and `queue show`
/// keeps saying "queued" for a recipient that has its message.
#[test]
fn a_finished_domain_is_recorded_without_waiting_for_the_others() {
    let home = home();
    let quick = FaultServer::start(Fault::Accept);
    let silent = FaultServer::start(Fault::Silent);
    let mut g = gateway(
        &home,
        &[
            route("quick.test", quick.port, "may"),
            route("silent.test", silent.port, "may"),
        ],
        "retry_schedule = [\"1s\"]\nconnect_timeout = \"2s\"\ncommand_timeout = \"6s\"\n\
         data_timeout = \"3s\"\nmax_lifetime = \"5m\"\n",
        "",
    );
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", g.smtp),
        "--from",
        SENDER,
        "--to",
        "a@quick.test,b@silent.test",
        "--body",
        "Two domains.",
    ]);
    let id = queued_id(&String::from_utf8_lossy(&o.stdout)).expect("queued id");
    assert_eq!(
        quick.wait_accepted(1, 10).len(),
        1,
        "{}",
        quick.transcript()
    );
    // The silent domain's greeting timeout (6 s) is still running.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let v = g.queue_show(&id);
        let quick_state = v["recipients"][0]["state"].clone();
        if quick_state == "delivered" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a@quick.test took its message {:?} ago but is still {quick_state} in the spool \
             while b@silent.test is being tried:\n{:#}",
            quick.accepted()[0].at.elapsed(),
            v["recipients"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A crash now must not deliver a@quick.test again.
    g.kill9();
    g.run();
    wait_rcpt(&g, &id, 30, "b@silent.test tried after the restart", |_| {
        g.queue_show(&id)["recipients"][1]["attempts"].as_u64() >= Some(2)
    });
    assert_eq!(quick.accepted().len(), 1, "{}", quick.transcript());
}

/// A slow failing attempt (a server that never greets, given up after the
/// command timeout) must wait its retry interval from when it ended, as
/// Postfix does, not from when it started: counted from the start, every
/// wait shorter than the timeout would retry at once.
#[test]
fn retry_waits_count_from_the_end_of_the_attempt() {
    let home = home();
    let silent = FaultServer::start(Fault::Silent);
    let g = gateway(
        &home,
        &[route("silent.test", silent.port, "may")],
        "retry_schedule = [\"3s\"]\nconnect_timeout = \"2s\"\ncommand_timeout = \"4s\"\n\
         data_timeout = \"3s\"\nmax_lifetime = \"5m\"\n",
        "",
    );
    let id = send(&g, "a@silent.test", "slow-fail@hospital.test");
    wait_rcpt(&g, &id, 20, "the first attempt ends", |r| {
        r["attempts"].as_u64() >= Some(1)
    });
    let ended = Instant::now();
    let deadline = ended + Duration::from_secs(20);
    while silent.connections() < 2 {
        assert!(Instant::now() < deadline, "never retried");
        std::thread::sleep(Duration::from_millis(50));
    }
    let waited = ended.elapsed();
    assert!(
        waited >= Duration::from_millis(2500),
        "retried {waited:?} after a 4 s attempt ended; the schedule says 3 s"
    );
}
