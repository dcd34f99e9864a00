//! The SMTP command parser: one line in, a typed [`Command`] out. Pure, no I/O,
//! so it can be fuzzed (`fuzz/fuzz_targets/command.rs`) and tested alone.

use std::borrow::Cow;

use super::address::{parse_forward_path, parse_reverse_path, AddressError, Mailbox, ReversePath};
use super::reply::Reply;
use serde::{Deserialize, Serialize};

/// A parsed SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO domain`
    Ehlo(String),
    /// `HELO domain`
    Helo(String),
    /// `MAIL FROM:<path> [params]`
    Mail {
        /// Sender path.
        from: ReversePath,
        /// ESMTP parameters.
        params: MailParams,
    },
    /// `RCPT TO:<path> [params]`; `to` is `None` for a bare `<Postmaster>`.
    Rcpt {
        /// Recipient, or `None` for `<Postmaster>`.
        to: Option<Mailbox>,
        /// ESMTP parameters.
        params: RcptParams,
    },
    /// `DATA`
    Data,
    /// `BDAT size [LAST]` (RFC 3030).
    Bdat {
        /// Octets of chunk data that follow the command line.
        size: u64,
        /// Whether this is the last chunk.
        last: bool,
    },
    /// `RSET`
    Rset,
    /// `NOOP`
    Noop,
    /// `QUIT`
    Quit,
    /// `VRFY string`
    Vrfy,
    /// `EXPN string`
    Expn,
    /// `HELP [topic]`
    Help,
    /// `STARTTLS`
    StartTls,
    /// `AUTH ...` (not offered by a gateway listener)
    Auth,
}

/// `BODY=` values (RFC 6152, RFC 3030).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BodyType {
    /// `7BIT`
    #[serde(rename = "7BIT")]
    SevenBit,
    /// `8BITMIME`
    #[serde(rename = "8BITMIME")]
    EightBitMime,
    /// `BINARYMIME` (only with BDAT)
    #[serde(rename = "BINARYMIME")]
    BinaryMime,
}

/// DSN `RET=` (RFC 3461).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Ret {
    /// Return the full message in a DSN.
    Full,
    /// Return headers only.
    Hdrs,
}

/// DSN `NOTIFY=` (RFC 3461); all false means `NEVER`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    /// `SUCCESS`
    pub success: bool,
    /// `FAILURE`
    pub failure: bool,
    /// `DELAY`
    pub delay: bool,
}

/// Parameters of MAIL FROM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailParams {
    /// `SIZE=` declared size (RFC 1870).
    pub size: Option<u64>,
    /// `BODY=`
    pub body: Option<BodyType>,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `RET=` (RFC 3461).
    pub ret: Option<Ret>,
    /// `ENVID=` xtext as received (RFC 3461).
    pub envid: Option<String>,
}

/// Parameters of RCPT TO.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RcptParams {
    /// `NOTIFY=`; `None` when absent (the MTA default applies).
    pub notify: Option<Notify>,
    /// `ORCPT=` as received: `addr-type;xtext`.
    pub orcpt: Option<String>,
}

/// Why a command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Empty line.
    #[error("empty command")]
    Empty,
    /// Verb not known.
    #[error("unrecognised command")]
    Unknown,
    /// NUL or other control bytes in the line.
    #[error("control characters in command")]
    ControlChars,
    /// Generic syntax error in arguments.
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    /// MAIL FROM path is malformed.
    #[error("bad sender address: {0}")]
    Sender(AddressError),
    /// RCPT TO path is malformed.
    #[error("bad recipient address: {0}")]
    Recipient(AddressError),
    /// An ESMTP parameter we do not support.
    #[error("unsupported parameter")]
    UnknownParam,
    /// A supported parameter with a bad value.
    #[error("bad parameter value: {0}")]
    BadParam(&'static str),
}

impl ParseError {
    /// The SMTP reply for this error (RFC 5321 §4.2.4, RFC 3463, RFC 1869 §6).
    pub fn reply(&self) -> Reply {
        match self {
            ParseError::Empty | ParseError::Unknown => {
                Reply::new(500, "5.5.1", "Command unrecognized")
            }
            ParseError::ControlChars => {
                Reply::new(500, "5.5.2", "Syntax error: control characters in command")
            }
            ParseError::Syntax(why) => Reply::new(501, "5.5.4", format!("Syntax error: {why}")),
            ParseError::Sender(e) => {
                Reply::new(501, "5.1.7", format!("Bad sender address syntax: {e}"))
            }
            ParseError::Recipient(e) => {
                Reply::new(501, "5.1.3", format!("Bad recipient address syntax: {e}"))
            }
            ParseError::UnknownParam => {
                Reply::new(555, "5.5.4", "Unsupported MAIL FROM or RCPT TO parameter")
            }
            ParseError::BadParam(why) => {
                Reply::new(501, "5.5.4", format!("Invalid parameter value: {why}"))
            }
        }
    }
}

/// How strictly `MAIL FROM:` and `RCPT TO:` paths are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnvelopeSyntax {
    /// Also accept a path without angle brackets (`MAIL FROM:a@b`), as
    /// Postfix, Haraka and aiosmtpd do by default.
    #[default]
    Lenient,
    /// Only RFC 5321's `<path>`; anything else is `501`.
    Strict,
}

/// Parses one command line (without its line ending).
pub fn parse_command(line: &[u8], syntax: EnvelopeSyntax) -> Result<Command, ParseError> {
    if line
        .iter()
        .any(|&b| b == 0 || (b < 32 && b != b'\t') || b == 127)
    {
        return Err(ParseError::ControlChars);
    }
    let line =
        std::str::from_utf8(line).map_err(|_| ParseError::Syntax("command is not valid UTF-8"))?;
    let line = line.trim_end_matches([' ', '\t']);
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let (verb, rest) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i + 1..].trim_start()),
        None => (line, ""),
    };
    if verb.len() > 8 {
        return Err(ParseError::Unknown);
    }
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" => domain_arg(rest).map(Command::Ehlo),
        "HELO" => domain_arg(rest).map(Command::Helo),
        "MAIL" => parse_mail(rest, syntax),
        "RCPT" => parse_rcpt(rest, syntax),
        "DATA" => no_arg(rest, Command::Data),
        "BDAT" => parse_bdat(rest),
        "RSET" => no_arg(rest, Command::Rset),
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_arg(rest, Command::Quit),
        "VRFY" if !rest.is_empty() => Ok(Command::Vrfy),
        "VRFY" => Err(ParseError::Syntax("VRFY needs an argument")),
        "EXPN" => Ok(Command::Expn),
        "HELP" => Ok(Command::Help),
        "STARTTLS" => no_arg(rest, Command::StartTls),
        "AUTH" => Ok(Command::Auth),
        _ => Err(ParseError::Unknown),
    }
}

fn no_arg(rest: &str, cmd: Command) -> Result<Command, ParseError> {
    if rest.is_empty() {
        Ok(cmd)
    } else {
        Err(ParseError::Syntax("command takes no argument"))
    }
}

fn domain_arg(rest: &str) -> Result<String, ParseError> {
    // Many real clients send odd HELO names; accept any single token and record it.
    let name = rest.split_whitespace().next().unwrap_or("");
    if name.is_empty() {
        return Err(ParseError::Syntax("hostname required"));
    }
    if name.len() > 255 {
        return Err(ParseError::Syntax("hostname too long"));
    }
    Ok(name.to_string())
}

/// Splits `KEYWORD:<path> params` into the path (with its brackets) and the
/// parameter string. A path without brackets, where allowed, is the first
/// word, returned bracketed.
fn split_path<'a>(
    rest: &'a str,
    keyword: &str,
    syntax: EnvelopeSyntax,
) -> Result<(Cow<'a, str>, &'a str), ParseError> {
    let head = rest
        .get(..keyword.len())
        .ok_or(ParseError::Syntax("missing path"))?;
    if !head.eq_ignore_ascii_case(keyword) {
        return Err(ParseError::Syntax(if keyword == "FROM:" {
            "expected MAIL FROM:<address>"
        } else {
            "expected RCPT TO:<address>"
        }));
    }
    // A space after the colon is not RFC 5321 but common; accept it.
    let path = rest[keyword.len()..].trim_start();
    if !path.starts_with('<') {
        if syntax == EnvelopeSyntax::Strict || path.is_empty() {
            return Err(ParseError::Syntax("address must be enclosed in <>"));
        }
        let (bare, params) = match path.find([' ', '\t']) {
            Some(i) => (&path[..i], path[i..].trim()),
            None => (path, ""),
        };
        if bare.contains(['<', '>']) {
            return Err(ParseError::Syntax("unbalanced <> in address"));
        }
        return Ok((Cow::Owned(format!("<{bare}>")), params));
    }
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in path.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                let params = &path[i + 1..];
                if !params.is_empty() && !params.starts_with(' ') {
                    return Err(ParseError::Syntax("parameters must follow a space"));
                }
                return Ok((Cow::Borrowed(&path[..=i]), params.trim()));
            }
            _ => {}
        }
    }
    Err(ParseError::Syntax("unterminated address"))
}

fn params(s: &str) -> impl Iterator<Item = (String, Option<&str>)> {
    s.split(' ')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
            None => (p.to_ascii_uppercase(), None),
        })
}

fn parse_mail(rest: &str, syntax: EnvelopeSyntax) -> Result<Command, ParseError> {
    let (path, rest) = split_path(rest, "FROM:", syntax)?;
    let from = parse_reverse_path(&path).map_err(ParseError::Sender)?;
    let mut p = MailParams::default();
    for (key, value) in params(rest) {
        match (key.as_str(), value) {
            ("SIZE", Some(v)) if p.size.is_none() => {
                p.size = Some(digits(v).ok_or(ParseError::BadParam("SIZE must be a number"))?)
            }
            ("BODY", Some(v)) if p.body.is_none() => {
                p.body = Some(match v.to_ascii_uppercase().as_str() {
                    "7BIT" => BodyType::SevenBit,
                    "8BITMIME" => BodyType::EightBitMime,
                    "BINARYMIME" => BodyType::BinaryMime,
                    _ => {
                        return Err(ParseError::BadParam(
                            "BODY must be 7BIT, 8BITMIME or BINARYMIME",
                        ))
                    }
                })
            }
            ("SMTPUTF8", None) if !p.smtputf8 => p.smtputf8 = true,
            ("RET", Some(v)) if p.ret.is_none() => {
                p.ret = Some(match v.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Hdrs,
                    _ => return Err(ParseError::BadParam("RET must be FULL or HDRS")),
                })
            }
            ("ENVID", Some(v)) if p.envid.is_none() => {
                if v.len() > 100 || !is_xtext(v) {
                    return Err(ParseError::BadParam(
                        "ENVID must be xtext of at most 100 characters",
                    ));
                }
                p.envid = Some(v.to_string())
            }
            ("SIZE" | "BODY" | "SMTPUTF8" | "RET" | "ENVID", _) => {
                return Err(ParseError::BadParam(
                    "parameter repeated or missing its value",
                ))
            }
            _ => return Err(ParseError::UnknownParam),
        }
    }
    Ok(Command::Mail { from, params: p })
}

fn parse_rcpt(rest: &str, syntax: EnvelopeSyntax) -> Result<Command, ParseError> {
    let (path, rest) = split_path(rest, "TO:", syntax)?;
    let to = parse_forward_path(&path).map_err(ParseError::Recipient)?;
    let mut p = RcptParams::default();
    for (key, value) in params(rest) {
        match (key.as_str(), value) {
            ("NOTIFY", Some(v)) if p.notify.is_none() => p.notify = Some(parse_notify(v)?),
            ("ORCPT", Some(v)) if p.orcpt.is_none() => {
                let (kind, addr) = v
                    .split_once(';')
                    .ok_or(ParseError::BadParam("ORCPT must be type;address"))?;
                let kind_ok =
                    kind.eq_ignore_ascii_case("rfc822") || kind.eq_ignore_ascii_case("utf-8");
                if !kind_ok
                    || addr.is_empty()
                    || v.len() > 500
                    || !is_xtext(addr) && !kind.eq_ignore_ascii_case("utf-8")
                {
                    return Err(ParseError::BadParam(
                        "ORCPT must be rfc822;xtext or utf-8;address",
                    ));
                }
                p.orcpt = Some(v.to_string())
            }
            ("NOTIFY" | "ORCPT", _) => {
                return Err(ParseError::BadParam(
                    "parameter repeated or missing its value",
                ))
            }
            _ => return Err(ParseError::UnknownParam),
        }
    }
    Ok(Command::Rcpt { to, params: p })
}

fn parse_notify(v: &str) -> Result<Notify, ParseError> {
    if v.eq_ignore_ascii_case("NEVER") {
        return Ok(Notify::default());
    }
    let mut n = Notify::default();
    for item in v.split(',') {
        match item.to_ascii_uppercase().as_str() {
            "SUCCESS" => n.success = true,
            "FAILURE" => n.failure = true,
            "DELAY" => n.delay = true,
            _ => {
                return Err(ParseError::BadParam(
                    "NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY",
                ))
            }
        }
    }
    Ok(n)
}

fn parse_bdat(rest: &str) -> Result<Command, ParseError> {
    let mut it = rest.split_whitespace();
    let size = it
        .next()
        .and_then(digits)
        .ok_or(ParseError::Syntax("BDAT needs a chunk size"))?;
    let last = match it.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(ParseError::Syntax("BDAT size [LAST]")),
    };
    if it.next().is_some() {
        return Err(ParseError::Syntax("BDAT size [LAST]"));
    }
    Ok(Command::Bdat { size, last })
}

fn digits(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// RFC 3461 §4: xtext is printable ASCII except `+` and `=`, with `+HH` escapes.
fn is_xtext(v: &str) -> bool {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
                if i + 2 >= b.len() {
                    return false;
                }
                if !(hex(b[i + 1]) && hex(b[i + 2])) {
                    return false;
                }
                i += 3;
            }
            b'=' => return false,
            33..=126 => i += 1,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, ParseError> {
        parse_command(s.as_bytes(), EnvelopeSyntax::Strict)
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(
            p("ehlo client.example").unwrap(),
            Command::Ehlo("client.example".into())
        );
        assert_eq!(p("QuIt").unwrap(), Command::Quit);
        assert_eq!(p("starttls").unwrap(), Command::StartTls);
    }

    #[test]
    fn mail_with_parameters() {
        let c = p("MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B1")
            .unwrap();
        let Command::Mail { from, params } = c else {
            panic!()
        };
        assert_eq!(from.to_string(), "a@b.example");
        assert_eq!(params.size, Some(1000));
        assert_eq!(params.body, Some(BodyType::EightBitMime));
        assert!(params.smtputf8);
        assert_eq!(params.ret, Some(Ret::Hdrs));
        assert_eq!(params.envid.as_deref(), Some("QQ+2B1"));
    }

    #[test]
    fn mail_lenient_space_and_null_path() {
        let c = p("MAIL FROM: <>").unwrap();
        assert!(matches!(
            c,
            Command::Mail {
                from: ReversePath::Null,
                ..
            }
        ));
    }

    #[test]
    fn paths_without_brackets_unless_strict() {
        let lenient = |s: &str| parse_command(s.as_bytes(), EnvelopeSyntax::Lenient);
        match lenient("MAIL FROM:a@b.example SIZE=10").unwrap() {
            Command::Mail { from, params } => {
                assert_eq!(from.to_string(), "a@b.example");
                assert_eq!(params.size, Some(10));
            }
            other => panic!("{other:?}"),
        }
        match lenient("RCPT TO: x@y.example").unwrap() {
            Command::Rcpt { to, .. } => assert_eq!(to.unwrap().to_string(), "x@y.example"),
            other => panic!("{other:?}"),
        }
        assert_eq!(lenient("MAIL FROM:").unwrap_err().reply().code, 501);
        assert_eq!(lenient("MAIL FROM:a@b>").unwrap_err().reply().code, 501);
        assert_eq!(p("MAIL FROM:a@b.example").unwrap_err().reply().code, 501);
    }

    #[test]
    fn rcpt_with_dsn() {
        let c = p("RCPT TO:<x@y.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;x@y.example").unwrap();
        let Command::Rcpt { to, params } = c else {
            panic!()
        };
        assert_eq!(to.unwrap().to_string(), "x@y.example");
        let n = params.notify.unwrap();
        assert!(n.success && n.delay && !n.failure);
        assert_eq!(
            p("RCPT TO:<x@y.example> NOTIFY=NEVER,SUCCESS").unwrap_err(),
            ParseError::BadParam("NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY")
        );
    }

    #[test]
    fn quoted_local_part_with_space_and_bracket() {
        let c = p("RCPT TO:<\"a >b\"@y.example>").unwrap();
        let Command::Rcpt { to, .. } = c else {
            panic!()
        };
        assert_eq!(to.unwrap().local(), "\"a >b\"");
    }

    #[test]
    fn errors_map_to_codes() {
        assert_eq!(p("FOO").unwrap_err().reply().code, 500);
        assert_eq!(p("MAIL FROM:a@b").unwrap_err().reply().code, 501);
        assert_eq!(p("MAIL FROM:<a@b> XYZ=1").unwrap_err().reply().code, 555);
        assert_eq!(p("MAIL FROM:<a@b> SIZE=abc").unwrap_err().reply().code, 501);
        assert_eq!(
            p("MAIL FROM:<a@b> SIZE=1 SIZE=2").unwrap_err().reply().code,
            501
        );
        assert_eq!(p("RCPT TO:<a@@b>").unwrap_err().reply().status, "5.1.3");
        assert_eq!(
            parse_command(b"NOOP\0", EnvelopeSyntax::Lenient).unwrap_err(),
            ParseError::ControlChars
        );
        assert!(parse_command(&[0xff, 0xfe], EnvelopeSyntax::Lenient).is_err());
        assert_eq!(p("").unwrap_err(), ParseError::Empty);
        assert_eq!(p("DATA x").unwrap_err().reply().code, 501);
        assert!(p("EHLO").is_err());
    }

    #[test]
    fn bdat() {
        assert_eq!(
            p("BDAT 100 LAST").unwrap(),
            Command::Bdat {
                size: 100,
                last: true
            }
        );
        assert_eq!(
            p("BDAT 0").unwrap(),
            Command::Bdat {
                size: 0,
                last: false
            }
        );
        assert!(p("BDAT x").is_err());
    }

    #[test]
    fn xtext() {
        assert!(is_xtext("abc+2B"));
        assert!(!is_xtext("abc+2"));
        assert!(!is_xtext("abc+"));
        assert!(!is_xtext("a=b"));
        assert!(!is_xtext("a b"));
    }

    #[test]
    fn random_lines_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let pieces: [&[u8]; 12] = [
            b"MAIL FROM:",
            b"RCPT TO:",
            b"<",
            b">",
            b"@",
            b"\"",
            b" ",
            b"=",
            b"SIZE",
            b"\xc3\xa9",
            b"\xff",
            b"a",
        ];
        for _ in 0..20000 {
            let mut line = Vec::new();
            for _ in 0..rng.random_range(0..10) {
                line.extend_from_slice(pieces[rng.random_range(0..pieces.len())]);
            }
            if let Err(e) = parse_command(&line, EnvelopeSyntax::Lenient) {
                assert!(e.reply().to_string().ends_with("\r\n"));
            }
        }
    }
}
