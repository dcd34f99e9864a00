//! RTF to text: the words of an `.rtf` attachment, or of the compressed RTF body
//! Outlook puts in winmail.dat, without the markup.
//!
//! What a reader sees comes first, in order: `\'hh` read as Windows-1252, `\uN`
//! as a Unicode character (its `\ucN` fallback characters dropped), and paragraph,
//! line, tab and cell marks as line breaks and tabs, so a number never runs into
//! the next cell. Text a reader does not see (font and style tables, `{\*…}`
//! destinations such as Outlook's `\htmltag` markup, an object's fallback) follows
//! after a line break: a sender could hide an identifier there, and it is still
//! in the file the recipient gets. Only binary destinations (pictures, object
//! data, themes, `\binN` runs) are dropped.

use super::{Ctx, PartKind, PartPath, UnscannableReason};

/// Records an RTF document's text at `path`, and reports it if it is damaged.
pub(crate) fn extract(ctx: &mut Ctx<'_>, path: PartPath, rtf: &[u8]) {
    let r = rtf_text(rtf);
    if !r.balanced {
        ctx.unscannable(
            path.clone(),
            UnscannableReason::corrupt("rtf", "unbalanced groups (truncated or damaged)"),
        );
    }
    let mut text = r.text;
    if !r.hidden.trim().is_empty() {
        text.push('\n');
        text.push_str(&r.hidden);
    }
    ctx.text(path, PartKind::Rtf, text);
}

/// Destinations whose content a reader does not see, but which hold text.
const HIDDEN: &[&str] = &[
    "fonttbl",
    "colortbl",
    "stylesheet",
    "listtable",
    "listoverridetable",
    "revtbl",
    "rsidtbl",
    "object",
    "latentstyles",
    "generator",
    "mmathPr",
    "fldinst",
];

/// Destinations that hold binary data written as hex: never text.
const BINARY: &[&str] = &[
    "pict",
    "objdata",
    "themedata",
    "colorschememapping",
    "datastore",
    "xmlnstbl",
    "blipuid",
];

/// The characters Windows-1252 puts at 0x80–0x9F (elsewhere it matches Latin-1).
const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
];

fn cp1252(b: u8) -> char {
    match b {
        0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// Per-group state, restored when the group closes.
#[derive(Clone, Copy, Default)]
struct Group {
    /// Not shown to a reader: text goes to the hidden buffer.
    hidden: bool,
    /// Binary data: dropped.
    binary: bool,
    /// Fallback characters after `\uN` (`\ucN`, default 1).
    uc: usize,
}

/// An RTF document's text, and whether its groups were balanced.
pub(crate) struct RtfText {
    /// What a reader sees.
    pub(crate) text: String,
    /// Text of destinations a reader does not see (font names, hidden groups).
    pub(crate) hidden: String,
    /// False for a truncated or damaged document (a group left open, or closed
    /// twice): text after the damage may have been taken for markup, so the caller
    /// reports the part rather than pass a possibly partial reading as whole.
    pub(crate) balanced: bool,
}

/// Where the characters of the current group go.
struct Sink {
    text: String,
    hidden: String,
}

impl Sink {
    fn push(&mut self, g: &Group, c: char) {
        if g.binary {
        } else if g.hidden {
            self.hidden.push(c);
        } else {
            self.text.push(c);
        }
    }
}

/// The text of an RTF document. Malformed input yields what could be read, never
/// an error.
pub(crate) fn rtf_text(rtf: &[u8]) -> RtfText {
    let mut balanced = true;
    let mut sink = Sink {
        text: String::with_capacity(rtf.len() / 2),
        hidden: String::new(),
    };
    let mut stack: Vec<Group> = Vec::new();
    let mut cur = Group {
        uc: 1,
        ..Group::default()
    };
    // Fallback characters still to drop after a `\uN`.
    let mut pending_skip = 0usize;
    // True right after `{`: a control word there names the group's destination.
    let mut group_start = false;
    let mut i = 0;
    while i < rtf.len() {
        let c = rtf[i];
        match c {
            b'{' => {
                // Deep nesting costs a few bytes per level; a hostile file of a
                // million braces is bounded by its own size.
                stack.push(cur);
                group_start = true;
                pending_skip = 0;
                i += 1;
            }
            b'}' => {
                if cur.hidden && !cur.binary {
                    sink.hidden.push(' ');
                }
                cur = stack.pop().unwrap_or_else(|| {
                    balanced = false;
                    Group {
                        uc: 1,
                        ..Group::default()
                    }
                });
                group_start = false;
                pending_skip = 0;
                i += 1;
            }
            b'\\' => {
                let at_start = std::mem::take(&mut group_start);
                let Some(&n) = rtf.get(i + 1) else {
                    balanced = false;
                    break;
                };
                if !n.is_ascii_alphabetic() {
                    i += 2;
                    i = control_symbol(rtf, i, n, at_start, &mut cur, &mut pending_skip, &mut sink);
                    continue;
                }
                let start = i + 1;
                let mut j = start;
                while j < rtf.len() && rtf[j].is_ascii_alphabetic() && j - start < 32 {
                    j += 1;
                }
                let word = std::str::from_utf8(&rtf[start..j]).unwrap_or("");
                let num_start = j;
                if j < rtf.len() && rtf[j] == b'-' {
                    j += 1;
                }
                while j < rtf.len() && rtf[j].is_ascii_digit() && j - num_start < 10 {
                    j += 1;
                }
                let param: Option<i64> = std::str::from_utf8(&rtf[num_start..j])
                    .ok()
                    .and_then(|s| s.parse().ok());
                if j < rtf.len() && rtf[j] == b' ' {
                    j += 1; // the delimiter space belongs to the control word
                }
                i = j;
                if at_start && BINARY.contains(&word) {
                    cur.binary = true;
                } else if at_start && HIDDEN.contains(&word) {
                    cur.hidden = true;
                }
                match word {
                    // `\binN`: N raw bytes follow, whatever they are.
                    "bin" => {
                        let n = param.and_then(|p| usize::try_from(p).ok()).unwrap_or(0);
                        i = i.saturating_add(n).min(rtf.len());
                    }
                    "par" | "line" | "row" | "sect" | "page" => sink.push(&cur, '\n'),
                    "tab" | "cell" => sink.push(&cur, '\t'),
                    "uc" => cur.uc = param.map_or(1, |p| p.clamp(0, 16) as usize),
                    "u" => {
                        if let Some(p) = param {
                            // RTF writes code points above 32767 as negative numbers.
                            let cp = if p < 0 { p + 65_536 } else { p };
                            let ch = u32::try_from(cp)
                                .ok()
                                .and_then(char::from_u32)
                                .unwrap_or('\u{FFFD}');
                            sink.push(&cur, ch);
                            pending_skip = cur.uc;
                        }
                    }
                    "emdash" => sink.push(&cur, '—'),
                    "endash" => sink.push(&cur, '–'),
                    "lquote" => sink.push(&cur, '‘'),
                    "rquote" => sink.push(&cur, '’'),
                    "ldblquote" => sink.push(&cur, '“'),
                    "rdblquote" => sink.push(&cur, '”'),
                    "bullet" => sink.push(&cur, '•'),
                    _ => {}
                }
            }
            b'\r' | b'\n' => i += 1, // line breaks in the source are not text
            _ => {
                group_start = false;
                i += 1;
                if pending_skip > 0 {
                    pending_skip -= 1;
                } else {
                    sink.push(&cur, cp1252(c));
                }
            }
        }
    }
    RtfText {
        text: sink.text,
        hidden: sink.hidden,
        balanced: balanced && stack.is_empty(),
    }
}

/// Handles the control symbol `\n` whose argument (if any) starts at `i`; returns
/// where reading resumes.
fn control_symbol(
    rtf: &[u8],
    mut i: usize,
    n: u8,
    at_start: bool,
    cur: &mut Group,
    pending_skip: &mut usize,
    sink: &mut Sink,
) -> usize {
    match n {
        b'*' if at_start => cur.hidden = true,
        b'\'' => {
            let hex = rtf.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok());
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                i += 2;
                if *pending_skip > 0 {
                    *pending_skip -= 1;
                } else {
                    sink.push(cur, cp1252(b));
                }
            }
        }
        b'\\' | b'{' | b'}' => sink.push(cur, char::from(n)),
        b'~' => sink.push(cur, ' '),
        b'_' => sink.push(cur, '-'),
        b'\n' | b'\r' => sink.push(cur, '\n'), // `\` + newline is `\par`
        b'\t' => sink.push(cur, '\t'),
        _ => {} // `\-` optional hyphen, `\|`, `\:` and the like
    }
    i
}

#[cfg(test)]
mod tests {
    use super::rtf_text;

    fn text(rtf: &[u8]) -> String {
        let r = rtf_text(rtf);
        assert!(r.balanced);
        r.text
    }

    #[test]
    fn text_without_markup_tables_or_hidden_destinations() {
        let rtf = br"{\rtf1\ansi\deff0{\fonttbl{\f0 Arial;}}{\colortbl;\red0\green0\blue0;}
{\*\generator Riched20;}\pard\f0\fs20 Patient SSN: 536-90-4399\par
Caf\'e9 \u8364? 12\tab 34\cell\b bold\b0\par}";
        assert_eq!(text(rtf), "Patient SSN: 536-90-4399\nCafé € 12\t34\tbold\n");
    }

    #[test]
    fn hidden_destinations_are_kept_apart_and_binary_ones_dropped() {
        let r = rtf_text(
            br"{\rtf1{\fonttbl{\f0 Arial;}{\f1 SSN 536-90-4399;}}{\*\foo card 4556}
{\pict\pngblip 4556737586899855}\bin4 9999 shown}",
        );
        assert!(r.balanced);
        assert_eq!(r.text, " shown");
        assert!(r.hidden.contains("SSN 536-90-4399;"), "{:?}", r.hidden);
        assert!(r.hidden.contains("card 4556"), "{:?}", r.hidden);
        assert!(!r.hidden.contains("45567375"), "{:?}", r.hidden);
        assert!(!r.hidden.contains("9999"), "{:?}", r.hidden);
    }

    #[test]
    fn outlook_html_tags_are_skipped_and_escapes_kept() {
        let rtf = br"{\rtf1\ansi\fromhtml1 {\*\htmltag19 <body>}Card \{4556\} 7375\htmlrtf \par\htmlrtf0{\*\htmltag0 </body>}}";
        assert_eq!(text(rtf), "Card {4556} 7375\n");
    }

    #[test]
    fn unicode_fallbacks_and_negative_code_points() {
        // \uc2 drops two fallback bytes; -3913 is U+F0B7 written as signed 16-bit.
        let rtf = br"{\rtf1\uc2 A\u955\'3f\'3fB\uc1\u-3913?C}";
        assert_eq!(text(rtf), "A\u{3bb}B\u{f0b7}C");
    }

    #[test]
    fn malformed_input_gives_what_it_can_and_says_so() {
        let extra_close = rtf_text(b"{\\rtf1 abc}}} def \\");
        assert_eq!(extra_close.text, "abc def ");
        assert!(!extra_close.balanced);
        let cut = rtf_text(b"{\\rtf1{\\fonttbl{\\f0 Arial;}}SSN 536-90");
        assert_eq!(cut.text, "SSN 536-90");
        assert!(!cut.balanced);
        assert_eq!(rtf_text(b"{\\rtf1 \\'zz x\\u}").text, "zz x");
        let deep = "{".repeat(100_000) + "x";
        assert_eq!(rtf_text(deep.as_bytes()).text, "x");
    }
}
