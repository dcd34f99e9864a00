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

/// Sends one message to `g` and returns its queue id.
fn queue_one(g: &Gateway) -> String {
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", g.smtp),
        "--from",
        "nurse@hospital.test",
        "--to",
        "x@partner.test",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    sealgate_e2e::queued_id(&String::from_utf8_lossy(&o.stdout)).unwrap()
}

/// `queue delete` of a running gateway goes through its API: over HTTPS
/// when `admin.tls` is on, trusting the generated certificate or a CA.
fn delete_through_api(g: &Gateway) {
    let id = queue_one(g);
    let d = g.cli(&["queue", "delete", &id]);
    assert!(
        d.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&d.stderr),
        g.log()
    );
    assert!(g.queue().is_empty());
}

#[test]
fn admin_api_over_https_and_the_cli_through_it() {
    // The generated self-signed certificate: the CLI trusts that very file.
    let g = Gateway::start_with_admin_extra("tls = true\n", "");
    delete_through_api(&g);
    // Plain HTTP gets no answer from the HTTPS listener.
    let plain = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", g.admin)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(15)))
            .unwrap();
        s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        String::from_utf8_lossy(&got).into_owned()
    };
    assert!(!plain.contains("200 OK"), "{plain}");
    let o = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{}", g.admin)])
        .args(["-brief", "-verify_return_error", "-CAfile"])
        .arg(g.data().join("tls/dev-cert.pem"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("Protocol version: TLSv1.3"), "{said}");

    // A certificate of the organisation's CA, for the name the CLI expects.
    let ca = TestCa::new();
    let (cert, key) = ca.issue("admin", &["admin.hospital.test"], 2);
    let g = Gateway::start_with_admin_extra(
        &format!(
            "tls = true\ncert_file = \"{}\"\nkey_file = \"{}\"\nca_file = \"{}\"\nserver_name = \"admin.hospital.test\"\n",
            cert.display(),
            key.display(),
            ca.ca().display()
        ),
        "",
    );
    delete_through_api(&g);

    // Another name than the certificate's: the CLI refuses the peer.
    let text = std::fs::read_to_string(&g.config)
        .unwrap()
        .replace("admin.hospital.test\"\n", "other.hospital.test\"\n");
    std::fs::write(&g.config, text).unwrap();
    let id = queue_one(&g);
    let d = g.cli(&["queue", "delete", &id]);
    assert!(!d.status.success());
    let err = String::from_utf8_lossy(&d.stderr);
    assert!(err.contains("did not answer"), "{err}");
    assert_eq!(g.queue().len(), 1, "nothing deleted");
}

#[test]
fn check_config_refuses_a_public_admin_listener_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("public.toml");
    std::fs::write(&f, "[admin]\naddress = \"0.0.0.0:9025\"\n").unwrap();
    let check = |f: &std::path::Path| {
        std::process::Command::new(sealgate_e2e::sealgate_bin())
            .arg("check-config")
            .arg(f)
            .output()
            .unwrap()
    };
    let o = check(&f);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("admin.address") && err.contains("admin.tls = true"),
        "{err}"
    );
    std::fs::write(&f, "[admin]\naddress = \"0.0.0.0:9025\"\ntls = true\n").unwrap();
    let o = check(&f);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
