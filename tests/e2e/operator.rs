//! What an operator does with the delivery queue: TLS memory holds a domain
//! that once took TLS to TLS (`sealgate tls ls|forget`), and `queue retry`
//! tries a deferred message now instead of at its scheduled time.

use sealgate_e2e::{postfix_mailbox, swaks, wait_for, Gateway, TestCa};

fn recipient(g: &Gateway, id: &str) -> serde_json::Value {
    g.queue_show(id)["recipients"][0].clone()
}

#[test]
fn tls_memory_refuses_plain_until_forgotten_and_retry_is_immediate() {
    let ca = TestCa::new();
    let (cert, key) = ca.issue("mx", &["mx.mem.test"], 2);
    let mx = postfix_mailbox(
        "memory",
        "mem.test",
        &format!(
            "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n",
            cert.display(),
            key.display()
        ),
    );
    // An hour between attempts: only `queue retry` makes a second one soon.
    let g = Gateway::start(&format!(
        "[delivery]\nretry_schedule = [\"1h\"]\nidle_timeout = \"0s\"\n\n\
         [tls]\ndane = false\nmta_sts = false\nremember = true\n\n\
         [[route]]\ndomains = [\"mem.test\"]\nhost = \"127.0.0.1\"\nport = {}\n",
        mx.port
    ));
    let send = |n: u32| {
        let o = swaks(&[
            "--server",
            &format!("127.0.0.1:{}", g.smtp),
            "--from",
            "nurse@hospital.test",
            "--to",
            "x@mem.test",
            "--header",
            &format!("Subject: memory {n}"),
        ]);
        assert!(o.status.success());
        sealgate_e2e::queued_id(&String::from_utf8_lossy(&o.stdout)).unwrap()
    };

    // First delivery goes over TLS (level may): the domain is remembered.
    send(1);
    assert_eq!(mx.wait_mail(1, 30).len(), 1, "{}", g.log());
    let ls = wait_for(10, "tls memory", || {
        let out = String::from_utf8(g.cli(&["tls", "ls"]).stdout).unwrap();
        out.contains("mem.test").then_some(out)
    });
    assert!(ls.starts_with("mem.test\t"), "{ls}");

    // The MX stops offering STARTTLS: plain delivery is refused.
    mx.set("smtpd_tls_security_level = none");
    let id = send(2);
    let r = wait_for(30, "deferral under TLS memory", || {
        let r = recipient(&g, &id);
        (r["state"] == "deferred").then_some(r)
    });
    assert_eq!(r["evidence"]["policy_source"], "memory", "{r:#}");
    assert_eq!(r["evidence"]["tls_level"], "encrypt");
    assert!(r["evidence"]["reply"]
        .as_str()
        .unwrap()
        .contains("STARTTLS"));
    assert_eq!(r["attempts"], 1);

    // Retrying changes nothing while the domain is remembered...
    let o = g.cli(&["queue", "retry", &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_for(30, "second attempt", || {
        (recipient(&g, &id)["attempts"] == 2).then_some(())
    });
    assert_eq!(recipient(&g, &id)["state"], "deferred");

    // ...until an admin clears it; then a retry delivers in plain, now.
    let o = g.cli(&["tls", "forget", "mem.test"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8(g.cli(&["tls", "ls"]).stdout)
        .unwrap()
        .contains("mem.test"));
    let o = g.cli(&["tls", "forget", "mem.test"]);
    assert!(!o.status.success(), "forgetting twice is an error");
    let o = g.cli(&["queue", "retry", "--all"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(mx.wait_mail(2, 30).len(), 2, "{}", g.log());
    let r = wait_for(30, "delivered record", || {
        let r = recipient(&g, &id);
        (r["state"] == "delivered").then_some(r)
    });
    assert!(r["evidence"]["tls"].is_null(), "{r:#}");
    assert_eq!(r["evidence"]["policy_source"], "config");
}
