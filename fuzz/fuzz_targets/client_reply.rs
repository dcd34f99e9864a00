#![no_main]
//! Any bytes as what a next hop says: the outbound client's reply parser must
//! give a well-formed reply, ask for more, or refuse; never panic, never
//! produce text that could break a log line or a DSN, and agree with itself
//! when fed line by line.
use libfuzzer_sys::fuzz_target;
use sealgate_parse::client_reply::{parse, Reply, ReplyError, ReplyParser, MAX_LINE, MAX_LINES};

/// The same input through the incremental parser, one line at a time.
fn line_by_line(input: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut parser = ReplyParser::new();
    let mut pos = 0;
    for line in input.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            break;
        }
        pos += line.len();
        if let Some(r) = parser.line(&line[..line.len() - 1])? {
            return Ok(Some((r, pos)));
        }
    }
    if input.len() - pos > MAX_LINE + 1 {
        return Err(ReplyError::LineTooLong);
    }
    Ok(None)
}

fuzz_target!(|input: &[u8]| {
    let whole = parse(input);
    assert_eq!(whole, line_by_line(input));
    match whole {
        Ok(Some((r, used))) => {
            assert!(used > 0 && used <= input.len() && input[used - 1] == b'\n');
            assert!((200..=599).contains(&r.code));
            assert!(!r.lines.is_empty() && r.lines.len() <= MAX_LINES);
            let text = r.to_string();
            assert!(!text.chars().any(char::is_control), "one line, no injection");
            assert!(text.starts_with(&r.code.to_string()));
            if let Some(e) = r.enhanced() {
                assert_eq!(u16::from(e.as_bytes()[0] - b'0'), r.code / 100);
            }
            // The reply's own bytes parse to the same reply.
            assert_eq!(parse(&input[..used]), Ok(Some((r, used))));
        }
        Ok(None) => {
            // Waiting for more never means holding an over-long line.
            let tail = input.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            assert!(input.len() - tail <= MAX_LINE + 1);
        }
        Err(_) => {}
    }
});
