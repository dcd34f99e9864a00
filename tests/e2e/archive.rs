//! The archive end to end: mail relayed by a real tenant Postfix through
//! Sealgate to a real remote-MX Postfix is journaled once its recipients
//! are final — the bytes as received, the envelope with a Bcc recipient
//! that appears in no header, the delivery evidence — identical bytes are
//! stored once with their envelopes merged, and `archive verify` walks the
//! chain and its signed checkpoints.

use sealgate_e2e::{
    free_port, postfix_mailbox, sha256_hex, swaks, wait_for, Dns, Gateway, Postfix,
};
use serde_json::Value;

struct Peers {
    gw: Gateway,
    tenant: Postfix,
    mx: Postfix,
    _dns: Dns,
    /// The journal listener's port.
    journal: u16,
}

fn peers() -> Peers {
    peers_with("")
}

/// The peers, with `archive_extra` lines added to `[archive]`.
fn peers_with(archive_extra: &str) -> Peers {
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
    let journal = free_port();
    let gw = Gateway::start(&format!(
        "[[listener]]\nname = \"journal\"\naddress = \"127.0.0.1:{journal}\"\ntls = \"starttls\"\njournal = true\n\n\
         [[connector]]\nname = \"tenant\"\ncidrs = [\"127.0.0.2/32\"]\n\n\
         [delivery]\nresolvers = [\"127.0.0.1:{dns}\"]\nmx_port = {mx}\nretry_schedule = [\"1s\"]\n\
         smart_host = {{ host = \"127.0.0.1\", port = {tenant} }}\n\n\
         [tls]\ndane = false\nmta_sts = false\n\n\
         [archive]\ncheckpoint_every = 2\n{archive_extra}\n",
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
        journal,
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

    // On disk: the gateway stopped (its archive flushed into table files),
    // one byte flipped in the events table, then in the chain table.
    let mut gw = p.gw;
    gw.stop();
    let table_of = |cf: &str| -> std::path::PathBuf {
        let dir = gw.data().join("archive");
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sst"))
            .find(|p| {
                let b = std::fs::read(p).unwrap();
                // The table's properties name its column family.
                b.windows(cf.len()).any(|w| w == cf.as_bytes())
            })
            .unwrap_or_else(|| panic!("no table file for {cf} in {}", dir.display()))
    };
    for cf in ["events", "chain"] {
        let file = table_of(cf);
        let original = std::fs::read(&file).unwrap();
        let mut bad = original.clone();
        bad[20] ^= 0x01;
        std::fs::write(&file, &bad).unwrap();
        let o = gw.cli(&["archive", "verify", "--json"]);
        assert_eq!(o.status.code(), Some(1), "{cf}: {}", text(&o.stdout));
        let r: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{cf}: {e}: {}", text(&o.stderr)));
        let first = &r["first_broken"];
        assert_eq!(first["seq"], 1, "{cf}: {r:#}");
        assert!(
            first["problem"].as_str().unwrap().contains("Corruption"),
            "{cf}: {r:#}"
        );
        std::fs::write(&file, &original).unwrap();
        assert!(
            gw.cli(&["archive", "verify"]).status.success(),
            "{cf} restored"
        );
    }
}

/// `sealgate archive search --json QUERY`: the matching ids.
fn search(g: &Gateway, q: &str) -> Vec<u64> {
    let o = g.cli(&["archive", "search", "--json", q]);
    assert!(o.status.success(), "search {q:?}: {}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut ids: Vec<u64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    ids.sort();
    ids
}

#[test]
fn archivists_search_every_field_export_verify_and_unwrap_journal_reports() {
    let p = peers();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let f = dir.path().join(name);
        std::fs::write(&f, body).unwrap();
        f
    };
    let a = write(
        "a.eml",
        "From: Nurse <nurse@hospital.test>\r\nTo: <patient@dest.test>\r\nSubject: Lab results\r\n\
         Message-ID: <lab-a@hospital.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
         Your potassium is fine.\r\nFrom the lab, with love.\r\n--b\r\nContent-Type: text/csv\r\n\
         Content-Disposition: attachment; filename=\"labs.csv\"\r\n\r\ntest,value\r\nsodium,140\r\n--b--\r\n",
    );
    let b = write(
        "b.eml",
        "From: Billing <billing@hospital.test>\r\nTo: <payer@dest.test>\r\nSubject: Invoice March\r\n\
         Message-ID: <inv-b@hospital.test>\r\n\r\nPlease pay the invoice.\r\n",
    );
    // A Microsoft 365 envelope journal report: the original inside, the
    // envelope (with a Bcc) in the report body.
    let report = write(
        "report.eml",
        "From: Microsoft Outlook <MicrosoftExchange@hospital.test>\r\nTo: journal@hospital.test\r\n\
         Subject: Quarterly report\r\nX-MS-Journal-Report:\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"jr\"\r\n\r\n--jr\r\nContent-Type: text/plain\r\n\r\n\
         Sender: cfo@hospital.test\r\nSubject: Quarterly report\r\nMessage-Id: <q-1@hospital.test>\r\n\
         To: board@hospital.test\r\nBcc: counsel@lawfirm.test\r\n\r\n--jr\r\nContent-Type: message/rfc822\r\n\r\n\
         From: cfo@hospital.test\r\nTo: board@hospital.test\r\nSubject: Quarterly report\r\n\
         Message-ID: <q-1@hospital.test>\r\n\r\nRevenue grew.\r\n\r\n--jr--\r\n",
    );
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", p.gw.smtp),
        "--local-interface",
        "127.0.0.2",
        "--from",
        "nurse@hospital.test",
        "--to",
        "patient@dest.test,audit@dest.test",
        "--data",
        &format!("@{}", a.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    swaks_data(p.gw.smtp, "127.0.0.2", "payer@dest.test", &b);
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", p.journal),
        "--from",
        "MicrosoftExchange@hospital.test",
        "--to",
        "journal@hospital.test",
        "--data",
        &format!("@{}", report.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    wait_journaled(&p.gw, 3);
    // The index commits within a second.
    wait_for(30, "three items searchable", || {
        (search(&p.gw, "").len() == 3).then_some(())
    });
    let ls = items(&p.gw);
    let id_of = |subject: &str| -> u64 {
        ls.iter()
            .find(|i| i["subject"] == subject)
            .unwrap_or_else(|| panic!("no {subject}: {ls:#?}"))["id"]
            .as_u64()
            .unwrap()
    };
    let (ia, ib, iq) = (
        id_of("Lab results"),
        id_of("Invoice March"),
        id_of("Quarterly report"),
    );
    // The journal report was unwrapped: the original, with the report's envelope.
    let q_item = ls.iter().find(|i| i["id"] == iq).unwrap();
    assert_eq!(q_item["mail_from"], "cfo@hospital.test", "{q_item:#}");
    assert!(q_item["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "counsel@lawfirm.test"));
    let raw =
        p.gw.cli(&["archive", "show", &iq.to_string(), "--raw"])
            .stdout;
    assert!(
        text(&raw).starts_with("From: cfo@hospital.test\r\n"),
        "{}",
        text(&raw)
    );
    // Nothing from the journal listener was relayed.
    assert_eq!(p.mx.mailbox().len(), 3, "a, its bcc copy and b only");

    for (q, want) in [
        // The header From or the envelope sender (b went with nurse's MAIL FROM).
        ("from:nurse@hospital.test", vec![ia, ib]),
        ("from:billing@hospital.test", vec![ib]),
        ("from:*@hospital.test", vec![ia, ib, iq]),
        ("to:patient@dest.test", vec![ia]),
        ("to:*@dest.test", vec![ia, ib]),
        ("bcc:audit@dest.test", vec![ia]),
        ("bcc:counsel@lawfirm.test", vec![iq]),
        ("rcpt:payer@dest.test", vec![ib]),
        ("subject:\"lab results\"", vec![ia]),
        ("potassium", vec![ia]),
        ("body:revenue", vec![iq]),
        ("filename:labs.csv", vec![ia]),
        ("attachment:sodium", vec![ia]),
        ("has:attachment", vec![ia]),
        ("direction:outbound", vec![ia, ib]),
        ("direction:inbound", vec![iq]),
        ("message-id:<inv-b@hospital.test>", vec![ib]),
        ("after:2000-01-01 before:2999-01-01", vec![ia, ib, iq]),
        ("after:2999-01-01", vec![]),
        ("invoic* OR revenue", vec![ib, iq]),
        ("-has:attachment", vec![ib, iq]),
        ("seal:tls", vec![ia, ib]),
    ] {
        assert_eq!(search(&p.gw, q), want, "query {q:?}");
    }
    // A query with a syntax error gets a message pointing at it.
    let o =
        p.gw.cli(&["archive", "search", "from:nurse@hospital.test form:x"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("{}^ unknown field `form:`", " ".repeat(25))),
        "{err}"
    );

    // Export to mbox: Python's mailbox reads it, every SHA-256 matches the
    // manifest, and the manifest's signature verifies with openssl.
    let out = dir.path().join("export");
    let o = p.gw.cli(&[
        "archive",
        "export",
        "subject:\"lab results\" OR subject:invoice",
        "--format",
        "mbox",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("exported 2 items"),
        "{}",
        text(&o.stdout)
    );
    let check = r#"
import hashlib, json, mailbox, re, sys
box = mailbox.mbox(sys.argv[1])
manifest = json.load(open(sys.argv[2]))
got = []
for key in box.keys():
    b = box.get_bytes(key)
    if b.endswith(b"\r\n\n"):
        b = b[:-1]
    b = re.sub(rb"(?m)^>(>*From )", rb"\1", b)
    got.append(hashlib.sha256(b).hexdigest())
want = [i["sha256"] for i in manifest["items"]]
print(len(got), "messages")
assert sorted(got) == sorted(want), (got, want)
"#;
    let o = std::process::Command::new("python3")
        .args(["-c", check])
        .arg(out.join("messages.mbox"))
        .arg(out.join("manifest.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "2 messages");
    let o = std::process::Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(out.join("signing-key.pem"))
        .args(["-rawin", "-in"])
        .arg(out.join("manifest.json"))
        .arg("-sigfile")
        .arg(out.join("manifest.json.sig"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let envelope = &manifest["items"][0]["relays"][0];
    assert_eq!(envelope["mail_from"], "nurse@hospital.test", "{manifest:#}");

    // Every access is in the hash-chained audit log.
    let o = p.gw.cli(&["audit", "verify", "--json"]);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(o.status.success(), "{r:#}");
    assert!(r["lines_ok"].as_u64().unwrap() >= 20, "{r:#}");
    let log = std::fs::read_to_string(p.gw.data().join("audit.log")).unwrap();
    assert!(log.contains("\"action\":\"archive.export\""), "{log}");
    assert!(log.contains("archive.search"), "{log}");
    assert!(log.contains("archive.read"), "{log}");
    // The reindex rebuilds what search sees (the gateway holds the index, so stop it).
    let mut gw = p.gw;
    gw.stop();
    let o = gw.cli(&["archive", "reindex"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("reindexed 3 item updates"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(search(&gw, "bcc:counsel@lawfirm.test"), vec![iq]);
}

#[test]
fn a_hold_blocks_purge_and_an_expired_unheld_item_is_purged_on_the_chain() {
    // Kept for no days: everything is past retention at once.
    let p = peers_with("retain_days = 0");
    let dir = tempfile::tempdir().unwrap();
    let msg = |subject: &str| {
        let f = dir.path().join(format!("{subject}.eml"));
        std::fs::write(
            &f,
            format!("From: nurse@hospital.test\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n"),
        )
        .unwrap();
        f
    };
    swaks_data(p.gw.smtp, "127.0.0.2", "patient@dest.test", &msg("held"));
    swaks_data(p.gw.smtp, "127.0.0.2", "other@dest.test", &msg("free"));
    wait_journaled(&p.gw, 2);
    let list = items(&p.gw);
    let id_of = |subject: &str| {
        list.iter().find(|i| i["subject"] == subject).unwrap()["id"]
            .as_u64()
            .unwrap()
    };
    let (held, free) = (id_of("held"), id_of("free"));
    let o = p.gw.cli(&[
        "archive",
        "hold",
        "add",
        "matter-1",
        "--address",
        "patient@dest.test",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o =
        p.gw.cli(&["archive", "hold", "add", "matter-2", "--query", "form:x"]);
    assert!(!o.status.success(), "a hold with a broken query is refused");
    assert!(text(&p.gw.cli(&["archive", "hold", "ls"]).stdout).starts_with("matter-1\t"));

    // Purge needs the archive for itself: the running gateway has it.
    let o = p.gw.cli(&["archive", "purge"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("stop it to purge"),
        "{}",
        text(&o.stderr)
    );
    let mut gw = p.gw;
    gw.stop();
    let dry: Value =
        serde_json::from_slice(&gw.cli(&["archive", "purge", "--dry-run", "--json"]).stdout)
            .unwrap();
    assert_eq!(dry["purged"], serde_json::json!([free]), "{dry:#}");
    let o = gw.cli(&["archive", "purge", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let done: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(done["purged"], serde_json::json!([free]), "{done:#}");
    assert_eq!(done["expired_but_held"][0]["item"], held, "{done:#}");
    assert_eq!(done["expired_but_held"][0]["hold"], "matter-1", "{done:#}");
    let purge_event = done["purge_event"].as_u64().unwrap();
    assert_eq!(purge_event, 3);
    let left: Vec<u64> = items(&gw)
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    assert_eq!(left, [held]);
    assert!(!gw
        .cli(&["archive", "show", &free.to_string(), "--raw"])
        .status
        .success());
    // The chain records it and still verifies.
    let v: Value =
        serde_json::from_slice(&gw.cli(&["archive", "verify", "--json"]).stdout).unwrap();
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["report"]["events_ok"], 3, "{v:#}");
    assert_eq!(v["report"]["events_purged"], 1, "{v:#}");
    // Released, the other goes too.
    assert!(gw
        .cli(&["archive", "hold", "rm", "matter-1"])
        .status
        .success());
    let done: Value =
        serde_json::from_slice(&gw.cli(&["archive", "purge", "--json"]).stdout).unwrap();
    assert_eq!(done["purged"], serde_json::json!([held]), "{done:#}");
    assert!(items(&gw).is_empty());
    let o = gw.cli(&["archive", "verify"]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    // With the gateway stopped a checkpoint is signed directly.
    let o = gw.cli(&["archive", "checkpoint"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("checkpoint at 4 head "),
        "{}",
        text(&o.stdout)
    );
    let o = gw.cli(&["archive", "checkpoint"]);
    assert!(
        text(&o.stdout).contains("already covered"),
        "{}",
        text(&o.stdout)
    );
    let log = std::fs::read_to_string(gw.data().join("audit.log")).unwrap();
    for action in ["archive.hold.add", "archive.hold.remove", "archive.purge"] {
        assert!(log.contains(action), "{action} not audited: {log}");
    }
    assert!(gw.cli(&["audit", "verify"]).status.success());
}

/// An HTTP/1.0 request to the admin listener with an optional bearer
/// token; returns the status code and the body.
fn api(g: &Gateway, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", g.admin)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let head_end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP response")
        + 4;
    let status: u16 = text(&out[9..12]).parse().unwrap();
    (status, out[head_end..].to_vec())
}

#[test]
fn the_archive_api_checks_role_tokens_and_audits_every_access() {
    let p = peers();
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("m.eml");
    std::fs::write(
        &msg,
        "From: nurse@hospital.test\r\nSubject: API test\r\n\r\nglucose\r\n",
    )
    .unwrap();
    swaks_data(p.gw.smtp, "127.0.0.2", "patient@dest.test", &msg);
    wait_journaled(&p.gw, 1);
    let token = |role: &str, name: &str| {
        let o =
            p.gw.cli(&["token", "create", "--role", role, "--name", name]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout).trim().to_string()
    };
    let (archivist, auditor, admin) = (
        token("archivist", "alice"),
        token("auditor", "audrey"),
        token("admin", "adam"),
    );
    assert!(
        !text(&std::fs::read(p.gw.data().join("tokens.json")).unwrap()).contains(&archivist[4..])
    );
    // The index commits within a second.
    let search = "/api/v1/archive/search?q=glucose";
    let found = wait_for(30, "the item searchable", || {
        let (status, body) = api(&p.gw, "GET", search, Some(&archivist), "");
        let v: Value = serde_json::from_slice(&body).ok()?;
        (status == 200 && v["total"] == 1).then_some(v)
    });
    let id = found["items"][0]["id"].as_u64().unwrap();
    assert_eq!(api(&p.gw, "GET", search, None, "").0, 401);
    assert_eq!(api(&p.gw, "GET", search, Some("sgt_nonsense"), "").0, 401);
    assert_eq!(api(&p.gw, "GET", search, Some(&auditor), "").0, 403);
    let (status, body) = api(
        &p.gw,
        "GET",
        "/api/v1/archive/search?q=form:x",
        Some(&archivist),
        "",
    );
    assert_eq!(status, 400, "{}", text(&body));
    assert!(text(&body).contains("unknown field"), "{}", text(&body));
    let (status, raw) = api(
        &p.gw,
        "GET",
        &format!("/api/v1/archive/items/{id}?raw=true"),
        Some(&archivist),
        "",
    );
    assert_eq!(status, 200);
    assert_eq!(
        sha256_hex(&raw),
        found["items"][0]["sha256"].as_str().unwrap()
    );
    // Export through the API, then fetch its signed manifest.
    let (status, body) = api(
        &p.gw,
        "POST",
        "/api/v1/archive/exports",
        Some(&archivist),
        r#"{"query":"glucose","format":"eml"}"#,
    );
    assert_eq!(status, 200, "{}", text(&body));
    let export: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(export["items"], 1, "{export:#}");
    let name = export["export"].as_str().unwrap();
    let (status, manifest) = api(
        &p.gw,
        "GET",
        &format!("/api/v1/archive/exports/{name}/manifest.json"),
        Some(&archivist),
        "",
    );
    assert_eq!(status, 200);
    assert!(text(&manifest).contains(found["items"][0]["sha256"].as_str().unwrap()));
    // At rest the export is sealed, private, and each file goes once fetched.
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = p.gw.data().join("exports").join(name);
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert!(!files.is_empty());
        for f in &files {
            let meta = f.metadata().unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{f:?}");
            let bytes = std::fs::read(f.path()).unwrap();
            assert!(!bytes.windows(7).any(|w| w == b"glucose"), "{f:?} in clear");
        }
        assert!(!dir.join("manifest.json").exists(), "fetched: deleted");
    }
    let again = api(
        &p.gw,
        "GET",
        &format!("/api/v1/archive/exports/{name}/manifest.json"),
        Some(&archivist),
        "",
    );
    assert_eq!(again.0, 404, "fetched once only");
    assert_eq!(
        api(
            &p.gw,
            "GET",
            &format!("/api/v1/archive/exports/{name}/..%2F..%2Ftokens.json"),
            Some(&archivist),
            ""
        )
        .0,
        400
    );
    // Holds are the admin's.
    let hold = r#"{"name":"matter-9","addresses":["patient@dest.test"]}"#;
    assert_eq!(
        api(
            &p.gw,
            "POST",
            "/api/v1/archive/holds",
            Some(&archivist),
            hold
        )
        .0,
        403
    );
    assert_eq!(
        api(&p.gw, "POST", "/api/v1/archive/holds", Some(&admin), hold).0,
        201
    );
    let (_, holds) = api(&p.gw, "GET", "/api/v1/archive/holds", Some(&admin), "");
    assert!(text(&holds).contains("matter-9"));
    // The auditor reads the audit log, which names the token of each access.
    let (status, body) = api(&p.gw, "GET", "/api/v1/audit", Some(&auditor), "");
    assert_eq!(status, 200);
    let log = text(&body);
    for needle in [
        "archive.search",
        "token alice",
        "archive.read",
        "archive.export",
        "archive.hold.add",
        "token adam",
    ] {
        assert!(log.contains(needle), "{needle} missing from {log}");
    }
    let (_, v) = api(&p.gw, "GET", "/api/v1/audit/verify", Some(&auditor), "");
    assert!(text(&v).contains("\"ok\":true"), "{}", text(&v));
    // A checkpoint on demand while the gateway runs (through its API).
    let token_file = dir.path().join("adam.token");
    std::fs::write(&token_file, &admin).unwrap();
    let o = p.gw.cli(&[
        "archive",
        "checkpoint",
        "--token-file",
        token_file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("checkpoint at 1 head "),
        "{}",
        text(&o.stdout)
    );
    let o = p.gw.cli(&["archive", "checkpoint"]);
    assert!(
        !o.status.success(),
        "without a token the running gateway's archive cannot be written"
    );
    assert!(
        text(&o.stderr).contains("--token-file"),
        "{}",
        text(&o.stderr)
    );
    let (_, v) = api(&p.gw, "GET", "/api/v1/archive/verify", Some(&auditor), "");
    assert!(text(&v).contains("\"ok\":true"), "{}", text(&v));
    assert!(text(&v).contains("\"checkpoints_ok\":1"), "{}", text(&v));
    // The archive's metrics.
    assert!(p.gw.metric("sealgate_archive_journaled_total{outcome=\"new\"}") >= 1.0);
    assert!(p.gw.metric("sealgate_archive_raw_bytes_total") >= 40.0);
    assert!(p.gw.metric("sealgate_archive_stored_bytes_total") > 0.0);
    assert!(p.gw.metric("sealgate_archive_head_sequence") >= 1.0);
    assert!(
        p.gw.metric("sealgate_archive_verified_sequence") >= 1.0,
        "set by the verify above"
    );
    assert!(p.gw.metric("sealgate_archive_search_seconds_count") >= 1.0);
    assert!(p.gw.metric("sealgate_archive_journal_seconds_count") >= 1.0);
    // A revoked token is refused at once.
    assert!(p.gw.cli(&["token", "revoke", "alice"]).status.success());
    assert_eq!(api(&p.gw, "GET", search, Some(&archivist), "").0, 401);
}
