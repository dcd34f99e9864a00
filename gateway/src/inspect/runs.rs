//! Readable text inside binary formats (legacy Office streams, TNEF
//! properties): every run of at least four readable characters, read as
//! Windows-1252 bytes and as (Latin-1) UTF-16LE at both alignments — what
//! `strings` would show, which is where typed identifiers live.

/// Shortest run of readable characters kept (shorter ones are mostly noise).
const MIN_RUN: usize = 4;

/// The readable runs of `data`, one per line.
pub(crate) fn text_runs(data: &[u8]) -> String {
    let mut out = String::new();
    byte_runs(data, &mut out);
    utf16_runs(data, &mut out);
    out
}

/// A readable character: printable, or a line or tab break.
fn readable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (!c.is_control() && c != '\u{FFFD}')
}

/// Runs of at least [`MIN_RUN`] readable characters, read as Windows-1252
/// bytes (Latin-1 for the upper half), one per line.
fn byte_runs(data: &[u8], out: &mut String) {
    let mut run = String::new();
    for &b in data {
        let c = b as char;
        if (0x20..0x7F).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r') || b >= 0xA0 {
            run.push(c);
        } else {
            flush(&mut run, out);
        }
    }
    flush(&mut run, out);
}

/// Runs of at least [`MIN_RUN`] readable UTF-16LE characters, at both byte alignments.
fn utf16_runs(data: &[u8], out: &mut String) {
    for offset in 0..2 {
        let mut run = String::new();
        for pair in data.get(offset..).unwrap_or_default().chunks_exact(2) {
            let unit = u16::from_le_bytes([pair[0], pair[1]]);
            // Latin text as UTF-16 has a zero high byte: those runs are what
            // byte_runs cannot see. Other code points are left out, because
            // any pair of ASCII bytes is also a "readable" CJK character.
            match char::from_u32(u32::from(unit)) {
                Some(c)
                    if (0x20..0x100).contains(&unit)
                        && readable(c)
                        && !(0x7F..0xA0).contains(&unit) =>
                {
                    run.push(c)
                }
                Some('\t' | '\n' | '\r') => run.push(' '),
                _ => flush(&mut run, out),
            }
        }
        flush(&mut run, out);
    }
}

fn flush(run: &mut String, out: &mut String) {
    if run.trim().chars().count() >= MIN_RUN {
        out.push_str(run.trim());
        out.push('\n');
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_text_in_either_encoding_are_kept() {
        let mut data = b"\x00\x01SSN 457-12-3456\x00\x02ab\x00".to_vec();
        for c in "Patient Pat".encode_utf16() {
            data.extend_from_slice(&c.to_le_bytes());
        }
        let out = text_runs(&data);
        assert!(out.contains("SSN 457-12-3456"), "{out:?}");
        assert!(out.contains("Patient Pat"), "{out:?}");
        assert!(
            !out.lines().any(|l| l == "ab"),
            "short runs are noise: {out:?}"
        );
    }
}
