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
            out.extend_from_slice(text_field("Subject", new).as_bytes());
            done = true;
        } else {
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(rest);
    out
}

/// `message` without the fields that claim to be verdicts Sealgate gives:
/// Authentication-Results whose authserv-id is `authserv_id` (RFC 8601 §5:
/// a border MTA removes those claiming to be its own, which only a forger
/// could have added) and any `X-Sealgate-Spam-*`. Other bytes stay as they were.
pub fn drop_forged_verdicts(message: &[u8], authserv_id: Option<&str>) -> Vec<u8> {
    let (fields, rest) = split(message);
    let mut out = Vec::with_capacity(message.len());
    for f in fields {
        let ours = (name_starts_with(f, "authentication-results:")
            && authserv_id.is_some_and(|ours| {
                auth_results_id(f).is_some_and(|id| id.eq_ignore_ascii_case(ours))
            }))
            || name_starts_with(f, "x-sealgate-spam-");
        if !ours {
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(rest);
    out
}

/// The authserv-id of an Authentication-Results field: its value's first
/// token, before any `;`, CFWS or version number.
fn auth_results_id(field: &[u8]) -> Option<&str> {
    let colon = field.iter().position(|&b| b == b':')?;
    let value = std::str::from_utf8(&field[colon + 1..]).ok()?;
    let value = value.trim_start_matches(|c: char| c.is_whitespace());
    let end = value
        .find(|c: char| c == ';' || c == '(' || c.is_whitespace())
        .unwrap_or(value.len());
    Some(&value[..end]).filter(|id| !id.is_empty())
}

/// `name: text` as a whole header field, CRLF-ended: ASCII as it is,
/// anything else as RFC 2047 encoded words (so a subject with accents needs
/// no SMTPUTF8), split on character boundaries and folded so that no line
/// passes 78 octets, however long the text.
pub fn text_field(name: &str, text: &str) -> String {
    use mail_builder::headers::{text::Text, Header};
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = format!("{name}: ").into_bytes();
    Text::new(text).write_header(&mut out, name.len() + 2);
    String::from_utf8_lossy(&out).into_owned()
}

/// `name: "display" <address>` as a whole header field, CRLF-ended, the
/// display name quoted or RFC 2047-encoded and folded as [`text_field`] does.
pub fn address_field(name: &str, display: &str, address: &str) -> String {
    use mail_builder::headers::{address::Address, Header};
    let display: String = display.chars().filter(|c| !c.is_control()).collect();
    let address: String = address.chars().filter(|c| !c.is_control()).collect();
    let mut out = format!("{name}: ").into_bytes();
    Address::new_address(Some(display), address).write_header(&mut out, name.len() + 2);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `field` within 78 octets, and it reads back as `text`.
    fn folds_and_reads_back(field: &str, text: &str) {
        for line in field.split("\r\n") {
            assert!(line.len() <= 78, "{} octets: {line}", line.len());
        }
        let msg = format!("{field}\r\nbody");
        let parsed = mail_parser::MessageParser::default()
            .parse(msg.as_bytes())
            .unwrap();
        assert_eq!(parsed.subject(), Some(text));
    }

    #[test]
    fn long_non_ascii_subjects_are_split_and_folded() {
        for text in [
            "é".repeat(400),
            format!(
                "{} — {}",
                "Результаты анализов".repeat(20),
                "検査結果".repeat(50)
            ),
            "a".repeat(120) + &"δ".repeat(300),
        ] {
            folds_and_reads_back(&text_field("Subject", &text), &text);
        }
        let from = address_field("From", &"Ünïcödé Hospital ".repeat(20), "n@h.test");
        for line in from.split("\r\n") {
            assert!(line.len() <= 78, "{line}");
        }
        assert!(from.contains("<n@h.test>"), "{from}");
    }

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
        assert_eq!(text_field("Subject", "plain"), "Subject: plain\r\n");
        let f = text_field("Subject", "Résultats");
        assert!(
            f.starts_with("Subject: =?utf-8?") || f.starts_with("Subject: =?UTF-8?"),
            "{f}"
        );
    }

    #[test]
    fn only_fields_claiming_our_verdicts_are_dropped() {
        let m = b"Authentication-Results: MX.Example.org;\r\n dkim=pass\r\nAuthentication-Results: other.example; spf=pass\r\nX-Sealgate-Spam-Flag: NO\r\nAuthentication-Results:mx.example.org(comment); x=y\r\nSubject: mx.example.org\r\n\r\nAuthentication-Results: mx.example.org; body\r\n";
        let out = drop_forged_verdicts(m, Some("mx.example.org"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Authentication-Results: other.example; spf=pass\r\nSubject: mx.example.org\r\n\r\nAuthentication-Results: mx.example.org; body\r\n"
        );
        assert_eq!(auth_results_id(b"Authentication-Results: ;x"), None);
    }
}
