//! Delivery status notifications (RFC 3464 report, RFC 3461 NOTIFY/RET rules,
//! RFC 6522 multipart/report). Pure, no I/O: the deliver worker decides when a
//! DSN is owed, asks [`wanted`], and queues the bytes of [`build`] with
//! `MAIL FROM:<>` to the original sender.

use crate::model::envelope::Ret;
use crate::spool::record::{QueuedMessage, QueuedRecipient};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

/// Longest remote reply quoted, in characters; multi-line replies can be long
/// and a DSN should stay small.
const MAX_DIAGNOSTIC: usize = 1000;
/// Longest other field value (addresses, host names, ids), in characters.
const MAX_FIELD: usize = 500;
/// Folded report lines aim to stay under this many octets (RFC 5322 §2.1.1).
const FOLD_AT: usize = 78;
/// A word longer than this is split so no line passes the 998-octet limit.
const MAX_WORD: usize = 900;

/// What a DSN reports for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnAction {
    /// Failed permanently, or expired in the queue.
    Failed,
    /// Failed temporarily; still being retried.
    Delayed,
    /// Delivered to a next hop that takes over DSN duties.
    Delivered,
    /// Delivered to a next hop that does not do DSN, when NOTIFY=SUCCESS.
    Relayed,
}

impl DsnAction {
    /// The RFC 3464 `Action:` value.
    pub fn as_str(self) -> &'static str {
        match self {
            DsnAction::Failed => "failed",
            DsnAction::Delayed => "delayed",
            DsnAction::Delivered => "delivered",
            DsnAction::Relayed => "relayed",
        }
    }

    /// The status reported when the caller's is not a valid `x.y.z` code.
    fn default_status(self) -> &'static str {
        match self {
            DsnAction::Failed => "5.0.0",
            DsnAction::Delayed => "4.0.0",
            DsnAction::Delivered | DsnAction::Relayed => "2.0.0",
        }
    }
}

/// What a DSN reports for one recipient.
#[derive(Debug, Clone)]
pub struct DsnRecipient<'a> {
    /// The recipient as queued (address, ORCPT).
    pub recipient: &'a QueuedRecipient,
    /// What happened to it.
    pub action: DsnAction,
    /// RFC 3463 status code, e.g. `5.1.1`.
    pub status: String,
    /// The remote reply (`550 5.1.1 <x>: user unknown`) or our own reason.
    pub diagnostic: Option<String>,
    /// Host name of the next hop that gave the reply.
    pub remote_mta: Option<String>,
    /// When the last attempt ended.
    pub last_attempt: Option<DateTime<Utc>>,
    /// Until when a delayed recipient is retried.
    pub will_retry_until: Option<DateTime<Utc>>,
}

/// Everything a DSN is built from.
#[derive(Debug, Clone)]
pub struct DsnInput<'a> {
    /// Our host name.
    pub reporting_mta: &'a str,
    /// The message reported on.
    pub message: &'a QueuedMessage,
    /// The recipients reported on.
    pub recipients: Vec<DsnRecipient<'a>>,
    /// The original message bytes, as relayed.
    pub original: &'a [u8],
    /// The report's date.
    pub now: DateTime<Utc>,
}

/// Whether this recipient's NOTIFY asks for a DSN of this kind (RFC 3461 §4.1);
/// never for the null sender, whose mail is itself a notification.
pub fn wanted(message: &QueuedMessage, recipient: &QueuedRecipient, action: &DsnAction) -> bool {
    if message.from.trim().is_empty() {
        return false;
    }
    match recipient.notify {
        // Absent NOTIFY means FAILURE; DELAY is the MTA's choice, and we tell.
        None => matches!(action, DsnAction::Failed | DsnAction::Delayed),
        // NEVER parses as all three false, so it falls out here.
        Some(n) => match action {
            DsnAction::Failed => n.failure,
            DsnAction::Delayed => n.delay,
            DsnAction::Delivered | DsnAction::Relayed => n.success,
        },
    }
}

/// The status code to report for a reply we got or made: the RFC 3463 code
/// after the basic code when it has one, else `x.0.0` from the basic code, and
/// `4.0.0` for text without any code (a network error is transient in kind).
pub fn status_of(reply: &str) -> String {
    let reply = reply.trim_start();
    let bytes = reply.as_bytes();
    let class = match bytes.first() {
        Some(c @ (b'2' | b'4' | b'5'))
            if bytes.len() >= 3 && bytes[1].is_ascii_digit() && bytes[2].is_ascii_digit() =>
        {
            *c
        }
        _ => return "4.0.0".into(),
    };
    let rest = match bytes.get(3) {
        None => "",
        Some(b' ' | b'-') => &reply[4..],
        // `5501 ...` is not a reply code.
        Some(_) => return "4.0.0".into(),
    };
    let token = rest.split_whitespace().next().unwrap_or("");
    // RFC 3463 §2: the enhanced code's class must agree with the basic code.
    if valid_status(token) && token.as_bytes()[0] == class {
        return token.to_string();
    }
    format!("{}.0.0", class as char)
}

/// True for an RFC 3463 code: class `2`, `4` or `5`, then 1–3 digits twice.
fn valid_status(s: &str) -> bool {
    let mut it = s.split('.');
    let (Some(class), Some(subject), Some(detail), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return false;
    };
    let digits = |p: &str| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    matches!(class, "2" | "4" | "5") && digits(subject) && digits(detail)
}

/// The DSN message bytes (CRLF line endings, RFC 5322), to be sent with
/// `MAIL FROM:<>` to `message.from`.
pub fn build(input: &DsnInput) -> Vec<u8> {
    let kind = Kind::of(&input.recipients);
    let mta = one_line(input.reporting_mta, MAX_FIELD);
    // RET=FULL asks for the whole message back, but only a failure returns
    // it (RFC 3461 §4.3); without RET we return headers only, as the gateway
    // protects content and RFC 3461 leaves the default to the MTA.
    let full = kind == Kind::Failed && input.message.mail_params.ret == Some(Ret::Full);
    let original = crlf(input.original);

    let text = human_text(input, &mta, kind, full);
    let (text, text_cte) = if text.is_ascii() && max_line(text.as_bytes()) <= 998 {
        (text.into_bytes(), "7bit")
    } else {
        (
            quoted_printable(text.as_bytes()).into_bytes(),
            "quoted-printable",
        )
    };
    let status = delivery_status(input, &mta).into_bytes();
    let (returned, returned_type) = if full {
        (original, "message/rfc822")
    } else {
        (header_block(&original).to_vec(), "text/rfc822-headers")
    };
    let returned_cte = transfer_encoding(&returned);

    let boundary = boundary_for(&[&text, &status, &returned]);
    // A multipart is labelled with the widest encoding inside it, and the
    // first two parts are always 7-bit.
    let top_cte = returned_cte;

    let mut out = String::new();
    let to = one_line(&input.message.from, MAX_FIELD);
    let _ = write!(
        out,
        "From: Mail Delivery System <MAILER-DAEMON@{mta}>\r\n\
         To: <{to}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}@{mid_host}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"{boundary}\"\r\n\
         Content-Transfer-Encoding: {top_cte}\r\n\
         \r\n\
         This is a MIME-encapsulated message.\r\n\
         \r\n",
        subject = kind.subject(),
        date = input.now.to_rfc2822(),
        id = hex::encode(rand::random::<[u8; 16]>()),
        // A Message-ID cannot hold white space.
        mid_host = mta.replace(' ', ""),
    );
    let mut out = out.into_bytes();
    part(
        &mut out,
        &boundary,
        "Notification",
        "text/plain; charset=utf-8",
        text_cte,
        &text,
    );
    part(
        &mut out,
        &boundary,
        "Delivery report",
        "message/delivery-status",
        "7bit",
        &status,
    );
    part(
        &mut out,
        &boundary,
        if full {
            "Undelivered Message"
        } else {
            "Undelivered Message Headers"
        },
        returned_type,
        returned_cte,
        &returned,
    );
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// Which kind of report a DSN is, by its most urgent recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Failed,
    Delayed,
    Success,
}

impl Kind {
    fn of(recipients: &[DsnRecipient<'_>]) -> Kind {
        let has = |a: DsnAction| recipients.iter().any(|r| r.action == a);
        if has(DsnAction::Failed) {
            Kind::Failed
        } else if has(DsnAction::Delayed) {
            Kind::Delayed
        } else {
            Kind::Success
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Kind::Failed => "Undelivered Mail Returned to Sender",
            Kind::Delayed => "Delayed Mail (still being retried)",
            Kind::Success => "Successful Mail Delivery Report",
        }
    }
}

/// Appends one body part, its content ending in CRLF, then the CRLF that
/// belongs to the next delimiter (RFC 2046 §5.1.1) so the content keeps its own.
fn part(out: &mut Vec<u8>, boundary: &str, description: &str, ctype: &str, cte: &str, body: &[u8]) {
    out.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Description: {description}\r\nContent-Type: {ctype}\r\n\
             Content-Transfer-Encoding: {cte}\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The human-readable part, in the manner of Postfix's bounce: what happened
/// to whom and what the remote side said; never anything of the body.
fn human_text(input: &DsnInput, mta: &str, kind: Kind, full: bool) -> String {
    let mut t = String::new();
    let _ = write!(t, "This is the mail system at host {mta}.\r\n\r\n");
    match kind {
        Kind::Failed => {
            t.push_str(
                "I'm sorry to have to inform you that your message could not\r\n\
                 be delivered to one or more recipients. ",
            );
            t.push_str(if full {
                "It's attached below.\r\n\r\n"
            } else {
                "Its headers are attached\r\nbelow; the message body is not returned.\r\n\r\n"
            });
            let _ = write!(
                t,
                "For further assistance, please send mail to the postmaster of\r\n\
                 {mta}. If you do so, please include this problem report.\r\n\r\n"
            );
        }
        Kind::Delayed => t.push_str(
            "####################################################################\r\n\
             # THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n\
             ####################################################################\r\n\
             \r\n\
             Your message could not be delivered yet to one or more recipients.\r\n\
             The mail system will keep trying; the report below says until when.\r\n\r\n",
        ),
        Kind::Success => t.push_str(
            "Your message was successfully delivered to the destination(s)\r\n\
             listed below. If the message was delivered to a mailbox you will\r\n\
             receive no further notifications. Otherwise you may still receive\r\n\
             notifications of mail delivery errors from other systems.\r\n\r\n",
        ),
    }
    t.push_str("                   The mail system\r\n");

    let sections = [
        (DsnAction::Failed, "Could not be delivered"),
        (DsnAction::Delayed, "Not delivered yet, still being retried"),
        (DsnAction::Delivered, "Delivered"),
        (
            DsnAction::Relayed,
            "Relayed to a system that sends no further notifications",
        ),
    ];
    for (action, heading) in sections {
        let rs: Vec<_> = input
            .recipients
            .iter()
            .filter(|r| r.action == action)
            .collect();
        if rs.is_empty() {
            continue;
        }
        let _ = write!(t, "\r\n{heading}:\r\n");
        for r in rs {
            let addr = one_line(&r.recipient.address.to_string(), MAX_FIELD);
            let host = r
                .remote_mta
                .as_deref()
                .map(|h| one_line(h, MAX_FIELD))
                .filter(|h| !h.is_empty());
            let diag = r
                .diagnostic
                .as_deref()
                .map(|d| one_line(d, MAX_DIAGNOSTIC))
                .filter(|d| !d.is_empty());
            let _ = match (host, diag) {
                (Some(h), Some(d)) => write!(t, "\r\n<{addr}>: host {h} said:\r\n    {d}\r\n"),
                (None, Some(d)) => write!(t, "\r\n<{addr}>:\r\n    {d}\r\n"),
                (Some(h), None) => {
                    write!(t, "\r\n<{addr}>: host {h}, status {}\r\n", status_for(r))
                }
                (None, None) => write!(t, "\r\n<{addr}>: status {}\r\n", status_for(r)),
            };
            if let (DsnAction::Delayed, Some(until)) = (r.action, r.will_retry_until) {
                let _ = write!(t, "    Will keep trying until {}.\r\n", until.to_rfc2822());
            }
        }
    }
    t
}

/// The message/delivery-status part: 7-bit text, per-message fields, then a
/// block per recipient (RFC 3464 §2).
fn delivery_status(input: &DsnInput, mta: &str) -> String {
    let msg = input.message;
    let mut s = String::new();
    field(&mut s, "Reporting-MTA", &format!("dns; {}", ascii(mta)));
    field(&mut s, "X-Sealgate-Queue-ID", &msg.id.to_string());
    if let Some(envid) = msg.mail_params.envid.as_deref() {
        // ENVID is xtext as received: ASCII already, passed through.
        field(
            &mut s,
            "Original-Envelope-Id",
            &ascii(&one_line(envid, MAX_FIELD)),
        );
    }
    field(&mut s, "Arrival-Date", &msg.received_at.to_rfc2822());
    for r in &input.recipients {
        s.push_str("\r\n");
        if let Some(orcpt) = r.recipient.orcpt.as_deref() {
            field(
                &mut s,
                "Original-Recipient",
                &unicode_xtext(&one_line(orcpt, MAX_FIELD)),
            );
        }
        field(
            &mut s,
            "Final-Recipient",
            &address_type(&one_line(&r.recipient.address.to_string(), MAX_FIELD)),
        );
        field(&mut s, "Action", r.action.as_str());
        field(&mut s, "Status", &status_for(r));
        if let Some(host) = r.remote_mta.as_deref() {
            let host = ascii(&one_line(host, MAX_FIELD));
            if !host.is_empty() {
                field(&mut s, "Remote-MTA", &format!("dns; {host}"));
            }
        }
        if let Some(diag) = r.diagnostic.as_deref() {
            let diag = ascii(&one_line(diag, MAX_DIAGNOSTIC));
            if !diag.is_empty() {
                field(&mut s, "Diagnostic-Code", &format!("smtp; {diag}"));
            }
        }
        if let Some(at) = r.last_attempt {
            field(&mut s, "Last-Attempt-Date", &at.to_rfc2822());
        }
        if let (DsnAction::Delayed, Some(until)) = (r.action, r.will_retry_until) {
            field(&mut s, "Will-Retry-Until", &until.to_rfc2822());
        }
    }
    s
}

/// The recipient's status if it is a valid code, else the action's default.
fn status_for(r: &DsnRecipient<'_>) -> String {
    let s = r.status.trim();
    if valid_status(s) {
        s.to_string()
    } else {
        r.action.default_status().to_string()
    }
}

/// Appends `Name: value`, folded at spaces; `value` must already be one line.
fn field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push(':');
    let mut col = name.len() + 1;
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        for piece in split_long(word, MAX_WORD) {
            if col + 1 + piece.len() > FOLD_AT && col > name.len() + 1 {
                out.push_str("\r\n");
                col = 0;
            }
            out.push(' ');
            out.push_str(piece);
            col += 1 + piece.len();
        }
    }
    out.push_str("\r\n");
}

/// Splits `s` into pieces of at most `max` octets, on character boundaries.
fn split_long(s: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = s;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            break;
        }
        let (a, b) = rest.split_at(cut);
        pieces.push(a);
        rest = b;
    }
    pieces.push(rest);
    pieces
}

/// One line of text for a header or report field: control characters (CR and
/// LF above all, which would end the field and start a forged one) become
/// spaces, runs of spaces collapse, and the length is capped.
fn one_line(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars));
    let mut space = false;
    for c in s.chars().take(max_chars) {
        if c.is_control() || c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    out
}

/// Non-ASCII characters become `?`: message/delivery-status is 7-bit text.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

/// `rfc822; addr` for an ASCII address, else `utf-8; ` with the RFC 6533
/// utf-8-addr-xtext form, which keeps the report 7-bit.
fn address_type(addr: &str) -> String {
    if addr.is_ascii() {
        format!("rfc822; {addr}")
    } else {
        let mut x = String::new();
        for c in addr.chars() {
            match c {
                '!'..='*' | ','..='<' | '>'..='[' | ']'..='~' => x.push(c),
                _ => {
                    let _ = write!(x, "\\x{{{:02X}}}", c as u32);
                }
            }
        }
        format!("utf-8; {x}")
    }
}

/// An ORCPT value as given, except that raw UTF-8 (allowed for `utf-8;`
/// under SMTPUTF8) is escaped as RFC 6533 `\x{HEX}` to keep the report 7-bit.
fn unicode_xtext(s: &str) -> String {
    let mut x = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            x.push(c);
        } else {
            let _ = write!(x, "\\x{{{:X}}}", c as u32);
        }
    }
    x
}

/// The bytes with every line ending as CRLF: bare LF and bare CR become CRLF,
/// so nothing in the report can end a line any other way.
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 50);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The header block of a CRLF-normalised message, each field ending in CRLF
/// (no blank line); all of it when there is no body.
fn header_block(msg: &[u8]) -> &[u8] {
    if msg.starts_with(b"\r\n") {
        return &[];
    }
    match msg.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => &msg[..i + 2],
        None => msg,
    }
}

/// The Content-Transfer-Encoding label for bytes sent unencoded: `binary` for
/// NUL or lines over 998 octets, `8bit` for other non-ASCII, else `7bit`.
fn transfer_encoding(bytes: &[u8]) -> &'static str {
    if bytes.contains(&0) || max_line(bytes) > 998 {
        "binary"
    } else if !bytes.is_ascii() {
        "8bit"
    } else {
        "7bit"
    }
}

/// The longest line, in octets without its CRLF.
fn max_line(bytes: &[u8]) -> usize {
    bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len())
        .max()
        .unwrap_or(0)
}

/// Quoted-printable (RFC 2045 §6.7) of CRLF text, lines at most 76 octets.
fn quoted_printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3 / 2);
    let mut lines = bytes.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut col = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let plain =
                ((b == b' ' || b == b'\t') && !last) || ((33..=126).contains(&b) && b != b'=');
            let width = if plain { 1 } else { 3 };
            if col + width > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            if plain {
                out.push(b as char);
            } else {
                let _ = write!(out, "={b:02X}");
            }
            col += width;
        }
        if lines.peek().is_some() {
            out.push_str("\r\n");
        }
    }
    out
}

/// A random boundary that occurs in none of the parts; lengthened until it
/// does not, which must end since a part cannot hold a longer string.
fn boundary_for(parts: &[&[u8]]) -> String {
    let mut b = format!("=_sealgate_{}", hex::encode(rand::random::<[u8; 12]>()));
    while parts
        .iter()
        .any(|p| p.windows(b.len()).any(|w| w == b.as_bytes()))
    {
        b.push_str(&hex::encode(rand::random::<[u8; 4]>()));
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::address::Mailbox;
    use crate::model::envelope::{MailParams, Notify};
    use crate::spool::record::Origin;
    use crate::spool::QueueId;
    use chrono::TimeZone;
    use mail_parser::{MessageParser, MimeHeaders, PartType};

    const ORIGINAL: &[u8] = b"Received: from x by y\r\n\
        From: Alice <alice@sender.test>\r\n\
        To: bob@rcpt.test\r\n\
        Subject: Quarterly numbers\r\n\
        Message-ID: <orig-1@sender.test>\r\n\
        \r\n\
        SECRET BODY LINE with account 12345\r\n\
        second line\r\n";

    fn message(from: &str, ret: Option<Ret>) -> QueuedMessage {
        QueuedMessage {
            id: QueueId(0x0123_4567_89AB_CDEF),
            received_at: Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap(),
            from: from.into(),
            mail_params: MailParams {
                ret,
                envid: Some("ENV+2B42".into()),
                ..MailParams::default()
            },
            recipients: vec![QueuedRecipient::new(
                Mailbox::parse("bob@rcpt.test").unwrap(),
                None,
                Some("rfc822;bob+40rcpt.test".into()),
            )],
            origin: Origin::test_outbound(),
            size: ORIGINAL.len() as u64,
            body_sha256: String::new(),
            chunks: 1,
            received_header: "Received: x\r\n".into(),
            new_subject: None,
            decided: false,
            auth: None,
            scan: None,
        }
    }

    fn rcpt<'a>(r: &'a QueuedRecipient, action: DsnAction, reply: &str) -> DsnRecipient<'a> {
        DsnRecipient {
            recipient: r,
            action,
            status: status_of(reply),
            diagnostic: Some(reply.into()),
            remote_mta: Some("mx.rcpt.test".into()),
            last_attempt: Some(Utc.with_ymd_and_hms(2024, 5, 6, 8, 0, 0).unwrap()),
            will_retry_until: Some(Utc.with_ymd_and_hms(2024, 5, 11, 7, 8, 9).unwrap()),
        }
    }

    fn input<'a>(m: &'a QueuedMessage, recipients: Vec<DsnRecipient<'a>>) -> DsnInput<'a> {
        DsnInput {
            reporting_mta: "gw.sealgate.test",
            message: m,
            recipients,
            original: ORIGINAL,
            now: Utc.with_ymd_and_hms(2024, 5, 6, 9, 0, 0).unwrap(),
        }
    }

    fn contains(hay: &[u8], needle: &str) -> bool {
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    /// Every line ends in CRLF: no bare CR, no bare LF.
    fn assert_crlf(bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                assert!(i > 0 && bytes[i - 1] == b'\r', "bare LF at {i}");
            }
            if b == b'\r' {
                assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}");
            }
        }
        assert!(bytes.ends_with(b"\r\n"));
    }

    /// The header block of the DSN itself, as field names in order.
    fn top_header_names(dsn: &[u8]) -> Vec<String> {
        let end = dsn.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        String::from_utf8_lossy(&dsn[..end])
            .split("\r\n")
            .filter(|l| !l.starts_with([' ', '\t']))
            .map(|l| l.split(':').next().unwrap().to_string())
            .collect()
    }

    fn ctype(p: &mail_parser::MessagePart<'_>) -> String {
        let ct = p.content_type().unwrap();
        format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
    }

    #[test]
    fn failed_headers_only_by_default() {
        let m = message("alice@sender.test", None);
        let r = &m.recipients[0];
        let reply = "550 5.1.1 <bob@rcpt.test>: Recipient address rejected: User unknown";
        let dsn = build(&input(&m, vec![rcpt(r, DsnAction::Failed, reply)]));
        assert_crlf(&dsn);
        assert!(!contains(&dsn, "SECRET BODY"), "body must not be returned");
        assert!(!contains(&dsn, "second line"));

        let msg = MessageParser::default().parse(&dsn).unwrap();
        assert_eq!(msg.subject(), Some("Undelivered Mail Returned to Sender"));
        assert_eq!(
            msg.from().unwrap().first().unwrap().address(),
            Some("MAILER-DAEMON@gw.sealgate.test")
        );
        assert_eq!(
            msg.to().unwrap().first().unwrap().address(),
            Some("alice@sender.test")
        );
        assert!(msg.date().is_some());
        assert!(msg.message_id().unwrap().ends_with("@gw.sealgate.test"));
        assert_eq!(
            msg.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-replied")
        );
        let ct = msg.content_type().unwrap();
        assert_eq!(ct.ctype(), "multipart");
        assert_eq!(ct.subtype(), Some("report"));
        assert_eq!(ct.attribute("report-type"), Some("delivery-status"));

        let PartType::Multipart(ids) = &msg.parts[0].body else {
            panic!("not multipart")
        };
        assert_eq!(ids.len(), 3);
        let parts: Vec<_> = ids.iter().map(|&i| &msg.parts[i as usize]).collect();
        assert_eq!(ctype(parts[0]), "text/plain");
        assert_eq!(ctype(parts[1]), "message/delivery-status");
        assert_eq!(ctype(parts[2]), "text/rfc822-headers");

        let text = parts[0].text_contents().unwrap();
        assert!(text.contains("<bob@rcpt.test>: host mx.rcpt.test said:"));
        assert!(text.contains(reply));
        assert!(text.contains("not returned"));

        let status = String::from_utf8_lossy(parts[1].contents()).to_string();
        for f in [
            "Reporting-MTA: dns; gw.sealgate.test\r\n",
            "Original-Envelope-Id: ENV+2B42\r\n",
            "Arrival-Date: Mon, 6 May 2024 07:08:09 +0000\r\n",
            "\r\n\r\nOriginal-Recipient: rfc822;bob+40rcpt.test\r\n",
            "Final-Recipient: rfc822; bob@rcpt.test\r\n",
            "Action: failed\r\n",
            "Status: 5.1.1\r\n",
            "Remote-MTA: dns; mx.rcpt.test\r\n",
            "Diagnostic-Code: smtp; 550 5.1.1 <bob@rcpt.test>:",
            "Last-Attempt-Date: Mon, 6 May 2024 08:00:00 +0000\r\n",
        ] {
            assert!(status.contains(f), "missing {f:?} in {status}");
        }
        assert!(!status.contains("Will-Retry-Until"));
        assert!(status.is_ascii());

        let headers = parts[2].contents();
        assert!(contains(headers, "Subject: Quarterly numbers\r\n"));
        assert!(contains(headers, "Message-ID: <orig-1@sender.test>"));
        assert!(!contains(headers, "SECRET"));
    }

    #[test]
    fn ret_hdrs_is_headers_only() {
        let m = message("alice@sender.test", Some(Ret::Hdrs));
        let r = &m.recipients[0];
        let dsn = build(&input(&m, vec![rcpt(r, DsnAction::Failed, "554 5.7.1 no")]));
        assert!(!contains(&dsn, "SECRET BODY"));
        assert!(contains(&dsn, "Content-Type: text/rfc822-headers"));
    }

    #[test]
    fn ret_full_returns_whole_message() {
        let m = message("alice@sender.test", Some(Ret::Full));
        let r = &m.recipients[0];
        let dsn = build(&input(
            &m,
            vec![rcpt(r, DsnAction::Failed, "550 5.1.1 unknown")],
        ));
        assert_crlf(&dsn);
        let msg = MessageParser::default().parse(&dsn).unwrap();
        let PartType::Multipart(ids) = &msg.parts[0].body else {
            panic!("not multipart")
        };
        assert_eq!(ids.len(), 3);
        let third = &msg.parts[ids[2] as usize];
        assert_eq!(ctype(third), "message/rfc822");
        let PartType::Message(inner) = &third.body else {
            panic!("not a nested message")
        };
        assert_eq!(inner.subject(), Some("Quarterly numbers"));
        assert!(inner.body_text(0).unwrap().contains("SECRET BODY LINE"));
        assert!(msg.parts[ids[0] as usize]
            .text_contents()
            .unwrap()
            .contains("It's attached below."));
    }

    #[test]
    fn delayed_and_success_never_return_body() {
        let m = message("alice@sender.test", Some(Ret::Full));
        let r = &m.recipients[0];
        let dsn = build(&input(
            &m,
            vec![rcpt(r, DsnAction::Delayed, "451 4.4.1 try later")],
        ));
        assert!(!contains(&dsn, "SECRET BODY"));
        let msg = MessageParser::default().parse(&dsn).unwrap();
        assert_eq!(msg.subject(), Some("Delayed Mail (still being retried)"));
        assert!(contains(&dsn, "Action: delayed\r\n"));
        assert!(contains(&dsn, "Status: 4.4.1\r\n"));
        assert!(contains(
            &dsn,
            "Will-Retry-Until: Sat, 11 May 2024 07:08:09 +0000\r\n"
        ));
        assert!(contains(&dsn, "Content-Type: text/rfc822-headers"));

        for action in [DsnAction::Delivered, DsnAction::Relayed] {
            let dsn = build(&input(&m, vec![rcpt(r, action, "250 2.0.0 Ok: queued")]));
            assert!(!contains(&dsn, "SECRET BODY"));
            let msg = MessageParser::default().parse(&dsn).unwrap();
            assert_eq!(msg.subject(), Some("Successful Mail Delivery Report"));
            assert!(contains(&dsn, &format!("Action: {}\r\n", action.as_str())));
            assert!(contains(&dsn, "Status: 2.0.0\r\n"));
            assert!(!contains(&dsn, "Will-Retry-Until"));
        }
    }

    #[test]
    fn mixed_report_is_a_failure_report() {
        let mut m = message("alice@sender.test", None);
        m.recipients.push(QueuedRecipient::new(
            Mailbox::parse("carol@rcpt.test").unwrap(),
            None,
            None,
        ));
        let dsn = build(&input(
            &m,
            vec![
                rcpt(&m.recipients[0], DsnAction::Failed, "550 5.1.1 unknown"),
                rcpt(&m.recipients[1], DsnAction::Delayed, "421 4.7.0 busy"),
            ],
        ));
        let msg = MessageParser::default().parse(&dsn).unwrap();
        assert_eq!(msg.subject(), Some("Undelivered Mail Returned to Sender"));
        assert!(contains(
            &dsn,
            "Final-Recipient: rfc822; carol@rcpt.test\r\n"
        ));
        assert!(contains(&dsn, "Not delivered yet"));
    }

    #[test]
    fn header_injection_is_neutralised() {
        let m = message("alice@sender.test\r\nBcc: victim@x.test", None);
        let r = &m.recipients[0];
        let mut d = rcpt(
            r,
            DsnAction::Failed,
            "550 5.1.1 bad\r\nSubject: forged\r\n\r\n--evil\nX-Injected: 1\rY",
        );
        d.remote_mta = Some("mx.test\r\nX-Host: forged".into());
        let mut i = input(&m, vec![d]);
        i.reporting_mta = "gw.test\nX-MTA: forged";
        let dsn = build(&i);
        assert_crlf(&dsn);
        let text = String::from_utf8_lossy(&dsn);
        for line in text.split("\r\n") {
            for forged in ["Bcc:", "Subject: forged", "X-Injected", "X-Host", "X-MTA"] {
                assert!(!line.starts_with(forged), "forged line {line:?}");
            }
            assert_ne!(line, "Y");
        }
        assert_eq!(
            top_header_names(&dsn),
            [
                "From",
                "To",
                "Subject",
                "Date",
                "Message-ID",
                "Auto-Submitted",
                "MIME-Version",
                "Content-Type",
                "Content-Transfer-Encoding"
            ]
        );
        let msg = MessageParser::default().parse(&dsn).unwrap();
        assert_eq!(msg.subject(), Some("Undelivered Mail Returned to Sender"));
        let PartType::Multipart(ids) = &msg.parts[0].body else {
            panic!("not multipart")
        };
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn bare_line_endings_in_original_become_crlf() {
        let m = message("alice@sender.test", Some(Ret::Full));
        let r = &m.recipients[0];
        let original = b"Subject: a\nX: b\rTo: c\r\n\nBODYTEXT\rmore\n";
        let mut i = input(&m, vec![rcpt(r, DsnAction::Failed, "550 no")]);
        i.original = original;
        let dsn = build(&i);
        assert_crlf(&dsn);
        assert!(contains(
            &dsn,
            "Subject: a\r\nX: b\r\nTo: c\r\n\r\nBODYTEXT\r\nmore\r\n"
        ));

        let m = message("alice@sender.test", None);
        let mut i = input(&m, vec![rcpt(r, DsnAction::Failed, "550 no")]);
        i.original = original;
        let dsn = build(&i);
        assert_crlf(&dsn);
        assert!(contains(&dsn, "Subject: a\r\nX: b\r\nTo: c\r\n"));
        assert!(!contains(&dsn, "BODYTEXT"));
    }

    #[test]
    fn boundary_never_occurs_inside() {
        let m = message("alice@sender.test", Some(Ret::Full));
        let r = &m.recipients[0];
        let dsn = build(&input(&m, vec![rcpt(r, DsnAction::Failed, "550 no")]));
        let text = String::from_utf8_lossy(&dsn);
        let b = text
            .split("boundary=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        // Three part delimiters, one close delimiter, and the header mention.
        assert_eq!(text.matches(b).count(), 5);
        assert!(!contains(ORIGINAL, b));
    }

    #[test]
    fn utf8_fields_stay_7bit_in_the_report() {
        let mut m = message("Ålice@sender.test", None);
        m.recipients[0] = QueuedRecipient::new(
            Mailbox::parse("björn@例子.test").unwrap(),
            None,
            Some("utf-8;björn@例子.test".into()),
        );
        let r = &m.recipients[0];
        let original = "Subject: Grüße\r\nFrom: Ålice@sender.test\r\n\r\nKörper\r\n".as_bytes();
        let mut i = input(
            &m,
            vec![rcpt(r, DsnAction::Failed, "550 5.1.1 björn unknown")],
        );
        i.original = original;
        let dsn = build(&i);
        assert_crlf(&dsn);
        let msg = MessageParser::default().parse(&dsn).unwrap();
        let PartType::Multipart(ids) = &msg.parts[0].body else {
            panic!("not multipart")
        };
        let parts: Vec<_> = ids.iter().map(|&i| &msg.parts[i as usize]).collect();
        assert!(parts[0]
            .text_contents()
            .unwrap()
            .contains("<björn@例子.test>"));
        let status = parts[1].contents();
        assert!(status.is_ascii());
        assert!(contains(
            status,
            "Final-Recipient: utf-8; bj\\x{F6}rn@\\x{4F8B}\\x{5B50}.test"
        ));
        assert!(contains(status, "Original-Recipient: utf-8;bj\\x{F6}rn@"));
        assert!(contains(
            status,
            "Diagnostic-Code: smtp; 550 5.1.1 bj?rn unknown"
        ));
        assert!(contains(parts[2].contents(), "Subject: Grüße"));
        assert!(!contains(&dsn, "Körper"));
        assert!(contains(&dsn, "Content-Transfer-Encoding: 8bit"));
    }

    #[test]
    fn long_diagnostic_is_folded_and_capped() {
        let m = message("alice@sender.test", None);
        let r = &m.recipients[0];
        let reply = format!("550 5.7.1 {} {}", "word ".repeat(300), "x".repeat(3000));
        let dsn = build(&input(&m, vec![rcpt(r, DsnAction::Failed, &reply)]));
        assert_crlf(&dsn);
        assert!(max_line(&dsn) <= 998);
        let msg = MessageParser::default().parse(&dsn).unwrap();
        let PartType::Multipart(ids) = &msg.parts[0].body else {
            panic!("not multipart")
        };
        assert_eq!(ids.len(), 3);
        assert!(contains(&dsn, "Status: 5.7.1\r\n"));
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let m = message("a@b.test", Some(Ret::Full));
        let r = &m.recipients[0];
        for original in [
            &b""[..],
            b"\r\n",
            b"\r\n\r\n",
            b"no header end",
            b"\0\xff\xfe\r\n\r\n\0",
            b"\r",
            b"\n",
        ] {
            for action in [
                DsnAction::Failed,
                DsnAction::Delayed,
                DsnAction::Delivered,
                DsnAction::Relayed,
            ] {
                let d = DsnRecipient {
                    recipient: r,
                    action,
                    status: "not a status".into(),
                    diagnostic: Some(String::new()),
                    remote_mta: Some(String::new()),
                    last_attempt: None,
                    will_retry_until: None,
                };
                let mut i = input(&m, vec![d]);
                i.original = original;
                i.reporting_mta = "";
                let dsn = build(&i);
                assert_crlf(&dsn);
                assert!(contains(
                    &dsn,
                    &format!("Status: {}\r\n", action.default_status())
                ));
                assert!(!contains(&dsn, "Remote-MTA"));
                assert!(!contains(&dsn, "Diagnostic-Code"));
            }
        }
        let mut i = input(&m, vec![]);
        i.original = b"";
        assert_crlf(&build(&i));
    }

    #[test]
    fn wanted_truth_table() {
        use DsnAction::*;
        let n = |success, failure, delay| {
            Some(Notify {
                success,
                failure,
                delay,
            })
        };
        let never = n(false, false, false);
        let cases = [
            // notify, [Failed, Delayed, Delivered, Relayed]
            (None, [true, true, false, false]),
            (never, [false, false, false, false]),
            (n(false, true, false), [true, false, false, false]),
            (n(false, false, true), [false, true, false, false]),
            (n(true, false, false), [false, false, true, true]),
            (n(true, true, true), [true, true, true, true]),
            (n(false, true, true), [true, true, false, false]),
        ];
        for (notify, expect) in cases {
            let mut m = message("alice@sender.test", None);
            m.recipients[0].notify = notify;
            for (action, want) in [Failed, Delayed, Delivered, Relayed].iter().zip(expect) {
                assert_eq!(
                    wanted(&m, &m.recipients[0], action),
                    want,
                    "{notify:?} {action:?}"
                );
            }
            // The null sender never gets one, whatever it asked for.
            m.from = String::new();
            for action in [Failed, Delayed, Delivered, Relayed] {
                assert!(!wanted(&m, &m.recipients[0], &action));
            }
        }
    }

    #[test]
    fn status_of_cases() {
        for (reply, status) in [
            ("550 5.1.1 <x@y>: user unknown", "5.1.1"),
            ("550-5.7.26 unauthenticated mail", "5.7.26"),
            ("452 4.2.2 mailbox full", "4.2.2"),
            ("250 2.0.0 Ok: queued as ABC", "2.0.0"),
            ("250 Ok", "2.0.0"),
            ("554 Transaction failed", "5.0.0"),
            ("421 Service not available", "4.0.0"),
            ("550 4.1.1 class disagrees", "5.0.0"),
            ("550 5.1 incomplete", "5.0.0"),
            ("550 5.1234.1 too long", "5.0.0"),
            ("550 5.1.1.1 too many", "5.0.0"),
            ("550", "5.0.0"),
            ("  550 5.2.2 leading space", "5.2.2"),
            ("5501 no", "4.0.0"),
            ("connection refused", "4.0.0"),
            ("", "4.0.0"),
            ("5", "4.0.0"),
            ("55é", "4.0.0"),
            ("550é", "4.0.0"),
        ] {
            assert_eq!(status_of(reply), status, "{reply:?}");
        }
    }

    #[test]
    fn quoted_printable_lines_are_short() {
        let s = format!("{}é =\t\r\nx \r\n", "a".repeat(200));
        let qp = quoted_printable(s.as_bytes());
        assert!(qp.is_ascii());
        assert!(qp.split("\r\n").all(|l| l.len() <= 76));
        assert!(qp.ends_with("x=20\r\n"));
        assert!(qp.contains("=C3=A9 =3D=09\r\n"));
    }
}
