//! Policy verdicts end to end: a `[secure]` subject tag, the
//! `X-Sealgate-Encrypt` header or a DLP "encrypt" finding escalates a
//! recipient to "more than opportunistic TLS". Where the destination's TLS
//! is verified, the message goes over verified TLS with the tag stripped;
//! where nothing secure is possible yet, the sender gets a DSN naming the
//! recipient and why — the message never leaves in plain.

use sealgate_e2e::{postfix_mailbox, swaks, wait_for, Dns, Gateway, Postfix, TestCa};

struct Peers {
    _ca: TestCa,
    _dns: Dns,
    home: Postfix,
    verified: Postfix,
    g: Gateway,
}

fn peers() -> Peers {
    let ca = TestCa::new();
    let (cert, key) = ca.issue("mx", &["mx.verified.test"], 2);
    // hospital.test (the senders' mailboxes, for DSNs) and the plain
    // destination live on one Postfix; verified.test on another with a
    // certificate the gateway can verify.
    let home = postfix_mailbox(
        "home",
        "hospital.test plain.test",
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
    let dns = Dns::start(&["--host-record=mx.verified.test,127.0.0.1".into()]);
    let g = Gateway::start(&format!(
        "[delivery]\nresolvers = [\"127.0.0.1:{dns}\"]\nsmart_host = {{ host = \"127.0.0.1\", port = {home} }}\n\n\
         [tls]\ndane = false\nmta_sts = false\nremember = false\nextra_roots_file = \"{ca}\"\n\n\
         [[route]]\ndomains = [\"plain.test\"]\nhost = \"127.0.0.1\"\nport = {home}\n\n\
         [[route]]\ndomains = [\"verified.test\"]\nhost = \"mx.verified.test\"\nport = {verified}\ntls = \"verify\"\n",
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

fn send(g: &Gateway, to: &str, subject: &str, extra: &[&str]) {
    let mut args = vec![
        "--server".to_string(),
        format!("127.0.0.1:{}", g.smtp),
        "--from".into(),
        "nurse@hospital.test".into(),
        "--to".into(),
        to.into(),
        "--header".into(),
        format!("Subject: {subject}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = swaks(&refs);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

fn mails(pf: &Postfix) -> Vec<String> {
    pf.mailbox()
        .iter()
        .map(|m| String::from_utf8_lossy(m).to_string())
        .collect()
}

#[test]
fn escalated_mail_is_never_sent_in_plain() {
    let p = peers();
    // A tag, to a destination whose TLS is not verified: bounced, never sent.
    send(&p.g, "a@plain.test", "[secure] Lab results", &[]);
    // The header trigger, same destination.
    send(
        &p.g,
        "b@plain.test",
        "Results",
        &["--header", "X-Sealgate-Encrypt: yes"],
    );
    // A DLP finding (SSN in context), same destination.
    send(
        &p.g,
        "c@plain.test",
        "Patient record",
        &["--body", "Patient SSN: 536-22-8134 for the claim."],
    );
    let dsns = wait_for(60, "three DSNs", || {
        let d: Vec<String> = mails(&p.home)
            .into_iter()
            .filter(|m| m.contains("report-type=delivery-status"))
            .collect();
        (d.len() >= 3).then_some(d)
    });
    for (rcpt, why) in [
        ("a@plain.test", "tag [secure]"),
        ("b@plain.test", "header X-Sealgate-Encrypt"),
        ("c@plain.test", "DLP hipaa_pci:ssn"),
    ] {
        let d = dsns
            .iter()
            .find(|d| d.contains(&format!("Final-Recipient: rfc822; {rcpt}")))
            .unwrap_or_else(|| panic!("no DSN for {rcpt}: {dsns:#?}"));
        assert!(d.contains("Action: failed"), "{d}");
        assert!(d.contains("Status: 5.7.1"), "{d}");
        assert!(d.contains(why), "DSN for {rcpt} should say {why:?}: {d}");
        assert!(d.contains("no secure method"), "{d}");
    }
    // None of them reached plain.test.
    let plain: Vec<String> = mails(&p.home)
        .into_iter()
        .filter(|m| !m.contains("report-type=delivery-status"))
        .collect();
    assert!(
        plain.is_empty(),
        "escalated mail was delivered in plain: {plain:#?}"
    );
    assert!(p.verified.mailbox().is_empty());
}

#[test]
fn escalated_mail_goes_over_verified_tls_with_the_tag_stripped() {
    let p = peers();
    send(&p.g, "d@verified.test", "[SECURE] Lab results", &[]);
    let got = p.verified.wait_mail(1, 60);
    assert_eq!(got.len(), 1, "{}", p.g.log());
    let m = String::from_utf8_lossy(&got[0]).to_string();
    assert!(
        m.contains("\nSubject: Lab results\n"),
        "tag not stripped: {m}"
    );
    assert!(!m.to_lowercase().contains("[secure]"), "{m}");
    assert!(m.contains("with ESMTPS"), "not over TLS: {m}");
    // The verdict and the evidence are on record.
    let id = wait_for(30, "finished message", || {
        p.g.log()
            .lines()
            .find(|l| l.contains("message finished"))
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|v| v["id"].as_str().map(String::from))
    });
    let v: serde_json::Value =
        serde_json::from_slice(&p.g.cli(&["queue", "show", &id, "--json"]).stdout).unwrap();
    let r = &v["recipients"][0];
    assert_eq!(r["verdict"]["verdict"], "deliver", "{v:#}");
    assert_eq!(r["verdict"]["seal"], "tls");
    assert_eq!(r["verdict"]["escalated"], true);
    assert_eq!(r["evidence"]["tls"]["verified"], true);
}
