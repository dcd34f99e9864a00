//! The archive end to end: mail relayed by a real tenant Postfix through
//! Sealgate to a real remote-MX Postfix is journaled once its recipients
//! are final — the bytes as received, the envelope with a Bcc recipient
//! that appears in no header, the delivery evidence — identical bytes are
//! stored once with their envelopes merged, and `archive verify` walks the
//! chain and its signed checkpoints.

use sealgate_e2e::{postfix_mailbox, sha256_hex, swaks, wait_for, Dns, Gateway, Postfix};
use serde_json::Value;

struct Peers {
    gw: Gateway,
    tenant: Postfix,
    mx: Postfix,
    _dns: Dns,
}

fn peers() -> Peers {
    let mx = postfix_mailbox("archive-mx", "dest.test", "");
    let dns = Dns::start(&[
        "--mx-host=dest.test,mx.dest.test,10".into(),
        "--host-record=mx.dest.test,127.0.0.1".into(),
    ]);
    let tenant = postfix_mailbox(
        "archive-tenant",
        "hospital.test",
        "smtp_bind_address = 127.0.0.2\n",
    );
    let gw = Gateway::start(&format!(
        "[[connector]]\nname = \"tenant\"\ncidrs = [\"127.0.0.2/32\"]\n\n\
         [delivery]\nresolvers = [\"127.0.0.1:{dns}\"]\nmx_port = {mx}\nretry_schedule = [\"1s\"]\n\
         smart_host = {{ host = \"127.0.0.1\", port = {tenant} }}\n\n\
         [tls]\ndane = false\nmta_sts = false\n\n\
         [archive]\ncheckpoint_every = 2\n",
        dns = dns.port,
        mx = mx.port,
        tenant = tenant.port,
    ));
    tenant.set(&format!("relayhost = [127.0.0.1]:{}", gw.smtp));
    Peers {
        gw,
        tenant,
        mx,
        _dns: dns,
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `sealgate archive ls --json`.
fn items(g: &Gateway) -> Vec<Value> {
    let o = g.cli(&["archive", "ls", "--json"]);
    assert!(o.status.success(), "archive ls: {}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Waits until the gateway's log shows `n` messages journaled.
fn wait_journaled(g: &Gateway, n: usize) {
    wait_for(60, "messages journaled", || {
        (g.log().matches("\"journaled\"").count() >= n).then_some(())
    });
}

fn swaks_data(port: u16, from_ip: &str, to: &str, data: &std::path::Path) {
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{port}"),
        "--local-interface",
        from_ip,
        "--from",
        "nurse@hospital.test",
        "--to",
        to,
        "--data",
        &format!("@{}", data.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o.stdout));
}

#[test]
fn relayed_mail_is_journaled_with_its_envelope_and_verifies() {
    let p = peers();
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("msg.eml");
    std::fs::write(
        &msg,
        "From: Nurse <nurse@hospital.test>\r\nTo: <patient@dest.test>\r\nSubject: Lab results for archive\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <archive-1@hospital.test>\r\n\r\nResults attached.\r\n",
    )
    .unwrap();
    // Through the tenant Postfix: the Bcc recipient is only in the envelope.
    swaks_data(
        p.tenant.port,
        "127.0.0.1",
        "patient@dest.test,audit@dest.test",
        &msg,
    );
    assert_eq!(p.mx.wait_mail(2, 60).len(), 2, "{}", p.gw.log());
    wait_journaled(&p.gw, 1);
    let list = items(&p.gw);
    assert_eq!(list.len(), 1, "{list:#?}");
    let item = &list[0];
    assert_eq!(item["subject"], "Lab results for archive");
    assert_eq!(item["message_id"], "archive-1@hospital.test");
    assert_eq!(item["direction"], "outbound");
    let rcpts: Vec<&str> = item["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(rcpts.contains(&"audit@dest.test"), "Bcc lost: {rcpts:?}");
    assert!(rcpts.contains(&"patient@dest.test"), "{rcpts:?}");
    let id = item["id"].as_u64().unwrap().to_string();

    // The raw bytes are those Sealgate received, byte for byte.
    let raw = p.gw.cli(&["archive", "show", &id, "--raw"]);
    assert!(raw.status.success(), "{}", text(&raw.stderr));
    assert_eq!(sha256_hex(&raw.stdout), item["sha256"].as_str().unwrap());
    assert!(text(&raw.stdout).contains("Results attached."));
    assert!(
        text(&raw.stdout).contains("(Postfix)"),
        "the tenant's Received header"
    );
    // The delivery evidence of each recipient.
    let shown = text(&p.gw.cli(&["archive", "show", &id, "--evidence"]).stdout);
    assert!(
        shown.contains("rcpt to:   audit@dest.test (delivered)"),
        "{shown}"
    );
    assert!(shown.contains("delivery: "), "{shown}");
    assert!(shown.contains("mx.dest.test:"), "{shown}");
    assert!(shown.contains("250 2.0.0"), "{shown}");
    assert!(shown.contains("verdict: deliver (tls"), "{shown}");
    assert!(shown.contains("connector tenant"), "{shown}");

    // The same bytes twice straight from the connector: stored once more
    // (they differ from the tenant's copy), then merged.
    swaks_data(p.gw.smtp, "127.0.0.2", "patient@dest.test", &msg);
    swaks_data(p.gw.smtp, "127.0.0.2", "records@dest.test", &msg);
    wait_journaled(&p.gw, 3);
    let list = items(&p.gw);
    assert_eq!(list.len(), 2, "{list:#?}");
    let twice = list
        .iter()
        .find(|i| i["relays"] == 2)
        .unwrap_or_else(|| panic!("no merged item: {list:#?}"));
    let rcpts = twice["recipients"].as_array().unwrap();
    assert_eq!(rcpts.len(), 2, "{twice:#}");

    let v = p.gw.cli(&["archive", "verify", "--json"]);
    let report: Value = serde_json::from_slice(&v.stdout).unwrap();
    assert!(v.status.success(), "{report:#}");
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["report"]["events_ok"], 3, "{report:#}");
    assert_eq!(report["report"]["blobs_ok"], 2, "{report:#}");
    assert_eq!(report["report"]["checkpoints_ok"], 1, "{report:#}");
    let text_out = text(&p.gw.cli(&["archive", "verify"]).stdout);
    assert!(text_out.contains("intact"), "{text_out}");
    let _ = &p.tenant;
}
