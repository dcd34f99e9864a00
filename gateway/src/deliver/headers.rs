//! Header hygiene on the way to the tenant. Exchange Online trusts
//! `X-MS-Exchange-Organization-*` headers (spam verdicts, authentication
//! results, "internal" markers) as set inside the organisation; on mail from
//! the internet they are forgeries, so inbound mail loses them here. The
//! spool keeps the message exactly as received.

use crate::header_fields;

/// Header-name prefixes removed from inbound mail (compared case-insensitively).
const FORGEABLE: &[&str] = &["x-ms-exchange-organization-"];

/// `message` without header fields whose names start with a forgeable
/// prefix (each removed with its folded continuation lines). The body is
/// untouched; returns the number of fields removed.
pub fn strip_forgeable(message: &[u8]) -> (Vec<u8>, usize) {
    let (fields, rest) = header_fields::split(message);
    let mut out = Vec::with_capacity(message.len());
    let mut removed = 0;
    for f in fields {
        if FORGEABLE
            .iter()
            .any(|p| header_fields::name_starts_with(f, p))
        {
            removed += 1;
        } else {
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(rest);
    (out, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_organisation_headers_go_with_their_folds() {
        let m = b"Received: x\r\nX-MS-Exchange-Organization-SCL: -1\r\nx-ms-exchange-organization-authas: Internal\r\n\tfolded\r\nSubject: hi\r\n\r\nX-MS-Exchange-Organization-SCL: body stays\r\n";
        let (out, n) = strip_forgeable(m);
        assert_eq!(n, 2);
        assert_eq!(
            out,
            b"Received: x\r\nSubject: hi\r\n\r\nX-MS-Exchange-Organization-SCL: body stays\r\n"
        );
    }

    #[test]
    fn clean_message_is_unchanged() {
        let m = b"Subject: a\r\nX-MS-Exchange-CrossTenant-Id: abc\r\n\r\nbody";
        assert_eq!(strip_forgeable(m), (m.to_vec(), 0));
        assert_eq!(strip_forgeable(b"no header end").0, b"no header end");
    }
}
