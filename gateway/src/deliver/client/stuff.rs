//! The DATA encoder: message bytes in, what goes on the wire out. Pure and
//! streaming (chunks in, chunks out), so a large message is never copied
//! whole.
//!
//! Every lone CR and lone LF becomes CRLF before dot-stuffing, so a line that
//! follows one is a line of its own: if a `.` follows it, that dot is doubled.
//! A message holding `<LF>.<CRLF>` or `<CR>.<CRLF>` therefore cannot end the
//! DATA early at a next hop that treats a bare line ending as a line ending,
//! and what comes after it cannot be smuggled there as a second message
//! (the "SMTP smuggling" attacks of 2023).

/// Converts message bytes to DATA content: CRLF line endings, dot-stuffed.
#[derive(Debug, Clone)]
pub struct DotStuffer {
    /// The next byte starts a line (true at the start of the message).
    line_start: bool,
    /// The previous chunk ended with a CR whose LF may be in the next one.
    pending_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    /// An encoder at the start of a message.
    pub fn new() -> Self {
        DotStuffer {
            line_start: true,
            pending_cr: false,
        }
    }

    /// Encodes `input` (any chunk of the message) onto `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 64 + 8);
        while let Some((&b, rest)) = input.split_first() {
            if self.pending_cr {
                // A CR is a line ending either way: with its LF, or alone.
                self.pending_cr = false;
                out.extend_from_slice(b"\r\n");
                self.line_start = true;
                if b == b'\n' {
                    input = rest;
                    continue;
                }
            }
            match b {
                b'\r' => {
                    self.pending_cr = true;
                    input = rest;
                }
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.line_start = true;
                    input = rest;
                }
                _ => {
                    if self.line_start && b == b'.' {
                        out.push(b'.');
                    }
                    self.line_start = false;
                    // Copy the rest of the line in one go.
                    let n = memchr::memchr2(b'\r', b'\n', input).unwrap_or(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                }
            }
        }
    }

    /// Ends the message: a final CRLF if it lacked one, then `.` CRLF.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            self.line_start = true;
        }
        if !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// Encodes a whole message at once (tests and small messages).
pub fn encode(message: &[u8]) -> Vec<u8> {
    let mut s = DotStuffer::new();
    let mut out = Vec::with_capacity(message.len() + 8);
    s.feed(message, &mut out);
    s.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &[u8]) -> String {
        String::from_utf8(encode(s)).unwrap()
    }

    #[test]
    fn plain_message_unchanged_but_terminated() {
        assert_eq!(enc(b"a\r\nb\r\n"), "a\r\nb\r\n.\r\n");
        assert_eq!(enc(b"a\r\nb"), "a\r\nb\r\n.\r\n");
        assert_eq!(enc(b""), ".\r\n");
        assert_eq!(enc(b"\r\n"), "\r\n.\r\n");
    }

    #[test]
    fn dots_at_line_start_doubled() {
        assert_eq!(enc(b".\r\n"), "..\r\n.\r\n");
        assert_eq!(
            enc(b"a\r\n.b\r\n..c\r\nd.e\r\n"),
            "a\r\n..b\r\n...c\r\nd.e\r\n.\r\n"
        );
        assert_eq!(enc(b"a\r\n."), "a\r\n..\r\n.\r\n");
    }

    #[test]
    fn lone_cr_and_lf_become_crlf_and_the_next_line_is_stuffed() {
        assert_eq!(enc(b"a\nb"), "a\r\nb\r\n.\r\n");
        assert_eq!(enc(b"a\rb"), "a\r\nb\r\n.\r\n");
        assert_eq!(enc(b"a\n\rb"), "a\r\n\r\nb\r\n.\r\n");
        assert_eq!(enc(b"a\r\r\nb"), "a\r\n\r\nb\r\n.\r\n");
        assert_eq!(enc(b"a\r"), "a\r\n.\r\n");
        // The smuggling patterns: the dot becomes content.
        assert_eq!(
            enc(b"x\n.\r\nMAIL FROM:<e@v>\r\n"),
            "x\r\n..\r\nMAIL FROM:<e@v>\r\n.\r\n"
        );
        assert_eq!(enc(b"x\r.\r\nRSET\r\n"), "x\r\n..\r\nRSET\r\n.\r\n");
        assert_eq!(enc(b"x\r\n.\n"), "x\r\n..\r\n.\r\n");
        assert_eq!(enc(b"x\r\n.\r"), "x\r\n..\r\n.\r\n");
    }

    /// The only `.` CRLF line in the output is the terminator, and every CR
    /// and LF belongs to a CRLF pair.
    fn well_formed(out: &[u8]) {
        assert!(out.ends_with(b".\r\n"));
        let body = &out[..out.len() - 3];
        assert!(body.is_empty() || body.ends_with(b"\r\n"));
        for (i, &b) in out.iter().enumerate() {
            if b == b'\r' {
                assert_eq!(out.get(i + 1), Some(&b'\n'));
            }
            if b == b'\n' {
                assert!(i > 0 && out[i - 1] == b'\r');
            }
        }
        for line in body.split(|&b| b == b'\n') {
            assert_ne!(line, b".\r", "unstuffed dot line in {out:?}");
        }
    }

    #[test]
    fn any_chunking_gives_the_same_bytes() {
        let msg = b"H: v\r\n\r\n.a\n.\r.\r\n\r\r\n\n..\rz.\r";
        let whole = encode(msg);
        well_formed(&whole);
        for cut in 0..=msg.len() {
            for cut2 in cut..=msg.len() {
                let mut s = DotStuffer::new();
                let mut out = Vec::new();
                s.feed(&msg[..cut], &mut out);
                s.feed(&msg[cut..cut2], &mut out);
                s.feed(&msg[cut2..], &mut out);
                s.finish(&mut out);
                assert_eq!(out, whole, "cuts {cut} {cut2}");
            }
        }
    }

    #[test]
    fn arbitrary_bytes_are_well_formed() {
        // A cheap exhaustive check over short strings of the interesting bytes.
        let alphabet = [b'\r', b'\n', b'.', b'a'];
        for len in 0..=6u32 {
            for n in 0..4usize.pow(len) {
                let msg: Vec<u8> = (0..len)
                    .map(|i| alphabet[(n / 4usize.pow(i)) % 4])
                    .collect();
                well_formed(&encode(&msg));
            }
        }
    }
}
