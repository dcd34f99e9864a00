//! A message split for sealing: the RFC 5322 header fields that stay on the
//! outside (From, To, Subject, Date, Message-ID, trace fields...) and the
//! MIME entity that gets encrypted (its Content-* fields and the body).
//! PGP/MIME (RFC 3156) and S/MIME (RFC 8551) both encrypt exactly that
//! entity and wrap it in a new outer message with the same outside fields.

/// A message taken apart for sealing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Header fields that stay outside, each with its folded lines and CRLF.
    pub outer: Vec<Vec<u8>>,
    /// The MIME entity: Content-* fields, a blank line, and the body, CRLF throughout.
    pub entity: Vec<u8>,
}

/// True for fields that belong to the MIME entity rather than the message.
fn is_content_field(line: &[u8]) -> bool {
    let name_end = line.iter().position(|&b| b == b':').unwrap_or(line.len());
    let name = &line[..name_end];
    name.len() >= 8 && name[..8].eq_ignore_ascii_case(b"content-")
}

fn is_mime_version(line: &[u8]) -> bool {
    line.len() >= 13 && line[..13].eq_ignore_ascii_case(b"mime-version:")
}

/// Lines of `bytes`, each with its line ending normalised to CRLF.
fn crlf_lines(bytes: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (mut line, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (rest[..i].to_vec(), &rest[i + 1..]),
            None => (rest.to_vec(), &rest[rest.len()..]),
        };
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        line.extend_from_slice(b"\r\n");
        rest = tail;
        Some(line)
    })
}

/// Splits `message` into its outside fields and its MIME entity. A message
/// without a Content-Type gets the RFC 2045 default made explicit, so the
/// sealed entity means the same once opened.
pub fn split(message: &[u8]) -> Split {
    let mut outer: Vec<Vec<u8>> = Vec::new();
    let mut content: Vec<Vec<u8>> = Vec::new();
    let mut lines = crlf_lines(message);
    let mut in_content = false;
    let mut body: Vec<u8> = Vec::new();
    for line in lines.by_ref() {
        if line == b"\r\n" {
            break;
        }
        let continuation = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if continuation {
            let target = if in_content {
                content.last_mut()
            } else {
                outer.last_mut()
            };
            match target {
                Some(f) => f.extend_from_slice(&line),
                None => outer.push(line),
            }
            continue;
        }
        if is_mime_version(&line) {
            // Re-written by whoever wraps the entity.
            in_content = false;
            outer.push(Vec::new());
            continue;
        }
        in_content = is_content_field(&line);
        if in_content {
            content.push(line);
        } else {
            outer.push(line);
        }
    }
    outer.retain(|f| !f.is_empty());
    for line in lines {
        body.extend_from_slice(&line);
    }
    if !content
        .iter()
        .any(|f| f.len() >= 13 && f[..13].eq_ignore_ascii_case(b"content-type:"))
    {
        content.insert(
            0,
            b"Content-Type: text/plain; charset=us-ascii\r\n".to_vec(),
        );
    }
    let mut entity = content.concat();
    entity.extend_from_slice(b"\r\n");
    entity.extend_from_slice(&body);
    Split { outer, entity }
}

/// Base64 (RFC 2045) in lines of 76 characters, each ending in CRLF: how
/// sealed bodies are written.
pub fn base64_lines(data: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let flat = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::with_capacity(flat.len() + flat.len() / 76 * 2 + 2);
    for line in flat.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Split {
    /// The outside fields followed by `mime_fields` (each a full field with
    /// CRLF), a blank line and `body`: the sealed message.
    pub fn wrap(&self, mime_fields: &[String], body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 1024);
        for f in &self.outer {
            out.extend_from_slice(f);
        }
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
        for f in mime_fields {
            out.extend_from_slice(f.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out
    }

    /// The value of the first outside field called `name` (unfolded), if any.
    pub fn field(&self, name: &str) -> Option<String> {
        self.outer.iter().find_map(|f| {
            let colon = f.iter().position(|&b| b == b':')?;
            if !f[..colon].eq_ignore_ascii_case(name.as_bytes()) {
                return None;
            }
            let v = String::from_utf8_lossy(&f[colon + 1..]);
            Some(v.replace("\r\n", "").trim().to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_fields_go_inside_the_rest_stays_outside() {
        let m = b"Received: from a\r\n\tby b\r\nFrom: a@x.test\r\nSubject: Lab\r\n results\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"b1\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n--b1\r\nbody\r\n--b1--\r\n";
        let s = split(m);
        assert_eq!(
            s.outer,
            vec![
                b"Received: from a\r\n\tby b\r\n".to_vec(),
                b"From: a@x.test\r\n".to_vec(),
                b"Subject: Lab\r\n results\r\n".to_vec()
            ]
        );
        assert_eq!(
            s.entity,
            b"Content-Type: multipart/mixed;\r\n boundary=\"b1\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n--b1\r\nbody\r\n--b1--\r\n"
        );
        assert_eq!(s.field("subject").as_deref(), Some("Lab results"));
        let sealed = s.wrap(&["Content-Type: application/x-test\r\n".into()], b"X");
        assert!(sealed.starts_with(b"Received: from a\r\n\tby b\r\nFrom: a@x.test\r\n"));
        assert!(sealed.ends_with(b"MIME-Version: 1.0\r\nContent-Type: application/x-test\r\n\r\nX"));
    }

    #[test]
    fn a_plain_message_gets_an_explicit_content_type_and_crlf() {
        let s = split(b"Subject: hi\nTo: b@y.test\n\nline\nlast");
        assert_eq!(s.outer.len(), 2);
        assert_eq!(
            s.entity,
            b"Content-Type: text/plain; charset=us-ascii\r\n\r\nline\r\nlast\r\n"
        );
    }
}
