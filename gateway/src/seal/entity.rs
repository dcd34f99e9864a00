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

/// Header lines of a message, each with its line ending normalised to CRLF;
/// `rest` is what follows the last line taken (the body, once the blank
/// line has been read).
struct CrlfLines<'a> {
    rest: &'a [u8],
}

impl Iterator for CrlfLines<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, tail) = match memchr::memchr(b'\n', self.rest) {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &self.rest[self.rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut out = Vec::with_capacity(line.len() + 2);
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        self.rest = tail;
        Some(out)
    }
}

/// Appends `bytes` to `out` with every line ending as CRLF (one CR dropped
/// before an LF, then CRLF; a last line without LF gets one). Runs that are
/// CRLF already, which is how the spool holds a body, are copied whole.
fn push_crlf(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', bytes) {
        if i > 0 && bytes[i - 1] == b'\r' {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(b"\r\n");
        start = i + 1;
    }
    let tail = &bytes[start..];
    if tail.last() == Some(&b'\n') || tail.is_empty() {
        out.extend_from_slice(tail);
    } else {
        out.extend_from_slice(tail.strip_suffix(b"\r").unwrap_or(tail));
        out.extend_from_slice(b"\r\n");
    }
}

/// Splits `message` into its outside fields and its MIME entity. A message
/// without a Content-Type gets the RFC 2045 default made explicit, so the
/// sealed entity means the same once opened.
pub fn split(message: &[u8]) -> Split {
    let mut outer: Vec<Vec<u8>> = Vec::new();
    let mut content: Vec<Vec<u8>> = Vec::new();
    let mut lines = CrlfLines { rest: message };
    let mut in_content = false;
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
    if !content
        .iter()
        .any(|f| f.len() >= 13 && f[..13].eq_ignore_ascii_case(b"content-type:"))
    {
        content.insert(
            0,
            b"Content-Type: text/plain; charset=us-ascii\r\n".to_vec(),
        );
    }
    let head: usize = content.iter().map(Vec::len).sum();
    let mut entity = Vec::with_capacity(head + lines.rest.len() + 4);
    for f in &content {
        entity.extend_from_slice(f);
    }
    entity.extend_from_slice(b"\r\n");
    push_crlf(&mut entity, lines.rest);
    Split { outer, entity }
}

/// Base64 (RFC 2045) in lines of 76 characters, each ending in CRLF: how
/// sealed bodies are written.
pub fn base64_lines(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_base64_lines(&mut out, data);
    out
}

/// `base64_lines` appended to `out`.
pub fn push_base64_lines(out: &mut Vec<u8>, data: &[u8]) {
    push_base64_crlf(out, data, 57);
}

/// Appends `data` to `out` as base64 in CRLF-ended lines of `per_line`
/// input bytes each (a multiple of 3, at most 57). Whole blocks of lines are
/// encoded at once: one call per line spent more time starting up than
/// encoding.
pub fn push_base64_crlf(out: &mut Vec<u8>, data: &[u8], per_line: usize) {
    use base64::Engine as _;
    const BLOCK_LINES: usize = 64;
    debug_assert!(per_line.is_multiple_of(3) && (3..=57).contains(&per_line));
    let chars = per_line / 3 * 4;
    let mut scratch = [0u8; 76 * BLOCK_LINES];
    out.reserve(data.len().div_ceil(per_line) * (chars + 2));
    for block in data.chunks(per_line * BLOCK_LINES) {
        // The scratch holds a block's padded encoding, so this cannot fail.
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(block, &mut scratch)
            .unwrap_or_default();
        for line in scratch[..n].chunks(chars) {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
}

impl Split {
    /// The outside fields followed by `mime_fields` (each a full field with
    /// CRLF), a blank line and `body`: the sealed message.
    pub fn wrap(&self, mime_fields: &[String], body: &[u8]) -> Vec<u8> {
        let mut out = self.head(mime_fields, body.len());
        out.extend_from_slice(body);
        out
    }

    /// The sealed message up to its body: the outside fields, `mime_fields`
    /// and the blank line, with room for `body_len` more bytes, so a sealer
    /// can write its body straight after.
    pub fn head(&self, mime_fields: &[String], body_len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(body_len + 1024);
        for f in &self.outer {
            out.extend_from_slice(f);
        }
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
        for f in mime_fields {
            out.extend_from_slice(f.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
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

    #[test]
    fn bodies_get_crlf_line_endings_whatever_they_had() {
        // The rule, line by line: drop one CR before the LF, end with CRLF.
        fn by_lines(bytes: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            for piece in bytes.split_inclusive(|&b| b == b'\n') {
                let line = piece.strip_suffix(b"\n").unwrap_or(piece);
                out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
                out.extend_from_slice(b"\r\n");
            }
            out
        }
        for body in [
            &b""[..],
            b"a",
            b"a\r",
            b"a\n",
            b"a\r\n",
            b"\n\n",
            b"\r\n\r\n",
            b"a\nb\r\nc",
            b"a\r\r\nb\rc\n",
            b"one\r\ntwo\r\nthree",
            b"\r\n\nx\r",
        ] {
            let mut got = b"H".to_vec();
            push_crlf(&mut got, body);
            let mut want = b"H".to_vec();
            want.extend_from_slice(&by_lines(body));
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn base64_lines_are_76_characters_and_decode_back() {
        use base64::Engine as _;
        for len in [0, 1, 56, 57, 58, 114, 1000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
            let lines = base64_lines(&data);
            let text = String::from_utf8(lines).unwrap();
            assert!(text.split("\r\n").all(|l| l.len() <= 76));
            let flat = text.replace("\r\n", "");
            let back = base64::engine::general_purpose::STANDARD
                .decode(flat)
                .unwrap();
            assert_eq!(back, data, "len {len}");
        }
    }
}
