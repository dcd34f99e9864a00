//! A complete relay with real peers on loopback: Postfix "tenant" relays to
//! Sealgate, Sealgate finds the recipient domain's MX through a real DNS
//! server (dnsmasq) and delivers to Postfix "remote MX", which writes the
//! message to a Maildir; and the reverse direction, inbound mail delivered
//! to the tenant's smart host.

use sealgate_e2e::{postfix_mailbox, swaks, wait_for, Dns, Gateway, Postfix};

/// The message as the tenant's user wrote it (CRLF, with a dot line that
/// must survive dot-stuffing in both hops).
fn original(to: &str) -> String {
    format!(
        "From: Nurse <nurse@hospital.test>\r\nTo: <{to}>\r\nSubject: relay test\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <relay-{to}@hospital.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLine one.\r\n.leading dot\r\n..two dots\r\n\r\nLast line.\r\n"
    )
}

/// Postfix stores Maildir files with LF line ends.
fn lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

/// Sealgate between a tenant Postfix (which is also the smart host holding
/// hospital.test mailboxes) and a remote-MX Postfix for dest.test.
struct Relay {
    gw: Gateway,
    tenant: Postfix,
    mx: Postfix,
    _dns: Dns,
}

fn relay() -> Relay {
    let mx = postfix_mailbox("remote-mx", "dest.test", "");
    let dns = Dns::start(&[
        "--mx-host=dest.test,mx.dest.test,10".into(),
        "--host-record=mx.dest.test,127.0.0.1".into(),
        // RFC 7505 null MX: preference 0, exchange ".".
        "--mx-host=nomail.test,.,0".into(),
        // Authoritative for .test: unknown names are NXDOMAIN.
        "--local=/test/".into(),
    ]);
    // The tenant's connector is 127.0.0.2: the tenant Postfix binds there,
    // so everything else on loopback is "the internet" (inbound).
    let tenant = postfix_mailbox(
        "tenant",
        "hospital.test",
        "smtp_bind_address = 127.0.0.2\nsmtp_tls_security_level = encrypt\n",
    );
    let gw = Gateway::start(
        &format!(
            "[[connector]]\nname = \"tenant\"\ncidrs = [\"127.0.0.2/32\"]\n\n\
             [delivery]\nresolvers = [\"127.0.0.1:{dns}\"]\nmx_port = {mx}\nretry_schedule = [\"1s\"]\n\
             smart_host = {{ host = \"127.0.0.1\", port = {tenant} }}\n\n\
             [tls]\ndane = false\n",
            dns = dns.port,
            mx = mx.port,
            tenant = tenant.port,
        ),
    );
    tenant.set(&format!("relayhost = [127.0.0.1]:{}", gw.smtp));
    Relay {
        gw,
        tenant,
        mx,
        _dns: dns,
    }
}

fn send(server_port: u16, from: &str, to: &str, data: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("msg.eml");
    std::fs::write(&f, data).unwrap();
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{server_port}"),
        "--from",
        from,
        "--to",
        to,
        "--data",
        &format!("@{}", f.display()),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn outbound_through_mx_and_inbound_through_smart_host() {
    let r = relay();

    // Outbound: user → tenant Postfix → Sealgate → MX of dest.test.
    let out = original("patient@dest.test");
    send(
        r.tenant.port,
        "nurse@hospital.test",
        "patient@dest.test",
        &out,
    );
    let got = r.mx.wait_mail(1, 60);
    assert_eq!(
        got.len(),
        1,
        "remote MX got nothing.\nsealgate log:\n{}\ntenant log:\n{}\nmx log:\n{}",
        r.gw.log(),
        r.tenant.log(),
        r.mx.log()
    );
    let text = String::from_utf8(got[0].clone()).unwrap();
    // Only trace headers were added in front of what the user wrote (swaks
    // ends the DATA with one more CRLF of its own).
    let body_at = text
        .find(&lf(&out))
        .unwrap_or_else(|| panic!("message changed in transit:\n{text}"));
    let added = &text[..body_at];
    for line in added.lines().filter(|l| !l.starts_with([' ', '\t'])) {
        let name = line.split(':').next().unwrap();
        assert!(
            ["Return-Path", "X-Original-To", "Delivered-To", "Received"].contains(&name),
            "unexpected added header {line:?} in\n{added}"
        );
    }
    assert!(added.contains("by gw.sealgate.test (Sealgate)"), "{added}");
    assert!(added.contains("by tenant.test (Postfix)"), "{added}");

    // The message leaves the queue; its record, with evidence, stays.
    let id = wait_for(30, "message to finish", || {
        let log = r.gw.log();
        log.lines()
            .find(|l| l.contains("message finished"))
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|v| v["id"].as_str().map(String::from))
    });
    assert!(r.gw.queue().is_empty());
    // Byte-identical: what follows Sealgate's own Received header at the MX
    // hashes to what Sealgate received from the tenant.
    let record: serde_json::Value =
        serde_json::from_slice(&r.gw.cli(&["queue", "show", &id, "--json"]).stdout).unwrap();
    let ours = text
        .find("Received: from tenant.test")
        .expect("Sealgate's Received header");
    let after = &text[ours..];
    let next = after
        .find("\nReceived: ")
        .expect("the tenant's Received header")
        + 1;
    let relayed = after[next..].replace('\n', "\r\n");
    assert_eq!(
        sealgate_e2e::sha256_hex(relayed.as_bytes()),
        record["body_sha256"].as_str().unwrap(),
        "the bytes delivered differ from the bytes accepted"
    );
    let show = String::from_utf8(r.gw.cli(&["queue", "show", &id]).stdout).unwrap();
    assert!(show.contains("finished"), "{show}");
    assert!(show.contains("delivered"), "{show}");
    assert!(
        show.contains("host:          mx.dest.test [127.0.0.1]"),
        "{show}"
    );
    // This MX offers no STARTTLS; level `may` delivers in plain.
    assert!(show.contains("tls:           none"), "{show}");
    assert!(show.contains("level may from config"), "{show}");
    assert!(show.contains("reply:         250 2.0.0"), "{show}");
    assert!(
        r.gw.metric("sealgate_deliveries_total{result=\"delivered\",tls_level=\"may\"}") >= 1.0
    );

    // Connection reuse: more messages to the same MX within idle_timeout
    // ride the session already open (it proves itself alive with RSET).
    for n in 2..=4 {
        let o = swaks(&[
            "--server",
            &format!("127.0.0.1:{}", r.gw.smtp),
            "--local-interface",
            "127.0.0.2",
            "--from",
            "nurse@hospital.test",
            "--to",
            "patient@dest.test",
            "--header",
            &format!("Subject: reuse {n}"),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        assert_eq!(r.mx.wait_mail(n, 30).len(), n);
    }
    let connects =
        r.mx.log()
            .matches(": connect from localhost[127.0.0.1]")
            .count();
    assert!(
        (1..4).contains(&connects),
        "4 messages, {connects} connections: no reuse?\n{}",
        r.mx.log()
    );

    // Inbound: the internet → Sealgate → the tenant's smart host.
    // A forged "internal" marker from the internet must not reach the tenant.
    let clean = original("nurse@hospital.test").replace(
        "From: Nurse <nurse@hospital.test>",
        "From: <doctor@clinic.example>",
    );
    let inb = clean.replace(
        "Subject: relay test\r\n",
        "Subject: relay test\r\nX-MS-Exchange-Organization-AuthAs: Internal\r\n",
    );
    send(
        r.gw.smtp,
        "doctor@clinic.example",
        "nurse@hospital.test",
        &inb,
    );
    let got = r.tenant.wait_mail(1, 60);
    assert_eq!(
        got.len(),
        1,
        "smart host got nothing.\nsealgate log:\n{}",
        r.gw.log()
    );
    let text = String::from_utf8(got[0].clone()).unwrap();
    assert!(text.contains(&lf(&clean)), "{text}");
    assert!(!text.contains("X-MS-Exchange-Organization"), "{text}");
    assert!(text.contains("by gw.sealgate.test (Sealgate)"), "{text}");
}

#[test]
fn unknown_domain_and_null_mx_bounce_to_the_sender() {
    let r = relay();
    send(
        r.tenant.port,
        "nurse@hospital.test",
        "someone@no-such.test,nobody@nomail.test",
        &original("someone@no-such.test"),
    );
    // One DSN for both recipients, back to the sender's mailbox at the tenant.
    let got = r.tenant.wait_mail(1, 60);
    assert_eq!(got.len(), 1, "no DSN.\nsealgate log:\n{}", r.gw.log());
    let dsn = String::from_utf8_lossy(&got[0]).to_string();
    assert!(dsn.contains("multipart/report"), "{dsn}");
    assert!(dsn.contains("report-type=delivery-status"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; someone@no-such.test"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@nomail.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("Status: 5.1.2"), "{dsn}");
    assert!(dsn.contains("Status: 5.1.10"), "{dsn}");
    // Headers only: the body of the original is not returned.
    assert!(!dsn.contains("Last line."), "{dsn}");
    assert!(dsn.contains("Subject: relay test"), "{dsn}");
    // The DSN itself came from the null sender.
    assert!(dsn.contains("Return-Path: <>"), "{dsn}");
    assert!(r.gw.metric("sealgate_dsn_total{kind=\"failed\"}") >= 1.0);
}
