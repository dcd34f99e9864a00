//! The escrow portal end to end, in headless Chromium (chromedriver): a
//! `[secure]` message to a recipient with no key and no verified TLS
//! passes through the relay and is held; the notice arrives in the
//! receiving Postfix mailbox; the browser opens its link, gets a one-time
//! code by mail, sets a password, reads the message (its script does not
//! run), downloads the attachment (bytes identical) and replies with a
//! file; the reply and the read receipt arrive in the sender's mailbox.
//! Then: ten wrong codes lock the address, and withdrawn and expired links
//! show their pages with the right status.

use sealgate_e2e::{
    artefacts, base64_lines, free_port, postfix_mailbox, queued_id, swaks, wait_for, Browser,
    Gateway, Postfix, TestCa,
};
use std::process::Command;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The attachment: bytes that survive nothing but an exact copy.
fn attachment() -> Vec<u8> {
    (0..9000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect()
}

/// A `[secure]` HTML message with a script in it and a binary attachment.
fn message(to: &str) -> Vec<u8> {
    format!(
        "From: Nina Nurse <nurse@hospital.test>\r\nTo: {to}\r\nCc: doctor@hospital.test\r\n\
         Subject: [secure] Lab results\r\nMessage-ID: <portal-e2e-{n}@hospital.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <p id=\"greeting\">Your potassium is 4.1 mmol/L.</p><p>Patient SSN: 536-90-4399</p>\
         <script>window.pwned = 1; document.title = 'pwned';</script>\
         <img src=\"x\" onerror=\"window.pwned = 2\">\r\n\
         --b1\r\nContent-Type: application/octet-stream; name=\"../../results.bin\"\r\n\
         Content-Disposition: attachment; filename=\"../../results.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}--b1--\r\n",
        n = rand::random::<u32>(),
        b64 = base64_lines(&attachment()),
    )
    .into_bytes()
}

struct Setup {
    _ca: TestCa,
    mx: Postfix,
    g: Gateway,
    url: String,
    dir: tempfile::TempDir,
}

/// Postfix as the patients' MX and as the tenant's mailbox (one Maildir),
/// and the gateway with the portal on `https://localhost:PORT`.
fn setup(portal_extra: &str) -> Setup {
    let ca = TestCa::new();
    let (cert, key) = ca.issue("portal", &["localhost"], 2);
    let mx = postfix_mailbox(
        "portalmx",
        "hospital.test patient.test",
        "smtpd_tls_security_level = none\n",
    );
    let port = free_port();
    let url = format!("https://localhost:{port}");
    let g = Gateway::start(&format!(
        "[delivery]\nsmart_host = {{ host = \"127.0.0.1\", port = {mx} }}\n\n\
         [tls]\ndane = false\nmta_sts = false\nremember = false\n\n\
         [seal]\nwkd = false\n\n\
         [portal]\nenabled = true\naddress = \"127.0.0.1:{port}\"\npublic_url = \"{url}\"\n\
         cert_file = \"{cert}\"\nkey_file = \"{key}\"\norganisation = \"General Hospital\"\n{portal_extra}\n\n\
         [[route]]\ndomains = [\"patient.test\"]\nhost = \"127.0.0.1\"\nport = {mx}\n",
        mx = mx.port,
        cert = cert.display(),
        key = key.display(),
    ));
    Setup {
        _ca: ca,
        mx,
        g,
        url,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Setup {
    /// Sends `msg` from the nurse to `to` through the gateway; returns its queue id.
    fn send(&self, to: &str, msg: &[u8]) -> String {
        let file = self.dir.path().join("message.eml");
        std::fs::write(&file, msg).unwrap();
        let o = swaks(&[
            "--server",
            &format!("127.0.0.1:{}", self.g.smtp),
            "--from",
            "nurse@hospital.test",
            "--to",
            to,
            "--data",
            file.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o.stdout));
        queued_id(&text(&o.stdout)).expect("queued as ID")
    }

    /// The mail in the Maildir whose text contains every one of `needles`.
    fn mail_with(&self, needles: &[&str], what: &str) -> String {
        wait_for(60, what, || {
            self.mx
                .mailbox()
                .into_iter()
                .map(|m| text(&m))
                .find(|m| needles.iter().all(|n| m.contains(n)))
        })
    }

    /// How many mails contain `needle`.
    fn count(&self, needle: &str) -> usize {
        self.mx
            .mailbox()
            .iter()
            .filter(|m| text(m).contains(needle))
            .count()
    }

    /// The portal link in the notice to `to`.
    fn notice_link(&self, to: &str) -> String {
        let notice = self.mail_with(
            &[
                &format!("To: <{to}>"),
                "Secure message from nurse@hospital.test",
            ],
            "the notice",
        );
        link_in(&notice, &format!("{}/m/", self.url))
    }

    /// The newest one-time code mailed to `to`, different from `not`.
    fn code(&self, to: &str, not: &[String]) -> String {
        wait_for(60, "a one-time code", || {
            self.mx
                .mailbox()
                .into_iter()
                .map(|m| text(&m))
                .filter(|m| m.contains(&format!("To: <{to}>")))
                .filter_map(|m| {
                    let at = m.find("Subject: Your code: ")? + 20;
                    Some(m[at..at + 8].to_string())
                })
                .find(|c| !not.contains(c))
        })
    }

    /// `curl -k` status code of `url`.
    fn status(&self, url: &str) -> String {
        let o = Command::new("curl")
            .args(["-k", "-s", "-o", "/dev/null", "-w", "%{http_code}", url])
            .output()
            .unwrap();
        text(&o.stdout)
    }

    /// `portal ls --json`, one value per entry.
    fn portal_ls(&self) -> Vec<serde_json::Value> {
        let o = self.g.cli(&["portal", "ls", "--json"]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// The first `prefix…` link in `mail` (64 hex characters of token).
fn link_in(mail: &str, prefix: &str) -> String {
    let at = mail
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in:\n{mail}"));
    mail[at..at + prefix.len() + 64].to_string()
}

#[test]
fn a_recipient_without_keys_reads_downloads_and_replies_in_chromium() {
    let s = setup("max_reply_size = 1048576\n");
    let qid = s.send(
        "pat@patient.test",
        &message("Pat Patient <pat@patient.test>"),
    );

    // The relay holds it and says so; the notice reveals nothing of it.
    let link = s.notice_link("pat@patient.test");
    let notice = s.mail_with(&["To: <pat@patient.test>", "Secure message from"], "notice");
    assert!(
        !notice.contains("potassium") && !notice.contains("Lab results"),
        "{notice}"
    );
    assert!(
        notice.contains("Auto-Submitted: auto-generated"),
        "{notice}"
    );
    let held = s.g.queue_show(&qid);
    let r = &held["recipients"][0];
    assert_eq!(r["state"], "delivered", "{held}");
    assert_eq!(r["sealed"]["method"], "portal", "{held}");
    assert!(
        r["evidence"]["reply"]
            .as_str()
            .unwrap()
            .contains("held in the escrow portal"),
        "{held}"
    );
    // The sender's confirmation carries the withdraw link.
    let confirmation = s.mail_with(
        &["To: <nurse@hospital.test>", "Sent securely to"],
        "confirmation",
    );
    assert!(
        confirmation.contains(&format!("{}/r/", s.url)),
        "{confirmation}"
    );

    let downloads = tempfile::tempdir().unwrap();
    let b = Browser::start_with_downloads(Some(downloads.path()));
    b.goto(&link);
    assert!(b.text().contains("p**@patient.test"), "{}", b.text());
    b.find("#send-code").click();
    b.wait_text("We sent a code");
    let code = s.code("pat@patient.test", &[]);
    b.find("#code").type_text(&code);
    b.find("#verify").click();
    b.wait_url("/password?next=/msg/");
    b.find("#password")
        .type_text("correct horse battery staple");
    b.find("#confirm").type_text("correct horse battery staple");
    b.find("#save-password").click();

    // The message page: the text, the sanitised HTML, no script ran.
    let url = b.wait_url(&format!("{}/msg/", s.url));
    let page = b.text();
    assert!(page.contains("Your potassium is 4.1 mmol/L."), "{page}");
    assert!(page.contains("Lab results"), "{page}");
    assert!(page.contains("Nina Nurse <nurse@hospital.test>"), "{page}");
    assert!(page.contains("results.bin"), "{page}");
    assert!(!page.contains("../"), "path tricks in the name: {page}");
    let pwned = b.run("return [String(window.pwned), document.title];");
    assert_eq!(pwned[0], "undefined", "a script in the message ran");
    assert_eq!(pwned[1], "Lab results · General Hospital");
    assert!(
        !b.source().contains("<script"),
        "a script element reached the page"
    );
    let shot = artefacts().join("portal-message.png");
    b.screenshot(&shot);
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "an empty screenshot"
    );

    // The attachment, downloaded by the browser: identical bytes, and the
    // name without its path.
    b.find("#attachments a").click();
    let saved = downloads.path().join("results.bin");
    let got = wait_for(30, "the download", || {
        std::fs::read(&saved)
            .ok()
            .filter(|b| b.len() == attachment().len())
    });
    assert_eq!(got, attachment(), "downloaded attachment differs");

    // Forged and oversized replies are refused with their status, and send nothing.
    let session = format!(
        "Cookie: __Host-sealgate-session={}",
        b.cookie("__Host-sealgate-session")
    );
    let reply_url = format!("{url}/reply");
    let big = s.dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 2 * 1024 * 1024]).unwrap();
    let curl = |args: &[&str]| {
        let o = Command::new("curl")
            .args([
                "-k",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                &session,
            ])
            .args(args)
            .arg(&reply_url)
            .output()
            .unwrap();
        text(&o.stdout)
    };
    assert_eq!(
        curl(&["-F", "text=forged", "-F", "csrf=00"]),
        "403",
        "no CSRF token"
    );
    assert_eq!(
        curl(&["-F", "text=big", "-F", &format!("files=@{}", big.display())]),
        "413",
        "a 2 MB upload over a 1 MB limit"
    );

    // A reply with a file: it reaches the nurse, threaded.
    let upload = s.dir.path().join("insurance card.txt");
    std::fs::write(&upload, b"member id 12345\n").unwrap();
    b.find("#reply-text").type_text("Thank you, received.");
    b.find("#files").type_text(upload.to_str().unwrap());
    b.find("#send-reply").click();
    b.wait_text("Your reply was sent.");
    let reply = s.mail_with(
        &["From: <pat@patient.test>", "Subject: Re: Lab results"],
        "the reply",
    );
    assert_eq!(
        s.count("From: <pat@patient.test>"),
        1,
        "a refused reply was sent"
    );
    assert!(reply.contains("To: <nurse@hospital.test>"), "{reply}");
    assert!(reply.contains("In-Reply-To: <portal-e2e-"), "{reply}");
    assert!(reply.contains("filename=\"insurance card.txt\""), "{reply}");
    assert!(
        reply.contains("Received: by gw.sealgate.test (Sealgate)"),
        "relayed: {reply}"
    );
    // Read receipt to the sender.
    s.mail_with(
        &[
            "To: <nurse@hospital.test>",
            "Read: your secure message to pat@patient.test",
        ],
        "the read receipt",
    );
    let ls = s.portal_ls();
    assert_eq!(ls.len(), 1, "{ls:?}");
    assert_eq!(ls[0]["state"], "replied");

    // The inbox lists it; signing out ends the session.
    b.goto(&format!("{}/inbox", s.url));
    assert!(b.text().contains("Lab results"), "{}", b.text());
    b.find("header button").click();
    b.wait_text("You are signed out.");
    b.goto(&url);
    assert!(b.text().contains("not signed in"), "{}", b.text());
    // The link again: the password now works.
    b.goto(&link);
    b.find("#password")
        .type_text("correct horse battery staple");
    b.find("form[action$='/login'] button").click();
    b.wait_url(&format!("{}/msg/", s.url));

    // Audit and metrics saw it all.
    let audit = std::fs::read_to_string(s.g.data().join("audit.log")).unwrap();
    for event in [
        "portal.code_sent",
        "portal.login_ok",
        "portal.read",
        "portal.download",
        "portal.reply",
    ] {
        assert!(audit.contains(event), "no {event} in the audit log");
    }
    assert!(!audit.contains("potassium"), "content in the audit log");
    assert!(
        audit.contains("pat@patient.test by code from 127.0.0.1"),
        "the client address is audited"
    );
    assert_eq!(
        s.g.metric("sealgate_portal_events_total{event=\"reply\"}"),
        1.0
    );
}

#[test]
fn wrong_codes_lock_and_withdrawn_and_expired_links_say_so() {
    // The SSN in the message fires hipaa_pci:ssn, whose stay is 30 seconds.
    let s = setup("expiry_by_rule = { \"hipaa_pci:ssn\" = \"30s\" }\n");
    s.send("lee@patient.test", &message("lee@patient.test"));
    s.send("kim@patient.test", &message("kim@patient.test"));
    let lee = s.notice_link("lee@patient.test");
    let kim = s.notice_link("kim@patient.test");

    let b = Browser::start();
    b.goto(&lee);
    b.find("#send-code").click();
    let code = s.code("lee@patient.test", &[]);
    let wrong = if code == "11111111" {
        "22222222"
    } else {
        "11111111"
    };
    for i in 1..=10 {
        b.find("#code").type_text(wrong);
        b.find("#verify").click();
        if i < 10 {
            b.wait_text(&format!("{} more tries", 10 - i));
        } else {
            b.wait_text("too many wrong attempts");
        }
    }
    // Locked: the right code no longer works, and no new code is sent.
    b.goto(&lee);
    b.find("#code").type_text(&code);
    b.find("#verify").click();
    b.wait_text("too many wrong attempts");
    let codes = s.count("Subject: Your code:");
    b.goto(&lee);
    b.find("#send-code").click();
    b.wait_text("too many wrong attempts");
    assert_eq!(
        s.count("Subject: Your code:"),
        codes,
        "a code was sent while locked"
    );
    let audit = std::fs::read_to_string(s.g.data().join("audit.log")).unwrap();
    assert!(audit.contains("portal.locked"), "no lock in the audit log");

    // Withdrawn by an admin (through the running gateway's API).
    let id = s
        .portal_ls()
        .into_iter()
        .find(|e| e["recipient"] == "kim@patient.test")
        .expect("kim's entry")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = s.g.cli(&["portal", "revoke", &id]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("withdrew portal message"),
        "{}",
        text(&o.stdout)
    );
    b.clear_cookies();
    b.goto(&kim);
    assert!(
        b.text().contains("The sender withdrew this message"),
        "{}",
        b.text()
    );
    assert_eq!(s.status(&kim), "410");
    // An unknown token, and a malformed one.
    let unknown = format!("{}/m/{}", s.url, "0".repeat(64));
    b.goto(&unknown);
    assert!(b.text().contains("This link is not valid"), "{}", b.text());
    assert_eq!(s.status(&unknown), "404");
    assert_eq!(
        s.status(&format!("{}/m/..%2F..%2Fetc%2Fpasswd", s.url)),
        "404"
    );

    // Expired: lee's message outlives the 30 seconds its DLP rule allows.
    wait_for(60, "the expiry", || (s.status(&lee) == "410").then_some(()));
    b.goto(&lee);
    assert!(
        b.text().contains("This message has expired"),
        "{}",
        b.text()
    );
    // The pages carry the security headers.
    let o = Command::new("curl")
        .args(["-k", "-s", "-D", "-", "-o", "/dev/null", &lee])
        .output()
        .unwrap();
    let headers = text(&o.stdout).to_ascii_lowercase();
    for h in [
        "content-security-policy: default-src 'none'",
        "frame-ancestors 'none'",
        "strict-transport-security: max-age=",
        "referrer-policy: no-referrer",
        "x-frame-options: deny",
    ] {
        assert!(headers.contains(h), "missing {h}: {headers}");
    }
}

/// A TCP connection to `port` from the loopback address `from`.
fn connect_from(from: std::net::Ipv4Addr, port: u16) -> std::net::TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&std::net::SocketAddr::from((from, 0)).into())
        .unwrap();
    s.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    s.into()
}

/// Whether the server has closed `s` (EOF or reset), without waiting.
fn closed(mut s: &std::net::TcpStream) -> bool {
    use std::io::Read;
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 512];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Idle and slow-drip connections cannot stop the portal, let alone the
/// mail: one client holds at most its share, all of them together at most
/// the listener's cap, and every one is closed once its handshake or header
/// deadline passes. (Before these limits, such connections stayed open
/// until the descriptors shared with SMTP and the stores ran out.)
#[test]
fn a_flood_of_idle_connections_stops_neither_mail_nor_the_portal() {
    let s = setup(
        "\n[portal.http]\nmax_connections = 200\nmax_connections_per_client = 20\n\
         header_timeout = \"3s\"\nidle_timeout = \"5s\"\n",
    );
    let port: u16 = s.url.rsplit(':').next().unwrap().parse().unwrap();
    let half_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    let mut held = Vec::new();
    // One client with 1,000 connections, each sending half a ClientHello...
    for _ in 0..1000 {
        let mut c = connect_from([127, 0, 0, 1].into(), port);
        std::io::Write::write_all(&mut c, half_hello).unwrap();
        held.push((1u8, c));
    }
    // ...and eleven more with twenty each, past the listener's cap.
    for client in 2..=12u8 {
        for _ in 0..20 {
            held.push((client, connect_from([127, 0, 0, client].into(), port)));
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let open_from_first = held
        .iter()
        .filter(|(c, _)| *c == 1)
        .filter(|(_, s)| !closed(s))
        .count();
    assert!(
        open_from_first <= 20,
        "one client holds {open_from_first} connections; its cap is 20"
    );
    let open: usize = held.iter().filter(|(_, s)| !closed(s)).count();
    assert!(open <= 200, "{open} connections open; the cap is 200");

    // Mail is accepted all the while.
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", s.g.smtp),
        "--from",
        "nurse@hospital.test",
        "--to",
        "colleague@hospital.test",
    ]);
    assert!(o.status.success(), "{}", text(&o.stdout));

    // A fresh client is served as soon as the stalled ones' deadline passes.
    let started = std::time::Instant::now();
    wait_for(15, "a fresh client served by the portal", || {
        let o = Command::new("curl")
            .args(["-k", "-s", "--interface", "127.0.0.99", "-o", "/dev/null"])
            .args(["-w", "%{http_code}", &format!("{}/portal.css", s.url)])
            .output()
            .unwrap();
        (text(&o.stdout) == "200").then_some(())
    });
    eprintln!("fresh client served after {:?}", started.elapsed());

    // Every stalled connection is closed once its deadline passed.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let still_open = held.iter().filter(|(_, s)| !closed(s)).count();
    assert_eq!(still_open, 0, "stalled connections outlived the deadline");
}
