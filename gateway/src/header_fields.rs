//! A message's header block as fields: each field with its folded
//! continuation lines, raw, and the rest (the blank line and the body)
//! untouched. Shared by every stage that reads or rewrites header fields.

/// The decoded subject (RFC 2047 words included), if there is one.
pub fn subject(message: &[u8]) -> Option<String> {
    mail_parser::MessageParser::default()
        .parse_headers(message)?
        .subject()
        .map(str::to_string)
}

/// The header fields of `message` and everything from the blank line that
/// ends them. A message without that blank line is all fields.
pub fn split(message: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < message.len() {
        let end = message[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |i| at + i + 1);
        let line = &message[at..end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        let continuation = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if !continuation && at > start {
            fields.push(&message[start..at]);
            start = at;
        }
        at = end;
    }
    if at > start {
        fields.push(&message[start..at]);
    }
    (fields, &message[at..])
}

/// True when the field's name starts with `prefix` (ASCII, any case).
pub fn name_starts_with(field: &[u8], prefix: &str) -> bool {
    field.len() >= prefix.len() && field[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Rewrites the `Subject:` field of `message` to `new` (policy removed its
/// tags), leaving every other byte as it was. A message without a subject
/// is returned unchanged.
pub fn rewrite_subject(message: &[u8], new: &str) -> Vec<u8> {
    let (fields, rest) = split(message);
    let mut out = Vec::with_capacity(message.len());
    let mut done = false;
    for f in fields {
        if !done && name_starts_with(f, "subject:") {
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
    fn fields_keep_their_folds_and_the_body_is_untouched() {
        let (f, rest) = split(b"A: 1\r\nB: 2\r\n\tmore\r\nC: 3\n\nbody\r\n");
        assert_eq!(f, [&b"A: 1\r\n"[..], b"B: 2\r\n\tmore\r\n", b"C: 3\n"]);
        assert_eq!(rest, b"\nbody\r\n");
        let (f, rest) = split(b"no header end");
        assert_eq!((f, rest), (vec![&b"no header end"[..]], &b""[..]));
        assert!(name_starts_with(b"subject: x", "Subject:"));
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
