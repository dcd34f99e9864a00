//! Header hygiene on the way to the tenant. Exchange Online trusts
//! `X-MS-Exchange-Organization-*` headers (spam verdicts, authentication
//! results, "internal" markers) as set inside the organisation; on mail from
//! the internet they are forgeries, so inbound mail loses them here, as it
//! loses any `X-Sealgate-DLP` it arrived with: only ours, naming the DLP
//! rules that fired, reaches the tenant. The spool keeps the message
//! exactly as received.

use crate::model::header_fields;

/// Header-name prefixes removed from inbound mail (compared case-insensitively).
const FORGEABLE: &[&str] = &["x-ms-exchange-organization-", "x-sealgate-dlp"];

/// The header that tells the tenant what DLP found in inbound mail.
pub const DLP_HEADER: &str = "X-Sealgate-DLP";

/// The `X-Sealgate-DLP` field (CRLF-terminated) for what inspection found:
/// policy rule ids, the action, and detectors with confidence and counts;
/// ids and numbers only. `None` when nothing was found.
pub fn dlp_field(found: &crate::spool::InspectionRecord) -> Option<String> {
    if found.findings.is_empty() && found.policy_hits.is_empty() {
        return None;
    }
    let mut words = Vec::new();
    if !found.policy_hits.is_empty() {
        words.push(format!("rules={};", found.policy_hits.join(",")));
    }
    if let Some(a) = &found.action {
        words.push(format!("action={a};"));
    }
    for (n, f) in found.findings.iter().enumerate() {
        let first = if n == 0 { "detectors=" } else { "" };
        words.push(format!(
            "{first}{}:{}:{}",
            f.detector, f.confidence, f.count
        ));
    }
    // Folded between words, so lines stay short (RFC 5322 2.2.3).
    let mut field = format!("{DLP_HEADER}:");
    let mut line = field.len();
    for w in words {
        if line + 1 + w.len() > 76 {
            field.push_str("\r\n\t");
            line = 1;
        } else {
            field.push(' ');
            line += 1;
        }
        line += w.len();
        field.push_str(&w);
    }
    field.push_str("\r\n");
    Some(field)
}

/// `message` without header fields whose names start with a forgeable
/// prefix (each removed with its folded continuation lines). The body is
/// untouched; returns the number of fields removed.
pub fn strip_forgeable(message: &[u8]) -> (Vec<u8>, usize) {
    let (fields, rest) = header_fields::split(message);
    let mut out = Vec::with_capacity(message.len());
    let mut removed = 0;
    for f in fields {
        if FORGEABLE
            .iter()
            .any(|p| header_fields::name_starts_with(f, p))
        {
            removed += 1;
        } else {
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(rest);
    (out, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dlp_field_names_ids_and_counts_only() {
        let found = crate::spool::InspectionRecord {
            inspected_at: chrono::Utc::now(),
            findings: vec![crate::spool::FindingRecord {
                detector: "us_ssn".into(),
                confidence: "high".into(),
                count: 2,
            }],
            unscannable: vec![],
            action: Some("encrypt".into()),
            policy_hits: vec!["ssn".into()],
            extensions: Vec::new(),
        };
        assert_eq!(
            dlp_field(&found).unwrap(),
            "X-Sealgate-DLP: rules=ssn; action=encrypt; detectors=us_ssn:high:2\r\n"
        );
        let (out, n) = strip_forgeable(b"X-Sealgate-DLP: rules=none\r\nSubject: a\r\n\r\nb");
        assert_eq!((out.as_slice(), n), (&b"Subject: a\r\n\r\nb"[..], 1));
    }

    #[test]
    fn forged_organisation_headers_go_with_their_folds() {
        let m = b"Received: x\r\nX-MS-Exchange-Organization-SCL: -1\r\nx-ms-exchange-organization-authas: Internal\r\n\tfolded\r\nSubject: hi\r\n\r\nX-MS-Exchange-Organization-SCL: body stays\r\n";
        let (out, n) = strip_forgeable(m);
        assert_eq!(n, 2);
        assert_eq!(
            out,
            b"Received: x\r\nSubject: hi\r\n\r\nX-MS-Exchange-Organization-SCL: body stays\r\n"
        );
    }

    #[test]
    fn clean_message_is_unchanged() {
        let m = b"Subject: a\r\nX-MS-Exchange-CrossTenant-Id: abc\r\n\r\nbody";
        assert_eq!(strip_forgeable(m), (m.to_vec(), 0));
        assert_eq!(strip_forgeable(b"no header end").0, b"no header end");
    }
}
