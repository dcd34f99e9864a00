//! Mail the portal sends: the notice a portal recipient gets instead of
//! the message (plain text and HTML, with the link, and by default nothing
//! of the message itself, not even its subject), the sender's confirmation
//! with its withdraw link, one-time codes and read receipts. All are
//! marked `Auto-Submitted` (RFC 3834) so that auto-responders leave them alone.

use crate::model::header_fields::{address_field, text_field};
use chrono::{DateTime, Utc};
use std::path::Path;

/// Notice bodies an organisation supplies (`[portal] templates_dir`).
#[derive(Debug, Clone, Default)]
pub struct Templates {
    /// `notice.txt`, if present.
    pub text: Option<String>,
    /// `notice.html`, if present.
    pub html: Option<String>,
}

impl Templates {
    /// Reads `notice.txt` and `notice.html` from `dir` (either may be absent).
    pub fn load(dir: &Path) -> std::io::Result<Templates> {
        let read = |name: &str| match std::fs::read_to_string(dir.join(name)) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", dir.join(name).display()),
            )),
        };
        let t = Templates {
            text: read("notice.txt")?,
            html: read("notice.html")?,
        };
        if t.text.is_none() && t.html.is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: neither notice.txt nor notice.html", dir.display()),
            ));
        }
        Ok(t)
    }
}

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
    /// Accent colour (a CSS hex colour, checked by the config).
    pub brand_color: &'a str,
    /// Bodies that replace the built-in ones.
    pub templates: &'a Templates,
}

/// The link a token opens.
pub fn link(public_url: &str, token: &str) -> String {
    format!("{}/m/{token}", public_url.trim_end_matches('/'))
}

/// `s` safe inside HTML text and attribute values.
pub fn html_escape(s: &str) -> String {
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
pub fn header_safe(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// One message the portal writes.
pub struct Mail<'a> {
    /// Display name of the From address.
    pub from_name: &'a str,
    /// The From address.
    pub from: &'a str,
    /// The one recipient.
    pub to: &'a str,
    /// The subject (never the original message's, unless policy allows).
    pub subject: &'a str,
    /// The plain text body, CRLF line ends.
    pub text: &'a str,
    /// The HTML body, when there is one.
    pub html: Option<&'a str>,
    /// `In-Reply-To`/`References`, to thread it under a message.
    pub in_reply_to: Option<&'a str>,
}

/// `m` as a whole RFC 5322 message (multipart/alternative when it has
/// HTML), CRLF line ends.
pub fn compose(m: &Mail) -> Vec<u8> {
    let msg_id = format!(
        "<{}@sealgate.portal>",
        hex::encode(rand::random::<[u8; 12]>())
    );
    let mut out = String::new();
    out.push_str(&address_field("From", m.from_name, m.from));
    out.push_str(&format!("To: <{}>\r\n", header_safe(m.to)));
    out.push_str(&text_field("Subject", m.subject));
    out.push_str(&format!("Date: {}\r\n", Utc::now().to_rfc2822()));
    out.push_str(&format!("Message-ID: {msg_id}\r\n"));
    if let Some(parent) = m.in_reply_to.filter(|p| !p.is_empty()) {
        let parent = header_safe(parent);
        out.push_str(&format!(
            "In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"
        ));
    }
    out.push_str("Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");
    let part = |kind: &str, body: &str| {
        format!("Content-Type: text/{kind}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}")
    };
    match m.html {
        None => {
            out.push_str(&part("plain", m.text));
        }
        Some(html) => {
            let boundary = format!("portal-{}", hex::encode(rand::random::<[u8; 8]>()));
            out.push_str(&format!(
                "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
            ));
            for (kind, body) in [("plain", m.text), ("html", html)] {
                out.push_str(&format!("--{boundary}\r\n{}", part(kind, body)));
            }
            out.push_str(&format!("--{boundary}--\r\n"));
        }
    }
    out.into_bytes()
}

/// `template` with `{name}` placeholders filled from `values`.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    // Mail bodies travel with CRLF line ends.
    out.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// A small HTML page for mail: the brand colour as a bar, then `inner`.
pub fn html_mail(title: &str, brand_color: &str, inner: &str) -> String {
    format!(
        "<!DOCTYPE html>\r\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\r\n\
         <body style=\"font-family: sans-serif; color: #1a1a1a;\">\r\n\
         <div style=\"border-top: 6px solid {}; padding-top: 8px;\">\r\n{inner}</div>\r\n</body></html>\r\n",
        html_escape(title),
        html_escape(brand_color),
    )
}

/// The notice to `recipient` that `sender` sent a message now held in the
/// portal under `token`; a whole RFC 5322 message, CRLF line ends.
pub fn notice(recipient: &str, sender: &str, token: &str, o: &NoticeOptions) -> Vec<u8> {
    let url = link(o.public_url, token);
    let expires = o.expires_at.format("%-d %B %Y").to_string();
    let org = header_safe(o.organisation);
    let sender_h = header_safe(sender);
    let subject = o.subject.map(header_safe).unwrap_or_default();
    let values = |esc: fn(&str) -> String| {
        vec![
            ("sender", esc(&sender_h)),
            ("organisation", esc(&org)),
            ("link", esc(&url)),
            ("expires", esc(&expires)),
            ("subject", esc(&subject)),
        ]
    };
    let about = o
        .subject
        .map(|_| format!("\r\nSubject of the message: {subject}\r\n"))
        .unwrap_or_default();
    let text = match &o.templates.text {
        Some(t) => fill(t, &values(|s| s.to_string())),
        None => format!(
            "{sender_h} at {org} sent you a secure message.\r\n{about}\r\n\
             Read it here (you will be asked to confirm your address):\r\n{url}\r\n\r\n\
             The message can be read until {expires}. If you did not expect it, you can ignore this notice.\r\n"
        ),
    };
    let html = match &o.templates.html {
        Some(t) => fill(t, &values(html_escape)),
        None => html_mail(
            "Secure message",
            o.brand_color,
            &format!(
                "<p>{} at {} sent you a secure message.</p>\r\n{}\
                 <p><a href=\"{}\" style=\"color: {};\">Read the message</a></p>\r\n\
                 <p>The message can be read until {}. If you did not expect it, you can ignore this notice.</p>\r\n",
                html_escape(&sender_h),
                html_escape(&org),
                o.subject
                    .map(|_| format!(
                        "<p>Subject of the message: {}</p>\r\n",
                        html_escape(&subject)
                    ))
                    .unwrap_or_default(),
                html_escape(&url),
                html_escape(o.brand_color),
                html_escape(&expires),
            ),
        ),
    };
    compose(&Mail {
        from_name: o.organisation,
        from: o.from,
        to: recipient,
        subject: &format!("Secure message from {sender_h}"),
        text: &text,
        html: Some(&html),
        in_reply_to: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    static NO_TEMPLATES: Templates = Templates {
        text: None,
        html: None,
    };

    fn opts(subject: Option<&str>) -> NoticeOptions<'_> {
        NoticeOptions {
            public_url: "https://secure.hospital.test/",
            from: "secure@hospital.test",
            organisation: "General <Hospital>",
            expires_at: "2026-12-22T00:00:00Z".parse().unwrap(),
            subject,
            brand_color: "#0b5394",
            templates: &NO_TEMPLATES,
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

#[cfg(test)]
mod template_tests {
    use super::*;

    #[test]
    fn templates_replace_the_bodies_and_escape_in_html() {
        let t = Templates {
            text: Some("Hello from {organisation}\nOpen {link}\n".into()),
            html: Some("<p>{sender} sent <a href=\"{link}\">this</a></p>\n".into()),
        };
        let o = NoticeOptions {
            public_url: "https://p.test",
            from: "n@h.test",
            organisation: "A&B Clinic",
            expires_at: Utc::now(),
            subject: None,
            brand_color: "#123456",
            templates: &t,
        };
        let raw = notice("pat@x.test", "<b>@h.test", "tok", &o);
        let m = mail_parser::MessageParser::new().parse(&raw).unwrap();
        let text = m.body_text(0).unwrap();
        assert!(text.contains("Hello from A&B Clinic"), "{text}");
        assert!(text.contains("Open https://p.test/m/tok"), "{text}");
        let html = m.body_html(0).unwrap();
        assert!(html.contains("&lt;b&gt;@h.test sent"), "{html}");
        assert!(String::from_utf8_lossy(&raw).contains("\r\nOpen https://p.test/m/tok\r\n"));
    }
}
