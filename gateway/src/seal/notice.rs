//! The notice a portal recipient gets instead of the message: plain text
//! and HTML, with the link to the message in the escrow portal, and by
//! default nothing of the message itself (not even its subject). Marked
//! `Auto-Submitted` (RFC 3834) so that auto-responders leave it alone.
//! (Issue 5's second piece; not sent by anything yet.)

use chrono::{DateTime, Utc};

/// What a notice says besides the link.
pub struct NoticeOptions<'a> {
    /// The portal's public base URL (`https://secure.hospital.example`).
    pub public_url: &'a str,
    /// The notice's From address.
    pub from: &'a str,
    /// The organisation's name, as recipients know it.
    pub organisation: &'a str,
    /// When the message is erased.
    pub expires_at: DateTime<Utc>,
    /// The original subject, only when policy allows revealing it.
    pub subject: Option<&'a str>,
}

/// The link a token opens.
pub fn link(public_url: &str, token: &str) -> String {
    format!("{}/m/{token}", public_url.trim_end_matches('/'))
}

/// `s` safe inside HTML text and attribute values.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A header value with control characters removed (no header injection).
fn header_safe(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// A display name as a quoted string, or an RFC 2047 word when not ASCII.
fn display_name(s: &str) -> String {
    let s = header_safe(s);
    if s.is_ascii() {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        use base64::Engine as _;
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }
}

/// The notice to `recipient` that `sender` sent a message now held in the
/// portal under `token`; a whole RFC 5322 message, CRLF line ends.
pub fn notice(recipient: &str, sender: &str, token: &str, o: &NoticeOptions) -> Vec<u8> {
    let url = link(o.public_url, token);
    let expires = o.expires_at.format("%-d %B %Y").to_string();
    let org = header_safe(o.organisation);
    let sender_h = header_safe(sender);
    let about = o
        .subject
        .map(|s| format!("\r\nSubject of the message: {}\r\n", header_safe(s)))
        .unwrap_or_default();
    let text = format!(
        "{sender_h} at {org} sent you a secure message.\r\n{about}\r\n\
         Read it here (you will be asked to confirm your address):\r\n{url}\r\n\r\n\
         The message can be read until {expires}. If you did not expect it, you can ignore this notice.\r\n"
    );
    let html = format!(
        "<!DOCTYPE html>\r\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Secure message</title></head>\r\n\
         <body style=\"font-family: sans-serif; color: #1a1a1a;\">\r\n\
         <p>{} at {} sent you a secure message.</p>\r\n{}\
         <p><a href=\"{}\" style=\"color: #0b5394;\">Read the message</a></p>\r\n\
         <p>The message can be read until {}. If you did not expect it, you can ignore this notice.</p>\r\n\
         </body></html>\r\n",
        html_escape(sender),
        html_escape(o.organisation),
        o.subject
            .map(|s| format!(
                "<p>Subject of the message: {}</p>\r\n",
                html_escape(&header_safe(s))
            ))
            .unwrap_or_default(),
        html_escape(&url),
        html_escape(&expires),
    );
    let boundary = format!("notice-{}", hex::encode(rand::random::<[u8; 8]>()));
    let msg_id = format!(
        "<{}@sealgate.notice>",
        hex::encode(rand::random::<[u8; 12]>())
    );
    let mut m = String::new();
    m.push_str(&format!(
        "From: {} <{}>\r\n",
        display_name(o.organisation),
        header_safe(o.from)
    ));
    m.push_str(&format!("To: <{}>\r\n", header_safe(recipient)));
    m.push_str(&format!("Subject: Secure message from {sender_h}\r\n"));
    m.push_str(&format!("Date: {}\r\n", Utc::now().to_rfc2822()));
    m.push_str(&format!("Message-ID: {msg_id}\r\n"));
    m.push_str("Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
    ));
    for (kind, body) in [("plain", &text), ("html", &html)] {
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: text/{kind}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
        ));
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    m.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn opts(subject: Option<&str>) -> NoticeOptions<'_> {
        NoticeOptions {
            public_url: "https://secure.hospital.test/",
            from: "secure@hospital.test",
            organisation: "General <Hospital>",
            expires_at: "2026-12-22T00:00:00Z".parse().unwrap(),
            subject,
        }
    }

    #[test]
    fn the_notice_carries_the_link_and_nothing_of_the_message() {
        let token = "ab".repeat(32);
        let raw = notice("pat@x.test", "nurse@hospital.test", &token, &opts(None));
        let m = MessageParser::new()
            .parse(&raw)
            .expect("a well-formed message");
        assert_eq!(m.subject(), Some("Secure message from nurse@hospital.test"));
        let url = format!("https://secure.hospital.test/m/{token}");
        let text = m.body_text(0).unwrap();
        let html = m.body_html(0).unwrap();
        assert!(text.contains(&url), "{text}");
        assert!(html.contains(&format!("href=\"{url}\"")), "{html}");
        assert!(html.contains("General &lt;Hospital&gt;"), "escaped: {html}");
        assert!(text.contains("22 December 2026"), "{text}");
        assert!(!text.contains("Subject of the message"), "{text}");
        assert!(String::from_utf8_lossy(&raw).contains("Auto-Submitted: auto-generated\r\n"));
    }

    #[test]
    fn the_subject_only_when_allowed_and_never_as_markup_or_a_header() {
        let raw = notice(
            "pat@x.test",
            "nurse@hospital.test",
            "t",
            &opts(Some("Lab <script>alert(1)</script>\r\nBcc: evil@x.test")),
        );
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Subject of the message: Lab"), "{text}");
        assert!(!text.contains("\r\nBcc: evil"), "{text}");
        let m = MessageParser::new().parse(&raw).unwrap();
        let html = m.body_html(0).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        // The organisation's name is one quoted display name.
        let from = m.from().unwrap().first().unwrap();
        assert_eq!(from.name(), Some("General <Hospital>"));
        assert_eq!(from.address(), Some("secure@hospital.test"));
    }
}
