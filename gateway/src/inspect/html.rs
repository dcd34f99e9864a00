//! HTML to text for scanning: a single linear pass, no DOM, no recursion.
//!
//! DLP needs the words a reader sees (and a few they do not: `alt` and `title` text,
//! hidden elements), not layout, so a small tokenizer is enough and stays safe on any
//! input: script, style and comments are dropped, block tags become line breaks (so
//! values in separate cells stay separate), entities are decoded.

/// Tags whose content is never text a reader sees (and would only add noise).
const SKIP_CONTENT: &[&str] = &["script", "style", "template", "svg", "math"];

/// Tags that end a line (block-level), so adjacent cells or paragraphs do not merge.
const BLOCK: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "title",
    "tr",
    "ul",
];

/// Attributes whose values are text for a reader (tooltips, image descriptions).
const TEXT_ATTRS: &[&str] = &["alt", "title", "placeholder", "value"];

/// Converts HTML to plain text: tags removed, script/style/comments dropped, entities
/// decoded, block elements on their own lines. Linear in the input.
pub fn html_to_text(html: &str) -> String {
    let b = html.as_bytes();
    let mut out = String::with_capacity(html.len() / 2);
    let mut i = 0;
    let mut text_start = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        push_text(&mut out, &html[text_start..i]);
        if html[i..].starts_with("<!--") {
            i = find(html, i + 4, "-->").map_or(b.len(), |e| e + 3);
            text_start = i;
            continue;
        }
        // `<` followed by something that cannot start a tag is text ("a < b").
        let next = b.get(i + 1).copied().unwrap_or(b' ');
        if !(next.is_ascii_alphabetic() || next == b'/' || next == b'!' || next == b'?') {
            out.push('<');
            i += 1;
            text_start = i;
            continue;
        }
        let end = tag_end(b, i + 1);
        let tag = &html[i + 1..end.min(b.len())];
        i = (end + 1).min(b.len());
        let closing = tag.starts_with('/');
        let name = tag_name(tag.trim_start_matches('/'));
        if !closing {
            for v in text_attrs(tag) {
                out.push(' ');
                push_text(&mut out, v);
                out.push(' ');
            }
        }
        if BLOCK.contains(&name.as_str()) {
            out.push('\n');
        } else {
            // Inline tags separate words in practice (`<span>a</span><span>b</span>`
            // renders as "ab", but a space here cannot join two values into one).
            if !out.ends_with([' ', '\n']) && !out.is_empty() && !inline_joins(&name) {
                out.push(' ');
            }
        }
        if !closing && SKIP_CONTENT.contains(&name.as_str()) && !tag.ends_with('/') {
            let close = format!("</{name}");
            i = find_ci(html, i, &close).unwrap_or(b.len());
        }
        text_start = i;
    }
    push_text(&mut out, &html[text_start.min(b.len())..]);
    out
}

/// Inline formatting tags that may split one word (`<b>12</b>3`); no space is added.
fn inline_joins(name: &str) -> bool {
    matches!(
        name,
        "b" | "i" | "u" | "em" | "strong" | "span" | "font" | "a" | "small" | "sub" | "sup"
    )
}

/// Index of the `>` closing a tag that starts at `from`, skipping quoted attribute
/// values. As in a browser, a quote opens a value only after `=`: a stray quote
/// elsewhere in a tag (`<p x">`) is an ordinary character, or it would hide the
/// rest of the document from the scan while the recipient still sees it.
fn tag_end(b: &[u8], from: usize) -> usize {
    let mut quote = None;
    let mut after_eq = false;
    let mut j = from;
    while j < b.len() {
        let c = b[j];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'>' => return j,
                b'"' | b'\'' if after_eq => quote = Some(c),
                b'=' => after_eq = true,
                c if c.is_ascii_whitespace() => {}
                _ => after_eq = false,
            },
        }
        if quote.is_some() {
            after_eq = false;
        }
        j += 1;
    }
    b.len()
}

fn tag_name(tag: &str) -> String {
    tag.bytes()
        .take_while(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase() as char)
        .collect()
}

/// Values of reader-visible attributes (`alt`, `title`...) in a tag's source.
fn text_attrs(tag: &str) -> Vec<&str> {
    let mut vals = Vec::new();
    let b = tag.as_bytes();
    let mut j = 0;
    while j < b.len() {
        if !b[j].is_ascii_alphabetic() || (j > 0 && !b[j - 1].is_ascii_whitespace()) {
            j += 1;
            continue;
        }
        let name_end = j + tag[j..]
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'-')
            .count();
        let name = &tag[j..name_end];
        let mut k = name_end;
        while k < b.len() && b[k].is_ascii_whitespace() {
            k += 1;
        }
        if k >= b.len() || b[k] != b'=' {
            j = name_end.max(j + 1);
            continue;
        }
        k += 1;
        while k < b.len() && b[k].is_ascii_whitespace() {
            k += 1;
        }
        let (vs, ve) = match b.get(k) {
            Some(&q @ (b'"' | b'\'')) => {
                let e = tag[k + 1..].find(q as char).map_or(b.len(), |e| k + 1 + e);
                (k + 1, e)
            }
            Some(_) => {
                let e = tag[k..]
                    .find(|c: char| c.is_ascii_whitespace())
                    .map_or(b.len(), |e| k + e);
                (k, e)
            }
            None => (k, k),
        };
        if TEXT_ATTRS.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            vals.push(&tag[vs..ve]);
        }
        j = ve.max(j + 1);
    }
    vals
}

fn find(s: &str, from: usize, pat: &str) -> Option<usize> {
    s.get(from..)?.find(pat).map(|p| from + p)
}

/// ASCII-case-insensitive search for `pat` (lowercase) from `from`.
fn find_ci(s: &str, from: usize, pat: &str) -> Option<usize> {
    let hay = s.as_bytes().get(from..)?;
    let p = pat.as_bytes();
    hay.windows(p.len())
        .position(|w| w.eq_ignore_ascii_case(p))
        .map(|x| from + x)
}

/// Appends text with entities decoded and whitespace runs collapsed to one space.
fn push_text(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        push_ws(out, &rest[..amp]);
        let after = &rest[amp + 1..];
        match decode_entity(after) {
            Some((c, used)) => {
                push_ws(out, c.encode_utf8(&mut [0; 4]));
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    push_ws(out, rest);
}

/// Appends `s` with each run of whitespace (Unicode's, as `char::is_whitespace`)
/// collapsed to one space; runs of other text are copied whole.
fn push_ws(out: &mut String, s: &str) {
    let b = s.as_bytes();
    let (mut run, mut i) = (0, 0);
    while i < b.len() {
        let (ws, len) = if b[i] < 0x80 {
            (
                matches!(b[i], b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' '),
                1,
            )
        } else {
            let c = s[i..].chars().next().unwrap_or(' ');
            (c.is_whitespace(), c.len_utf8())
        };
        if ws {
            out.push_str(&s[run..i]);
            if !out.ends_with([' ', '\n']) && !out.is_empty() {
                out.push(' ');
            }
            run = i + len;
        }
        i += len;
    }
    out.push_str(&s[run..]);
}

/// Decodes the entity at the start of `s` (after `&`): the character and the bytes used,
/// including a `;` when present.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    let semi = |n: usize| usize::from(s.as_bytes().get(n) == Some(&b';'));
    if let Some(num) = s.strip_prefix('#') {
        let (digits, radix, skip) = match num.strip_prefix(['x', 'X']) {
            Some(h) => (h, 16, 2),
            None => (num, 10, 1),
        };
        let len = digits
            .bytes()
            .take(8)
            .take_while(|c| (*c as char).is_digit(radix))
            .count();
        if len == 0 {
            return None;
        }
        let v = u32::from_str_radix(&digits[..len], radix).ok()?;
        let c = char::from_u32(v)
            .filter(|c| *c != '\0')
            .unwrap_or('\u{FFFD}');
        return Some((c, skip + len + semi(skip + len)));
    }
    let len = s
        .bytes()
        .take(10)
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    let c = match &s[..len] {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" | "ensp" | "emsp" | "thinsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "middot" => '·',
        "bull" => '•',
        "shy" | "zwnj" | "zwj" => '\u{AD}',
        _ => return None,
    };
    Some((c, len + semi(len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_runs_collapse_to_one_space_unicode_included() {
        let mut out = String::new();
        push_ws(
            &mut out,
            "  a\t\u{a0}\u{2003}b\u{e9}\r\n\u{3000}c\u{1F600}  ",
        );
        assert_eq!(out, "a b\u{e9} c\u{1F600} ");
        push_ws(&mut out, " \u{b}d");
        assert_eq!(out, "a b\u{e9} c\u{1F600} d");
    }

    #[test]
    fn drops_script_style_comments_and_decodes_entities() {
        let t = html_to_text(
            "<html><head><style>p{x:1}</style><script>var ssn='1';</script></head>\
             <body><!-- 123-45-6789 --><p>SSN&nbsp;536&#45;90&#x2d;4399 &amp; more</p>\
             <img alt=\"DOB 01/02/1980\"></body></html>",
        );
        assert!(t.contains("SSN 536-90-4399 & more"), "{t:?}");
        assert!(t.contains("DOB 01/02/1980"), "{t:?}");
        assert!(!t.contains("var ssn"), "{t:?}");
        assert!(!t.contains("123-45-6789"), "{t:?}");
    }

    #[test]
    fn cells_do_not_merge_and_inline_tags_do_not_split() {
        let t = html_to_text("<table><tr><td>123</td><td>456</td></tr></table><b>53</b>6");
        assert!(t.contains("123\n"), "{t:?}");
        assert!(t.contains("536"), "{t:?}");
    }

    #[test]
    fn a_stray_quote_in_a_tag_does_not_hide_the_rest() {
        let t = html_to_text("<p x\">Patient SSN 536-90-4399</p><a title = 'q>r'>s</a>");
        assert!(t.contains("Patient SSN 536-90-4399"), "{t:?}");
        assert!(t.contains('s') && !t.contains("r'"), "{t:?}");
    }

    #[test]
    fn malformed_html_never_panics() {
        for s in [
            "<",
            "<a",
            "<a href='x",
            "&#",
            "&#x;",
            "&#99999999999;",
            "<!--",
            "<script>",
            "<<<>>>",
            "a < b > c",
            "&",
            "<p title=\"é",
            "<é>",
            "<p ='x'>",
            "&#x1F600",
        ] {
            let _ = html_to_text(s);
        }
    }
}
