//! DKIM end to end: outbound mail leaves DKIM-signed by the `[[dkim]]` key
//! of its From domain, after sealing. Each message is checked as Postfix
//! delivered it into a Maildir (LF line endings, Return-Path, Delivered-To
//! and Received added on top) by an independent verifier, dkimpy
//! (Debian's python3-dkim), which fetches the public keys from dnsmasq as
//! TXT records at `<selector>._domainkey.<domain>`. The plain copy, a
//! PGP-sealed copy (RSA key for hospital.test) and a message from a
//! subdomain with its own Ed25519 key are all verified; a tampered copy is not.

use sealgate_e2e::{dkim_key, postfix_mailbox, txt_record, Dns, Gateway, Gpg, Postfix};
use std::path::Path;
use std::process::{Command, Stdio};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Checks every DKIM-Signature of `message` with dkimpy, keys from the DNS
/// server on `port`; one "pass|fail <d=> <s=>" line per signature.
const VERIFY: &str = r#"
import re, sys
try:
    import dkim, dns.resolver
except ImportError as e:
    sys.exit("python3-dkim is not installed (scripts/install-deps test): %s" % e)
res = dns.resolver.Resolver(configure=False)
res.nameservers = ["127.0.0.1"]
res.port = int(sys.argv[1])
def txt(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    try:
        answer = res.resolve(name, "TXT", lifetime=timeout)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    return b"".join(answer[0].strings)
msg = sys.stdin.buffer.read()
head = re.split(rb"\r?\n\r?\n", msg, maxsplit=1)[0]
d = dkim.DKIM(msg)
for i in range(len(re.findall(rb"(?im)^dkim-signature:", head))):
    try:
        ok = d.verify(idx=i, dnsfunc=txt)
    except dkim.DKIMException as e:
        # dkimpy raises on a body hash mismatch rather than returning False.
        print(e, file=sys.stderr)
        ok = False
    print("pass" if ok else "fail", d.domain.decode(), d.selector.decode())
"#;

fn dkimpy(dns_port: u16, message: &[u8]) -> Vec<String> {
    use std::io::Write;
    // Debian's interpreter, where python3-dkim is installed (another
    // python3 may come first on PATH).
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut child = Command::new(python)
        .arg("-c")
        .arg(VERIFY)
        .arg(dns_port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "dkimpy: {}", text(&out.stderr));
    text(&out.stdout).lines().map(String::from).collect()
}

fn send(g: &Gateway, from: &str, to: &str, subject: &str) {
    sealgate_e2e::send_text(
        g,
        from,
        to,
        subject,
        "The lab results are in.\nRegards,\nthe ward\n",
    );
}

/// The delivered mail for `rcpt` whose text contains `needle`.
fn delivered(home: &Postfix, rcpt: &str, needle: &str, g: &Gateway) -> Vec<u8> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(m) = home.mailbox().into_iter().find(|m| {
            let t = text(m);
            t.contains(&format!("Delivered-To: {rcpt}")) && t.contains(needle)
        }) {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing for {rcpt} with {needle:?}; gateway log:\n{}\npostfix log:\n{}",
            g.log(),
            home.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn outbound_mail_is_dkim_signed_after_sealing_and_verifies_independently() {
    let dir = tempfile::tempdir().unwrap();
    let (rsa_pem, rsa_txt) = dkim_key(dir.path(), "rsa", false);
    let (ed_pem, ed_txt) = dkim_key(dir.path(), "ed", true);
    let dns = Dns::start(&[
        txt_record("sel._domainkey.hospital.test", &rsa_txt),
        txt_record("ed._domainkey.lab.hospital.test", &ed_txt),
    ]);
    let home = postfix_mailbox(
        "dkim",
        "hospital.test dest.test pgp.test",
        "smtpd_tls_security_level = none\n",
    );
    let g = Gateway::start(&format!(
        "[delivery]\nresolvers = [\"127.0.0.1:{dns}\"]\nsmart_host = {{ host = \"127.0.0.1\", port = {home} }}\n\n\
         [tls]\ndane = false\nmta_sts = false\nremember = false\n\n\
         [[route]]\ndomains = [\"dest.test\", \"pgp.test\"]\nhost = \"127.0.0.1\"\nport = {home}\n\n\
         [[dkim]]\ndomain = \"hospital.test\"\nselector = \"sel\"\nkey_file = \"{rsa}\"\n\n\
         [[dkim]]\ndomain = \"lab.hospital.test\"\nselector = \"ed\"\nkey_file = \"{ed}\"\nalgorithm = \"ed25519-sha256\"\n",
        dns = dns.port,
        home = home.port,
        rsa = rsa_pem.display(),
        ed = ed_pem.display(),
    ));
    assert!(g.log().contains("DKIM signing key loaded"), "{}", g.log());

    // The recipient on pgp.test has a key: a [secure] message to it is sealed.
    let gpg = Gpg::new("Pat Patient <pat@pgp.test>");
    let pubkey = dir.path().join("pat.asc");
    std::fs::write(
        &pubkey,
        gpg.ok(&["--armor", "--export", "pat@pgp.test"], None),
    )
    .unwrap();
    let o = g.cli(&["keys", "import", pubkey.to_str().unwrap()]);
    assert!(o.status.success(), "keys import: {}", text(&o.stderr));

    send(&g, "nurse@hospital.test", "val@dest.test", "Plain results");
    send(
        &g,
        "nurse@hospital.test",
        "pat@pgp.test",
        "[secure] Sealed results",
    );
    send(
        &g,
        "tech@lab.hospital.test",
        "val@dest.test",
        "From the lab",
    );

    // The plain copy, signed with the RSA key of hospital.test.
    let plain = delivered(&home, "val@dest.test", "Subject: Plain results", &g);
    let plain_text = text(&plain);
    assert!(
        !plain_text.contains('\r'),
        "the Maildir copy has LF endings"
    );
    assert!(plain_text.starts_with("Return-Path: "), "{plain_text}");
    assert_eq!(
        plain_text.matches("DKIM-Signature:").count(),
        1,
        "{plain_text}"
    );
    assert!(plain_text.contains("a=rsa-sha256"), "{plain_text}");
    assert_eq!(
        dkimpy(dns.port, &plain),
        ["pass hospital.test sel"],
        "{plain_text}"
    );

    // The sealed copy is signed too, over the sealed bytes.
    let sealed = delivered(&home, "pat@pgp.test", "Subject: Sealed results", &g);
    let sealed_text = text(&sealed);
    assert!(sealed_text.contains("multipart/encrypted"), "{sealed_text}");
    assert!(
        !sealed_text.contains("lab results are in"),
        "plain text leaked: {sealed_text}"
    );
    assert_eq!(
        dkimpy(dns.port, &sealed),
        ["pass hospital.test sel"],
        "{sealed_text}"
    );

    // A subdomain with its own key: that one (Ed25519) signs, not the parent's.
    let lab = delivered(&home, "val@dest.test", "Subject: From the lab", &g);
    let lab_text = text(&lab);
    assert!(lab_text.contains("a=ed25519-sha256"), "{lab_text}");
    assert_eq!(
        dkimpy(dns.port, &lab),
        ["pass lab.hospital.test ed"],
        "{lab_text}"
    );

    // The verifier does reject: one changed body word fails.
    let tampered = plain_text.replace("lab results are in", "lab results are IN");
    assert_ne!(tampered, plain_text);
    assert_eq!(
        dkimpy(dns.port, tampered.as_bytes()),
        ["fail hospital.test sel"]
    );

    // No addresses or subjects in the log.
    let log = g.log();
    assert!(
        !log.contains("nurse@hospital.test") && !log.contains("Plain results"),
        "{log}"
    );
}
