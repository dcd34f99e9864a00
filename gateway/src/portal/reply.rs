//! A reply written in the portal, as a message: from the recipient, to
//! the original sender (and, for reply-all, the original participants in
//! the organisation's own domains), threaded under the original, with the
//! uploaded files attached.

use crate::model::header_fields::text_field;
use crate::seal::notice::header_safe;
use base64::Engine as _;

/// One uploaded file.
pub struct Upload {
    /// Its name, already made safe.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// What the reply is built from.
pub struct ReplyInput<'a> {
    /// The recipient who writes (the From address).
    pub from: &'a str,
    /// Its recipients (To: the original sender first, then the rest as Cc).
    pub to: &'a [String],
    /// The original subject.
    pub subject: &'a str,
    /// The original Message-ID (without brackets), if any.
    pub in_reply_to: &'a str,
    /// The escrow entry it answers.
    pub escrow_id: &'a str,
    /// The text typed.
    pub text: &'a str,
    /// Attached files.
    pub files: &'a [Upload],
}

/// A file name parameter (RFC 2231 when not ASCII).
fn filename_param(name: &str) -> String {
    if name.is_ascii() {
        format!("filename=\"{}\"", name.replace(['"', '\\'], "_"))
    } else {
        format!("filename*=utf-8''{}", super::view::percent_encoded(name))
    }
}

/// The reply as a whole message, CRLF line ends.
pub fn build(r: &ReplyInput) -> Vec<u8> {
    let subject = if r.subject.to_ascii_lowercase().starts_with("re:") {
        r.subject.to_string()
    } else {
        format!("Re: {}", r.subject)
    };
    let mut m = String::new();
    m.push_str(&format!("From: <{}>\r\n", header_safe(r.from)));
    if let Some((first, rest)) = r.to.split_first() {
        m.push_str(&format!("To: <{}>\r\n", header_safe(first)));
        if !rest.is_empty() {
            let cc: Vec<String> = rest
                .iter()
                .map(|a| format!("<{}>", header_safe(a)))
                .collect();
            m.push_str(&format!("Cc: {}\r\n", cc.join(", ")));
        }
    }
    m.push_str(&text_field("Subject", &subject));
    m.push_str(&format!("Date: {}\r\n", chrono::Utc::now().to_rfc2822()));
    m.push_str(&format!(
        "Message-ID: <{}@sealgate.portal>\r\n",
        hex::encode(rand::random::<[u8; 12]>())
    ));
    if !r.in_reply_to.is_empty() {
        let p = header_safe(r.in_reply_to);
        m.push_str(&format!("In-Reply-To: <{p}>\r\nReferences: <{p}>\r\n"));
    }
    m.push_str(&format!(
        "{}: {}\r\nMIME-Version: 1.0\r\n",
        crate::policy::worker::PORTAL_REPLY_HEADER,
        header_safe(r.escrow_id)
    ));
    let text = r.text.replace("\r\n", "\n").replace('\n', "\r\n");
    let text_part = format!(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
        wrap(&base64::engine::general_purpose::STANDARD.encode(text.as_bytes()))
    );
    if r.files.is_empty() {
        m.push_str(&text_part);
        return m.into_bytes();
    }
    let boundary = format!("reply-{}", hex::encode(rand::random::<[u8; 8]>()));
    m.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n{text_part}"
    ));
    for f in r.files {
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; {}\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            filename_param(&f.name),
            wrap(&base64::engine::general_purpose::STANDARD.encode(&f.bytes))
        ));
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    m.into_bytes()
}

/// Base64 in lines of 76, each ending CRLF.
fn wrap(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() + b64.len() / 38 + 2);
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_threads_and_carries_its_files() {
        let to = vec!["nurse@h.test".to_string(), "dr@h.test".to_string()];
        let files = [Upload {
            name: "scan é.pdf".into(),
            bytes: vec![0, 255, 1, 2],
        }];
        let raw = build(&ReplyInput {
            from: "pat@x.test",
            to: &to,
            subject: "Lab results",
            in_reply_to: "abc@h.test",
            escrow_id: "e1",
            text: "Thank you\nPat",
            files: &files,
        });
        let m = mail_parser::MessageParser::new().parse(&raw).unwrap();
        assert_eq!(m.subject(), Some("Re: Lab results"));
        assert_eq!(m.in_reply_to().as_text(), Some("abc@h.test"));
        assert_eq!(m.body_text(0).unwrap(), "Thank you\r\nPat");
        let a = m.attachment(0).unwrap();
        assert_eq!(
            mail_parser::MimeHeaders::attachment_name(a),
            Some("scan é.pdf")
        );
        assert_eq!(a.contents(), &[0, 255, 1, 2]);
        assert_eq!(
            m.cc().unwrap().first().unwrap().address(),
            Some("dr@h.test")
        );
    }
}
