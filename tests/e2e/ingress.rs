//! Sealgate as an SMTP ingress, driven by swaks and a raw client: plain,
//! STARTTLS, implicit TLS, pipelining, limits, relay control, smuggling and
//! bad input. Each test runs its own gateway on free loopback ports.

use sealgate_e2e::fault::{Fault, FaultServer};
use sealgate_e2e::{queued_id, sha256_hex, swaks, wait_for, Gateway, Smtp};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn server(g: &Gateway) -> String {
    format!("127.0.0.1:{}", g.smtp)
}

fn find<'a>(q: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    q.iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in queue: {q:#?}"))
}

#[test]
fn swaks_plain_is_accepted_with_exact_body_and_envelope() {
    let g = Gateway::start("");
    // swaks sends the file followed by CRLF . CRLF, so the file has no final CRLF.
    let body = "From: a@tenant.test\r\nTo: someone@example.com\r\nSubject: plain test\r\n\r\nline one\r\nline two\r\n";
    let data = g.dir.path().join("msg.eml");
    std::fs::write(&data, body.trim_end_matches("\r\n")).unwrap();
    let o = swaks(&[
        "--server",
        &server(&g),
        "--from",
        "a@tenant.test",
        "--to",
        "someone@example.com,other@example.org",
        "--data",
        data.to_str().unwrap(),
    ]);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    let id = queued_id(&text).expect("queued as <id> in the 250 reply");
    let q = g.queue();
    let m = find(&q, &id);
    assert_eq!(m["from"], "a@tenant.test");
    assert_eq!(
        m["recipients"],
        serde_json::json!(["someone@example.com", "other@example.org"])
    );
    assert_eq!(m["direction"], "outbound");
    assert_eq!(m["connector"], "loopback");
    assert_eq!(m["size"], body.len());
    assert_eq!(
        m["body_sha256"],
        sha256_hex(body.as_bytes()),
        "the spool must hold the bytes exactly as sent"
    );

    // show --body gives our Received header in front of the original bytes.
    let shown = g.cli(&["queue", "show", &id, "--body"]);
    let full = String::from_utf8(shown.stdout).unwrap();
    assert!(full.starts_with("Received: from "), "{full}");
    assert!(full.contains("(no TLS)"));
    assert!(full.ends_with(body));
    // show without --body never prints the content.
    let env = String::from_utf8(g.cli(&["queue", "show", &id]).stdout).unwrap();
    assert!(
        env.contains("someone@example.com") && !env.contains("line one"),
        "{env}"
    );
}

#[test]
fn swaks_starttls_and_pipelining() {
    let g = Gateway::start("");
    let o = swaks(&[
        "--server",
        &server(&g),
        "--to",
        "someone@example.com",
        "-tls",
        "--pipeline",
    ]);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("STARTTLS") && text.contains("PIPELINING"),
        "{text}"
    );
    let id = queued_id(&text).unwrap();
    let shown = g.cli(&["queue", "show", &id, "--json"]);
    let m: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let v = m["origin"]["tls"]["version"].as_str().unwrap();
    assert!(v == "TLSv1.3" || v == "TLSv1.2", "{m:#}");
    assert!(
        m["origin"]["tls"]["cipher"]
            .as_str()
            .unwrap()
            .contains("GCM")
            || m["origin"]["tls"]["cipher"]
                .as_str()
                .unwrap()
                .contains("CHACHA")
    );
    let full = String::from_utf8(g.cli(&["queue", "show", &id, "--body"]).stdout).unwrap();
    assert!(full.contains(&format!("(using {v} with cipher")), "{full}");
    assert!(full.contains("with ESMTPS id"));
}

#[test]
fn implicit_tls_listener() {
    let g = Gateway::start_with_listeners(
        "[[listener]]\nname = \"smtps\"\naddress = \"127.0.0.1:{smtp}\"\ntls = \"implicit\"\n",
        false,
    );
    let o = swaks(&[
        "--server",
        &server(&g),
        "--to",
        "someone@example.com",
        "--tlsc",
    ]);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    let id = queued_id(&text).unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&g.cli(&["queue", "show", &id, "--json"]).stdout).unwrap();
    assert_eq!(m["origin"]["listener"], "smtps");
    assert!(m["origin"]["tls"]["version"].is_string());
}

#[test]
fn size_limit_refused_at_mail_and_at_data() {
    let g = Gateway::start("[limits]\nmax_message_size = 10000\n");
    let o = swaks(&[
        "--server",
        &server(&g),
        "--to",
        "someone@example.com",
        "--body",
        &"0123456789\n".repeat(2_000),
    ]);
    let text = out(&o);
    assert!(!o.status.success());
    assert!(text.contains("552 5.3.4"), "{text}");
    let mut c = Smtp::connect(g.smtp).unwrap();
    let (code, ehlo) = c.cmd("EHLO t").unwrap();
    assert_eq!(code, 250);
    assert!(ehlo.contains("SIZE 10000"), "{ehlo}");
    let (code, text) = c.cmd("MAIL FROM:<a@tenant.test> SIZE=20000").unwrap();
    assert_eq!(code, 552, "{text}");
    assert!(g.queue().is_empty());
    assert!(g.metric("sealgate_messages_refused_total{reason=\"size\"}") >= 2.0);
}

#[test]
fn relay_control_by_connector_ip() {
    // Only 127.0.0.2 is the tenant; 127.0.0.1 is "the internet".
    let g = Gateway::start("[[connector]]\nname = \"tenant\"\ncidrs = [\"127.0.0.2/32\"]\n");
    let o = swaks(&["--server", &server(&g), "--to", "someone@example.com"]);
    let text = out(&o);
    assert!(!o.status.success());
    assert!(text.contains("550 5.7.1"), "{text}");

    let o = swaks(&["--server", &server(&g), "--to", "doctor@hospital.test"]);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    let inbound = queued_id(&text).unwrap();

    let o = swaks(&[
        "--server",
        &server(&g),
        "--local-interface",
        "127.0.0.2",
        "--to",
        "someone@example.com",
    ]);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    let outbound = queued_id(&text).unwrap();

    let q = g.queue();
    assert_eq!(find(&q, &inbound)["direction"], "inbound");
    assert_eq!(find(&q, &inbound)["connector"], serde_json::Value::Null);
    assert_eq!(find(&q, &outbound)["direction"], "outbound");
    assert_eq!(find(&q, &outbound)["connector"], "tenant");
    assert_eq!(q.len(), 2);
}

fn smuggle(g: &Gateway, sep: &[u8]) -> (u16, String) {
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO t").unwrap();
    c.cmd("MAIL FROM:<a@tenant.test>").unwrap();
    c.cmd("RCPT TO:<victim@example.com>").unwrap();
    assert_eq!(c.cmd("DATA").unwrap().0, 354);
    let mut body = b"Subject: smuggle\r\n\r\nhello".to_vec();
    body.extend_from_slice(sep);
    body.extend_from_slice(b"MAIL FROM:<admin@bank.test>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n");
    c.send(&body).unwrap();
    let first = c.reply().unwrap();
    // Exactly one reply: nothing after the real end of data is left over.
    assert_eq!(c.cmd("NOOP").unwrap().0, 250);
    first
}

#[test]
fn smuggling_sequences_never_split_a_message() {
    let seqs: [&[u8]; 4] = [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r"];
    let g = Gateway::start("");
    for seq in seqs {
        let (code, text) = smuggle(&g, seq);
        assert_eq!(code, 550, "{seq:?}: {text}");
        assert!(text.contains("5.5.2"), "{text}");
    }
    assert!(
        g.queue().is_empty(),
        "a refused message left something in the queue"
    );

    let g = Gateway::start("[limits]\nbare_line_ending = \"normalize\"\n");
    for seq in seqs {
        let (code, text) = smuggle(&g, seq);
        assert_eq!(code, 250, "{seq:?}: {text}");
        let id = queued_id(&text).unwrap();
        let full = String::from_utf8(g.cli(&["queue", "show", &id, "--body"]).stdout).unwrap();
        assert!(
            full.contains("MAIL FROM:<admin@bank.test>"),
            "smuggled command kept as content: {full}"
        );
    }
    assert_eq!(g.queue().len(), 4, "each attempt is one message, never two");
}

#[test]
fn bad_input_gets_replies_and_session_survives() {
    let g = Gateway::start("");
    let mut c = Smtp::connect(g.smtp).unwrap();
    // 1 MB line.
    let mut long = vec![b'A'; 1 << 20];
    long.extend_from_slice(b"\r\n");
    c.send(&long).unwrap();
    let (code, text) = c.reply().unwrap();
    assert_eq!(code, 500, "{text}");
    assert!(text.contains("5.5.2"));
    assert_eq!(c.cmd("NOOP").unwrap().0, 250);
    // NUL bytes and invalid UTF-8.
    c.send(b"NOOP\0\0\r\n").unwrap();
    assert_eq!(c.reply().unwrap().0, 500);
    c.send(b"MAIL FROM:<\xff\xfe@x.test>\r\n").unwrap();
    assert_eq!(c.reply().unwrap().0, 501);
    assert_eq!(c.cmd("EHLO t").unwrap().0, 250);
    assert_eq!(c.cmd("VRFY bob").unwrap().0, 252);
    assert_eq!(c.cmd("HELP").unwrap().0, 214);
    assert_eq!(c.cmd("MAIL FROM:<a@b.test> FOO=BAR").unwrap().0, 555);
    assert_eq!(c.cmd("RSET").unwrap().0, 250);
    // BDAT is not offered: its chunk is discarded, never read as commands.
    c.send(b"BDAT 31 LAST\r\nMAIL FROM:<evil@x.test>\r\nRSET\r\n")
        .unwrap();
    assert_eq!(c.reply().unwrap().0, 502);
    assert_eq!(c.cmd("NOOP").unwrap().0, 250);
    // Too many errors closes the session with 421.
    let mut last = 0;
    for _ in 0..12 {
        match c.cmd("BOGUS") {
            Ok((code, _)) => last = code,
            Err(_) => break,
        }
    }
    assert_eq!(last, 421);
    assert!(c.cmd("NOOP").is_err(), "connection closed after 421");
}

#[test]
fn disconnect_mid_data_leaves_nothing() {
    let g = Gateway::start("");
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO t").unwrap();
    c.cmd("MAIL FROM:<a@tenant.test>").unwrap();
    c.cmd("RCPT TO:<x@example.com>").unwrap();
    c.cmd("DATA").unwrap();
    // More than two spool chunks, then vanish.
    let line = format!("{}\r\n", "y".repeat(998));
    for _ in 0..700 {
        c.send(line.as_bytes()).unwrap();
    }
    drop(c);
    std::thread::sleep(Duration::from_millis(500));
    assert!(g.queue().is_empty());
    let v = g.cli(&["queue", "verify"]);
    let text = String::from_utf8_lossy(&v.stdout).to_string();
    assert!(v.status.success(), "{text}");
    assert!(text.contains("0 orphan chunk(s)"), "{text}");
}

#[test]
fn slow_drip_is_cut_off_by_the_command_timeout() {
    let g = Gateway::start("[limits]\ncommand_timeout = \"2s\"\n");
    let mut s = TcpStream::connect(("127.0.0.1", g.smtp)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 512];
    let _ = s.read(&mut buf); // greeting
    let started = Instant::now();
    let mut got = Vec::new();
    // One byte every 300 ms never completes a line; the server must give up.
    while started.elapsed() < Duration::from_secs(15) {
        if s.write_all(b"N").is_err() {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("421 4.4.2"), "no timeout reply: {text:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "session was never closed"
    );
}

#[test]
fn hop_limit_refuses_loops() {
    let g = Gateway::start("[limits]\nmax_hops = 5\n");
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO t").unwrap();
    let mut body = String::new();
    for i in 0..5 {
        body.push_str(&format!(
            "Received: from hop{i}.test by hop{}.test; Mon, 1 Jan 2026 00:00:00 +0000\r\n",
            i + 1
        ));
    }
    body.push_str("Subject: loop\r\n\r\nbody\r\n");
    let (code, text) = c
        .message("a@tenant.test", &["x@example.com"], body.as_bytes())
        .unwrap();
    assert_eq!(code, 554, "{text}");
    assert!(text.contains("5.4.6"));
    let four: String = body.lines().skip(1).map(|l| format!("{l}\r\n")).collect();
    let (code, text) = c
        .message("a@tenant.test", &["x@example.com"], four.as_bytes())
        .unwrap();
    assert_eq!(code, 250, "{text}");
}

#[test]
fn per_ip_connection_limit() {
    let g = Gateway::start("[limits]\nmax_connections_per_ip = 2\nmax_connections = 10\n");
    // The harness's readiness probe may still hold a slot for a moment after
    // start, so the first two sessions are retried until both are admitted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (_a, _b) = loop {
        match (Smtp::connect(g.smtp), Smtp::connect(g.smtp)) {
            (Ok(a), Ok(b)) => break (a, b),
            (a, b) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{:?} {:?}",
                    a.err(),
                    b.err()
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    };
    let mut s = TcpStream::connect(("127.0.0.1", g.smtp)).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("421 4.7.0"), "{text}");
}

#[test]
fn metrics_and_queue_admin_while_running() {
    let g = Gateway::start("");
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO t").unwrap();
    let (code, text) = c
        .message(
            "a@tenant.test",
            &["x@example.com"],
            b"Subject: m\r\n\r\nhi\r\n",
        )
        .unwrap();
    assert_eq!(code, 250);
    let id = queued_id(&text).unwrap();
    c.cmd("QUIT").unwrap();
    assert_eq!(
        g.metric("sealgate_messages_accepted_total{direction=\"outbound\"}"),
        1.0
    );
    assert!(g.metric("sealgate_spool_fsync_seconds_count") >= 1.0);
    assert_eq!(g.metric("sealgate_spool_messages"), 1.0);
    let m = g.http_get("/metrics");
    assert!(
        !m.contains("a@tenant.test"),
        "metrics must not carry addresses"
    );
    // Delete while running goes through the admin API.
    let d = g.cli(&["queue", "delete", &id]);
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    assert!(g.queue().is_empty());
    assert_eq!(g.metric("sealgate_spool_messages"), 0.0);
    let d = g.cli(&["queue", "delete", &id]);
    assert!(!d.status.success());
    // The log names ids, never addresses or subjects.
    let log = g.log();
    assert!(log.contains(&id), "{log}");
    assert!(
        !log.contains("a@tenant.test")
            && !log.contains("x@example.com")
            && !log.contains("Subject"),
        "{log}"
    );
}

#[test]
fn every_stage_counts_and_times_each_relayed_message() {
    stages_count_and_time(true);
}

#[test]
fn without_dlp_policy_takes_the_spools_counted_announcements() {
    stages_count_and_time(false);
}

/// Relays N messages to a well-behaved MX; then each running stage's wait
/// and work histograms counted N and nothing waits for any of them.
fn stages_count_and_time(dlp: bool) {
    const N: usize = 5;
    let mx = FaultServer::start(Fault::Accept);
    let g = Gateway::start(&format!(
        "[dlp]\nenabled = {dlp}\n\n[delivery]\nretry_schedule = [\"1s\"]\n\n\
         [tls]\ndane = false\nmta_sts = false\nremember = false\n\n\
         [[route]]\ndomains = [\"dest.test\"]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"may\"\n",
        mx.port
    ));
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO t").unwrap();
    for i in 0..N {
        let body = format!("Subject: m{i}\r\n\r\nhi\r\n");
        let (code, text) = c
            .message("a@tenant.test", &["x@dest.test"], body.as_bytes())
            .unwrap();
        assert_eq!(code, 250, "{text}");
    }
    c.cmd("QUIT").unwrap();
    assert_eq!(mx.wait_accepted(N, 30).len(), N, "{}", g.log());
    // Delivery's timing ends with the attempt, just after the MX's 250.
    let stages: &[&str] = match dlp {
        true => &["inspect", "policy", "seal", "deliver"],
        false => &["policy", "seal", "deliver"],
    };
    wait_for(10, "every stage's timings", || {
        stages
            .iter()
            .all(|s| {
                g.metric(&format!(
                    "sealgate_stage_work_seconds_count{{stage=\"{s}\"}}"
                )) == N as f64
            })
            .then_some(())
    });
    let m = g.http_get("/metrics");
    assert_eq!(
        m.contains("stage=\"inspect\""),
        dlp,
        "inspect's series exist exactly when it runs"
    );
    for s in stages {
        let sample = |name: &str| {
            let prefix = format!("{name}{{stage=\"{s}\"}} ");
            m.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no {prefix}in\n{m}"))
                .parse::<f64>()
                .unwrap()
        };
        assert_eq!(sample("sealgate_stage_waiting_messages"), 0.0, "{s}");
        assert_eq!(sample("sealgate_stage_wait_seconds_count"), N as f64, "{s}");
        assert_eq!(sample("sealgate_stage_work_seconds_count"), N as f64, "{s}");
    }
}

#[test]
fn queue_commands_work_with_the_gateway_stopped() {
    let mut g = Gateway::start("");
    let o = swaks(&["--server", &server(&g), "--to", "someone@example.com"]);
    let id = queued_id(&out(&o)).unwrap();
    g.stop();
    let data = g.data();
    let ls = std::process::Command::new(sealgate_e2e::sealgate_bin())
        .args(["queue", "ls", "--json", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let q: Vec<serde_json::Value> = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["id"], id.as_str());
    let d = g.cli(&["queue", "delete", &id]);
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    assert!(g.queue().is_empty());
}

#[test]
fn check_config_reports_each_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(&f, "[limits]\nmax_recipients = 0\ncommand_timeout = \"soon\"\n\n[[connector]]\nname = \"anyone\"\n").unwrap();
    let o = std::process::Command::new(sealgate_e2e::sealgate_bin())
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.toml:3: limits.command_timeout:"), "{err}");
    assert!(err.contains("bad.toml:2: limits.max_recipients:"), "{err}");
    assert!(err.contains("bad.toml:5: connector[0]:"), "{err}");
    let ok = dir.path().join("ok.toml");
    std::fs::write(
        &ok,
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/sealgate.example.toml"
        ))
        .unwrap(),
    )
    .unwrap();
    let o = std::process::Command::new(sealgate_e2e::sealgate_bin())
        .arg("check-config")
        .arg(&ok)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the example config must pass: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn m365_connector_requires_the_tenant_id_header() {
    let g = Gateway::start(
        "[[connector]]\nname = \"m365\"\ncidrs = [\"127.0.0.0/8\"]\nm365_tenant_id = \"8f3a1c2e-0000-4000-8000-123456789abc\"\n",
    );
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO t").unwrap();
    let foreign = b"X-MS-Exchange-CrossTenant-Id: 11111111-2222-3333-4444-555555555555\r\nSubject: x\r\n\r\nhi\r\n";
    let (code, text) = c
        .message("a@tenant.test", &["x@example.com"], foreign)
        .unwrap();
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.1"));
    let (code, _) = c
        .message(
            "a@tenant.test",
            &["x@example.com"],
            b"Subject: no header\r\n\r\nhi\r\n",
        )
        .unwrap();
    assert_eq!(code, 550);
    let ours = b"X-MS-Exchange-CrossTenant-Id: 8F3A1C2E-0000-4000-8000-123456789ABC\r\nSubject: x\r\n\r\nhi\r\n";
    let (code, text) = c
        .message("a@tenant.test", &["x@example.com"], ours)
        .unwrap();
    assert_eq!(code, 250, "{text}");
    assert_eq!(g.queue().len(), 1);
    assert_eq!(
        g.metric("sealgate_messages_refused_total{reason=\"wrong_tenant\"}"),
        2.0
    );
}

#[test]
fn bare_lf_command_lines_are_refused() {
    let g = Gateway::start("");
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.send(b"EHLO t\n").unwrap();
    let (code, text) = c.reply().unwrap();
    assert_eq!(code, 500, "{text}");
    assert!(text.contains("5.5.2"));
    assert_eq!(c.cmd("EHLO t").unwrap().0, 250);
}

#[test]
fn unknown_local_recipients_are_refused_and_the_list_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("recipients.txt");
    std::fs::write(&list, "doctor@hospital.test\n").unwrap();
    let g = Gateway::start_with_server_extra(
        &format!("recipients_file = \"{}\"\n", list.display()),
        "[[connector]]\nname = \"tenant\"\ncidrs = [\"127.0.0.2/32\"]\n",
    );
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO t").unwrap();
    c.cmd("MAIL FROM:<a@elsewhere.test>").unwrap();
    assert_eq!(c.cmd("RCPT TO:<Doctor@hospital.test>").unwrap().0, 250);
    let (code, text) = c.cmd("RCPT TO:<nobody@hospital.test>").unwrap();
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.1.1"));
    std::fs::write(&list, "doctor@hospital.test\nnobody@hospital.test\n").unwrap();
    g.reload("recipients list reloaded");
    assert_eq!(c.cmd("RCPT TO:<nobody@hospital.test>").unwrap().0, 250);
}

#[test]
fn nul_before_a_dot_line_never_ends_data_and_never_passes_on() {
    // `CRLF NUL . CRLF`: a next hop that drops NULs would read the end of
    // DATA there and run what follows as a second transaction.
    let g = Gateway::start("");
    let (code, text) = smuggle(&g, b"\r\n\x00.\r\n");
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.5.2"), "{text}");
    assert!(g.queue().is_empty());
    assert_eq!(
        g.metric("sealgate_messages_refused_total{reason=\"nul\"}"),
        1.0
    );

    let g = Gateway::start("[limits]\nbare_line_ending = \"normalize\"\n");
    let (code, text) = smuggle(&g, b"\r\n\x00.\r\n");
    assert_eq!(code, 250, "{text}");
    let id = queued_id(&text).unwrap();
    let full = g.cli(&["queue", "show", &id, "--body"]).stdout;
    assert!(!full.contains(&0), "NUL kept in the spooled message");
    assert_eq!(g.queue().len(), 1, "one message, never two");
}

#[test]
fn null_sender_from_a_shared_connector_must_be_from_its_domains() {
    let g = Gateway::start(
        "[[connector]]\nname = \"workspace\"\ncidrs = [\"127.0.0.0/8\"]\nsender_domains = [\"tenant.test\"]\n",
    );
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO t").unwrap();
    let foreign =
        b"From: \"Mail Delivery\" <mailer-daemon@other-customer.test>\r\nSubject: x\r\n\r\nhi\r\n";
    let (code, text) = c.message("", &["x@example.com"], foreign).unwrap();
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.1"), "{text}");
    let (code, text) = c
        .message("", &["x@example.com"], b"Subject: no From\r\n\r\nhi\r\n")
        .unwrap();
    assert_eq!(code, 550, "{text}");
    let ours = b"From: \"a@other-customer.test\"\r\n <MAILER-DAEMON@mx.Tenant.test>\r\nSubject: x\r\n\r\nhi\r\n";
    let (code, text) = c.message("", &["x@example.com"], ours).unwrap();
    assert_eq!(code, 250, "{text}");
    assert_eq!(g.queue().len(), 1);
    assert_eq!(
        g.metric("sealgate_messages_refused_total{reason=\"sender_domain\"}"),
        2.0
    );
}

#[test]
fn paths_without_angle_brackets_are_accepted_unless_strict() {
    let g = Gateway::start("");
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO t").unwrap();
    assert_eq!(c.cmd("MAIL FROM:a@tenant.test").unwrap().0, 250);
    assert_eq!(c.cmd("RCPT TO:x@example.com").unwrap().0, 250);
    assert_eq!(c.cmd("DATA").unwrap().0, 354);
    c.send(b"Subject: x\r\n\r\nhi\r\n.\r\n").unwrap();
    let (code, text) = c.reply().unwrap();
    assert_eq!(code, 250, "{text}");
    let id = queued_id(&text).unwrap();
    assert_eq!(g.queue_show(&id)["from"], "a@tenant.test");

    let g = Gateway::start("[limits]\nstrict_envelope_syntax = true\n");
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO t").unwrap();
    let (code, text) = c.cmd("MAIL FROM:a@tenant.test").unwrap();
    assert_eq!(code, 501, "{text}");
    assert_eq!(c.cmd("MAIL FROM:<a@tenant.test>").unwrap().0, 250);
}

#[test]
fn a_nearly_full_spool_disk_defers_new_mail() {
    // No file system has an exabyte free: every MAIL is deferred, nothing stored.
    let g = Gateway::start("[spool]\nmin_free_space = 1000000000000000000\n");
    let mut c = Smtp::connect(g.smtp).unwrap();
    c.cmd("EHLO t").unwrap();
    let (code, text) = c.cmd("MAIL FROM:<a@tenant.test>").unwrap();
    assert_eq!(code, 452, "{text}");
    assert!(text.contains("4.3.1"), "{text}");
    assert!(g.queue().is_empty());
    assert_eq!(
        g.metric("sealgate_messages_refused_total{reason=\"no_room\"}"),
        1.0
    );
}
