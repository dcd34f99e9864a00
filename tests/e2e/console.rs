//! The web console end to end, in headless Chromium (chromedriver), over
//! HTTPS on the admin listener: users are added with `sealgate user add`
//! (password on stdin, the TOTP secret read from its output); two messages
//! go through the gateway with swaks to a Postfix sink; an admin signs in
//! with password and TOTP, finds a message in the trace, downloads the
//! search as CSV and JSON, opens a detail and sees the dashboard; the same
//! search runs on `/api/v1/trace` with the admin token; forged requests
//! (no CSRF token, a foreign Origin, no form cookie, no session) are
//! refused while the API still refuses any Origin; an auditor cannot reach
//! the trace but reads the audit log, where the admin's searches, exports
//! and views are; a domain-scoped admin sees their domain's mail and not
//! another's, in the trace, the detail and the dashboard's counts.
//! Screenshots of the trace, detail, dashboard and audit pages go to
//! `target/artefacts/`.

use sealgate_e2e::{artefacts, postfix_mailbox, send_text, wait_for, Browser, Gateway};
use std::io::Write;
use std::process::{Command, Stdio};

const PASSWORD: &str = "correct horse battery staple";
const COOKIE: &str = "__Host-sealgate-console";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `sealgate user add NAME ARGS...` with the password on stdin; the TOTP secret it shows.
fn add_user(g: &Gateway, name: &str, args: &[&str]) -> Vec<u8> {
    let mut child = Command::new(sealgate_e2e::sealgate_bin())
        .args(["user", "add", name])
        .args(args)
        .arg("--config")
        .arg(&g.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "user add: {}", text(&o.stderr));
    let out = text(&o.stdout);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .unwrap_or_else(|| panic!("no secret in: {out}"));
    assert!(out.contains("otpauth://totp/Sealgate:"), "{out}");
    base32_decode(secret.trim())
}

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut acc, mut out) = (0u32, 0u64, Vec::new());
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base32") as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The TOTP code (RFC 6238, SHA-1, 6 digits, 30 s) for `secret` now,
/// computed here independently of the gateway's code.
fn totp(secret: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let step = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let at = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[at] & 0x7f, h[at + 1], h[at + 2], h[at + 3]]);
    format!("{:06}", bin % 1_000_000)
}

/// Sends a small message from `from` to `to` through the gateway; its queue id.
fn send(g: &Gateway, from: &str, to: &str, subject: &str) -> String {
    send_text(
        g,
        from,
        to,
        subject,
        "The body the console must never show.",
    )
}

/// Signs `name` in at `base` in browser `b`; waits for the start page.
fn sign_in(b: &Browser, base: &str, name: &str, secret: &[u8]) {
    b.goto(&format!("{base}/console/"));
    b.find("#name").type_text(name);
    b.find("#password").type_text(PASSWORD);
    b.find("#code").type_text(&totp(secret));
    b.find("#sign-in").click();
    b.wait_text("Choose what to work on");
}

/// `curl -k` of `url` with `args`: the status code and the body.
fn curl(url: &str, args: &[&str]) -> (String, String) {
    let o = Command::new("curl")
        .args(["-k", "-s", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let out = text(&o.stdout);
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", ""));
    (code.to_string(), body.to_string())
}

#[test]
fn admins_trace_mail_auditors_cannot_and_domain_admins_see_their_own() {
    let mx = postfix_mailbox(
        "consolemx",
        "patient.test",
        "smtpd_tls_security_level = none\n",
    );
    let g = Gateway::start_with_admin_extra(
        "tls = true\n",
        &format!(
            "[delivery]\nsmart_host = {{ host = \"127.0.0.1\", port = {mx} }}\n\n\
             [tls]\ndane = false\nmta_sts = false\nremember = false\n\n\
             [seal]\nwkd = false\n\n\
             [console]\nenabled = true\n\n\
             [[route]]\ndomains = [\"patient.test\"]\nhost = \"127.0.0.1\"\nport = {mx}\n",
            mx = mx.port
        ),
    );
    let base = format!("https://localhost:{}", g.admin);
    let ann = add_user(&g, "ann", &["--role", "admin"]);
    let dom = add_user(
        &g,
        "dom",
        &["--role", "admin", "--domains", "hospital.test"],
    );
    let aud = add_user(&g, "aud", &["--role", "auditor"]);
    let ls = text(&g.cli(&["user", "ls"]).stdout);
    assert!(ls.contains("dom\tadmin\thospital.test"), "{ls}");
    assert!(!ls.contains(PASSWORD), "{ls}");

    let ours = send(
        &g,
        "nurse@hospital.test",
        "pat@patient.test",
        "Lab results for Pat",
    );
    let theirs = send(&g, "clerk@clinic.test", "bob@patient.test", "Invoice 7");
    assert_eq!(mx.wait_mail(2, 60).len(), 2, "both delivered to the sink");
    wait_for(30, "both recorded as delivered", || {
        [&ours, &theirs]
            .iter()
            .all(|id| g.queue_show(id)["recipients"][0]["state"] == "delivered")
            .then_some(())
    });

    // The admin: password and TOTP, then the trace with its defaults (48 h).
    let b = Browser::start();
    sign_in(&b, &base, "ann", &ann);
    b.goto(&format!("{base}/console/trace"));
    b.find("#search").click();
    b.wait_text("recipient(s)");
    let table = b.find("#trace").text();
    for needle in [
        &ours,
        &theirs,
        "pat@patient.test",
        "bob@patient.test",
        "delivered",
    ] {
        assert!(table.contains(needle), "{needle} missing in:\n{table}");
    }
    let page = b.source();
    assert!(
        !page.contains("Lab results") && !page.contains("never show"),
        "subject or body on the trace page"
    );
    b.screenshot(&artefacts().join("console-trace.png"));

    // Narrowed by recipient, then the detail of the nurse's message.
    b.find("#recipient").type_text("pat@");
    b.find("#search").click();
    b.wait_text("1 recipient(s)");
    b.find(&format!("a[href='/console/trace/{ours}/0']"))
        .click();
    b.wait_text("Message detail");
    let events = b.find("#events").text();
    for needle in ["RECEIVE", "POLICY", "DELIVER", "250", "127.0.0.1"] {
        assert!(events.contains(needle), "{needle} missing in:\n{events}");
    }
    assert_eq!(b.find("#status").text(), "delivered");
    assert!(
        !b.source().contains("Lab results"),
        "a subject on the detail page"
    );
    b.screenshot(&artefacts().join("console-detail.png"));

    // The same search as CSV and JSON (a download, audited as an export).
    let cookie = format!("Cookie: {COOKIE}={}", b.cookie(COOKIE));
    let csrf = b.run("return document.querySelector('input[name=csrf]').value;");
    let csrf = csrf.as_str().unwrap();
    let (code, csv) = curl(
        &format!("{base}/console/trace?csrf={csrf}&format=csv"),
        &["-H", &cookie],
    );
    assert_eq!(code, "200", "{csv}");
    assert!(csv.starts_with("received,from,to,"), "{csv}");
    assert!(
        csv.contains(&format!(",{ours},0")) && csv.contains(&format!(",{theirs},0")),
        "{csv}"
    );
    let (code, json) = curl(
        &format!("{base}/console/trace?csrf={csrf}&format=json&recipient=bob"),
        &["-H", &cookie],
    );
    assert_eq!(code, "200", "{json}");
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{json}");
    assert_eq!(rows[0]["queue_id"], theirs.as_str());
    assert_eq!(rows[0]["status"], "delivered");

    // The dashboard counts both deliveries (plain: the sink offers no TLS).
    b.goto(&format!("{base}/console/dashboard"));
    let protection = b.find("#protection").text();
    assert!(protection.contains("plain 2"), "{protection}");
    assert!(b.find("#by-status").text().contains("delivered 2"));
    b.screenshot(&artefacts().join("console-dashboard.png"));

    // Forged requests: no CSRF token, a foreign Origin, no session.
    let cookie = format!("Cookie: {COOKIE}={}", b.cookie(COOKIE));
    let (code, _) = curl(
        &format!("{base}/console/trace?csrf=00&recipient=x"),
        &["-H", &cookie],
    );
    assert_eq!(code, "403", "a search without the right CSRF token");
    let (code, _) = curl(
        &format!("{base}/console/sign-out"),
        &[
            "-H",
            &cookie,
            "-H",
            "Origin: https://evil.test",
            "-d",
            "csrf=00",
        ],
    );
    assert_eq!(code, "403", "a foreign Origin");
    let (code, _) = curl(
        &format!("{base}/console/sign-in"),
        &["-d", "csrf=00&name=ann&password=x&code=123456"],
    );
    assert_eq!(code, "403", "a sign-in without the form cookie");
    let (code, _) = curl(&format!("{base}/console/trace/{ours}/0"), &[]);
    assert_eq!(code, "303", "no session: back to the sign-in page");
    let (code, _) = curl(
        &format!("{base}/api/v1/queue"),
        &[
            "-H",
            &format!("Authorization: Bearer {}", g.admin_token()),
            "-H",
            &format!("Origin: {base}"),
        ],
    );
    assert_eq!(code, "403", "the API still refuses any Origin");
    let (code, _) = curl(
        &format!("{base}/api/v1/queue"),
        &["-H", &format!("Authorization: Bearer {}", g.admin_token())],
    );
    assert_eq!(code, "200", "and takes its bearer token as before");
    // The same search on the API (the admin token; no domain scope).
    let (code, json) = curl(
        &format!("{base}/api/v1/trace?recipient=patient.test"),
        &["-H", &format!("Authorization: Bearer {}", g.admin_token())],
    );
    assert_eq!(code, "200", "{json}");
    let api: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ids: Vec<&str> = api["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["queue_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&ours.as_str()) && ids.contains(&theirs.as_str()),
        "{json}"
    );
    assert_eq!(api["truncated"], false);
    let (code, _) = curl(&format!("{base}/api/v1/trace"), &[]);
    assert_eq!(code, "401", "the API's trace needs the token");

    // A wrong code is refused and said plainly.
    b.find("#sign-out").click();
    b.goto(&format!("{base}/console/"));
    b.find("#name").type_text("ann");
    b.find("#password").type_text(PASSWORD);
    b.find("#code").type_text("000000");
    b.find("#sign-in").click();
    b.wait_text("Wrong user name, password or code.");

    // The auditor: no trace, but the audit log with the admin's work in it.
    b.clear_cookies();
    sign_in(&b, &base, "aud", &aud);
    b.goto(&format!("{base}/console/trace"));
    b.wait_text("Not for your role");
    b.goto(&format!("{base}/console/trace/{ours}/0"));
    b.wait_text("Not for your role");
    b.goto(&format!("{base}/console/audit"));
    let log = b.find("#audit").text();
    for needle in [
        "console.sign-in",
        "console.sign-in.failed",
        "console.trace",
        "console.trace.view",
        "console.trace.export-csv",
        "console.trace.export-json",
        "console.denied",
        "by ann",
    ] {
        assert!(
            log.contains(needle),
            "{needle} missing in the audit log:\n{log}"
        );
    }
    b.screenshot(&artefacts().join("console-audit.png"));

    // The domain admin: the hospital's message, not the clinic's.
    b.clear_cookies();
    sign_in(&b, &base, "dom", &dom);
    b.goto(&format!("{base}/console/trace"));
    b.find("#search").click();
    b.wait_text("recipient(s)");
    let table = b.find("#trace").text();
    assert!(table.contains(&ours), "{table}");
    assert!(
        !table.contains(&theirs) && !table.contains("bob@patient.test"),
        "{table}"
    );
    b.goto(&format!("{base}/console/trace/{theirs}/0"));
    b.wait_text("No such message or recipient is kept.");
    b.goto(&format!("{base}/console/dashboard"));
    let by_status = b.find("#by-status").text();
    assert!(
        by_status.contains("delivered 1"),
        "only their domain counts: {by_status}"
    );
    b.goto(&format!("{base}/console/trace/{ours}/0"));
    b.wait_text("Message detail");
}
