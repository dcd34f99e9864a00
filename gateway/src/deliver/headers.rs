//! Header hygiene on the way to the tenant. Exchange Online trusts
//! `X-MS-Exchange-Organization-*` headers (spam verdicts, authentication
//! results, "internal" markers) as set inside the organisation; on mail from
//! the internet they are forgeries, so inbound mail loses them here. The
//! spool keeps the message exactly as received. The subject policy freed
//! of its tags is written here too.

use crate::header_fields;

/// Header-name prefixes removed from inbound mail (compared case-insensitively).
const FORGEABLE: &[&str] = &["x-ms-exchange-organization-"];

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

/// Rewrites the `Subject:` field of `message` to `new` (policy removed its
/// tags), leaving every other byte as it was. A message without a subject
/// is returned unchanged.
pub fn rewrite_subject(message: &[u8], new: &str) -> Vec<u8> {
    let (fields, rest) = header_fields::split(message);
    let mut out = Vec::with_capacity(message.len());
    let mut done = false;
    for f in fields {
        if !done && header_fields::name_starts_with(f, "subject:") {
            out.extend_from_slice(b"Subject: ");
            out.extend_from_slice(encode_header(new).as_bytes());
            out.extend_from_slice(b"\r\n");
            done = true;
        } else {
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(rest);
    out
}

/// `text` as a header value: as is when ASCII, else an RFC 2047
/// Q-encoded word (so a subject with accents needs no SMTPUTF8).
pub fn encode_header(text: &str) -> String {
    let text = text.replace(['\r', '\n'], " ");
    if text.is_ascii() {
        return text;
    }
    let mut out = String::from("=?UTF-8?Q?");
    for b in text.bytes() {
        match b {
            b' ' => out.push('_'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("={b:02X}")),
        }
    }
    out.push_str("?=");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn only_the_subject_field_is_rewritten() {
        let m = b"From: a@x.test\r\nSubject: [secure] Lab\r\n results\r\nTo: b@y.test\r\n\r\nSubject: [secure] body\r\n";
        let out = rewrite_subject(m, "Lab results");
        assert_eq!(
            out,
            b"From: a@x.test\r\nSubject: Lab results\r\nTo: b@y.test\r\n\r\nSubject: [secure] body\r\n"
        );
        assert_eq!(
            rewrite_subject(b"From: a\r\n\r\nx", "y"),
            b"From: a\r\n\r\nx"
        );
        assert_eq!(encode_header("Résultats"), "=?UTF-8?Q?R=C3=A9sultats?=");
        assert_eq!(encode_header("plain"), "plain");
    }
}
