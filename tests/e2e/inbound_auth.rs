//! Sender authentication of inbound mail, end to end. dnsmasq publishes the
//! SPF, DKIM and DMARC records of three sending domains; dkimpy (Debian's
//! python3-dkim) signs as an outside sender would; Postfix is the tenant's
//! mailbox server. Checked: a signed, aligned message arrives with one
//! Authentication-Results field of Sealgate's (the forged one with its
//! authserv-id removed, another host's kept); a DMARC failure under
//! `p=reject` is refused with 550 5.7.1 before "250"; one under
//! `p=quarantine` is held in the quarantine with its reason; a signature
//! over a changed body fails DKIM while SPF still passes DMARC.

use sealgate_e2e::{
    dkim_key, inbound_gateway, postfix_mailbox, send_inbound, txt_record, wait_for, Dns, Gateway,
};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Signs `message` with dkimpy as `domain`, selector `sel`, key `pem`; the
/// signed message (CRLF) comes back.
fn dkimpy_sign(message: &str, domain: &str, pem: &Path) -> String {
    const SIGN: &str = r#"
import sys
try:
    import dkim
except ImportError as e:
    sys.exit("python3-dkim is not installed (scripts/install-deps test): %s" % e)
msg = sys.stdin.buffer.read()
key = open(sys.argv[2], "rb").read()
sig = dkim.sign(msg, b"sel", sys.argv[1].encode(), key,
                include_headers=[b"from", b"to", b"subject"])
sys.stdout.buffer.write(sig + msg)
"#;
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut child = Command::new(python)
        .args(["-c", SIGN, domain, pem.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "dkimpy: {}", text(&out.stderr));
    text(&out.stdout)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
}

fn message(from: &str, subject: &str, extra: &str) -> String {
    format!(
        "{extra}From: {from}\r\nTo: nurse@hospital.test\r\nSubject: {subject}\r\n\r\nThe invoice is attached.\r\n"
    )
}

fn send(g: &Gateway, from: &str, body: &str) -> (u16, String) {
    send_inbound(g, "mail.sender.test", from, body)
}

/// The value of each Authentication-Results field of `mail`, unfolded.
fn auth_results(mail: &str) -> Vec<String> {
    let head = mail.split("\n\n").next().unwrap_or("");
    let mut fields: Vec<String> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            fields.push(line.to_string());
        }
    }
    fields
        .into_iter()
        .filter_map(|f| {
            f.strip_prefix("Authentication-Results:")
                .map(|v| v.trim().to_string())
        })
        .collect()
}

#[test]
fn inbound_mail_is_authenticated_and_dmarc_policies_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let (pem, key_txt) = dkim_key(dir.path(), "sender", false);
    let dns = Dns::start(&[
        // Answer for .test from these records alone (NXDOMAIN for the rest,
        // as the internet would, not "refused"): DMARC's tree walk asks
        // _dmarc.test too.
        "--local=/test/".to_string(),
        txt_record("sender.test", "v=spf1 ip4:127.0.0.1 -all"),
        txt_record("sel._domainkey.sender.test", &key_txt),
        txt_record("_dmarc.sender.test", "v=DMARC1; p=reject"),
        txt_record("bank.test", "v=spf1 -all"),
        txt_record("_dmarc.bank.test", "v=DMARC1; p=reject"),
        txt_record("shop.test", "v=spf1 -all"),
        txt_record("_dmarc.shop.test", "v=DMARC1; p=quarantine"),
    ]);
    let home = postfix_mailbox(
        "inbound",
        "hospital.test",
        "smtpd_tls_security_level = none\n",
    );
    let g = inbound_gateway(
        &home,
        "authenticate = true",
        &format!("resolvers = [\"127.0.0.1:{}\"]", dns.port),
    );

    // (a) Signed by sender.test, sent from an address its SPF lists, with a
    // forged result claiming Sealgate's authserv-id and one from elsewhere.
    let signed = dkimpy_sign(
        &message(
            "Ann <ann@sender.test>",
            "Signed invoice",
            "Authentication-Results: gw.sealgate.test; dkim=pass header.d=forged.test\r\nAuthentication-Results: relay.other.test; spf=none\r\n",
        ),
        "sender.test",
        &pem,
    );
    let (code, reply) = send(&g, "ann@sender.test", &signed);
    assert_eq!(code, 250, "{reply}\n{}", g.log());
    let mail = home.wait_subject("Signed invoice");
    let results = auth_results(&mail);
    assert_eq!(results.len(), 2, "{results:#?}\n{mail}");
    let ours = &results[0];
    assert!(ours.starts_with("gw.sealgate.test;"), "{ours}");
    for want in [
        "spf=pass smtp.mailfrom=sender.test",
        "dkim=pass header.d=sender.test",
        "dmarc=pass header.from=sender.test",
    ] {
        assert!(ours.contains(want), "{want} missing: {ours}");
    }
    assert!(!mail.contains("forged.test"), "forged field kept:\n{mail}");
    assert!(results[1].starts_with("relay.other.test"), "{results:#?}");

    // (b) bank.test publishes p=reject and this fails SPF with no signature:
    // refused before "250", so there is nothing to bounce.
    let (code, reply) = send(
        &g,
        "ceo@bank.test",
        &message("CEO <ceo@bank.test>", "Urgent wire", ""),
    );
    assert_eq!(code, 550, "{reply}");
    assert!(
        reply.contains("5.7.1") && reply.contains("bank.test"),
        "{reply}"
    );

    // (c) shop.test publishes p=quarantine: accepted, then held with the reason.
    let (code, reply) = send(
        &g,
        "deals@shop.test",
        &message("Deals <deals@shop.test>", "Cheap offer", ""),
    );
    assert_eq!(code, 250, "{reply}");
    let held = wait_for(60, "the quarantined message", || {
        let o = g.cli(&["quarantine", "ls", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        v.as_array().filter(|a| !a.is_empty()).map(|a| a[0].clone())
    });
    let reason = held["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("DMARC") && reason.contains("shop.test"),
        "{held:#}"
    );

    // (d) A signature over a body changed after signing fails; SPF still
    // passes for sender.test, so DMARC passes and the mail is delivered.
    let tampered = dkimpy_sign(
        &message("Ann <ann@sender.test>", "Changed invoice", ""),
        "sender.test",
        &pem,
    )
    .replace("The invoice is attached.", "Pay to account 123.");
    let (code, reply) = send(&g, "ann@sender.test", &tampered);
    assert_eq!(code, 250, "{reply}");
    let mail = home.wait_subject("Changed invoice");
    let ours = &auth_results(&mail)[0];
    assert!(ours.contains("dkim=fail"), "{ours}");
    assert!(
        ours.contains("spf=pass") && ours.contains("dmarc=pass"),
        "{ours}"
    );

    // Neither the quarantined nor the refused message reached the mailbox.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let all: Vec<String> = home.mailbox().into_iter().map(|m| text(&m)).collect();
    assert!(
        !all.iter()
            .any(|m| m.contains("Cheap offer") || m.contains("Urgent wire")),
        "held or refused mail was delivered"
    );
    assert_eq!(
        g.metric("sealgate_inbound_auth_total{action=\"reject\",check=\"dmarc\",result=\"fail\"}"),
        1.0
    );
    assert_eq!(
        g.metric(
            "sealgate_inbound_auth_total{action=\"quarantine\",check=\"dmarc\",result=\"fail\"}"
        ),
        1.0
    );
    // No addresses or subjects in the log.
    let log = g.log();
    assert!(
        !log.contains("ann@sender.test") && !log.contains("Signed invoice"),
        "{log}"
    );
}

#[test]
fn messages_held_for_checks_share_a_memory_budget() {
    let dns = Dns::start(&["--local=/test/".to_string()]);
    let home = postfix_mailbox(
        "budget",
        "hospital.test",
        "smtpd_tls_security_level = none\n",
    );
    let g = inbound_gateway(
        &home,
        "authenticate = true\ncheck_memory_mib = 1",
        &format!("resolvers = [\"127.0.0.1:{}\"]", dns.port),
    );
    // Over the 1 MiB budget: 451, so the sender keeps it and tries later.
    let line = "x".repeat(76);
    let big = format!(
        "From: <a@outside.test>\r\nSubject: Big scan\r\n\r\n{}",
        format!("{line}\r\n").repeat(30_000)
    );
    let (code, reply) = send(&g, "a@outside.test", &big);
    assert_eq!(code, 451, "{reply}");
    assert!(reply.contains("4.3.2"), "{reply}");
    // Within it: accepted and delivered.
    let (code, reply) = send(
        &g,
        "a@outside.test",
        &message("A <a@outside.test>", "Small scan", ""),
    );
    assert_eq!(code, 250, "{reply}");
    home.wait_subject("Small scan");
    assert_eq!(
        g.metric("sealgate_messages_refused_total{reason=\"check_memory\"}"),
        1.0
    );
}
