//! The DATA reader: removes dot-stuffing, finds the one true end of data
//! (`<CRLF>.<CRLF>`) and notices bare CR and LF. Pure, no I/O, fuzzed.
//!
//! SMTP smuggling (CVE-2023-51764 and kin) works when two MTAs disagree on
//! where a message ends. Here only a `.` line that both starts and ends with a
//! real CRLF ends DATA; every other CR or LF is a violation (refused) or, when
//! configured, normalised to CRLF without ever ending the message.
//!
//! NUL is treated the same way: a next hop that drops NULs would read
//! `CRLF NUL . CRLF` as the end of data, so NUL is refused, or stripped when
//! bare line endings are normalised, and never passed on.

use serde::Deserialize;

/// What to do with a CR or LF that is not part of a CRLF pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BareLineEnding {
    /// Refuse the message with 550 5.6.2 once DATA ends.
    Reject,
    /// Bare LF becomes CRLF, bare CR becomes a space (as Postfix's cleanup
    /// does), and NUL is removed.
    Normalize,
}

/// A problem found in the data; the message is refused when DATA ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataViolation {
    /// A bare LF or CR was seen and the policy is [`BareLineEnding::Reject`].
    BareLineEnding,
    /// A NUL octet was seen and the policy is [`BareLineEnding::Reject`].
    Nul,
    /// A line was longer than the configured limit.
    LineTooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line that followed a real CRLF (or the DATA command).
    LineStart,
    /// At the start of a line that followed a normalised bare LF: a dot here
    /// is content, never a terminator.
    SoftLineStart,
    /// Saw `.` at a real line start.
    Dot,
    /// Saw `.` CR at a real line start.
    DotCr,
    /// Inside a line.
    Mid,
    /// Saw CR inside a line.
    Cr,
    /// `<CRLF>.<CRLF>` seen.
    Done,
}

/// Streaming DATA decoder.
#[derive(Debug)]
pub struct DataReader {
    state: State,
    policy: BareLineEnding,
    max_line: usize,
    line_len: usize,
    violation: Option<DataViolation>,
}

/// Result of one [`DataReader::feed`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Input bytes used; any rest belongs to the next command.
    pub consumed: usize,
    /// The end-of-data sequence was found.
    pub done: bool,
}

impl DataReader {
    /// A reader for one message; `max_line` counts octets without the CRLF.
    pub fn new(policy: BareLineEnding, max_line: usize) -> Self {
        DataReader {
            state: State::LineStart,
            policy,
            max_line,
            line_len: 0,
            violation: None,
        }
    }

    /// The first violation seen, if any.
    pub fn violation(&self) -> Option<DataViolation> {
        self.violation
    }

    fn bare(&mut self, out: &mut Vec<u8>, lf: bool) {
        match self.policy {
            BareLineEnding::Reject => {
                self.violation.get_or_insert(DataViolation::BareLineEnding);
            }
            BareLineEnding::Normalize => {}
        }
        if lf {
            out.extend_from_slice(b"\r\n");
            self.line_len = 0;
            self.state = State::SoftLineStart;
        } else {
            out.push(b' ');
            self.content_byte();
            self.state = State::Mid;
        }
    }

    /// A NUL: never part of the output (see the module docs), but it still
    /// counts as content for finding the end: a peer that keeps NULs sees
    /// `CRLF NUL . CRLF` as a line of text, so it must not end DATA here.
    fn nul(&mut self) {
        if self.policy == BareLineEnding::Reject {
            self.violation.get_or_insert(DataViolation::Nul);
        }
        self.state = State::Mid;
    }

    fn content_byte(&mut self) {
        self.line_len += 1;
        if self.line_len > self.max_line {
            self.violation.get_or_insert(DataViolation::LineTooLong);
        }
    }

    fn push(&mut self, out: &mut Vec<u8>, b: u8) {
        out.push(b);
        self.content_byte();
        self.state = State::Mid;
    }

    /// Decodes `input`, appending message bytes to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Fed {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Done {
                return Fed {
                    consumed: i,
                    done: true,
                };
            }
            let b = input[i];
            // Plain content (no CR, LF or NUL) inside a line, or starting
            // one that is not a dot at a real line start, is copied as one
            // run: what the byte-by-byte states below would do to each.
            let plain = match self.state {
                State::Mid | State::SoftLineStart => true,
                State::LineStart => b != b'.',
                _ => false,
            };
            if plain {
                let run = memchr::memchr3(b'\r', b'\n', 0, &input[i..]).unwrap_or(input.len() - i);
                if run > 0 {
                    out.extend_from_slice(&input[i..i + run]);
                    self.line_len += run;
                    if self.line_len > self.max_line {
                        self.violation.get_or_insert(DataViolation::LineTooLong);
                    }
                    self.state = State::Mid;
                    i += run;
                    continue;
                }
            }
            self.step(b, out);
            if self.state == State::Done {
                return Fed {
                    consumed: i + 1,
                    done: true,
                };
            }
            i += 1;
        }
        Fed {
            consumed: input.len(),
            done: self.state == State::Done,
        }
    }

    /// One byte the run above does not take: CR, LF, NUL, a dot at a real
    /// line start, or whatever follows such a dot or a CR.
    fn step(&mut self, b: u8, out: &mut Vec<u8>) {
        match (self.state, b) {
            (State::Done, _) => {}
            (State::LineStart | State::SoftLineStart | State::Mid | State::Dot, 0) => self.nul(),
            (State::LineStart, b'.') => self.state = State::Dot,
            (State::LineStart | State::SoftLineStart | State::Mid, b'\r') => self.state = State::Cr,
            (State::LineStart | State::SoftLineStart | State::Mid, b'\n') => self.bare(out, true),
            (State::LineStart | State::SoftLineStart | State::Mid, _) => self.push(out, b),
            (State::Dot, b'\r') => self.state = State::DotCr,
            (State::Dot, b'\n') => {
                // `CRLF . LF`: a smuggling attempt; the dot is content.
                out.push(b'.');
                self.content_byte();
                self.bare(out, true);
            }
            // Transparency (RFC 5321 §4.5.2): drop the leading dot.
            (State::Dot, _) => self.push(out, b),
            (State::DotCr, b'\n') => self.state = State::Done,
            (State::DotCr, _) => {
                // `CRLF . CR x`: the dot was content and the CR is bare.
                out.push(b'.');
                self.content_byte();
                self.bare(out, false);
                self.reprocess(b, out);
            }
            (State::Cr, b'\n') => {
                out.extend_from_slice(b"\r\n");
                self.line_len = 0;
                self.state = State::LineStart;
            }
            (State::Cr, _) => {
                self.bare(out, false);
                self.reprocess(b, out);
            }
        }
    }

    /// Handles a byte that followed a bare CR, now in the `Mid` state.
    fn reprocess(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            0 => self.nul(),
            b'\r' => self.state = State::Cr,
            b'\n' => self.bare(out, true),
            _ => self.push(out, b),
        }
    }
}

/// Watches the header section of a message as it streams past: counts
/// `Received:` fields (loop detection) and keeps the first
/// `X-MS-Exchange-CrossTenant-Id` (which Microsoft 365 tenant sent it).
#[derive(Debug, Default)]
pub struct HeaderScan {
    line: Vec<u8>,
    finished: bool,
    /// Number of `Received:` header fields seen.
    pub received: u32,
    /// Value of the first `X-MS-Exchange-CrossTenant-Id` field, trimmed.
    pub ms_tenant_id: Option<String>,
    /// Value of the first `From` field, unfolded (at most 2048 octets).
    pub from: Option<String>,
    in_from: bool,
}

/// A `From` field longer than this is not read further.
const SCAN_FROM: usize = 2048;

/// Only this much of each header line is examined; the fields we look for are short.
const SCAN_LINE: usize = 256;

impl HeaderScan {
    /// Scans more of the (already CRLF-normalised) message.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.finished {
                return;
            }
            if b == b'\n' {
                self.end_line();
            } else if self.line.len() < SCAN_LINE {
                self.line.push(b);
            }
        }
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.is_empty() {
            // An empty line ends the header section.
            self.finished = true;
            return;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // A continuation of the field before.
            if let Some(from) = self
                .from
                .as_mut()
                .filter(|f| self.in_from && f.len() < SCAN_FROM)
            {
                from.push_str(&String::from_utf8_lossy(line));
            }
            return;
        }
        self.in_from = false;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return;
        };
        let name = &line[..colon];
        if name.eq_ignore_ascii_case(b"from") && self.from.is_none() {
            self.from = Some(String::from_utf8_lossy(&line[colon + 1..]).into_owned());
            self.in_from = true;
        } else if name.eq_ignore_ascii_case(b"received") {
            self.received += 1;
        } else if name.eq_ignore_ascii_case(b"x-ms-exchange-crosstenant-id")
            && self.ms_tenant_id.is_none()
        {
            let value = String::from_utf8_lossy(&line[colon + 1..])
                .trim()
                .to_ascii_lowercase();
            self.ms_tenant_id = Some(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(policy: BareLineEnding, input: &[u8]) -> (Vec<u8>, Fed, Option<DataViolation>) {
        let mut r = DataReader::new(policy, 998);
        let mut out = Vec::new();
        let fed = r.feed(input, &mut out);
        (out, fed, r.violation())
    }

    #[test]
    fn simple_message_and_pipelined_rest() {
        let (out, fed, v) = run(
            BareLineEnding::Reject,
            b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n",
        );
        assert_eq!(out, b"Subject: x\r\n\r\nhello\r\n");
        assert!(fed.done);
        assert_eq!(fed.consumed, 24);
        assert_eq!(v, None);
    }

    #[test]
    fn empty_message() {
        let (out, fed, _) = run(BareLineEnding::Reject, b".\r\n");
        assert!(out.is_empty() && fed.done);
    }

    #[test]
    fn dot_unstuffing() {
        let (out, fed, _) = run(BareLineEnding::Reject, b"..leading\r\n...\r\n.\r\n");
        assert_eq!(out, b".leading\r\n..\r\n");
        assert!(fed.done);
    }

    #[test]
    fn byte_at_a_time_matches_whole() {
        let input = b"a\r\n..b\r\nc\r\n.\r\n";
        let mut r = DataReader::new(BareLineEnding::Reject, 998);
        let mut out = Vec::new();
        let mut done = false;
        for b in input.iter() {
            let fed = r.feed(std::slice::from_ref(b), &mut out);
            done = fed.done;
        }
        assert!(done);
        assert_eq!(out, b"a\r\n.b\r\nc\r\n");
    }

    #[test]
    fn smuggling_sequences_do_not_end_data() {
        for seq in [
            &b"\n.\n"[..],
            b"\n.\r\n",
            b"\r.\r\n",
            b"\r\n.\r",
            b"\r\n.\n",
            b"\r\n.\rX",
        ] {
            let mut input = b"Subject: a\r\n\r\nbody".to_vec();
            input.extend_from_slice(seq);
            input.extend_from_slice(b"MAIL FROM:<evil@x>\r\n");
            for policy in [BareLineEnding::Reject, BareLineEnding::Normalize] {
                let (_, fed, v) = run(policy, &input);
                assert!(!fed.done, "{seq:?} ended data under {policy:?}");
                if policy == BareLineEnding::Reject {
                    assert_eq!(v, Some(DataViolation::BareLineEnding), "{seq:?}");
                }
                // Only a real terminator ends it, and the smuggled command is content.
                let mut full = input.clone();
                full.extend_from_slice(b"\r\n.\r\n");
                let (out, fed, _) = run(policy, &full);
                assert!(fed.done && fed.consumed == full.len());
                assert!(out.windows(9).any(|w| w == b"MAIL FROM"));
            }
        }
    }

    #[test]
    fn nul_is_refused_or_removed_and_never_ends_data() {
        for seq in [&b"\r\n\x00.\r\n"[..], b"\r\n.\x00\r\n", b"\r\n.\r\x00\n"] {
            let mut input = b"Subject: a\r\n\r\nbody".to_vec();
            input.extend_from_slice(seq);
            input.extend_from_slice(b"MAIL FROM:<evil@x>\r\n");
            let (_, fed, v) = run(BareLineEnding::Reject, &input);
            assert!(!fed.done, "{seq:?} ended data");
            assert!(v.is_some(), "{seq:?} not refused");
            input.extend_from_slice(b"\r\n.\r\n");
            let (out, fed, _) = run(BareLineEnding::Normalize, &input);
            assert!(fed.done && fed.consumed == input.len());
            assert!(!out.contains(&0), "{seq:?}: NUL passed on");
            assert!(out.windows(9).any(|w| w == b"MAIL FROM"));
        }
        let (_, _, v) = run(BareLineEnding::Reject, b"a\x00b\r\n.\r\n");
        assert_eq!(v, Some(DataViolation::Nul));
    }

    #[test]
    fn normalize_rewrites_bare_endings() {
        let (out, fed, v) = run(BareLineEnding::Normalize, b"a\nb\rc\r\n.\r\n");
        assert!(fed.done);
        assert_eq!(v, None);
        assert_eq!(out, b"a\r\nb c\r\n");
    }

    #[test]
    fn long_lines_flagged() {
        let mut r = DataReader::new(BareLineEnding::Reject, 10);
        let mut out = Vec::new();
        r.feed(b"0123456789\r\n", &mut out);
        assert_eq!(r.violation(), None);
        r.feed(b"0123456789A\r\n.\r\n", &mut out);
        assert_eq!(r.violation(), Some(DataViolation::LineTooLong));
    }

    #[test]
    fn header_scan_counts_received_and_finds_tenant() {
        let mut h = HeaderScan::default();
        h.feed(
            b"Received: a\r\n\tcont\r\nRECEIVED: b\r\nX-MS-Exchange-CrossTenant-Id: ABC-1 \r\nSubj",
        );
        h.feed(b"ect: x\r\nX-MS-Exchange-CrossTenant-Id: second\r\n\r\nReceived: in body\r\n");
        assert_eq!(h.received, 2);
        assert_eq!(h.ms_tenant_id.as_deref(), Some("abc-1"));
    }

    #[test]
    fn header_scan_keeps_the_first_from_unfolded() {
        let mut h = HeaderScan::default();
        h.feed(b"from: \"Mailer, Daemon\"\r\n <MAILER-DAEMON@Tenant.example>\r\nFrom: x@y\r\n\r\n");
        assert_eq!(
            h.from.as_deref(),
            Some(" \"Mailer, Daemon\" <MAILER-DAEMON@Tenant.example>")
        );
    }

    #[test]
    fn random_input_random_chunking_agrees() {
        // A cheap, always-on cousin of fuzz/fuzz_targets/data.rs.
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"\r\n.a\x00";
        for _ in 0..5000 {
            let len = rng.random_range(0..64);
            let input: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            for policy in [BareLineEnding::Reject, BareLineEnding::Normalize] {
                let (whole, fed, v) = run(policy, &input);
                let mut r = DataReader::new(policy, 998);
                let mut out = Vec::new();
                let mut pos = 0;
                let mut done = false;
                while pos < input.len() && !done {
                    let step = rng.random_range(1..=4).min(input.len() - pos);
                    let f = r.feed(&input[pos..pos + step], &mut out);
                    pos += f.consumed;
                    done = f.done;
                }
                assert_eq!(out, whole, "{input:?}");
                assert_eq!(done, fed.done);
                assert_eq!(r.violation(), v);
                if fed.done {
                    let end = &input[..fed.consumed];
                    assert!(end.ends_with(b"\r\n.\r\n") || end == b".\r\n", "{input:?}");
                }
            }
        }
    }
}
