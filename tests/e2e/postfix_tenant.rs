//! Postfix plays the tenant's MTA: it relays through Sealgate with
//! `relayhost = [127.0.0.1]:PORT`, over STARTTLS, with pipelining, and the
//! message must appear in `sealgate queue ls` with the right envelope.

use sealgate_e2e::{swaks, Gateway, Postfix};
use std::time::{Duration, Instant};

#[test]
fn postfix_relays_through_sealgate() {
    let g = Gateway::start("");
    let pf = Postfix::start(
        "tenant",
        &format!(
            "relayhost = [127.0.0.1]:{}\nsmtp_tls_security_level = encrypt\nsmtp_tls_loglevel = 1\n",
            g.smtp
        ),
    );
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", pf.port),
        "--from",
        "nurse@tenant.test",
        "--to",
        "patient@example.com,billing@partner.example,cc@example.org",
        "--header",
        "Subject: via postfix",
        "--body",
        "Lab results are ready.",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    let deadline = Instant::now() + Duration::from_secs(60);
    let m = loop {
        let q = g.queue();
        if let Some(m) = q.into_iter().next() {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "Postfix did not relay to Sealgate.\npostfix log:\n{}\npostqueue:\n{}\nsealgate log:\n{}",
            pf.log(),
            pf.queue(),
            g.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(m["from"], "nurse@tenant.test");
    let mut rcpts: Vec<String> = m["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        [
            "billing@partner.example",
            "cc@example.org",
            "patient@example.com"
        ]
    );
    assert_eq!(m["direction"], "outbound");
    assert_eq!(m["connector"], "loopback");

    let id = m["id"].as_str().unwrap();
    let show: serde_json::Value =
        serde_json::from_slice(&g.cli(&["queue", "show", id, "--json"]).stdout).unwrap();
    assert_eq!(show["origin"]["helo"], "tenant.test");
    assert!(
        show["origin"]["tls"]["version"]
            .as_str()
            .unwrap()
            .starts_with("TLSv1."),
        "{show:#}"
    );
    let full = String::from_utf8(g.cli(&["queue", "show", id, "--body"]).stdout).unwrap();
    assert!(full.contains("Subject: via postfix"));
    assert!(
        full.contains("by tenant.test (Postfix)"),
        "Postfix's own Received header is kept: {full}"
    );
    // Postfix logged that it delivered to us over TLS.
    let log = pf.log();
    assert!(
        log.contains("status=sent") && log.contains("TLS connection established"),
        "{log}"
    );
}
