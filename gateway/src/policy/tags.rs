//! Subject tags such as `[secure]`: found case-insensitively anywhere in the
//! subject, and removed before delivery so the recipient never sees them.

/// Where a tag sits in a subject: byte range of the match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagHit {
    /// The configured tag that matched (as configured).
    pub tag: String,
    /// Byte range in the subject.
    pub at: std::ops::Range<usize>,
}

/// Every occurrence of any of `tags` in `subject`, in order.
pub fn find(subject: &str, tags: &[String]) -> Vec<TagHit> {
    // ASCII lower-casing keeps byte offsets valid for the original string.
    let lower = subject.to_ascii_lowercase();
    let mut hits: Vec<TagHit> = Vec::new();
    for tag in tags.iter().filter(|t| !t.is_empty()) {
        let needle = tag.to_ascii_lowercase();
        let mut from = 0;
        while let Some(i) = lower[from..].find(&needle) {
            let start = from + i;
            hits.push(TagHit {
                tag: tag.clone(),
                at: start..start + needle.len(),
            });
            from = start + needle.len();
        }
    }
    hits.sort_by_key(|h| h.at.start);
    // Overlaps (one tag inside another) count once.
    hits.dedup_by(|b, a| b.at.start < a.at.end);
    hits
}

/// `subject` without the tags in `hits`, with the whitespace they leave
/// collapsed: `"[secure] Lab results"` becomes `"Lab results"`.
pub fn strip(subject: &str, hits: &[TagHit]) -> String {
    let mut out = String::with_capacity(subject.len());
    let mut last = 0;
    for h in hits {
        out.push_str(&subject[last..h.at.start]);
        last = h.at.end;
    }
    out.push_str(&subject[last..]);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Rewrites the `Subject:` field of `message` (CRLF) to `new`, leaving every
/// other byte as it was. A message without a subject is returned unchanged.
pub fn rewrite_subject(message: &[u8], new: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut rest = message;
    let mut done = false;
    let mut skipping = false;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        if line == b"\r\n" || line == b"\n" {
            out.extend_from_slice(rest);
            return out;
        }
        let continuation = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if continuation && skipping {
            rest = tail;
            continue;
        }
        skipping = false;
        if !done && !continuation && line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"subject:")
        {
            out.extend_from_slice(b"Subject: ");
            out.extend_from_slice(new.replace(['\r', '\n'], " ").as_bytes());
            out.extend_from_slice(b"\r\n");
            done = true;
            skipping = true;
        } else {
            out.extend_from_slice(line);
        }
        rest = tail;
    }
    out
}

/// `text` as a header value: as is when ASCII, else an RFC 2047
/// Q-encoded word (so a subject with accents needs no SMTPUTF8).
pub fn encode_header(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
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

    fn tags() -> Vec<String> {
        vec!["[secure]".into(), "[encrypt]".into(), "[pgp]".into()]
    }

    #[test]
    fn tags_match_anywhere_ignoring_case_and_strip_cleanly() {
        let s = "Re: [SECURE] Lab results [Encrypt]";
        let hits = find(s, &tags());
        assert_eq!(
            hits.iter().map(|h| h.tag.as_str()).collect::<Vec<_>>(),
            ["[secure]", "[encrypt]"]
        );
        assert_eq!(strip(s, &hits), "Re: Lab results");
        assert!(find("Secure results", &tags()).is_empty());
        assert_eq!(strip("[pgp]", &find("[pgp]", &tags())), "");
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
