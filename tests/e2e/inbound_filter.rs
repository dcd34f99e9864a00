//! Content scanning of inbound mail with the real engines from Debian:
//! rspamd (stock rules) and clamd (a database holding only the EICAR
//! signature), both started by the test. GTUBE is refused as spam with 550
//! before "250"; EICAR as an attachment is refused as malware, and zipped
//! inside a zip it is found too; a clean message is delivered with the
//! score fields (a forged `X-Sealgate-Spam-Flag` removed); with rspamd
//! down the sender gets 451 (fail closed) and nothing is lost: the same
//! message is accepted once rspamd is back.

use sealgate_e2e::{
    base64_lines, inbound_gateway, postfix_mailbox, send_inbound, wait_for, Clamd, Gateway, Rspamd,
    EICAR, GTUBE,
};
use std::io::Write;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn send(g: &Gateway, from: &str, body: &str) -> (u16, String) {
    send_inbound(g, "mail.outside.test", from, body)
}

fn plain(subject: &str, body: &str, extra: &str) -> String {
    format!("{extra}From: <x@outside.test>\r\nTo: nurse@hospital.test\r\nSubject: {subject}\r\n\r\n{body}\r\n")
}

fn with_attachment(subject: &str, name: &str, ctype: &str, data: &[u8]) -> String {
    format!(
        "From: <x@outside.test>\r\nTo: nurse@hospital.test\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b1\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--b1--\r\n",
        base64_lines(data)
    )
}

/// A zip holding one file, made with Python's zipfile (Debian's python3).
fn zip(name: &str, data: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED)\nz.writestr(sys.argv[1],sys.stdin.buffer.read())\nz.close()\nsys.stdout.buffer.write(b.getvalue())",
            name,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn spam_and_malware_are_stopped_before_250_and_a_dead_scanner_tempfails() {
    // Both engines load for several seconds: start them side by side.
    let clamd = std::thread::spawn(Clamd::start);
    let mut rspamd = Rspamd::start();
    let clamd = clamd.join().unwrap();
    let home = postfix_mailbox(
        "filter",
        "hospital.test",
        "smtpd_tls_security_level = none\n",
    );
    let g = inbound_gateway(
        &home,
        &format!(
            "authenticate = false\nrspamd_url = \"http://127.0.0.1:{}\"\nclamd_address = \"127.0.0.1:{}\"\nscan_timeout = \"30s\"",
            rspamd.port, clamd.port
        ),
        "",
    );

    // GTUBE: rspamd's "reject" → 550 in the dialogue.
    let (code, reply) = send(&g, "x@outside.test", &plain("Offer", GTUBE, ""));
    assert_eq!(code, 550, "{reply}\n{}", g.log());
    assert!(reply.contains("5.7.1") && reply.contains("spam"), "{reply}");

    // EICAR attached, and EICAR in a zip in a zip: malware, 550 naming it.
    let (code, reply) = send(
        &g,
        "x@outside.test",
        &with_attachment("Invoice", "invoice.com", "application/octet-stream", EICAR),
    );
    assert_eq!(code, 550, "{reply}");
    assert!(
        reply.contains("malware") && reply.contains("EICAR"),
        "{reply}"
    );
    let nested = zip("outer-inner.zip", &zip("invoice.com", EICAR));
    let (code, reply) = send(
        &g,
        "x@outside.test",
        &with_attachment("Zipped invoice", "invoice.zip", "application/zip", &nested),
    );
    assert_eq!(code, 550, "{reply}");
    assert!(reply.contains("EICAR"), "{reply}");

    // A clean message goes through, scored, with a forged flag removed.
    let (code, reply) = send(
        &g,
        "x@outside.test",
        &plain(
            "Lab schedule",
            "The lab opens at nine.",
            "X-Sealgate-Spam-Flag: NO\r\n",
        ),
    );
    assert_eq!(code, 250, "{reply}");
    let mail = home.wait_subject("Lab schedule");
    assert_eq!(mail.matches("X-Sealgate-Spam-Flag:").count(), 1, "{mail}");
    assert!(mail.contains("X-Sealgate-Spam-Score: "), "{mail}");

    // rspamd down: fail closed with 451 (nothing accepted, so nothing lost:
    // the sender keeps the message and tries again).
    rspamd.stop();
    let retry = plain("After the outage", "Second try.", "");
    let (code, reply) = send(&g, "x@outside.test", &retry);
    assert_eq!(code, 451, "{reply}");
    assert!(g.metric("sealgate_messages_refused_total{reason=\"scanner_failure\"}") >= 1.0);
    assert_eq!(
        g.metric("sealgate_messages_refused_total{reason=\"spam\"}"),
        1.0
    );
    assert_eq!(
        g.metric("sealgate_messages_refused_total{reason=\"malware\"}"),
        2.0
    );

    // Nothing refused reached the mailbox.
    let all: Vec<String> = home.mailbox().into_iter().map(|m| text(&m)).collect();
    assert!(
        !all.iter().any(|m| m.contains("Subject: Offer")
            || m.contains("Invoice")
            || m.contains("After the outage")),
        "refused mail was delivered"
    );
}

#[test]
fn dangerous_attachment_types_are_held_even_inside_archives() {
    let home = postfix_mailbox(
        "attach",
        "hospital.test",
        "smtpd_tls_security_level = none\n",
    );
    let g = inbound_gateway(&home, "authenticate = false", "");
    // An executable inside a zip inside a zip, and a macro workbook: held.
    let nested = zip("docs.zip", &zip("invoice.exe", b"MZ\x90\x00 not really"));
    let (code, reply) = send(
        &g,
        "x@outside.test",
        &with_attachment("Nested exe", "papers.zip", "application/zip", &nested),
    );
    assert_eq!(code, 250, "{reply}");
    let (code, _) = send(
        &g,
        "x@outside.test",
        &with_attachment(
            "Budget",
            "budget.xlsm",
            "application/vnd.ms-excel.sheet.macroEnabled.12",
            b"PK\x03\x04",
        ),
    );
    assert_eq!(code, 250);
    // A PDF passes.
    let (code, _) = send(
        &g,
        "x@outside.test",
        &with_attachment(
            "Report",
            "report.pdf",
            "application/pdf",
            b"%PDF-1.4\n%%EOF\n",
        ),
    );
    assert_eq!(code, 250);
    home.wait_subject("Report");
    let held = wait_for(60, "two held messages", || {
        let o = g.cli(&["quarantine", "ls", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        v.as_array().filter(|a| a.len() == 2).cloned()
    });
    let reasons: Vec<String> = held
        .iter()
        .map(|h| h["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(reasons.iter().any(|r| r.contains(".exe")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains(".xlsm")), "{reasons:?}");
    // The reason names types, never the file names.
    assert!(
        !reasons
            .iter()
            .any(|r| r.contains("invoice") || r.contains("budget")),
        "{reasons:?}"
    );
    let all: Vec<String> = home.mailbox().into_iter().map(|m| text(&m)).collect();
    assert!(!all
        .iter()
        .any(|m| m.contains("Nested exe") || m.contains("Subject: Budget")));
}
