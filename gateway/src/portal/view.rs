//! A held message as the portal shows it: header fields, the text, the
//! HTML cleaned by ammonia (no scripts, handlers, styles, forms or remote
//! images), and its attachments by position, with names made safe.

use mail_parser::{Message, MessageParser, MimeHeaders};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// One attachment, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Position among the message's attachments (the download URL uses it, never the name).
    pub index: usize,
    /// A safe file name.
    pub name: String,
    /// Size in bytes.
    pub size: usize,
}

/// What the message page shows.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// From, as written.
    pub from: String,
    /// To, as written.
    pub to: String,
    /// Cc, as written.
    pub cc: String,
    /// Date, as written.
    pub date: String,
    /// Subject.
    pub subject: String,
    /// The HTML body, sanitised; preferred when present.
    pub html: Option<String>,
    /// The text body.
    pub text: Option<String>,
    /// The attachments.
    pub attachments: Vec<Attachment>,
}

fn addresses(a: Option<&mail_parser::Address>) -> String {
    a.map(|a| {
        a.iter()
            .map(|x| match (x.name(), x.address()) {
                (Some(n), Some(ad)) => format!("{n} <{ad}>"),
                (None, Some(ad)) => ad.to_string(),
                (Some(n), None) => n.to_string(),
                (None, None) => String::new(),
            })
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    })
    .unwrap_or_default()
}

/// Every address in `a`, lower-cased.
pub fn address_list(a: Option<&mail_parser::Address>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address().map(|s| s.to_ascii_lowercase()))
            .collect()
    })
    .unwrap_or_default()
}

/// HTML with everything active or remote removed.
pub fn sanitise(html: &str) -> String {
    ammonia::Builder::default()
        .url_schemes(["https", "http", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(|element, attribute, value| {
            // Images would load from elsewhere (tracking the reader): none.
            if element == "img" && attribute == "src" {
                None
            } else {
                Some(value.into())
            }
        })
        .clean(html)
        .to_string()
}

/// A file name that is only a name: no directories, no control or
/// quoting characters, no leading dots; `fallback` when nothing is left.
pub fn safe_name(name: Option<&str>, fallback: &str) -> String {
    let base = name
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*'))
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    if cleaned.is_empty() {
        fallback.to_string()
    } else {
        cleaned.chars().take(200).collect()
    }
}

/// What stays as it is in a `filename*=` value: letters, digits and `-._`.
const FILENAME_KEEPS: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');

/// `name` as RFC 5987 / RFC 2231 percent-encoded UTF-8 (for `filename*=`).
pub fn percent_encoded(name: &str) -> String {
    utf8_percent_encode(name, FILENAME_KEEPS).to_string()
}

/// Parses a held message.
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::new().parse(raw)
}

/// The page's view of `m`.
pub fn render(m: &Message) -> Rendered {
    let html = m
        .html_part(0)
        .filter(|p| p.is_text_html())
        .and_then(|_| m.body_html(0))
        .map(|h| sanitise(&h));
    let text = if html.is_none() {
        m.body_text(0).map(|t| t.into_owned())
    } else {
        None
    };
    Rendered {
        from: addresses(m.from()),
        to: addresses(m.to()),
        cc: addresses(m.cc()),
        date: m.date().map(|d| d.to_rfc822()).unwrap_or_default(),
        subject: m.subject().unwrap_or_default().to_string(),
        html,
        text,
        attachments: m
            .attachments()
            .enumerate()
            .map(|(i, p)| Attachment {
                index: i,
                name: safe_name(p.attachment_name(), &format!("attachment-{}", i + 1)),
                size: p.contents().len(),
            })
            .collect(),
    }
}

/// Attachment `index` of `m`: its safe name and its bytes.
pub fn attachment(m: &Message, index: usize) -> Option<(String, Vec<u8>)> {
    let p = m.attachment(u32::try_from(index).ok()?)?;
    Some((
        safe_name(p.attachment_name(), &format!("attachment-{}", index + 1)),
        p.contents().to_vec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_and_remote_images_are_removed() {
        let out = sanitise(
            "<p onclick=\"x()\">Hi<script>alert(1)</script><img src=\"https://t.test/p.gif\"><a href=\"javascript:alert(1)\">a</a><a href=\"https://ok.test/\">b</a><style>p{}</style><form action=\"/x\"><input></form></p>",
        );
        assert!(!out.contains("script"), "{out}");
        assert!(!out.contains("onclick"), "{out}");
        assert!(!out.contains("t.test"), "{out}");
        assert!(!out.contains("javascript"), "{out}");
        assert!(!out.contains("<form"), "{out}");
        assert!(!out.contains("<style"), "{out}");
        assert!(out.contains("href=\"https://ok.test/\""), "{out}");
    }

    #[test]
    fn names_lose_their_paths_and_tricks() {
        assert_eq!(safe_name(Some("../../etc/passwd"), "f"), "passwd");
        assert_eq!(safe_name(Some("..\\..\\boot.ini"), "f"), "boot.ini");
        assert_eq!(safe_name(Some("a\"b\r\n.pdf"), "f"), "ab.pdf");
        assert_eq!(safe_name(Some("..."), "f"), "f");
        assert_eq!(safe_name(None, "attachment-1"), "attachment-1");
        assert_eq!(safe_name(Some(".bashrc"), "f"), "bashrc");
    }

    #[test]
    fn a_message_renders_with_its_attachments() {
        let raw = b"From: Nurse <nurse@h.test>\r\nTo: pat@x.test\r\nSubject: Results\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Hello<script>alert(1)</script></p>\r\n--b\r\nContent-Type: application/octet-stream; name=\"../r.bin\"\r\nContent-Disposition: attachment; filename=\"../r.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n";
        let m = parse(raw).unwrap();
        let r = render(&m);
        assert_eq!(r.subject, "Results");
        assert_eq!(r.from, "Nurse <nurse@h.test>");
        let html = r.html.unwrap();
        assert!(html.contains("Hello") && !html.contains("script"), "{html}");
        assert_eq!(
            r.attachments,
            vec![Attachment {
                index: 0,
                name: "r.bin".into(),
                size: 3
            }]
        );
        assert_eq!(attachment(&m, 0).unwrap().1, vec![0, 1, 2]);
        assert!(attachment(&m, 1).is_none());
    }
}
