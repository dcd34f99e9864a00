//! A pull tokenizer for the XML of Office parts: element starts and ends, and the
//! character data between them. Office parts are machine-written and DTD-free, and
//! the scanner needs only local names, one attribute (a cell's `t`) and the text, so
//! it finds markup with `memchr` and never builds attribute lists or events it does
//! not use (quick-xml did, and was a sixth of the inspect stage on Office mail).
//!
//! Malformed input is an error, as a strict reader would report it: a tag, comment,
//! CDATA section or declaration that never ends, or text that is not UTF-8.
//! End tags are not matched against starts: a damaged part is still read.

use memchr::{memchr, memchr3, memmem};

/// One piece of a document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Token<'a> {
    /// `<name attrs>`.
    Start {
        /// The local name (prefix dropped).
        local: &'a [u8],
        /// The raw attribute text (see [`attr`]).
        attrs: &'a [u8],
    },
    /// `<name attrs/>`.
    Empty {
        /// The local name (prefix dropped).
        local: &'a [u8],
        /// The raw attribute text (see [`attr`]).
        attrs: &'a [u8],
    },
    /// `</name>`.
    End {
        /// The local name (prefix dropped).
        local: &'a [u8],
    },
    /// Character data as written (entities unresolved; see `push_text`).
    Text(&'a [u8]),
    /// The content of a CDATA section, taken literally.
    CData(&'a [u8]),
}

/// Why a part is not well-formed enough to read on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Markup (a tag, comment, CDATA section...) that never ends.
    #[error("{what} at byte {at} never ends")]
    Unterminated {
        /// What kind of markup.
        what: &'static str,
        /// Where it starts.
        at: usize,
    },
    /// Character data that is not UTF-8.
    #[error("text is not UTF-8: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
}

/// The tokens of `data`, in order; the first error ends the stream.
pub struct Tokens<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Tokens<'a> {
    /// Tokens of `data` from its start.
    pub fn new(data: &'a [u8]) -> Self {
        Tokens { data, pos: 0 }
    }

    fn unterminated(&mut self, what: &'static str) -> Option<Result<Token<'a>, XmlError>> {
        let at = self.pos;
        self.pos = self.data.len();
        Some(Err(XmlError::Unterminated { what, at }))
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Result<Token<'a>, XmlError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let d = self.data;
            let rest = d.get(self.pos..).filter(|r| !r.is_empty())?;
            if rest[0] != b'<' {
                let end = memchr(b'<', rest).unwrap_or(rest.len());
                self.pos += end;
                return Some(Ok(Token::Text(&rest[..end])));
            }
            match rest.get(1) {
                Some(b'?') => match memmem::find(rest, b"?>") {
                    Some(e) => self.pos += e + 2,
                    None => return self.unterminated("a processing instruction"),
                },
                Some(b'!') if rest.starts_with(b"<!--") => match memmem::find(&rest[4..], b"-->") {
                    Some(e) => self.pos += 4 + e + 3,
                    None => return self.unterminated("a comment"),
                },
                Some(b'!') if rest.starts_with(b"<![CDATA[") => {
                    match memmem::find(&rest[9..], b"]]>") {
                        Some(e) => {
                            self.pos += 9 + e + 3;
                            return Some(Ok(Token::CData(&rest[9..9 + e])));
                        }
                        None => return self.unterminated("a CDATA section"),
                    }
                }
                Some(b'!') => match declaration_end(rest) {
                    Some(e) => self.pos += e,
                    None => return self.unterminated("a declaration"),
                },
                Some(b'/') => match memchr(b'>', rest) {
                    Some(e) => {
                        self.pos += e + 1;
                        let name = trim_end(&rest[2..e]);
                        return Some(Ok(Token::End { local: local(name) }));
                    }
                    None => return self.unterminated("an end tag"),
                },
                _ => match tag_end(rest) {
                    Some(e) => {
                        self.pos += e + 1;
                        let inner = &rest[1..e];
                        let (inner, empty) = match inner.strip_suffix(b"/") {
                            Some(i) => (i, true),
                            None => (inner, false),
                        };
                        let name_len = inner
                            .iter()
                            .position(|b| b.is_ascii_whitespace())
                            .unwrap_or(inner.len());
                        let (local, attrs) = (local(&inner[..name_len]), &inner[name_len..]);
                        return Some(Ok(if empty {
                            Token::Empty { local, attrs }
                        } else {
                            Token::Start { local, attrs }
                        }));
                    }
                    None => return self.unterminated("a tag"),
                },
            }
        }
    }
}

/// The index of the `>` that ends the start tag at the head of `s`; a `>` inside a
/// quoted attribute value does not end it.
fn tag_end(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    loop {
        let p = i + memchr3(b'>', b'"', b'\'', &s[i..])?;
        if s[p] == b'>' {
            return Some(p);
        }
        i = p + 1 + memchr(s[p], &s[p + 1..])? + 1;
    }
}

/// The index after a `<!…>` declaration (a DOCTYPE may hold a `[…]` subset).
fn declaration_end(s: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    for (i, &b) in s.iter().enumerate().skip(2) {
        match b {
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b'>' if depth == 0 => return Some(i + 1),
            _ => {}
        }
    }
    None
}

fn trim_end(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &s[..n]
}

/// A qualified name without its prefix (`w:t` → `t`).
fn local(name: &[u8]) -> &[u8] {
    memchr(b':', name).map_or(name, |p| &name[p + 1..])
}

/// The value of attribute `name` (matched by local name) in a tag's attribute text.
pub fn attr<'a>(attrs: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut rest = attrs;
    loop {
        let eq = memchr(b'=', rest)?;
        let key = local(rest[..eq].trim_ascii());
        let after = rest[eq + 1..].trim_ascii_start();
        let quote = *after.first()?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let len = memchr(quote, &after[1..])?;
        if key == name {
            return Some(&after[1..1 + len]);
        }
        rest = &after[len + 2..];
    }
}

/// Appends character data with its entity and character references resolved; an
/// unknown entity becomes a space. Text that is not UTF-8 is an error.
pub fn push_text(raw: &[u8], out: &mut String) -> Result<(), XmlError> {
    let text = std::str::from_utf8(raw)?;
    let mut rest = text;
    while let Some(amp) = memchr(b'&', rest.as_bytes()) {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(semi) = after.bytes().take(12).position(|b| b == b';') else {
            out.push('&');
            rest = after;
            continue;
        };
        out.push(reference(&after[..semi]));
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(())
}

/// The character a reference (`amp`, `#65`, `#x41`) stands for.
fn reference(r: &str) -> char {
    let code = match r.strip_prefix('#') {
        Some(n) => match n.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => n.parse().ok(),
        },
        None => None,
    };
    match (code.and_then(char::from_u32), r) {
        (Some(c), _) => c,
        (None, "amp") => '&',
        (None, "lt") => '<',
        (None, "gt") => '>',
        (None, "quot") => '"',
        (None, "apos") => '\'',
        _ => ' ',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Vec<Result<Token<'_>, XmlError>> {
        Tokens::new(s.as_bytes()).collect()
    }

    #[test]
    fn tags_text_and_markup_to_skip() {
        let t = tokens(
            "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"v\">]><w:p a=\"1>2\" b='x'>\
             <!-- c<> --><w:t>Hi &amp; &#65;&#x42;&bogus;</w:t><w:br/><![CDATA[<raw>]]></w:p >",
        );
        let t: Vec<Token<'_>> = t.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            t,
            [
                Token::Start {
                    local: b"p",
                    attrs: b" a=\"1>2\" b='x'"
                },
                Token::Start {
                    local: b"t",
                    attrs: b""
                },
                Token::Text(b"Hi &amp; &#65;&#x42;&bogus;"),
                Token::End { local: b"t" },
                Token::Empty {
                    local: b"br",
                    attrs: b""
                },
                Token::CData(b"<raw>"),
                Token::End { local: b"p" },
            ]
        );
        let mut out = String::new();
        push_text(b"Hi &amp; &#65;&#x42;&bogus; & alone", &mut out).unwrap();
        assert_eq!(out, "Hi & AB  & alone");
    }

    #[test]
    fn attributes_by_local_name() {
        let a = b" r=\"A1\" x:t = 's' s=\"2\"";
        assert_eq!(attr(a, b"t"), Some(&b"s"[..]));
        assert_eq!(attr(a, b"r"), Some(&b"A1"[..]));
        assert_eq!(attr(a, b"q"), None);
        assert_eq!(attr(b" t=unquoted", b"t"), None);
    }

    #[test]
    fn unterminated_markup_and_bad_text_are_errors() {
        for s in [
            "<a",
            "<a b=\"x>",
            "</a",
            "<!-- x",
            "<![CDATA[ x",
            "<?pi",
            "<!DOCTYPE [",
        ] {
            let last = tokens(s).pop().unwrap();
            assert!(last.unwrap_err().to_string().contains("never ends"), "{s}");
        }
        assert!(push_text(b"\xff", &mut String::new()).is_err());
    }
}
