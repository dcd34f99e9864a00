//! SMTP replies: a code, an RFC 3463 enhanced status code and text.

use std::borrow::Cow;
use std::fmt;

/// One SMTP reply, possibly multi-line, always with an enhanced status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit basic reply code (RFC 5321 §4.2).
    pub code: u16,
    /// Enhanced status code such as `5.7.1` (RFC 3463); empty for greetings.
    pub status: &'static str,
    /// Text lines; a multi-line reply uses `code-` on every line but the last.
    pub lines: Vec<Cow<'static, str>>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: u16, status: &'static str, text: impl Into<Cow<'static, str>>) -> Self {
        Reply {
            code,
            status,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply (EHLO, HELP).
    pub fn multi(code: u16, status: &'static str, lines: Vec<Cow<'static, str>>) -> Self {
        Reply {
            code,
            status,
            lines,
        }
    }

    /// True for 2xx and 3xx replies.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Wire form, CRLF-terminated.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.lines.len().saturating_sub(1);
        if self.lines.is_empty() {
            return write!(f, "{}\r\n", self.code);
        }
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            // Text never carries CR or LF: a reply must not be able to inject lines.
            let clean: String = line
                .chars()
                .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                .collect();
            if self.status.is_empty() {
                write!(f, "{}{}{}\r\n", self.code, sep, clean)?;
            } else {
                write!(f, "{}{}{} {}\r\n", self.code, sep, self.status, clean)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line() {
        assert_eq!(
            Reply::new(250, "2.0.0", "Ok").to_string(),
            "250 2.0.0 Ok\r\n"
        );
        let r = Reply::multi(250, "", vec!["a".into(), "b".into()]);
        assert_eq!(r.to_string(), "250-a\r\n250 b\r\n");
    }

    #[test]
    fn text_cannot_inject_lines() {
        let r = Reply::new(550, "5.7.1", "bad\r\n250 ok");
        assert_eq!(r.to_string(), "550 5.7.1 bad  250 ok\r\n");
    }
}
