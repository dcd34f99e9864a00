//! Microsoft 365 / Exchange envelope journal reports: a message marked
//! `X-MS-Journal-Report:` whose body lists the envelope (`Sender:`, then
//! `To:`/`Cc:`/`Bcc:`/`Recipient:` lines, some with `, Forwarded:` or
//! `, Expanded:` suffixes) and whose attachment is the original message,
//! unaltered. The archive keeps the original with those recipients.

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// What a journal report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalReport {
    /// The original's sender, from the `Sender:` line.
    pub sender: Option<String>,
    /// Every recipient listed (To, Cc, Bcc, Recipient), lower case, once each.
    pub recipients: Vec<String>,
    /// The original message, as attached.
    pub original: Vec<u8>,
}

/// The report in `raw`, or `None` when it is not one (no marker header,
/// no attached original).
pub fn unwrap(raw: &[u8]) -> Option<JournalReport> {
    let msg = MessageParser::new().parse(raw)?;
    msg.header_raw("X-MS-Journal-Report")?;
    let mut body: Option<String> = None;
    let mut original: Option<Vec<u8>> = None;
    for part in msg.parts.iter() {
        match &part.body {
            PartType::Message(m) if original.is_none() => original = Some(m.raw_message().to_vec()),
            PartType::Text(t) if body.is_none() && !part.is_content_type("text", "html") => {
                body = Some(t.to_string())
            }
            _ => {}
        }
    }
    let original = original?;
    let mut report = JournalReport {
        sender: None,
        recipients: Vec::new(),
        original,
    };
    for line in body.unwrap_or_default().lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let addr = || {
            let v = value.split(',').next().unwrap_or("").trim();
            let v = v
                .strip_prefix("SMTP:")
                .or_else(|| v.strip_prefix("smtp:"))
                .unwrap_or(v);
            let v = v.trim_start_matches('<').trim_end_matches('>').trim();
            (v.contains('@') && !v.contains(char::is_whitespace)).then(|| v.to_ascii_lowercase())
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "sender" => report.sender = addr(),
            "to" | "cc" | "bcc" | "recipient" => {
                if let Some(a) = addr() {
                    if !report.recipients.contains(&a) {
                        report.recipients.push(a);
                    }
                }
            }
            _ => {}
        }
    }
    Some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An envelope journal report as Exchange Online sends it (shape from
    /// Microsoft's documentation of the report body).
    pub(crate) const SAMPLE: &str = "From: Microsoft Outlook <MicrosoftExchange@contoso.com>\r\n\
To: journal@archive.hospital.test\r\n\
Subject: Lab results\r\n\
X-MS-Journal-Report:\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"jr\"\r\n\
\r\n\
--jr\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Sender: nurse@hospital.test\r\n\
Subject: Lab results\r\n\
Message-Id: <orig-1@hospital.test>\r\n\
To: pat@partner.com\r\n\
Cc: Doctor@Hospital.test\r\n\
Bcc: audit@hospital.test\r\n\
Recipient: records@hospital.test, Expanded: team@hospital.test\r\n\
\r\n\
--jr\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: nurse@hospital.test\r\n\
To: pat@partner.com\r\n\
Cc: doctor@hospital.test\r\n\
Subject: Lab results\r\n\
Message-ID: <orig-1@hospital.test>\r\n\
\r\n\
Potassium normal.\r\n\
\r\n\
--jr--\r\n";

    #[test]
    fn a_report_unwraps_to_the_original_and_its_envelope() {
        let r = unwrap(SAMPLE.as_bytes()).expect("a journal report");
        assert_eq!(r.sender.as_deref(), Some("nurse@hospital.test"));
        assert_eq!(
            r.recipients,
            [
                "pat@partner.com",
                "doctor@hospital.test",
                "audit@hospital.test",
                "records@hospital.test"
            ]
        );
        let original = String::from_utf8(r.original).unwrap();
        assert!(
            original.starts_with("From: nurse@hospital.test\r\n"),
            "{original}"
        );
        assert!(original.contains("Potassium normal."), "{original}");
        assert!(!original.contains("Bcc"), "{original}");
    }

    #[test]
    fn other_mail_is_not_a_report() {
        assert!(unwrap(b"Subject: hi\r\n\r\nbody\r\n").is_none());
        // The marker without an attached original.
        assert!(
            unwrap(b"X-MS-Journal-Report:\r\nSubject: x\r\n\r\nSender: a@b.test\r\n").is_none()
        );
        assert!(unwrap(b"").is_none());
    }
}
