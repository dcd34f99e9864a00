//! Replies from the next hop: a pure parser (bytes in, [`Reply`] out) with
//! hard limits, so a hostile server can neither make us buffer without bound
//! nor hand us text that breaks a log line or a DSN. No I/O, so it is fuzzed
//! (`fuzz/fuzz_targets/client_reply.rs`).

use std::fmt;

/// Longest reply line we accept, without its line ending. RFC 5321 §4.5.3.1.5
/// allows 512 octets; real servers exceed that, so there is headroom.
pub const MAX_LINE: usize = 4096;

/// Most lines in one reply (an EHLO list is a dozen or two).
pub const MAX_LINES: usize = 100;

/// A reply from the next hop, or one we made up to describe a local failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code, 200..=599.
    pub code: u16,
    /// Text of each line after `code-` / `code `, control characters replaced
    /// by spaces; may be empty.
    pub lines: Vec<String>,
}

/// Why a reply could not be parsed; the connection is unusable afterwards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A line longer than [`MAX_LINE`].
    #[error("reply line longer than {MAX_LINE} octets")]
    LineTooLong,
    /// More than [`MAX_LINES`] lines.
    #[error("reply with more than {MAX_LINES} lines")]
    TooManyLines,
    /// The line does not start with a three-digit 2xx-5xx code.
    #[error("malformed reply code")]
    BadCode,
    /// The code is followed by something other than space, `-` or the end.
    #[error("malformed reply line")]
    BadSeparator,
    /// The lines of a multi-line reply carry different codes.
    #[error("reply code changed within a multi-line reply")]
    MixedCodes,
}

impl Reply {
    /// A reply of our own making (`enhanced` may be empty).
    pub fn local(code: u16, enhanced: &str, text: impl fmt::Display) -> Reply {
        let line = if enhanced.is_empty() {
            text.to_string()
        } else {
            format!("{enhanced} {text}")
        };
        Reply {
            code,
            lines: vec![sanitise(line.as_bytes())],
        }
    }

    /// 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 2xx: the command succeeded.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx: try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx (or anything else that is not positive or transient): do not retry.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The RFC 3463 enhanced status code at the start of the first line, when
    /// present and of the same class as the basic code (RFC 2034 §4).
    pub fn enhanced(&self) -> Option<&str> {
        let first = self.lines.first()?;
        let token = first.split(' ').next()?;
        is_enhanced(token, self.code).then_some(token)
    }
}

/// `class.subject.detail` with class equal to the first digit of `code`.
fn is_enhanced(token: &str, code: u16) -> bool {
    let mut parts = token.split('.');
    let (Some(class), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    digits(class, 1)
        && digits(subject, 3)
        && digits(detail, 3)
        && u16::from(class.as_bytes()[0] - b'0') == code / 100
}

impl fmt::Display for Reply {
    /// One line: `250 2.0.0 text text2`. Later lines repeating the first
    /// line's enhanced code have it dropped, so it appears once.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        let enhanced = self.enhanced();
        for (i, line) in self.lines.iter().enumerate() {
            let text = match enhanced {
                Some(e) if i > 0 => line
                    .strip_prefix(e)
                    .filter(|rest| rest.is_empty() || rest.starts_with(' '))
                    .map_or(line.as_str(), |rest| rest.trim_start()),
                _ => line.as_str(),
            };
            if !text.is_empty() {
                write!(f, " {text}")?;
            }
        }
        Ok(())
    }
}

/// Assembles a reply from lines, one at a time; reusable after each reply.
#[derive(Debug, Default)]
pub struct ReplyParser {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyParser {
    /// A parser waiting for the first line of a reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one line without its line ending (a trailing CR is ignored);
    /// returns the reply when this was its last line.
    pub fn line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE {
            return Err(ReplyError::LineTooLong);
        }
        let code = parse_code(line)?;
        let (last, text) = match line.get(3) {
            None => (true, &[][..]),
            Some(b' ') => (true, &line[4..]),
            Some(b'-') => (false, &line[4..]),
            Some(_) => return Err(ReplyError::BadSeparator),
        };
        if self.code.is_some_and(|c| c != code) {
            return Err(ReplyError::MixedCodes);
        }
        if self.lines.len() >= MAX_LINES {
            return Err(ReplyError::TooManyLines);
        }
        self.code = Some(code);
        self.lines.push(sanitise(text));
        if !last {
            return Ok(None);
        }
        self.code = None;
        Ok(Some(Reply {
            code,
            lines: std::mem::take(&mut self.lines),
        }))
    }

    /// True while a multi-line reply is half read.
    pub fn in_progress(&self) -> bool {
        self.code.is_some()
    }
}

fn parse_code(line: &[u8]) -> Result<u16, ReplyError> {
    match line.get(..3) {
        Some([a @ b'2'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9']) => {
            Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => Err(ReplyError::BadCode),
    }
}

/// Reply text as a string fit for logs and DSNs: invalid UTF-8 replaced,
/// control characters (CR, NUL, escapes...) turned into spaces.
fn sanitise(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Parses the first complete reply in `buf`. Lines end with LF (the CR
/// before it is optional, as in Postfix's client). Returns the reply and the
/// bytes it used, `Ok(None)` when more input is needed, or an error as soon
/// as the input cannot become a valid reply (so a caller need never buffer
/// more than [`MAX_LINE`] plus a line ending past the last complete line).
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut parser = ReplyParser::new();
    let mut pos = 0;
    while let Some(n) = buf[pos..].iter().position(|&b| b == b'\n') {
        let line = &buf[pos..pos + n];
        pos += n + 1;
        if let Some(reply) = parser.line(line)? {
            return Ok(Some((reply, pos)));
        }
    }
    // An unfinished line already over the limit can never become valid.
    if buf.len() - pos > MAX_LINE + 1 {
        return Err(ReplyError::LineTooLong);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Result<Reply, ReplyError> {
        match parse(s.as_bytes())? {
            Some((r, n)) => {
                assert_eq!(n, s.len());
                Ok(r)
            }
            None => panic!("incomplete: {s:?}"),
        }
    }

    #[test]
    fn single_line() {
        let r = one("250 2.1.0 Ok\r\n").unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.lines, vec!["2.1.0 Ok"]);
        assert_eq!(r.enhanced(), Some("2.1.0"));
        assert_eq!(r.to_string(), "250 2.1.0 Ok");
        assert!(r.is_positive() && r.is_success() && !r.is_transient() && !r.is_permanent());
    }

    #[test]
    fn multi_line_joined_with_one_enhanced_code() {
        let r = one("550-5.7.1 Message rejected\r\n550-5.7.1 see http://x\r\n550 5.7.1 bye\r\n")
            .unwrap();
        assert_eq!(r.lines.len(), 3);
        assert_eq!(r.to_string(), "550 5.7.1 Message rejected see http://x bye");
        assert!(r.is_permanent());
    }

    #[test]
    fn code_only_and_empty_continuation_lines() {
        assert_eq!(one("250\r\n").unwrap().lines, vec![""]);
        let r = one("250-\r\n250 \r\n").unwrap();
        assert_eq!(r.lines, vec!["", ""]);
        assert_eq!(r.to_string(), "250");
        assert_eq!(r.enhanced(), None);
    }

    #[test]
    fn bare_lf_accepted() {
        let r = one("220-a\n220 b\n").unwrap();
        assert_eq!(r.lines, vec!["a", "b"]);
    }

    #[test]
    fn incomplete_input_waits() {
        assert_eq!(parse(b"").unwrap(), None);
        assert_eq!(parse(b"250-first\r\n250 sec").unwrap(), None);
        assert_eq!(parse(b"25").unwrap(), None);
    }

    #[test]
    fn consumes_exactly_one_reply() {
        let buf = b"250 ok\r\n354 go\r\n";
        let (r, n) = parse(buf).unwrap().unwrap();
        assert_eq!((r.code, n), (250, 8));
        let (r, _) = parse(&buf[n..]).unwrap().unwrap();
        assert_eq!(r.code, 354);
    }

    #[test]
    fn malformed_codes() {
        assert_eq!(one("25 ok\r\n"), Err(ReplyError::BadCode));
        assert_eq!(one("150 ok\r\n"), Err(ReplyError::BadCode));
        assert_eq!(one("650 ok\r\n"), Err(ReplyError::BadCode));
        assert_eq!(one("2a0 ok\r\n"), Err(ReplyError::BadCode));
        assert_eq!(one("\r\n"), Err(ReplyError::BadCode));
        assert_eq!(one("2500 ok\r\n"), Err(ReplyError::BadSeparator));
        assert_eq!(one("250x\r\n"), Err(ReplyError::BadSeparator));
        assert_eq!(one("250-a\r\n251 b\r\n"), Err(ReplyError::MixedCodes));
        assert_eq!(one("250-a\r\nxyz\r\n"), Err(ReplyError::BadCode));
    }

    #[test]
    fn limits() {
        let long = format!("250 {}\r\n", "a".repeat(MAX_LINE));
        assert_eq!(one(&long), Err(ReplyError::LineTooLong));
        let fits = format!("250 {}\r\n", "a".repeat(MAX_LINE - 4));
        assert!(one(&fits).is_ok());
        // An unterminated line is refused once it is past the limit.
        let open = format!("250 {}", "a".repeat(MAX_LINE));
        assert_eq!(parse(open.as_bytes()), Err(ReplyError::LineTooLong));
        let many: String = (0..MAX_LINES).map(|_| "250-x\r\n").collect::<String>() + "250 y\r\n";
        assert_eq!(one(&many), Err(ReplyError::TooManyLines));
        let ok: String = (1..MAX_LINES).map(|_| "250-x\r\n").collect::<String>() + "250 y\r\n";
        assert_eq!(one(&ok).unwrap().lines.len(), MAX_LINES);
    }

    #[test]
    fn control_characters_and_bad_utf8_cleaned() {
        let r = parse(b"550 5.1.1 a\rb\x00c\x1b[31m \xff\r\n")
            .unwrap()
            .unwrap()
            .0;
        assert!(!r.to_string().chars().any(|c| c.is_control()));
        assert!(r.to_string().starts_with("550 5.1.1 a b c"));
    }

    #[test]
    fn enhanced_code_must_match_class() {
        assert_eq!(one("550 4.1.1 x\r\n").unwrap().enhanced(), None);
        assert_eq!(one("250 2.0\r\n").unwrap().enhanced(), None);
        assert_eq!(one("250 2.0.0.0 x\r\n").unwrap().enhanced(), None);
        assert_eq!(one("451 4.3.0\r\n").unwrap().enhanced(), Some("4.3.0"));
        assert_eq!(one("250 2.0.1234 x\r\n").unwrap().enhanced(), None);
    }

    #[test]
    fn local_replies() {
        let r = Reply::local(451, "4.4.2", "connection lost during DATA");
        assert_eq!(r.to_string(), "451 4.4.2 connection lost during DATA");
        assert_eq!(r.enhanced(), Some("4.4.2"));
        assert!(r.is_transient());
        let r = Reply::local(554, "", "evil\r\ntext");
        assert_eq!(r.to_string(), "554 evil  text");
    }

    #[test]
    fn parser_is_reusable_and_reports_progress() {
        let mut p = ReplyParser::new();
        assert_eq!(p.line(b"250-a").unwrap(), None);
        assert!(p.in_progress());
        assert_eq!(p.line(b"250 b").unwrap().unwrap().lines.len(), 2);
        assert!(!p.in_progress());
        assert_eq!(p.line(b"221 bye").unwrap().unwrap().code, 221);
    }
}
