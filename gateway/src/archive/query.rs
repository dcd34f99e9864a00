//! The archivist's query language, in the style of Gmail and Google Vault:
//!
//! ```text
//! from:alice@x.org to:*@partner.com subject:"lab results" after:2026-01-01
//! before:2026-02-01 has:attachment dlp:us_ssn direction:outbound -draft
//! (invoice OR receipt) "exact phrase" larger:1M
//! ```
//!
//! Terms are ANDed; `OR` joins the terms on either side (tighter than the
//! implicit AND, as in Gmail); `-` negates; parentheses group; `AND` may be
//! written and means nothing more. A word ending in `*` matches as a prefix,
//! and in an address `*` matches anything (`*@partner.com`). A query that
//! does not parse gets an error naming the character where it went wrong.
//!
//! This module only parses; `search.rs` turns the tree into index queries.

use chrono::NaiveDate;
use std::fmt;

/// Address fields (matched as whole addresses, `*` as a wildcard, a bare
/// domain as "any address at it").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressField {
    /// Header From and the envelope sender.
    From,
    /// Header To.
    To,
    /// Header Cc.
    Cc,
    /// Envelope recipients not in To or Cc.
    Bcc,
    /// Any envelope recipient.
    Rcpt,
}

/// Text fields (words, phrases, prefixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    /// The subject.
    Subject,
    /// Body text (plain and HTML).
    Body,
    /// Attachment file names.
    Filename,
    /// Text of attachments (Office, PDF, text, archives).
    Attachment,
    /// Free text: all of the above and the addresses.
    Any,
}

/// Exact keyword fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordField {
    /// `inbound` or `outbound`.
    Direction,
    /// A DLP detector id that found something.
    Dlp,
    /// A seal method used for a recipient: tls, pgp, smime, portal.
    Seal,
    /// The Message-ID (without angle brackets).
    MessageId,
}

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// An address field matches a pattern (lower case; `*` wildcards).
    Address(AddressField, String),
    /// Words of a text field: one word, a prefix (`word*`) or a phrase.
    Text(TextField, TextMatch),
    /// An exact keyword.
    Keyword(KeywordField, String),
    /// Received on or after this day (UTC).
    After(NaiveDate),
    /// Received before this day (UTC).
    Before(NaiveDate),
    /// Has at least one attachment.
    HasAttachment,
    /// Larger than this many octets.
    Larger(u64),
    /// Smaller than this many octets.
    Smaller(u64),
}

/// How a text condition matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextMatch {
    /// One word.
    Word(String),
    /// Words starting with this.
    Prefix(String),
    /// These words in this order.
    Phrase(String),
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Everything (the empty query).
    All,
    /// One condition.
    Cond(Condition),
    /// All of these.
    And(Vec<Query>),
    /// Any of these.
    Or(Vec<Query>),
    /// Not this.
    Not(Box<Query>),
}

/// A query that does not parse: where (a character offset) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query error at character {at}: {message}")]
pub struct QueryError {
    /// Character offset (0-based) of the problem.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

impl QueryError {
    fn new(at: usize, message: impl Into<String>) -> Self {
        QueryError {
            at,
            message: message.into(),
        }
    }

    /// The query with a caret under the problem, for a terminal.
    pub fn pointed(&self, query: &str) -> String {
        format!("{query}\n{}^ {}", " ".repeat(self.at), self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Minus,
    Or,
    And,
    /// `field:` followed by its value (word or quoted), or a bare value.
    Term {
        field: Option<String>,
        value: String,
        quoted: bool,
    },
}

/// Splits `q` into tokens with their character offsets.
fn lex(q: &str) -> Result<Vec<(usize, Tok)>, QueryError> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let word_end = |mut j: usize| {
        while j < chars.len() && !chars[j].is_whitespace() && !matches!(chars[j], '(' | ')' | '"') {
            j += 1;
        }
        j
    };
    let quoted = |start: usize| -> Result<(String, usize), QueryError> {
        let mut j = start + 1;
        let mut s = String::new();
        while j < chars.len() && chars[j] != '"' {
            s.push(chars[j]);
            j += 1;
        }
        if j == chars.len() {
            return Err(QueryError::new(start, "unclosed quote"));
        }
        Ok((s, j + 1))
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let at = i;
        match c {
            '(' => {
                out.push((at, Tok::Open));
                i += 1;
            }
            ')' => {
                out.push((at, Tok::Close));
                i += 1;
            }
            '-' if i + 1 < chars.len() && !chars[i + 1].is_whitespace() => {
                out.push((at, Tok::Minus));
                i += 1;
            }
            '"' => {
                let (s, next) = quoted(i)?;
                out.push((
                    at,
                    Tok::Term {
                        field: None,
                        value: s,
                        quoted: true,
                    },
                ));
                i = next;
            }
            _ => {
                let end = word_end(i);
                let word: String = chars[i..end].iter().collect();
                if let Some((field, rest)) = word.split_once(':') {
                    if field.is_empty() {
                        return Err(QueryError::new(at, "a field name is missing before ':'"));
                    }
                    if rest.is_empty() && end < chars.len() && chars[end] == '"' {
                        let (s, next) = quoted(end)?;
                        out.push((
                            at,
                            Tok::Term {
                                field: Some(field.to_ascii_lowercase()),
                                value: s,
                                quoted: true,
                            },
                        ));
                        i = next;
                        continue;
                    }
                    if rest.is_empty() {
                        return Err(QueryError::new(end, format!("`{field}:` needs a value")));
                    }
                    out.push((
                        at,
                        Tok::Term {
                            field: Some(field.to_ascii_lowercase()),
                            value: rest.to_string(),
                            quoted: false,
                        },
                    ));
                } else if word == "OR" {
                    out.push((at, Tok::Or));
                } else if word == "AND" {
                    out.push((at, Tok::And));
                } else {
                    out.push((
                        at,
                        Tok::Term {
                            field: None,
                            value: word,
                            quoted: false,
                        },
                    ));
                }
                i = end;
            }
        }
    }
    Ok(out)
}

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 4096;
/// Deepest nesting of parentheses and `-` accepted (the parser and the
/// compiled query recurse once per level).
pub const MAX_DEPTH: usize = 32;

/// Parses an archivist's query.
pub fn parse(q: &str) -> Result<Query, QueryError> {
    let end = q.chars().count();
    if end > MAX_QUERY_CHARS {
        return Err(QueryError::new(
            MAX_QUERY_CHARS,
            format!("the query is longer than {MAX_QUERY_CHARS} characters"),
        ));
    }
    let toks = lex(q)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end,
        depth: 0,
    };
    let query = p.and_list()?;
    if let Some((at, _)) = p.toks.get(p.pos) {
        return Err(QueryError::new(*at, "unexpected ')'"));
    }
    Ok(query)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    /// Open parentheses and `-` around the current term.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(a, _)| *a)
    }

    /// Terms ANDed until the end or a closing parenthesis.
    fn and_list(&mut self) -> Result<Query, QueryError> {
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None | Some(Tok::Close) => break,
                Some(Tok::And) => {
                    if items.is_empty() {
                        return Err(QueryError::new(self.at(), "AND needs a term before it"));
                    }
                    self.pos += 1;
                    if matches!(self.peek(), None | Some(Tok::Close)) {
                        return Err(QueryError::new(self.at(), "AND needs a term after it"));
                    }
                }
                _ => items.push(self.or_group()?),
            }
        }
        Ok(match items.len() {
            0 => Query::All,
            1 => items.pop().expect("one item"),
            _ => Query::And(items),
        })
    }

    fn or_group(&mut self) -> Result<Query, QueryError> {
        let mut alts = vec![self.unary()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            if matches!(
                self.peek(),
                None | Some(Tok::Close) | Some(Tok::Or) | Some(Tok::And)
            ) {
                return Err(QueryError::new(self.at(), "OR needs a term after it"));
            }
            alts.push(self.unary()?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().expect("one alternative")
        } else {
            Query::Or(alts)
        })
    }

    fn unary(&mut self) -> Result<Query, QueryError> {
        let at = self.at();
        if matches!(self.peek(), Some(Tok::Minus) | Some(Tok::Open)) {
            if self.depth >= MAX_DEPTH {
                return Err(QueryError::new(
                    at,
                    format!("nested deeper than {MAX_DEPTH} levels"),
                ));
            }
            self.depth += 1;
            let q = self.unary_inner(at);
            self.depth -= 1;
            return q;
        }
        self.unary_inner(at)
    }

    fn unary_inner(&mut self, at: usize) -> Result<Query, QueryError> {
        match self.peek().cloned() {
            Some(Tok::Minus) => {
                self.pos += 1;
                if matches!(self.peek(), None | Some(Tok::Close)) {
                    return Err(QueryError::new(at, "'-' needs a term after it"));
                }
                Ok(Query::Not(Box::new(self.unary()?)))
            }
            Some(Tok::Open) => {
                self.pos += 1;
                let inner = self.and_list()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err(QueryError::new(at, "unclosed '('"));
                }
                self.pos += 1;
                if inner == Query::All {
                    return Err(QueryError::new(at, "empty parentheses"));
                }
                Ok(inner)
            }
            Some(Tok::Term {
                field,
                value,
                quoted,
            }) => {
                self.pos += 1;
                Ok(Query::Cond(condition(
                    at,
                    field.as_deref(),
                    &value,
                    quoted,
                )?))
            }
            Some(Tok::Or) => Err(QueryError::new(at, "OR needs a term before it")),
            Some(Tok::And) => Err(QueryError::new(at, "AND needs a term before it")),
            Some(Tok::Close) => Err(QueryError::new(at, "unexpected ')'")),
            None => Err(QueryError::new(at, "a term is missing")),
        }
    }
}

/// The condition `field:value` (or a bare value) at offset `at`.
fn condition(
    at: usize,
    field: Option<&str>,
    value: &str,
    quoted: bool,
) -> Result<Condition, QueryError> {
    let text = |f: TextField| -> Result<Condition, QueryError> {
        let v = value.trim().to_lowercase();
        if v.is_empty() {
            return Err(QueryError::new(at, "an empty phrase"));
        }
        Ok(Condition::Text(
            f,
            if quoted {
                TextMatch::Phrase(v)
            } else if let Some(p) = v.strip_suffix('*') {
                if p.is_empty() || p.contains('*') {
                    return Err(QueryError::new(at, "'*' goes at the end of a word"));
                }
                TextMatch::Prefix(p.to_string())
            } else if v.contains('*') {
                return Err(QueryError::new(at, "'*' goes at the end of a word"));
            } else {
                TextMatch::Word(v)
            },
        ))
    };
    let address = |f: AddressField| Ok(Condition::Address(f, value.trim().to_lowercase()));
    let keyword = |f: KeywordField, v: &str| Ok(Condition::Keyword(f, v.to_string()));
    let date = || {
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(value, "%Y/%m/%d"))
            .map_err(|_| QueryError::new(at, format!("`{value}` is not a date (YYYY-MM-DD)")))
    };
    let size = || {
        parse_size(value)
            .ok_or_else(|| QueryError::new(at, format!("`{value}` is not a size (e.g. 500K, 2M)")))
    };
    let Some(field) = field else {
        return text(TextField::Any);
    };
    match field {
        "from" => address(AddressField::From),
        "to" => address(AddressField::To),
        "cc" => address(AddressField::Cc),
        "bcc" => address(AddressField::Bcc),
        "rcpt" | "envelope" => address(AddressField::Rcpt),
        "subject" => text(TextField::Subject),
        "body" => text(TextField::Body),
        "filename" => text(TextField::Filename),
        "attachment" => text(TextField::Attachment),
        "after" | "since" => Ok(Condition::After(date()?)),
        "before" => Ok(Condition::Before(date()?)),
        "has" => match value.to_ascii_lowercase().as_str() {
            "attachment" | "attachments" => Ok(Condition::HasAttachment),
            other => Err(QueryError::new(at, format!("has:{other}: only has:attachment is known"))),
        },
        "larger" => Ok(Condition::Larger(size()?)),
        "smaller" => Ok(Condition::Smaller(size()?)),
        "direction" => match value.to_ascii_lowercase().as_str() {
            v @ ("inbound" | "outbound") => keyword(KeywordField::Direction, v),
            other => Err(QueryError::new(at, format!("direction:{other}: use inbound or outbound"))),
        },
        "dlp" => keyword(KeywordField::Dlp, &value.to_ascii_lowercase()),
        "seal" => match value.to_ascii_lowercase().as_str() {
            v @ ("tls" | "pgp" | "smime" | "portal") => keyword(KeywordField::Seal, v),
            other => Err(QueryError::new(at, format!("seal:{other}: use tls, pgp, smime or portal"))),
        },
        "message-id" | "messageid" | "rfc822msgid" => keyword(
            KeywordField::MessageId,
            value.trim().trim_start_matches('<').trim_end_matches('>'),
        ),
        other => Err(QueryError::new(
            at,
            format!(
                "unknown field `{other}:` (from, to, cc, bcc, rcpt, subject, body, filename, attachment, after, before, has, larger, smaller, direction, dlp, seal, message-id)"
            ),
        )),
    }
}

/// `500`, `500K`, `2M`, `1G` (binary multiples) in octets.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1024),
        (i, 'm' | 'M') => (&s[..i], 1024 * 1024),
        (i, 'g' | 'G') => (&s[..i], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::All => write!(f, "*"),
            Query::Cond(c) => write!(f, "{c:?}"),
            Query::And(v) | Query::Or(v) => {
                let sep = if matches!(self, Query::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                write!(f, "(")?;
                for (i, q) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    write!(f, "{q}")?;
                }
                write!(f, ")")
            }
            Query::Not(q) => write!(f, "-{q}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(q: &str) -> Condition {
        match parse(q).unwrap() {
            Query::Cond(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_issue_example_parses_field_by_field() {
        let q = parse(
            "from:alice@x.org to:*@partner.com subject:\"lab results\" after:2026-01-01 before:2026-02-01 has:attachment dlp:us_ssn direction:outbound",
        )
        .unwrap();
        let Query::And(items) = q else {
            panic!("{q:?}")
        };
        assert_eq!(items.len(), 8);
        assert_eq!(
            items[0],
            Query::Cond(Condition::Address(AddressField::From, "alice@x.org".into()))
        );
        assert_eq!(
            items[1],
            Query::Cond(Condition::Address(AddressField::To, "*@partner.com".into()))
        );
        assert_eq!(
            items[2],
            Query::Cond(Condition::Text(
                TextField::Subject,
                TextMatch::Phrase("lab results".into())
            ))
        );
        assert_eq!(
            items[3],
            Query::Cond(Condition::After(
                NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
            ))
        );
        assert_eq!(items[5], Query::Cond(Condition::HasAttachment));
        assert_eq!(
            items[6],
            Query::Cond(Condition::Keyword(KeywordField::Dlp, "us_ssn".into()))
        );
    }

    #[test]
    fn or_binds_tighter_than_and_and_minus_negates() {
        let q = parse("a b OR c -d (e OR f)").unwrap();
        let w = |s: &str| Query::Cond(Condition::Text(TextField::Any, TextMatch::Word(s.into())));
        assert_eq!(
            q,
            Query::And(vec![
                w("a"),
                Query::Or(vec![w("b"), w("c")]),
                Query::Not(Box::new(w("d"))),
                Query::Or(vec![w("e"), w("f")]),
            ])
        );
        assert_eq!(parse("a AND b").unwrap(), Query::And(vec![w("a"), w("b")]));
        assert_eq!(parse("").unwrap(), Query::All);
        assert_eq!(parse("   ").unwrap(), Query::All);
    }

    #[test]
    fn words_prefixes_phrases_sizes_and_ids() {
        assert_eq!(
            cond("invoic*"),
            Condition::Text(TextField::Any, TextMatch::Prefix("invoic".into()))
        );
        assert_eq!(
            cond("\"Quarterly Report\""),
            Condition::Text(TextField::Any, TextMatch::Phrase("quarterly report".into()))
        );
        assert_eq!(cond("larger:2M"), Condition::Larger(2 * 1024 * 1024));
        assert_eq!(cond("smaller:500k"), Condition::Smaller(500 * 1024));
        assert_eq!(
            cond("message-id:<abc@x>"),
            Condition::Keyword(KeywordField::MessageId, "abc@x".into())
        );
        assert_eq!(
            cond("FROM:Alice@X.org"),
            Condition::Address(AddressField::From, "alice@x.org".into())
        );
        assert_eq!(
            cond("filename:report.docx"),
            Condition::Text(TextField::Filename, TextMatch::Word("report.docx".into()))
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        let err = |q: &str| parse(q).unwrap_err();
        let e = err("from:a@b.test form:x");
        assert_eq!(e.at, 14);
        assert!(e.message.contains("unknown field `form:`"), "{e}");
        assert!(e.pointed("from:a@b.test form:x").ends_with(&format!(
            "{}^ {}",
            " ".repeat(14),
            e.message
        )));
        assert_eq!(err("subject:\"lab results").at, 8);
        assert!(err("subject:\"lab results")
            .message
            .contains("unclosed quote"));
        assert_eq!(err("after:2026-13-01").at, 0);
        assert!(err("after:yesterday").message.contains("not a date"));
        assert_eq!(err("(a b").message, "unclosed '('");
        assert_eq!(err("a b)").at, 3);
        assert!(err("a OR").message.contains("OR needs a term after it"));
        assert!(err("OR a").message.contains("OR needs a term before it"));
        assert!(err("from:").message.contains("needs a value"));
        assert!(err("in*voice").message.contains("end of a word"));
        assert!(err("has:pdf").message.contains("has:attachment"));
        assert!(err("seal:rot13").message.contains("tls, pgp"));
        assert!(err("larger:big").message.contains("not a size"));
        assert!(err("()").message.contains("empty parentheses"));
        // Unicode offsets are in characters, not bytes.
        assert_eq!(err("résumé form:x").at, 7);
        // Bounded: no stack to exhaust, no megabyte queries.
        let deep = format!("{}a{}", "(".repeat(1000), ")".repeat(1000));
        assert!(
            err(&deep).message.contains("nested deeper"),
            "{}",
            err(&deep)
        );
        assert_eq!(err(&deep).at, 32);
        assert!(err(&format!("{}a", "-".repeat(100)))
            .message
            .contains("nested deeper"));
        assert!(parse(&format!("{}a{}", "(".repeat(30), ")".repeat(30))).is_ok());
        assert!(err(&"a ".repeat(3000)).message.contains("longer than"));
    }

    #[test]
    fn garbage_never_panics() {
        let bits = [
            "(", ")", "\"", "-", "OR", "AND", ":", "a", "from:", "*", " ", "é", "x:y",
        ];
        let mut seed = 7u64;
        for _ in 0..20_000 {
            let mut q = String::new();
            for _ in 0..(seed % 9) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                q.push_str(bits[(seed >> 33) as usize % bits.len()]);
            }
            let _ = parse(&q);
        }
    }
}
