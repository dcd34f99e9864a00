//! Key harvesting end to end: inbound mail with an `Autocrypt:` header
//! (key made with gpg) and inbound mail signed with `openssl cms -sign`
//! leave their keys in the keystore as `harvested`. With the default
//! config an outbound `[secure]` message to the harvested address is
//! blocked (harvested keys are not used); with `[seal] use_harvested =
//! true` it arrives PGP-sealed and gpg opens it. A second, different
//! Autocrypt key for the address waits for approval.

use sealgate_e2e::{base64, openssl, postfix_mailbox, swaks, wait_for, Dns, Gateway, Gpg, Postfix};
use std::path::Path;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An inbound message from `from` with an Autocrypt header carrying `key`
/// (binary OpenPGP), keydata folded as mail clients fold it.
fn autocrypt_message(from: &str, key: &[u8], n: u32) -> Vec<u8> {
    let b64 = base64(key);
    let folded: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "From: Ann Remote <{from}>\r\nTo: nurse@hospital.test\r\nSubject: Hello {n}\r\n\
         Message-ID: <autocrypt-{n}@remote.test>\r\n\
         Autocrypt: addr={from}; prefer-encrypt=mutual; keydata=\r\n {}\r\n\
         \r\nHello from Ann.\r\n",
        folded.join("\r\n ")
    )
    .into_bytes()
}

fn send(g: &Gateway, from: &str, to: &str, msg: &[u8], dir: &Path) {
    let file = dir.join("message.eml");
    std::fs::write(&file, msg).unwrap();
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", g.smtp),
        "--from",
        from,
        "--to",
        to,
        "--data",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stdout));
}

/// `keys ls --json`, parsed.
fn keys(g: &Gateway) -> Vec<serde_json::Value> {
    let o = g.cli(&["keys", "ls", "--json"]);
    assert!(o.status.success(), "keys ls: {}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The first message in `home`'s Maildir containing every one of `needles`.
fn mail_with(home: &Postfix, needles: &[&str]) -> String {
    wait_for(60, &format!("a mail with {needles:?}"), || {
        home.mailbox()
            .into_iter()
            .map(|m| text(&m))
            .find(|m| needles.iter().all(|n| m.contains(n)))
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

fn secure_message(n: u32) -> Vec<u8> {
    format!(
        "From: nurse@hospital.test\r\nTo: ann@remote.test\r\nSubject: [secure] Results {n}\r\n\
         Message-ID: <secure-{n}@hospital.test>\r\n\r\nThe results, number {n}.\r\n"
    )
    .into_bytes()
}

#[test]
fn keys_from_inbound_mail_are_harvested_and_used_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let ann = Gpg::new("Ann Remote <ann@remote.test>");
    let ann_key = ann.ok(
        &[
            "--export",
            "--export-options",
            "export-minimal",
            "ann@remote.test",
        ],
        None,
    );
    let ann_fpr = ann.fingerprint("ann@remote.test");
    // Sam signs with a self-signed S/MIME certificate made by openssl.
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "sam.key",
            "-out",
            "sam.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Sam Signer",
            "-addext",
            "subjectAltName=email:sam@remote.test",
            "-addext",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            "-addext",
            "extendedKeyUsage=emailProtection",
        ],
    );
    let sam_sha256 = text(&openssl(
        dir.path(),
        &[
            "x509",
            "-in",
            "sam.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    ))
    .trim()
    .rsplit('=')
    .next()
    .unwrap()
    .replace(':', "")
    .to_ascii_lowercase();

    // The tenant's mailbox server and "remote.test" in one Postfix; the
    // tenant is whoever sends from hospital.test over loopback, everyone
    // else is the internet (inbound).
    let home = postfix_mailbox(
        "home",
        "hospital.test remote.test",
        "smtpd_tls_security_level = none\n",
    );
    let dns = Dns::start(&[]);
    let config = format!(
        "[[connector]]\nname = \"tenant\"\ncidrs = [\"127.0.0.0/8\"]\nsender_domains = [\"hospital.test\"]\n\n\
         [delivery]\nresolvers = [\"127.0.0.1:{dns}\"]\nsmart_host = {{ host = \"127.0.0.1\", port = {home} }}\n\n\
         [tls]\ndane = false\nmta_sts = false\nremember = false\n\n\
         [seal]\nwkd = false\n\n\
         [[route]]\ndomains = [\"remote.test\"]\nhost = \"127.0.0.1\"\nport = {home}\n",
        dns = dns.port,
        home = home.port,
    );
    let mut g = Gateway::start(&config);

    // (a) Inbound with an Autocrypt header.
    send(
        &g,
        "ann@remote.test",
        "nurse@hospital.test",
        &autocrypt_message("ann@remote.test", &ann_key, 1),
        dir.path(),
    );
    // (b) Inbound, signed with openssl cms -sign (multipart/signed).
    std::fs::write(
        dir.path().join("entity.txt"),
        "Content-Type: text/plain\r\n\r\nSigned hello from Sam.\r\n",
    )
    .unwrap();
    let signed = openssl(
        dir.path(),
        &[
            "cms",
            "-sign",
            "-in",
            "entity.txt",
            "-signer",
            "sam.pem",
            "-inkey",
            "sam.key",
            "-from",
            "Sam Signer <sam@remote.test>",
            "-to",
            "nurse@hospital.test",
            "-subject",
            "Signed hello",
        ],
    );
    assert!(text(&signed).contains("multipart/signed"));
    send(
        &g,
        "sam@remote.test",
        "nurse@hospital.test",
        &signed,
        dir.path(),
    );
    // Both are delivered as usual...
    mail_with(&home, &["Delivered-To: nurse@hospital.test", "Hello 1"]);
    mail_with(
        &home,
        &["Delivered-To: nurse@hospital.test", "Signed hello"],
    );
    // ...and both keys are in the keystore, harvested, under the sender's address.
    let stored = wait_for(30, "two harvested keys", || {
        let k = keys(&g);
        (k.len() == 2).then_some(k)
    });
    let by = |kind: &str| {
        stored
            .iter()
            .find(|k| k["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} key: {stored:?}"))
            .clone()
    };
    let pgp = by("pgp");
    assert_eq!(pgp["id"], ann_fpr.as_str(), "{pgp:#}");
    assert_eq!(pgp["source"], "harvested", "{pgp:#}");
    assert_eq!(pgp["state"], "active", "{pgp:#}");
    assert_eq!(pgp["addresses"], serde_json::json!(["ann@remote.test"]));
    let smime = by("smime");
    assert_eq!(smime["id"], sam_sha256.as_str(), "{smime:#}");
    assert_eq!(smime["source"], "harvested", "{smime:#}");
    assert_eq!(smime["addresses"], serde_json::json!(["sam@remote.test"]));
    // The log names the queue id, the key id and the outcome, never an address.
    let log = g.log();
    let harvested: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.contains("key harvested"))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(harvested.len(), 2, "{log}");
    assert!(harvested
        .iter()
        .all(|v| v["outcome"] == "added" && v["id"].is_string()));
    assert!(
        harvested
            .iter()
            .any(|v| v["key"] == ann_fpr.as_str() && v["via"] == "autocrypt"),
        "{harvested:?}"
    );
    assert!(
        harvested
            .iter()
            .any(|v| v["key"] == sam_sha256.as_str() && v["via"] == "smime"),
        "{harvested:?}"
    );
    assert!(
        !log.contains("ann@remote.test") && !log.contains("sam@remote.test"),
        "{log}"
    );

    // (c) Outbound [secure] to Ann, whose domain has no verified TLS: the
    // harvested key is not used by default, so the message is blocked.
    send(
        &g,
        "nurse@hospital.test",
        "ann@remote.test",
        &secure_message(1),
        dir.path(),
    );
    let dsn = mail_with(
        &home,
        &[
            "report-type=delivery-status",
            "Final-Recipient: rfc822; ann@remote.test",
        ],
    );
    assert!(
        dsn.contains("harvested from mail and [seal] use_harvested is off"),
        "{dsn}"
    );
    assert!(home
        .mailbox()
        .iter()
        .all(|m| !text(m).contains("Delivered-To: ann@remote.test")));

    // With use_harvested = true it goes out PGP-sealed, and Ann opens it.
    g.stop();
    let allowed = config.replace(
        "[seal]\nwkd = false\n",
        "[seal]\nwkd = false\nuse_harvested = true\n",
    );
    assert_ne!(allowed, config);
    std::fs::write(
        &g.config,
        std::fs::read_to_string(&g.config)
            .unwrap()
            .replace(&config, &allowed),
    )
    .unwrap();
    assert!(std::fs::read_to_string(&g.config)
        .unwrap()
        .contains("use_harvested = true"));
    g.run();
    send(
        &g,
        "nurse@hospital.test",
        "ann@remote.test",
        &secure_message(2),
        dir.path(),
    );
    let sealed = mail_with(&home, &["Delivered-To: ann@remote.test"]);
    assert!(sealed.contains("multipart/encrypted"), "{sealed}");
    assert!(
        !sealed.contains("The results, number 2"),
        "plain text leaked: {sealed}"
    );
    let opened = text(&ann.ok(&["--decrypt"], Some(armored(&sealed).as_bytes())));
    assert!(opened.contains("The results, number 2."), "{opened}");

    // (d) A different Autocrypt key for Ann: stored, but pending approval,
    // and the pinned key is still the one used.
    let other = Gpg::new("Ann Remote <ann@remote.test>");
    let other_key = other.ok(&["--export", "ann@remote.test"], None);
    let other_fpr = other.fingerprint("ann@remote.test");
    send(
        &g,
        "ann@remote.test",
        "nurse@hospital.test",
        &autocrypt_message("ann@remote.test", &other_key, 2),
        dir.path(),
    );
    let pending = wait_for(30, "a pending key", || {
        keys(&g).into_iter().find(|k| k["id"] == other_fpr.as_str())
    });
    assert_eq!(pending["state"], "pending", "{pending:#}");
    assert_eq!(pending["source"], "harvested", "{pending:#}");
    let show: serde_json::Value =
        serde_json::from_slice(&g.cli(&["keys", "show", "ann@remote.test", "--json"]).stdout)
            .unwrap();
    assert!(
        show.to_string().contains(&ann_fpr),
        "the pinned key is still used: {show:#}"
    );
    let log = g.log();
    assert!(
        log.lines().any(|l| l.contains("key harvested")
            && l.contains("\"outcome\":\"pending\"")
            && l.contains(&other_fpr)),
        "{log}"
    );
}
