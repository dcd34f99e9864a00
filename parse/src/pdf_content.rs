//! The text a PDF content stream shows: the string operands of the text-showing
//! operators (`Tj`, `TJ`, `'`, `"`), decoded with the current font's encoding, with a
//! line break where the text moves to a new line and a space where it moves along one.
//!
//! lopdf's `Content::decode` builds every operation of a page (paths, colours, images)
//! as objects before its text extraction reads a few of them; this tokenizer keeps only
//! what text needs, in one pass over the bytes. It also returns the form XObjects a
//! stream draws (`Do`), whose text the caller reads too (lopdf's extraction skips it).

use lopdf::Encoding;
use std::collections::HashSet;

/// What one content stream showed.
#[derive(Debug, Default)]
pub struct Shown {
    /// Names of the XObjects drawn with `Do`, in order, each once.
    pub xobjects: Vec<Vec<u8>>,
    /// Strings the selected font could not decode (or shown with no font selected).
    pub undecodable: usize,
    /// The first decoding error, for the report.
    pub first_error: Option<String>,
}

/// One operand on the stack: only the kinds the text operators read are kept.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Operand {
    /// A string, as a range of the scratch buffer.
    Str(usize, usize),
    /// A number (kerning in `TJ`, offsets in `Td`/`Tm`).
    Num(f64),
    /// A name, as a range of the scratch buffer.
    Name(usize, usize),
    /// `[` and `]`, so `TJ` sees its array.
    Open,
    Close,
    /// Anything else (booleans, `null`, dictionary brackets).
    Other,
}

/// Operands above this many are dropped: no operator takes more than six, and a
/// stream of endless numbers must not grow the stack without bound.
const MAX_OPERANDS: usize = 4096;

/// Appends the text shown by `content` to `out`; `font` maps a font resource name to
/// its encoding (None when the page has no such font or it has no usable encoding).
pub fn show_text<'e>(
    content: &[u8],
    font: &dyn Fn(&[u8]) -> Option<&'e Encoding<'e>>,
    out: &mut String,
) -> Shown {
    let mut shown = Shown::default();
    let mut drawn: HashSet<Vec<u8>> = HashSet::new();
    let mut ops: Vec<Operand> = Vec::new();
    let mut scratch: Vec<u8> = Vec::new();
    let mut enc: Option<&Encoding<'_>> = None;
    let mut font_selected = false;
    let mut last_tm_y: Option<f64> = None;
    let mut i = 0;
    let n = content.len();
    while i < n {
        let b = content[i];
        match b {
            b'\0' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' => i += 1,
            b'%' => i = skip_line(content, i),
            b'<' if content.get(i + 1) == Some(&b'<') => {
                push(&mut ops, Operand::Other);
                i += 2;
            }
            // Strings and names are decoded into `scratch`; the operand is its range.
            b'(' | b'<' | b'/' => {
                let start = scratch.len();
                let read = match b {
                    b'(' => literal_string,
                    b'<' => hex_string,
                    _ => name,
                };
                i = read(content, i + 1, &mut scratch);
                let range = (start, scratch.len());
                push(
                    &mut ops,
                    match b {
                        b'/' => Operand::Name(range.0, range.1),
                        _ => Operand::Str(range.0, range.1),
                    },
                );
            }
            b'>' => {
                push(&mut ops, Operand::Other);
                i += if content.get(i + 1) == Some(&b'>') {
                    2
                } else {
                    1
                };
            }
            b'[' => {
                push(&mut ops, Operand::Open);
                i += 1;
            }
            b']' => {
                push(&mut ops, Operand::Close);
                i += 1;
            }
            b'+' | b'-' | b'.' | b'0'..=b'9' => {
                let end = token_end(content, i);
                let v = std::str::from_utf8(&content[i..end])
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(0.0);
                push(&mut ops, Operand::Num(v));
                i = end;
            }
            b'{' | b'}' | b')' => i += 1,
            _ => {
                let end = token_end(content, i).max(i + 1);
                let op = &content[i..end];
                i = end;
                let mut text = |s: usize, e: usize, out: &mut String| {
                    write(enc, font_selected, &scratch[s..e], out, &mut shown)
                };
                match op {
                    b"Tf" => {
                        let f = ops.iter().rev().find_map(|o| match *o {
                            Operand::Name(s, e) => Some((s, e)),
                            _ => None,
                        });
                        enc = f.and_then(|(s, e)| font(&scratch[s..e]));
                        font_selected = f.is_some();
                    }
                    b"Tj" => {
                        if let Some((s, e)) = last_str(&ops) {
                            text(s, e, out);
                        }
                    }
                    b"'" | b"\"" => {
                        newline(out);
                        if let Some((s, e)) = last_str(&ops) {
                            text(s, e, out);
                        }
                    }
                    b"TJ" => {
                        for o in &ops {
                            match *o {
                                Operand::Str(s, e) => text(s, e, out),
                                // lopdf's convention: a gap wider than a tenth of
                                // the font size is a space between words.
                                Operand::Num(k) if k < -100.0 => out.push(' '),
                                _ => {}
                            }
                        }
                        out.push(' ');
                    }
                    b"T*" | b"ET" => newline(out),
                    // The last operand is the vertical offset (Td) or position (Tm).
                    b"Td" | b"TD" => match last_num(&ops) {
                        Some(ty) if ty != 0.0 => newline(out),
                        _ => space(out),
                    },
                    b"Tm" => {
                        let y = last_num(&ops);
                        if y.is_some() && y != last_tm_y {
                            newline(out);
                        } else {
                            space(out);
                        }
                        last_tm_y = y;
                    }
                    b"Do" => {
                        if let Some(Operand::Name(s, e)) = ops.last().copied() {
                            // A set beside the list: a hostile stream may draw
                            // millions of names, and checking the list is quadratic.
                            if drawn.insert(scratch[s..e].to_vec()) {
                                shown.xobjects.push(scratch[s..e].to_vec());
                            }
                        }
                    }
                    b"BI" => i = skip_inline_image(content, i),
                    _ => {}
                }
                ops.clear();
                scratch.clear();
            }
        }
    }
    shown
}

fn push(ops: &mut Vec<Operand>, o: Operand) {
    if ops.len() < MAX_OPERANDS {
        ops.push(o);
    }
}

fn last_str(ops: &[Operand]) -> Option<(usize, usize)> {
    ops.iter().rev().find_map(|o| match *o {
        Operand::Str(s, e) => Some((s, e)),
        _ => None,
    })
}

fn last_num(ops: &[Operand]) -> Option<f64> {
    ops.iter().rev().find_map(|o| match *o {
        Operand::Num(v) => Some(v),
        _ => None,
    })
}

/// Decodes one shown string; text shown with no usable font is counted, not guessed.
fn write(
    enc: Option<&Encoding<'_>>,
    font_selected: bool,
    bytes: &[u8],
    out: &mut String,
    shown: &mut Shown,
) {
    let err = match enc {
        Some(e) => match e.write_to_string(bytes, out) {
            Ok(()) => return,
            Err(e) => e.to_string(),
        },
        None if font_selected => "font has no usable encoding".to_string(),
        None => "text shown before a font was selected".to_string(),
    };
    shown.undecodable += 1;
    shown.first_error.get_or_insert(err);
}

/// Ends the current line of `out`, unless it is empty or already ended.
pub fn newline(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn space(out: &mut String) {
    if !out.is_empty() && !out.ends_with([' ', '\n']) {
        out.push(' ');
    }
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'\0'
            | b'\t'
            | b'\n'
            | b'\x0c'
            | b'\r'
            | b' '
            | b'('
            | b')'
            | b'<'
            | b'>'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'/'
            | b'%'
    )
}

fn token_end(c: &[u8], from: usize) -> usize {
    c[from..]
        .iter()
        .position(|&b| is_delimiter(b))
        .map_or(c.len(), |p| from + p)
}

fn skip_line(c: &[u8], from: usize) -> usize {
    c[from..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map_or(c.len(), |p| from + p)
}

/// A `(…)` string from just after its `(`: balanced parentheses, backslash escapes
/// (PDF 32000-1 §7.3.4.2). Returns the index after the closing `)`.
fn literal_string(c: &[u8], mut i: usize, out: &mut Vec<u8>) -> usize {
    let mut depth = 0usize;
    while i < c.len() {
        let b = c[i];
        i += 1;
        match b {
            b'(' => {
                depth += 1;
                out.push(b);
            }
            b')' if depth == 0 => return i,
            b')' => {
                depth -= 1;
                out.push(b);
            }
            b'\\' => {
                let Some(&e) = c.get(i) else { break };
                i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        for _ in 0..2 {
                            match c.get(i) {
                                Some(&d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push(v as u8);
                    }
                    // A backslash before an end of line continues the string.
                    b'\r' => {
                        if c.get(i) == Some(&b'\n') {
                            i += 1;
                        }
                    }
                    b'\n' => {}
                    other => out.push(other),
                }
            }
            _ => out.push(b),
        }
    }
    c.len()
}

/// A `<…>` hex string from just after its `<`; whitespace is ignored and an odd
/// final digit is followed by an implied 0. Returns the index after the `>`.
fn hex_string(c: &[u8], mut i: usize, out: &mut Vec<u8>) -> usize {
    let mut hi: Option<u8> = None;
    while i < c.len() {
        let b = c[i];
        i += 1;
        let v = match b {
            b'>' => break,
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => continue,
        };
        match hi.take() {
            Some(h) => out.push(h << 4 | v),
            None => hi = Some(v),
        }
    }
    if let Some(h) = hi {
        out.push(h << 4);
    }
    i
}

/// A name from just after its `/`, with `#xx` escapes decoded.
fn name(c: &[u8], mut i: usize, out: &mut Vec<u8>) -> usize {
    while i < c.len() && !is_delimiter(c[i]) {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        match (
            c[i],
            c.get(i + 1).copied().and_then(hex),
            c.get(i + 2).copied().and_then(hex),
        ) {
            (b'#', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    i
}

/// Skips an inline image from after `BI`: its dictionary, `ID`, the image bytes, and
/// the `EI` that ends them (an `EI` between whitespace, as readers find it).
fn skip_inline_image(c: &[u8], from: usize) -> usize {
    let ws = |b: u8| matches!(b, b'\0' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let Some(id) = find_token(c, from, b"ID") else {
        return c.len();
    };
    let mut i = id + 3; // "ID" and the single whitespace byte after it
    while i + 2 <= c.len() {
        match memchr::memmem::find(&c[i..], b"EI") {
            Some(p) => {
                let at = i + p;
                let before = at > 0 && ws(c[at - 1]);
                let after = c.get(at + 2).is_none_or(|&b| ws(b));
                if before && after {
                    return at + 2;
                }
                i = at + 2;
            }
            None => break,
        }
    }
    c.len()
}

/// The index of `tok` as a whole token at or after `from`.
fn find_token(c: &[u8], from: usize, tok: &[u8]) -> Option<usize> {
    let mut i = from;
    while let Some(p) = memchr::memmem::find(&c[i.min(c.len())..], tok) {
        let at = i + p;
        let before = at == 0 || is_delimiter(c[at - 1]);
        let after = c.get(at + tok.len()).is_none_or(|&b| is_delimiter(b));
        if before && after {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(content: &str) -> (String, Shown) {
        let win = Encoding::SimpleEncoding(b"WinAnsiEncoding");
        let lookup = |n: &[u8]| (n == b"F1").then_some(&win);
        let mut out = String::new();
        let s = show_text(content.as_bytes(), &lookup, &mut out);
        (out, s)
    }

    #[test]
    fn text_operators_lines_and_spaces() {
        let (t, s) = shown(
            "BT /F1 12 Tf 72 700 Td (Patient SSN:) Tj 80 0 Td (536-90-4399) Tj 0 -14 Td \
             [(Card ) -20 (4556) -250 (7375)] TJ T* (next) ' 1 2 (third) \" ET",
        );
        assert_eq!(
            t,
            "Patient SSN: 536-90-4399\nCard 4556 7375 \nnext\nthird\n"
        );
        assert_eq!(s.undecodable, 0);
    }

    #[test]
    fn strings_escapes_hex_and_nesting() {
        let (t, _) = shown(
            r"BT /F1 1 Tf (a\(b\) (nested) \101\102\060 line\
cont) Tj <48 65 6C6C 6F> Tj <414> Tj ET",
        );
        assert_eq!(t, "a(b) (nested) AB0 linecontHelloA@\n");
    }

    #[test]
    fn inline_images_comments_and_form_xobjects() {
        let (t, s) = shown(
            "q BI /W 4 /H 1 /BPC 8 /CS /G ID \x00(Tj)EIx EI Q % (hidden) Tj\n\
             BT /F1 9 Tf (after) Tj ET /Fm0 Do /Im1 Do /Fm0 Do",
        );
        assert_eq!(t, "after\n");
        assert_eq!(s.xobjects, vec![b"Fm0".to_vec(), b"Im1".to_vec()]);
    }

    #[test]
    fn text_without_a_usable_font_is_counted() {
        let (t, s) = shown("BT (before) Tj /F9 1 Tf (unknown) Tj ET");
        assert_eq!(t, "");
        assert_eq!(s.undecodable, 2);
        assert!(s.first_error.unwrap().contains("before a font"));
    }

    #[test]
    fn hostile_streams_end() {
        for c in [
            "(unterminated \\",
            "<abc",
            "BI /W 1 ID no end",
            "[[[[[[[[[[ TJ",
            "/#4",
            "99999999999999999999999999 1e400 -.- Td",
        ] {
            let _ = shown(c);
        }
        let many = "1 ".repeat(100_000) + "Td";
        let (t, _) = shown(&many);
        assert_eq!(t, "");
    }
}
