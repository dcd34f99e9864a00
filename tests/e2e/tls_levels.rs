//! Outbound TLS levels against real Postfix peers on loopback: `may` to a
//! plain-only server delivers in plain, `encrypt` defers and then bounces,
//! `exclusive` drops without a bounce, `verify` refuses a certificate that
//! does not name the host, and an MTA-STS policy in `enforce` mode (served
//! over HTTPS on loopback) raises the level to `verify`.

use sealgate_e2e::{postfix_mailbox, swaks, wait_for, Dns, Gateway, Postfix, TestCa};
use std::process::{Child, Command, Stdio};

fn send(port: u16, to: &str) -> String {
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{port}"),
        "--from",
        "nurse@hospital.test",
        "--to",
        to,
        "--header",
        "Subject: tls level test",
        "--body",
        "Results attached.",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{out}");
    sealgate_e2e::queued_id(&out).expect("queued id")
}

fn state(g: &Gateway, id: &str) -> Option<(String, serde_json::Value)> {
    let v = g.queue_show(id);
    let r = v["recipients"].get(0)?.clone();
    Some((r["state"].as_str()?.to_string(), r))
}

/// Waits until the message's single recipient reaches `want`.
fn wait_state(g: &Gateway, id: &str, want: &str) -> serde_json::Value {
    wait_for(60, &format!("{id} to become {want}"), || {
        state(g, id).filter(|(s, _)| s == want).map(|(_, r)| r)
    })
}

struct Peers {
    ca: TestCa,
    plain: Postfix,
    tls: Postfix,
    dns: Dns,
}

fn peers() -> Peers {
    let ca = TestCa::new();
    let (cert, key) = ca.issue("mx", &["mx.good.test"], 2);
    let plain = postfix_mailbox(
        "plain",
        "plain-may.test plain-encrypt.test plain-exclusive.test hospital.test",
        "smtpd_tls_security_level = none\n",
    );
    let tls = postfix_mailbox(
        "tlsmx",
        "good.test alias.test sts.test sts-bad.test",
        &format!(
            "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n",
            cert.display(),
            key.display()
        ),
    );
    let dns = Dns::start(&[
        "--local=/test/".into(),
        "--host-record=mx.good.test,127.0.0.1".into(),
        "--host-record=alias.good.test,127.0.0.1".into(),
        "--mx-host=sts.test,mx.good.test,10".into(),
        "--mx-host=sts-bad.test,mx.good.test,10".into(),
        "--txt-record=_mta-sts.sts.test,v=STSv1; id=20261122".into(),
        "--txt-record=_mta-sts.sts-bad.test,v=STSv1; id=1".into(),
        "--host-record=mta-sts.sts.test,127.0.0.1".into(),
        "--host-record=mta-sts.sts-bad.test,127.0.0.1".into(),
    ]);
    Peers {
        ca,
        plain,
        tls,
        dns,
    }
}

fn gateway(p: &Peers, extra: &str) -> Gateway {
    Gateway::start(&format!(
        "[delivery]\nresolvers = [\"127.0.0.1:{dns}\"]\nmx_port = {tls}\nretry_schedule = [\"1s\"]\nmax_lifetime = \"6s\"\ndelay_notice_after = \"2s\"\n\
         smart_host = {{ host = \"127.0.0.1\", port = {plain}, tls = \"may\" }}\n\n\
         [tls]\ndane = false\nremember = false\nextra_roots_file = \"{ca}\"\n{extra}\n\n\
         [[route]]\ndomains = [\"plain-may.test\"]\nhost = \"127.0.0.1\"\nport = {plain}\ntls = \"may\"\n\n\
         [[route]]\ndomains = [\"plain-encrypt.test\"]\nhost = \"127.0.0.1\"\nport = {plain}\ntls = \"encrypt\"\n\n\
         [[route]]\ndomains = [\"plain-exclusive.test\"]\nhost = \"127.0.0.1\"\nport = {plain}\ntls = \"exclusive\"\n\n\
         [[route]]\ndomains = [\"good.test\"]\nhost = \"mx.good.test\"\nport = {tls}\ntls = \"verify\"\n\n\
         [[route]]\ndomains = [\"alias.test\"]\nhost = \"alias.good.test\"\nport = {tls}\ntls = \"verify\"\n",
        dns = p.dns.port,
        tls = p.tls.port,
        plain = p.plain.port,
        ca = p.ca.ca().display(),
    ))
}

#[test]
fn tls_levels_are_enforced() {
    let p = peers();
    let g = gateway(&p, "mta_sts = false");

    // may, plain-only server: delivered in plain.
    let id = send(g.smtp, "a@plain-may.test");
    let r = wait_state(&g, &id, "delivered");
    assert!(r["evidence"]["tls"].is_null(), "{r:#}");
    assert_eq!(r["evidence"]["tls_level"], "may");

    // verify, certificate names the host and chains to the configured root.
    let id = send(g.smtp, "b@good.test");
    let r = wait_state(&g, &id, "delivered");
    assert_eq!(r["evidence"]["tls"]["verified"], true, "{r:#}");
    assert_eq!(r["evidence"]["policy_source"], "route");
    assert_eq!(r["evidence"]["host"], "mx.good.test");
    assert_eq!(
        r["evidence"]["tls"]["peer_cert_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    // verify, certificate for another name: never delivered, retried.
    let id = send(g.smtp, "c@alias.test");
    let r = wait_state(&g, &id, "deferred");
    assert!(
        r["evidence"]["reply"].as_str().unwrap().contains("4."),
        "{r:#}"
    );

    // exclusive, no TLS on offer: dropped, no bounce.
    let id = send(g.smtp, "d@plain-exclusive.test");
    let r = wait_state(&g, &id, "dropped");
    assert!(
        r["evidence"]["reply"]
            .as_str()
            .unwrap()
            .contains("STARTTLS"),
        "{r:#}"
    );
    assert!(
        g.metric("sealgate_deliveries_total{result=\"dropped\",tls_level=\"exclusive\"}") >= 1.0
    );

    // encrypt, no TLS on offer: deferred, then bounced at max_lifetime.
    let id = send(g.smtp, "e@plain-encrypt.test");
    wait_state(&g, &id, "deferred");
    let r = wait_state(&g, &id, "bounced");
    assert!(
        r["evidence"]["reply"]
            .as_str()
            .unwrap()
            .contains("STARTTLS"),
        "{r:#}"
    );
    // The DSNs (for the wrong-name and the encrypt recipients) reach the
    // sender's mailbox through the smart host; none for the dropped one.
    let mail = p.plain.wait_mail(2, 60);
    let dsns: Vec<String> = mail
        .iter()
        .map(|m| String::from_utf8_lossy(m).to_string())
        .filter(|m| m.contains("report-type=delivery-status"))
        .collect();
    assert!(
        dsns.iter()
            .any(|d| d.contains("Final-Recipient: rfc822; e@plain-encrypt.test")),
        "{dsns:#?}\n{}",
        g.log()
    );
    assert!(
        !dsns.iter().any(|d| d.contains("d@plain-exclusive.test")),
        "{dsns:#?}"
    );
    let delivered_plain = mail
        .iter()
        .map(|m| String::from_utf8_lossy(m).to_string())
        .filter(|m| m.contains("Subject: tls level test") && !m.contains("delivery-status"))
        .count();
    assert_eq!(
        delivered_plain, 1,
        "only the may message is delivered in plain"
    );
}

/// An HTTPS server for MTA-STS policies: python's http.server with the test CA's certificate.
fn policy_server(p: &Peers, port: u16) -> Child {
    let (cert, key) =
        p.ca.issue("mta-sts", &["mta-sts.sts.test", "mta-sts.sts-bad.test"], 2);
    let script = format!(
        r#"
import http.server, ssl
POLICIES = {{
  "mta-sts.sts.test": "version: STSv1\r\nmode: enforce\r\nmx: mx.good.test\r\nmax_age: 86400\r\n",
  "mta-sts.sts-bad.test": "version: STSv1\r\nmode: enforce\r\nmx: mx.elsewhere.test\r\nmax_age: 86400\r\n",
}}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        body = POLICIES.get(host)
        if self.path != "/.well-known/mta-sts.txt" or body is None:
            self.send_response(404); self.end_headers(); return
        b = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", {port}), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("{cert}", "{key}")
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#,
        cert = cert.display(),
        key = key.display()
    );
    let child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(10, "policy server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    child
}

#[test]
fn mta_sts_enforce_raises_the_level_to_verify() {
    let p = peers();
    let https = sealgate_e2e::free_port();
    let mut server = policy_server(&p, https);
    let g = gateway(&p, &format!("mta_sts = true\nmta_sts_port = {https}"));

    // The policy lists mx.good.test, whose certificate verifies.
    let id = send(g.smtp, "f@sts.test");
    let r = wait_state(&g, &id, "delivered");
    assert_eq!(
        r["evidence"]["policy_source"],
        "mta-sts",
        "{r:#}\n{}",
        g.log()
    );
    assert_eq!(r["evidence"]["tls_level"], "verify");
    assert_eq!(r["evidence"]["tls"]["verified"], true);

    // Escalated mail ([secure]) counts on MTA-STS enforce as verified TLS:
    // policy chooses TLS (not a bounce), and delivery holds it to verify.
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", g.smtp),
        "--from",
        "nurse@hospital.test",
        "--to",
        "h@sts.test",
        "--header",
        "Subject: [secure] results",
    ]);
    let id = sealgate_e2e::queued_id(&String::from_utf8_lossy(&o.stdout)).expect("queued id");
    let r = wait_state(&g, &id, "delivered");
    assert_eq!(r["verdict"]["seal"], "tls", "{r:#}");
    assert_eq!(r["verdict"]["escalated"], true, "{r:#}");
    assert_eq!(r["evidence"]["tls"]["verified"], true, "{r:#}");

    // The policy does not list the domain's MX: no delivery there.
    let id = send(g.smtp, "g@sts-bad.test");
    let r = wait_state(&g, &id, "deferred");
    assert!(
        r["evidence"]["reply"].as_str().unwrap().contains("MTA-STS"),
        "{r:#}"
    );
    let _ = server.kill();
    let _ = server.wait();
}
