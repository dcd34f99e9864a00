#![no_main]
//! Any bytes as DATA, split at an arbitrary point: the decoder must agree
//! with itself however the input is chunked, never end on anything but
//! <CRLF>.<CRLF>, and only ever emit CRLF line endings.
use libfuzzer_sys::fuzz_target;
use sealgate_parse::smtp::data::{BareLineEnding, DataReader};

fuzz_target!(|input: &[u8]| {
    if input.is_empty() {
        return;
    }
    let split = input[0] as usize % input.len();
    let body = &input[1..];
    for policy in [BareLineEnding::Reject, BareLineEnding::Normalize] {
        let mut whole = DataReader::new(policy, 1000);
        let mut out_whole = Vec::new();
        let fed = whole.feed(body, &mut out_whole);

        let mut parts = DataReader::new(policy, 1000);
        let mut out_parts = Vec::new();
        let cut = split.min(body.len());
        let a = parts.feed(&body[..cut], &mut out_parts);
        let consumed = if a.done { a.consumed } else { cut + parts.feed(&body[cut..], &mut out_parts).consumed };
        assert_eq!(out_whole, out_parts);
        assert_eq!(fed.consumed, consumed);
        assert_eq!(whole.violation(), parts.violation());
        if fed.done {
            // The terminator is exactly CRLF . CRLF (or ". CRLF" at the very start).
            let end = &body[..fed.consumed];
            assert!(end.ends_with(b"\r\n.\r\n") || end == b".\r\n");
        }
        if policy == BareLineEnding::Normalize {
            for (i, &b) in out_whole.iter().enumerate() {
                if b == b'\n' {
                    assert!(i > 0 && out_whole[i - 1] == b'\r');
                }
                if b == b'\r' {
                    assert_eq!(out_whole.get(i + 1), Some(&b'\n'));
                }
            }
        }
    }
});
