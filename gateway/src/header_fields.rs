//! A message's header block as fields: each field with its folded
//! continuation lines, raw, and the rest (the blank line and the body)
//! untouched. Shared by every stage that reads or rewrites header fields.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_their_folds_and_the_body_is_untouched() {
        let (f, rest) = split(b"A: 1\r\nB: 2\r\n\tmore\r\nC: 3\n\nbody\r\n");
        assert_eq!(f, [&b"A: 1\r\n"[..], b"B: 2\r\n\tmore\r\n", b"C: 3\n"]);
        assert_eq!(rest, b"\nbody\r\n");
        let (f, rest) = split(b"no header end");
        assert_eq!((f, rest), (vec![&b"no header end"[..]], &b""[..]));
        assert!(name_starts_with(b"subject: x", "Subject:"));
    }
}
