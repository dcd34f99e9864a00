//! Sealing end to end: one `[secure]` message to three recipients leaves
//! as three different seals — PGP/MIME for the recipient whose OpenPGP key
//! was imported (made with gpg, opened with gpg), S/MIME for the one whose
//! certificate was imported (made with openssl, opened with openssl cms),
//! and verified TLS for the one on a `verify` domain — each openable by its
//! peer, with the attachment byte-identical and the tag stripped.

use sealgate_e2e::{
    base64_lines, openssl, postfix_mailbox, queued_id, swaks, wait_for, Dns, Gateway, Gpg, Postfix,
    TestCa,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A gpg key pair for `uid` and its public key exported to a file in `dir`.
fn gpg_key(dir: &Path, uid: &str, email: &str) -> (Gpg, PathBuf) {
    let gpg = Gpg::new(uid);
    let file = dir.join(format!("{email}.asc"));
    std::fs::write(&file, gpg.ok(&["--armor", "--export", email], None)).unwrap();
    (gpg, file)
}

/// `openssl cms -decrypt` of the S/MIME mail in `file` with `cert` and `key`.
fn cms_decrypt(dir: &Path, file: &Path, cert: &Path, key: &Path) -> Vec<u8> {
    let arg = |p: &Path| p.to_str().unwrap().to_string();
    let (file, cert, key) = (arg(file), arg(cert), arg(key));
    openssl(
        dir,
        &[
            "cms", "-decrypt", "-in", &file, "-recip", &cert, "-inkey", &key,
        ],
    )
}

/// A self-signed S/MIME certificate and key for `email`, made with openssl.
fn smime_cert(dir: &Path, email: &str) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "smime.key",
            "-out",
            "smime.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Sam Smime",
            "-addext",
            &format!("subjectAltName=email:{email}"),
            "-addext",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            "-addext",
            "extendedKeyUsage=emailProtection",
        ],
    );
    (dir.join("smime.pem"), dir.join("smime.key"))
}

/// The test message: multipart with a text part and a binary attachment
/// (random bytes, base64), CRLF throughout. Returns the message and its body.
fn message(to: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let attachment: Vec<u8> = (0..6000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let b64 = base64_lines(&attachment);
    let body = format!(
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe lab results are attached.\r\n\r\n\
         --b1\r\nContent-Type: application/octet-stream; name=\"results.bin\"\r\n\
         Content-Disposition: attachment; filename=\"results.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}--b1--\r\n"
    );
    let head = format!(
        "From: nurse@hospital.test\r\nTo: {}\r\nSubject: [secure] Lab results\r\n\
         Message-ID: <seal-e2e@hospital.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n",
        to.join(", ")
    );
    let mut m = head.into_bytes();
    m.extend_from_slice(body.as_bytes());
    (m, body.into_bytes())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Normalises line endings so a Maildir copy (LF) compares with the
/// original (CRLF), and drops trailing blank lines (swaks ends DATA with
/// CRLF "." even after a final CRLF, adding an empty line).
fn lf(b: &[u8]) -> String {
    text(b).replace("\r\n", "\n").trim_end().to_string()
}

struct Peers {
    _ca: TestCa,
    _dns: Dns,
    home: Postfix,
    verified: Postfix,
    g: Gateway,
}

fn peers(seal_extra: &str) -> Peers {
    peers_with(TestCa::new(), seal_extra)
}

/// The peers, with `ca` as the CA the gateway trusts (for servers a test adds).
fn peers_with(ca: TestCa, seal_extra: &str) -> Peers {
    let (cert, key) = ca.issue("mx", &["mx.verified.test"], 2);
    let home = postfix_mailbox(
        "home",
        "hospital.test pgp.test smime.test fallback.test badtls.test",
        "smtpd_tls_security_level = none\n",
    );
    let verified = postfix_mailbox(
        "verified",
        "verified.test",
        &format!(
            "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n",
            cert.display(),
            key.display()
        ),
    );
    let dns = Dns::start(&[
        "--host-record=mx.verified.test,127.0.0.1".into(),
        "--host-record=openpgpkey.pgp.test,127.0.0.1".into(),
    ]);
    let g = Gateway::start(&format!(
        "[delivery]\nresolvers = [\"127.0.0.1:{dns}\"]\nsmart_host = {{ host = \"127.0.0.1\", port = {home} }}\n\n\
         [tls]\ndane = false\nmta_sts = false\nremember = false\nextra_roots_file = \"{ca}\"\n\n\
         [seal]\n{seal_extra}\n\n\
         [[route]]\ndomains = [\"pgp.test\", \"smime.test\"]\nhost = \"127.0.0.1\"\nport = {home}\n\n\
         [[route]]\ndomains = [\"verified.test\"]\nhost = \"mx.verified.test\"\nport = {verified}\ntls = \"verify\"\n\n\
         [[route]]\ndomains = [\"fallback.test\"]\nhost = \"127.0.0.1\"\nport = {home}\ntls = \"encrypt\"\n\n\
         [[route]]\ndomains = [\"badtls.test\"]\nhost = \"127.0.0.1\"\nport = {home}\ntls = \"verify\"\n",
        dns = dns.port,
        home = home.port,
        verified = verified.port,
        ca = ca.ca().display(),
    ));
    Peers {
        _ca: ca,
        _dns: dns,
        home,
        verified,
        g,
    }
}

fn import(g: &Gateway, file: &Path) -> String {
    let o = g.cli(&["keys", "import", file.to_str().unwrap()]);
    assert!(o.status.success(), "keys import: {}", text(&o.stderr));
    text(&o.stdout)
}

/// Sends `msg` through the gateway with swaks; returns its queue id.
fn send(g: &Gateway, to: &[&str], msg: &[u8], dir: &Path) -> String {
    let file = dir.join("message.eml");
    std::fs::write(&file, msg).unwrap();
    let mut args = vec![
        "--server".to_string(),
        format!("127.0.0.1:{}", g.smtp),
        "--from".into(),
        "nurse@hospital.test".into(),
    ];
    // swaks takes several recipients comma-separated in one --to.
    args.push("--to".into());
    args.push(to.join(","));
    args.push("--data".into());
    args.push(file.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = swaks(&refs);
    assert!(o.status.success(), "{}", text(&o.stdout));
    queued_id(&text(&o.stdout)).expect("queued as ID")
}

/// `sealgate explain --json` of `eml` from the nurse to `to`.
fn explain_json(g: &Gateway, to: &[&str], eml: &Path) -> serde_json::Value {
    let o = g.cli(&[
        "explain",
        "--json",
        "--from",
        "nurse@hospital.test",
        "--to",
        &to.join(","),
        eml.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "explain: {}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The first mail in `pf`'s mailbox containing `needle`, waited for up to 60 s.
fn wait_mail_with(pf: &Postfix, needle: &str, what: &str) -> String {
    wait_for(60, what, || {
        pf.mailbox()
            .into_iter()
            .map(|m| text(&m))
            .find(|m| m.contains(needle))
    })
}

/// The ASCII-armoured block of a PGP/MIME mail.
fn armored(mail: &str) -> String {
    let start = mail
        .find("-----BEGIN PGP MESSAGE-----")
        .expect("no PGP message");
    let end = mail.find("-----END PGP MESSAGE-----").expect("no PGP end") + 25;
    mail[start..end].to_string()
}

#[test]
fn one_message_three_recipients_three_seals_each_opened_by_its_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (gpg, pubkey) = gpg_key(dir.path(), "Pat Patient <pat@pgp.test>", "pat@pgp.test");
    let (cert, key) = smime_cert(dir.path(), "sam@smime.test");

    let p = peers("");
    let out = import(&p.g, &pubkey);
    assert!(
        out.starts_with("added\t") && out.contains("pat@pgp.test"),
        "{out}"
    );
    let out = import(&p.g, &cert);
    assert!(
        out.contains("smime") && out.contains("sam@smime.test"),
        "{out}"
    );
    let show = text(&p.g.cli(&["keys", "show", "sam@smime.test"]).stdout);
    assert!(
        show.contains("smime: would seal with certificate serial"),
        "{show}"
    );

    let to = ["pat@pgp.test", "sam@smime.test", "val@verified.test"];
    let (msg, body) = message(&to);
    // Explain first: what it says must be what delivery then does.
    let eml = dir.path().join("explain.eml");
    std::fs::write(&eml, &msg).unwrap();
    let explained = explain_json(&p.g, &to, &eml);
    let seals: Vec<&str> = explained["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verdict"]["seal"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(seals, ["pgp", "smime", "tls"], "{explained:#}");
    assert_eq!(explained["tags"][0], "[secure]", "{explained:#}");
    let pat = &explained["recipients"][0];
    assert_eq!(pat["chain"][0]["possible"], false, "{explained:#}");
    assert!(pat["chain"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("not verified"));
    let text_out = text(
        &p.g.cli(&[
            "explain",
            "--from",
            "nurse@hospital.test",
            "--to",
            &to.join(","),
            eml.to_str().unwrap(),
        ])
        .stdout,
    );
    assert!(
        text_out.contains("verdict:   deliver (smime, escalated: tag [secure])"),
        "{text_out}"
    );
    // The admin API gives the same answer (for a mail client add-in).
    let resp = p.g.http_post(
        &format!(
            "/api/v1/explain?from=nurse@hospital.test&to={}",
            to.join(",")
        ),
        &msg,
    );
    let json = &resp[resp.find("\r\n\r\n").expect("HTTP response") + 4..];
    let via_api: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {resp}"));
    assert_eq!(via_api["recipients"], explained["recipients"], "{resp}");
    send(&p.g, &to, &msg, dir.path());

    let home = p.home.wait_mail(2, 60);
    let verified = p.verified.wait_mail(1, 60);
    assert_eq!(home.len(), 2, "{}", p.g.log());
    let find = |needle: &str| {
        home.iter()
            .map(|m| text(m))
            .find(|m| m.contains(needle))
            .unwrap_or_else(|| panic!("no mail with {needle}: {home:?}"))
    };

    // PGP/MIME for pat@pgp.test, opened by gpg to the original entity.
    let pgp = find("Delivered-To: pat@pgp.test");
    assert!(pgp.contains("multipart/encrypted"), "{pgp}");
    assert!(pgp.contains("application/pgp-encrypted"), "{pgp}");
    assert!(
        pgp.contains("\nSubject: Lab results\n"),
        "tag not stripped: {pgp}"
    );
    assert!(
        !pgp.contains("lab results are attached"),
        "plain text leaked: {pgp}"
    );
    let opened = gpg.ok(&["--decrypt"], Some(armored(&pgp).as_bytes()));
    assert!(
        lf(&opened).ends_with(&lf(&body)),
        "gpg did not yield the original entity:\n{}",
        text(&opened)
    );
    assert!(
        lf(&opened).starts_with("Content-Type: multipart/mixed"),
        "{}",
        text(&opened)
    );

    // S/MIME for sam@smime.test, opened by openssl cms.
    let smime = find("Delivered-To: sam@smime.test");
    assert!(smime.contains("application/pkcs7-mime"), "{smime}");
    assert!(smime.contains("smime-type=enveloped-data"), "{smime}");
    assert!(
        !smime.contains("lab results are attached"),
        "plain text leaked: {smime}"
    );
    let file = dir.path().join("smime.eml");
    std::fs::write(&file, &smime).unwrap();
    let opened = cms_decrypt(dir.path(), &file, &cert, &key);
    assert!(
        lf(&opened).ends_with(&lf(&body)),
        "openssl did not yield the original entity:\n{}",
        text(&opened)
    );

    // Verified TLS for val@verified.test: the original, over TLS, tag stripped.
    let tls = text(&verified[0]);
    assert!(tls.contains("with ESMTPS"), "{tls}");
    assert!(tls.contains("\nSubject: Lab results\n"), "{tls}");
    assert!(lf(tls.as_bytes()).ends_with(&lf(&body)), "{tls}");

    // The seal facts are on record per recipient.
    let id = wait_for(30, "finished message", || {
        p.g.log()
            .lines()
            .find(|l| l.contains("message finished"))
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|v| v["id"].as_str().map(String::from))
    });
    let v: serde_json::Value = p.g.queue_show(&id);
    let rcpts = v["recipients"].as_array().unwrap();
    let by = |a: &str| rcpts.iter().find(|r| r["address"] == a).unwrap().clone();
    let fpr = text(&gpg.ok(&["--with-colons", "--fingerprint", "pat@pgp.test"], None))
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .and_then(|l| l.split(':').nth(9).map(String::from))
        .unwrap();
    let r = by("pat@pgp.test");
    assert_eq!(r["verdict"]["seal"], "pgp", "{v:#}");
    assert_eq!(r["sealed"]["key"], fpr.as_str(), "{v:#}");
    assert_eq!(
        r["verdict"], explained["recipients"][0]["verdict"],
        "explain disagrees"
    );
    assert!(pat["key"].as_str().unwrap().contains(&fpr), "{explained:#}");
    assert_eq!(r["state"], "delivered");
    let serial = text(&openssl(
        dir.path(),
        &["x509", "-in", cert.to_str().unwrap(), "-noout", "-serial"],
    ));
    let serial = serial.trim().trim_start_matches("serial=").to_string();
    let r = by("sam@smime.test");
    assert_eq!(r["verdict"]["seal"], "smime", "{v:#}");
    assert!(
        r["sealed"]["label"].as_str().unwrap().contains(&serial),
        "{v:#} {serial}"
    );
    let r = by("val@verified.test");
    assert_eq!(r["verdict"]["seal"], "tls", "{v:#}");
    assert_eq!(r["evidence"]["tls"]["verified"], true, "{v:#}");
    // The log names ids, methods and keys, never addresses or the subject.
    let log = p.g.log();
    assert!(
        !log.contains("Lab results") && !log.contains("pat@pgp.test"),
        "{log}"
    );
}

#[test]
fn a_key_that_cannot_be_used_bounces_never_plain() {
    let dir = tempfile::tempdir().unwrap();
    // A key whose user ID names another address: imported under that address only.
    let (_gpg, pubkey) = gpg_key(dir.path(), "Other <other@pgp.test>", "other@pgp.test");
    let p = peers("");
    import(&p.g, &pubkey);
    // [pgp] forces OpenPGP; pat@pgp.test has no key: DSN, nothing delivered.
    let to = ["pat@pgp.test"];
    let (mut msg, _) = message(&to);
    let m = text(&msg).replace("[secure] Lab results", "[pgp] Lab results");
    msg = m.into_bytes();
    send(&p.g, &to, &msg, dir.path());
    let dsn = wait_mail_with(&p.home, "report-type=delivery-status", "a DSN");
    assert!(
        dsn.contains("Final-Recipient: rfc822; pat@pgp.test"),
        "{dsn}"
    );
    assert!(
        dsn.contains("no OpenPGP key is known for pat@pgp.test"),
        "{dsn}"
    );
    let delivered: Vec<String> = p
        .home
        .mailbox()
        .into_iter()
        .map(|m| text(&m))
        .filter(|m| m.contains("Delivered-To: pat@pgp.test"))
        .collect();
    assert!(delivered.is_empty(), "{delivered:?}");
}

#[test]
fn quarantined_by_dlp_then_released_with_pgp_arrives_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let (gpg, pubkey) = gpg_key(dir.path(), "Pat Patient <pat@pgp.test>", "pat@pgp.test");
    let p = peers("");
    import(&p.g, &pubkey);
    // Ten distinct SSNs: the default policy's bulk rule holds it for review.
    let ssns: Vec<String> = (0..10).map(|i| format!("536-22-81{:02}", 30 + i)).collect();
    let msg = format!(
        "From: nurse@hospital.test\r\nTo: pat@pgp.test\r\nSubject: Claims export\r\n\
         Message-ID: <bulk@hospital.test>\r\n\r\nClaims:\r\n{}\r\n",
        ssns.join("\r\n")
    );
    let eml = dir.path().join("bulk.eml");
    std::fs::write(&eml, &msg).unwrap();
    // explain says what will happen before anything is sent.
    let o = p.g.cli(&[
        "explain",
        "--json",
        "--from",
        "nurse@hospital.test",
        "--to",
        "pat@pgp.test",
        eml.to_str().unwrap(),
    ]);
    let explained: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = &explained["recipients"][0]["verdict"];
    assert_eq!(v["verdict"], "quarantine", "{explained:#}");
    assert!(
        v["reason"].as_str().unwrap().contains("hipaa_pci:ssn-bulk"),
        "{explained:#}"
    );

    send(&p.g, &["pat@pgp.test"], msg.as_bytes(), dir.path());
    let held = wait_for(60, "a quarantined message", || {
        let o = p.g.cli(&["quarantine", "ls", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        v.as_array().filter(|a| !a.is_empty()).map(|a| a[0].clone())
    });
    let id = held["id"].as_str().unwrap().to_string();
    assert_eq!(
        held["reason"], v["reason"],
        "explain and the quarantine disagree"
    );
    assert!(held["expires"].as_str().is_some(), "{held:#}");
    // The sender is told, naming the rule and never the data.
    let notice = wait_mail_with(
        &p.home,
        "report-type=delivery-status",
        "the sender's notice",
    );
    assert!(notice.contains("Action: delayed"), "{notice}");
    assert!(notice.contains("hipaa_pci:ssn-bulk"), "{notice}");
    assert!(
        !notice.contains("536-22-81"),
        "the notice leaks data: {notice}"
    );
    assert!(p
        .home
        .mailbox()
        .iter()
        .all(|m| !text(m).contains("Delivered-To: pat@pgp.test")));

    // A seal that is impossible is refused and changes nothing.
    let o = p.g.cli(&["quarantine", "release", &id, "--seal", "smime"]);
    assert!(!o.status.success(), "{}", text(&o.stdout));
    // Released with --seal pgp: arrives sealed, and gpg opens it.
    let o = p.g.cli(&["quarantine", "release", &id, "--seal", "pgp"]);
    assert!(
        o.status.success(),
        "{} {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let pgp = wait_mail_with(
        &p.home,
        "Delivered-To: pat@pgp.test",
        "the released message",
    );
    assert!(pgp.contains("multipart/encrypted"), "{pgp}");
    assert!(!pgp.contains("536-22-81"), "released in plain: {pgp}");
    let opened = text(&gpg.ok(&["--decrypt"], Some(armored(&pgp).as_bytes())));
    assert!(ssns.iter().all(|s| opened.contains(s.as_str())), "{opened}");
    // The record says how, and the release is audited.
    let v: serde_json::Value = wait_for(30, "finished record", || {
        let v = p.g.queue_show(&id);
        (v["recipients"][0]["state"] == "delivered").then_some(v)
    });
    let r = &v["recipients"][0];
    assert_eq!(r["verdict"]["seal"], "pgp", "{v:#}");
    assert_eq!(
        r["verdict"]["why"][0],
        "released from quarantine with --seal pgp"
    );
    assert!(r["sealed"]["key"].as_str().is_some(), "{v:#}");
    let audit = std::fs::read_to_string(p.g.data().join("audit.log")).unwrap();
    assert!(
        audit.contains("\"action\":\"quarantine.release\"") && audit.contains(&id),
        "{audit}"
    );
    assert!(!audit.contains("pat@pgp.test"), "{audit}");
}

/// Sends a message with ten distinct SSNs (held by the default bulk rule)
/// and waits until it is quarantined; returns its id.
fn send_bulk(p: &Peers, dir: &Path, salt: u32) -> String {
    let ssns: Vec<String> = (0..10)
        .map(|i| format!("536-23-{:04}", 1000 + salt * 10 + i))
        .collect();
    let msg = format!(
        "From: nurse@hospital.test\r\nTo: x@pgp.test\r\nSubject: Export {salt}\r\n\r\n{}\r\n",
        ssns.join("\r\n")
    );
    send(&p.g, &["x@pgp.test"], msg.as_bytes(), dir);
    wait_for(60, "a quarantined message", || {
        let o = p.g.cli(&["quarantine", "ls", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        v.as_array()?
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .next()
    })
}

fn failed_dsn(p: &Peers) -> String {
    wait_mail_with(&p.home, "Action: failed", "a failure DSN")
}

#[test]
fn quarantine_delete_and_expiry_bounce_to_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    // Deleted by an admin: the sender gets a DSN naming the rule.
    let p = peers("");
    let id = send_bulk(&p, dir.path(), 1);
    let o = p.g.cli(&["quarantine", "delete", &id]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let dsn = failed_dsn(&p);
    assert!(
        dsn.contains("deleted from quarantine by an administrator"),
        "{dsn}"
    );
    assert!(dsn.contains("hipaa_pci:ssn-bulk"), "{dsn}");
    let o = p.g.cli(&["quarantine", "delete", &id]);
    assert!(!o.status.success(), "a second delete must fail");
    drop(p);

    // Not released in time: bounced by the gateway, audited.
    let p = peers("[policy]\nquarantine_expiry = \"3s\"");
    let id = send_bulk(&p, dir.path(), 2);
    let dsn = failed_dsn(&p);
    assert!(
        dsn.contains("not released from quarantine in time"),
        "{dsn}"
    );
    let audit = std::fs::read_to_string(p.g.data().join("audit.log")).unwrap();
    assert!(
        audit.contains("\"action\":\"quarantine.expire\"") && audit.contains(&id),
        "{audit}"
    );
}

/// A static HTTPS server (python3's http.server) on loopback, killed on drop.
struct WebServer {
    child: std::process::Child,
    port: u16,
}

impl WebServer {
    fn start(root: &Path, cert: &Path, key: &Path) -> WebServer {
        use std::io::BufRead;
        let script = "import http.server, ssl, sys\n\
            root, cert, key = sys.argv[1:4]\n\
            h = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=root, **k)\n\
            srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), h)\n\
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
            ctx.load_cert_chain(cert, key)\n\
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n\
            print(srv.server_address[1], flush=True)\n\
            srv.serve_forever()\n";
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", script])
            .arg(root)
            .arg(cert)
            .arg(key)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("web server port");
        WebServer { child, port }
    }

    /// What the server logged (one line per request).
    fn log(mut self) -> String {
        let _ = self.child.kill();
        let mut s = String::new();
        use std::io::Read;
        let _ = self.child.stderr.take().unwrap().read_to_string(&mut s);
        s
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_key_published_in_wkd_is_found_and_seals_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let gpg = Gpg::new("Pat Patient <pat@pgp.test>");
    // gpg names the WKD file itself: an independent check of our hashing.
    let listing = text(&gpg.ok(&["--with-wkd-hash", "--list-keys", "pat@pgp.test"], None));
    let hash = listing
        .lines()
        .map(str::trim)
        .find(|l| l.ends_with("@pgp.test") && !l.contains('<'))
        .and_then(|l| l.split('@').next())
        .unwrap_or_else(|| panic!("no WKD hash in {listing}"))
        .to_string();
    let hu = dir.path().join("web/.well-known/openpgpkey/pgp.test/hu");
    std::fs::create_dir_all(&hu).unwrap();
    std::fs::write(hu.join(&hash), gpg.ok(&["--export", "pat@pgp.test"], None)).unwrap();
    let ca = TestCa::new();
    let (cert, key) = ca.issue("wkd", &["openpgpkey.pgp.test"], 2);
    let web = WebServer::start(&dir.path().join("web"), &cert, &key);
    let p = peers_with(ca, &format!("wkd_port = {}", web.port));

    // No key imported: [secure] to a domain without verified TLS finds the
    // key in WKD and seals with it.
    let to = ["pat@pgp.test"];
    let (msg, body) = message(&to);
    send(&p.g, &to, &msg, dir.path());
    let pgp = wait_mail_with(&p.home, "Delivered-To: pat@pgp.test", "the sealed message");
    assert!(pgp.contains("multipart/encrypted"), "{pgp}");
    let opened = gpg.ok(&["--decrypt"], Some(armored(&pgp).as_bytes()));
    assert!(lf(&opened).ends_with(&lf(&body)), "{}", text(&opened));
    let keys: serde_json::Value =
        serde_json::from_slice(&p.g.cli(&["keys", "ls", "--json"]).stdout).unwrap();
    assert_eq!(keys[0]["source"], "wkd", "{keys:#}");
    assert_eq!(keys[0]["addresses"][0], "pat@pgp.test");
    let requests = web.log();
    assert!(
        requests.contains(&format!(
            "GET /.well-known/openpgpkey/pgp.test/hu/{hash}?l=pat "
        )),
        "{requests}"
    );
}

#[test]
fn organisation_signatures_verify_with_gpg_and_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let (pat, pat_key) = gpg_key(dir.path(), "Pat Patient <pat@pgp.test>", "pat@pgp.test");
    let (cert, key) = smime_cert(dir.path(), "sam@smime.test");
    // The organisation's keys: an OpenPGP key made with gpg (exported with
    // its secret, unprotected) and an S/MIME certificate made with openssl.
    let org = Gpg::new("Hospital Security <security@hospital.test>");
    let org_tsk = dir.path().join("org.tsk.asc");
    std::fs::write(
        &org_tsk,
        org.ok(
            &["--armor", "--export-secret-keys", "security@hospital.test"],
            None,
        ),
    )
    .unwrap();
    // A secret key others may read is refused (secret_file::check_key).
    std::fs::set_permissions(
        &org_tsk,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // pat's gpg must know the organisation's public key to check the signature.
    pat.ok(
        &["--import"],
        Some(&org.ok(&["--armor", "--export", "security@hospital.test"], None)),
    );
    let org_dir = dir.path().join("org");
    std::fs::create_dir_all(&org_dir).unwrap();
    let (org_cert, org_key) = smime_cert(&org_dir, "security@hospital.test");
    // The S/MIME identity arrives as PKCS#12, as CAs and Windows export it
    // (OpenSSL 3's default: PBES2 with AES-256-CBC, HMAC-SHA-256 MAC).
    let p12 = org_dir.join("org.p12");
    let arg = |p: &Path| p.to_str().unwrap().to_string();
    openssl(
        &org_dir,
        &[
            "pkcs12",
            "-export",
            "-in",
            &arg(&org_cert),
            "-inkey",
            &arg(&org_key),
            "-out",
            &arg(&p12),
            "-passout",
            "pass:s3cret pass",
        ],
    );
    let (good_pw, bad_pw) = (org_dir.join("pw"), org_dir.join("bad-pw"));
    std::fs::write(&good_pw, "s3cret pass\n").unwrap();
    std::fs::write(&bad_pw, "guess\n").unwrap();
    let mut p = peers(&format!(
        "protect_subject = true\npgp_signing_key = \"{}\"",
        org_tsk.display(),
    ));
    let p12_import = |pw: &Path| {
        p.g.cli(&[
            "keys",
            "import",
            p12.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ])
    };
    let o = p12_import(&bad_pw);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("wrong password"),
        "{}",
        text(&o.stderr)
    );
    let o = p12_import(&good_pw);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("installed\tsmime-signing\t"),
        "{}",
        text(&o.stdout)
    );
    let key_file = p.g.data().join("keystore/signing/smime-key.pem");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the private key is readable by others");
    // The signer is loaded at start.
    p.g.stop();
    p.g.run();
    import(&p.g, &pat_key);
    import(&p.g, &cert);
    let to = ["pat@pgp.test", "sam@smime.test"];
    let (msg, body) = message(&to);
    send(&p.g, &to, &msg, dir.path());
    let home = p.home.wait_mail(2, 60);
    let find = |needle: &str| {
        home.iter()
            .map(|m| text(m))
            .find(|m| m.contains(needle))
            .unwrap_or_else(|| panic!("no mail with {needle}"))
    };
    // PGP: gpg reports a good signature by the organisation's key.
    let pgp = find("Delivered-To: pat@pgp.test");
    let out = std::process::Command::new("gpg")
        .env("GNUPGHOME", pat.home.path())
        .args(["--batch", "--status-fd", "2", "--decrypt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(armored(&pgp).as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let status = text(&out.stderr);
    assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");
    assert!(status.contains("security@hospital.test"), "{status}");
    assert!(lf(&out.stdout).ends_with(&lf(&body)));
    // Protected headers: "..." outside, the real (tag-free) subject inside.
    assert!(pgp.contains("\nSubject: ...\n"), "{pgp}");
    assert!(!pgp.contains("Lab results"), "the subject leaked: {pgp}");
    let inner = lf(&out.stdout);
    assert!(inner.contains("protected-headers=\"v1\""), "{inner}");
    assert!(inner.contains("\nSubject: Lab results\n"), "{inner}");
    // S/MIME: decrypt, then openssl cms -verify against the organisation's certificate.
    let smime = find("Delivered-To: sam@smime.test");
    let file = dir.path().join("sam.eml");
    std::fs::write(&file, &smime).unwrap();
    let inner = cms_decrypt(dir.path(), &file, &cert, &key);
    let signed = dir.path().join("sam-signed.eml");
    std::fs::write(&signed, &inner).unwrap();
    let verified = openssl(
        dir.path(),
        &[
            "cms",
            "-verify",
            "-in",
            signed.to_str().unwrap(),
            "-CAfile",
            org_cert.to_str().unwrap(),
            "-purpose",
            "any",
        ],
    );
    assert!(lf(&verified).ends_with(&lf(&body)), "{}", text(&verified));
}

#[test]
fn a_sealed_copy_survives_sigkill_and_is_delivered_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (gpg, pubkey) = gpg_key(dir.path(), "Pat Patient <pat@pgp.test>", "pat@pgp.test");
    let mut p = peers("");
    import(&p.g, &pubkey);
    // pgp.test's next hop is down: the sealed copy waits in the spool.
    let live = format!(
        "domains = [\"pgp.test\", \"smime.test\"]\nhost = \"127.0.0.1\"\nport = {}",
        p.home.port
    );
    let dead = live.replace(
        &format!("port = {}", p.home.port),
        &format!("port = {}", sealgate_e2e::free_port()),
    );
    let cfg = std::fs::read_to_string(&p.g.config).unwrap();
    assert!(cfg.contains(&live), "{cfg}");
    p.g.stop();
    std::fs::write(&p.g.config, cfg.replace(&live, &dead)).unwrap();
    p.g.run();
    let to = ["pat@pgp.test"];
    let (msg, body) = message(&to);
    send(&p.g, &to, &msg, dir.path());
    let id = wait_for(60, "a deferred sealed recipient", || {
        let q = p.g.queue();
        let m = q.first()?;
        (m["states"][0]["state"] == "deferred").then(|| m["id"].as_str().unwrap().to_string())
    });
    let before: serde_json::Value = p.g.queue_show(&id);
    assert_eq!(
        before["recipients"][0]["sealed"]["method"], "pgp",
        "{before:#}"
    );
    // Killed with the copy sealed but not delivered; back with the hop up.
    p.g.kill9();
    std::fs::write(&p.g.config, cfg).unwrap();
    p.g.run();
    let o = p.g.cli(&["queue", "retry", "--all"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let got = wait_for(60, "the sealed message", || {
        let m: Vec<String> = p
            .home
            .mailbox()
            .into_iter()
            .map(|m| text(&m))
            .filter(|m| m.contains("Delivered-To: pat@pgp.test"))
            .collect();
        (!m.is_empty()).then_some(m)
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let all = p
        .home
        .mailbox()
        .iter()
        .filter(|m| text(m).contains("Delivered-To: pat@pgp.test"))
        .count();
    assert_eq!(all, 1, "delivered more than once");
    let opened = gpg.ok(&["--decrypt"], Some(armored(&got[0]).as_bytes()));
    assert!(lf(&opened).ends_with(&lf(&body)), "{}", text(&opened));
}

#[test]
fn a_failed_tls_session_falls_back_down_the_seal_chain() {
    // fallback.test requires TLS (`encrypt`) and badtls.test verified TLS,
    // but their MX offers no STARTTLS. Recipients with a key get the copy
    // sealed ahead, at once; one without a key waits and is never sent plain.
    let dir = tempfile::tempdir().unwrap();
    let (gpg, pubkey) = gpg_key(dir.path(), "Pat <pat@fallback.test>", "pat@fallback.test");
    let (cert, key) = smime_cert(dir.path(), "val@badtls.test");
    let p = peers("");
    import(&p.g, &pubkey);
    import(&p.g, &cert);

    // Plain mail (no tag) to the `encrypt` domain.
    let to = ["pat@fallback.test", "nokey@fallback.test"];
    let (msg, body) = message(&to);
    let plain = text(&msg).replace("[secure] Lab results", "Lab results");
    let eml = dir.path().join("plain.eml");
    std::fs::write(&eml, &plain).unwrap();
    let explained = explain_json(&p.g, &to, &eml);
    let pat = &explained["recipients"][0];
    assert_eq!(pat["verdict"]["seal"], "tls", "{explained:#}");
    assert_eq!(pat["verdict"]["fallback"]["seal"], "pgp", "{explained:#}");
    assert!(
        pat["if_it_fails"]
            .as_str()
            .unwrap()
            .contains("sealed ahead with pgp"),
        "{explained:#}"
    );
    let nokey = &explained["recipients"][1];
    assert!(nokey["verdict"]["fallback"].is_null(), "{explained:#}");
    assert!(
        nokey["if_it_fails"]
            .as_str()
            .unwrap()
            .contains("TLS is required (level encrypt)"),
        "{explained:#}"
    );

    let id = send(&p.g, &to, plain.as_bytes(), dir.path());
    let pgp = wait_mail_with(
        &p.home,
        "Delivered-To: pat@fallback.test",
        "the PGP fallback",
    );
    assert!(pgp.contains("multipart/encrypted"), "{pgp}");
    assert!(
        !pgp.contains("lab results are attached"),
        "plain text leaked: {pgp}"
    );
    let opened = gpg.ok(&["--decrypt"], Some(armored(&pgp).as_bytes()));
    assert!(
        lf(&opened).ends_with(&lf(&body)),
        "gpg did not yield the original entity:\n{}",
        text(&opened)
    );
    let shown = p.g.queue_show(&id);
    let rcpts = shown["recipients"].as_array().unwrap();
    let pat = &rcpts[0];
    assert_eq!(pat["state"], "delivered", "{shown:#}");
    assert_eq!(pat["verdict"]["seal"], "pgp", "{shown:#}");
    assert!(
        pat["tls_refused"]
            .as_str()
            .unwrap()
            .contains("does not offer STARTTLS"),
        "{shown:#}"
    );
    assert!(
        pat["verdict"]["why"][0]
            .as_str()
            .unwrap()
            .starts_with("pgp after TLS failed"),
        "{shown:#}"
    );
    assert_eq!(pat["sealed"]["method"], "pgp", "{shown:#}");
    // No key: deferred, waiting for TLS, never delivered in plain.
    let nokey = &rcpts[1];
    assert_eq!(nokey["state"], "deferred", "{shown:#}");
    assert!(
        nokey["evidence"]["reply"]
            .as_str()
            .unwrap()
            .contains("does not offer STARTTLS"),
        "{shown:#}"
    );

    // `[secure]` to the `verify` domain: verified TLS first, then S/MIME.
    let to = ["val@badtls.test"];
    let (msg, body) = message(&to);
    send(&p.g, &to, &msg, dir.path());
    let smime = wait_mail_with(
        &p.home,
        "Delivered-To: val@badtls.test",
        "the S/MIME fallback",
    );
    assert!(smime.contains("smime-type=enveloped-data"), "{smime}");
    let file = dir.path().join("fallback-smime.eml");
    std::fs::write(&file, &smime).unwrap();
    let opened = cms_decrypt(dir.path(), &file, &cert, &key);
    assert!(
        lf(&opened).ends_with(&lf(&body)),
        "openssl did not yield the original entity:\n{}",
        text(&opened)
    );
    let mails: Vec<String> = p.home.mailbox().into_iter().map(|m| text(&m)).collect();
    assert!(
        !mails.iter().any(|m| m.contains("lab results are attached")),
        "a recipient got the message in plain"
    );
}

/// RFC 9580 Appendix A.3, the v6 sample certificate: a public test fixture
/// (Ed25519 and X25519, no user ID; it lists AES-256/OCB, then AES-128/OCB).
const RFC9580_V6_CERT: &str =
    include_str!("../../gateway/src/seal/testdata/rfc9580-a3-v6-cert.asc");

/// The tag and the first octets of each packet in `bin`, up to the first
/// with a partial length (sequoia streams SEIPD that way).
fn packets(bin: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bin.len() {
        let ctb = bin[i];
        assert!(ctb & 0x80 != 0, "not a packet at {i}");
        let (tag, len, partial);
        if ctb & 0x40 != 0 {
            tag = ctb & 0x3f;
            let l0 = bin[i + 1] as usize;
            i += 2;
            (len, partial) = match l0 {
                0..=191 => (l0, false),
                192..=223 => {
                    i += 1;
                    (((l0 - 192) << 8) + bin[i - 1] as usize + 192, false)
                }
                255 => {
                    i += 4;
                    let b: [u8; 4] = bin[i - 4..i].try_into().unwrap();
                    (u32::from_be_bytes(b) as usize, false)
                }
                _ => (1 << (l0 & 0x1f), true),
            };
        } else {
            tag = (ctb >> 2) & 0x0f;
            let n = [1, 2, 4, 0][(ctb & 3) as usize];
            assert!(n > 0, "indeterminate length");
            len = bin[i + 1..i + 1 + n]
                .iter()
                .fold(0usize, |a, &b| (a << 8) | b as usize);
            partial = false;
            i += 1 + n;
        }
        let end = (i + len).min(bin.len());
        out.push((tag, bin[i..end].to_vec()));
        if partial {
            break;
        }
        i = end;
    }
    out
}

/// The binary OpenPGP message inside an ASCII-armoured block.
fn dearmor(block: &str) -> Vec<u8> {
    use base64::Engine;
    // Past the armour headers, up to the end line, without the CRC line
    // ("=" and four characters; a line of bare padding is shorter).
    let body: String = block
        .lines()
        .skip_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .take_while(|l| !l.starts_with("-----"))
        .filter(|l| !(l.len() == 5 && l.starts_with('=')))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap_or_else(|e| panic!("{e}: {block}"))
}

#[test]
fn a_v6_key_without_an_email_user_id_is_bound_by_the_admin_and_gets_seipdv2_with_ocb() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("rfc9580-v6.asc");
    std::fs::write(&cert, RFC9580_V6_CERT).unwrap();
    let cert = cert.to_str().unwrap();
    let p = peers("");
    let o = p.g.cli(&["keys", "import", cert]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("names no e-mail address")
            && text(&o.stderr).contains("--address"),
        "{}",
        text(&o.stderr)
    );
    // --address is for OpenPGP keys; a PKCS#12 file is refused before it is read as one.
    let p12 = dir.path().join("org.p12");
    std::fs::write(&p12, b"not read").unwrap();
    let o = p.g.cli(&[
        "keys",
        "import",
        p12.to_str().unwrap(),
        "--address",
        "v6@pgp.test",
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("PKCS#12"), "{}", text(&o.stderr));

    let o =
        p.g.cli(&["keys", "import", cert, "--address", "V6@pgp.test"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("added\tCB186C4F0609A697") && out.contains("\tv6@pgp.test"),
        "{out}"
    );
    let show = text(&p.g.cli(&["keys", "show", "v6@pgp.test"]).stdout);
    assert!(
        show.contains("pgp: would seal with pgp key CB186C4F0609A697"),
        "{show}"
    );

    let to = ["v6@pgp.test"];
    let (msg, _) = message(&to);
    send(&p.g, &to, &msg, dir.path());
    let mail = wait_mail_with(&p.home, "Delivered-To: v6@pgp.test", "the sealed message");
    assert!(mail.contains("multipart/encrypted"), "{mail}");
    assert!(
        !mail.contains("lab results are attached"),
        "plain text leaked"
    );
    let pk = packets(&dearmor(&armored(&mail)));
    let tags: Vec<u8> = pk.iter().map(|(t, _)| *t).collect();
    // One v6 PKESK (tag 1) for the X25519 subkey, then SEIPD (tag 18).
    assert_eq!(tags, [1, 18], "{pk:?}");
    assert_eq!(pk[0].1[0], 6, "PKESK version");
    // SEIPDv2: version 2, AES-256 (9), OCB (2).
    assert_eq!(pk[1].1[..3], [2, 9, 2], "{pk:?}");
}
