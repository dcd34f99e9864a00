//! The `Received:` trace header (RFC 5321 §4.4) Sealgate adds to each message.

use crate::spool::{QueueId, TlsFacts};
use std::net::IpAddr;

/// What the trace header records.
pub struct Trace<'a> {
    /// Name the client gave in HELO/EHLO.
    pub helo: &'a str,
    /// Whether the client used EHLO.
    pub ehlo: bool,
    /// Peer address.
    pub peer: IpAddr,
    /// Our host name.
    pub by: &'a str,
    /// The queue id.
    pub id: QueueId,
    /// TLS facts, if encrypted.
    pub tls: Option<&'a TlsFacts>,
    /// SMTPUTF8 was used.
    pub smtputf8: bool,
    /// The single recipient, if there is exactly one.
    pub for_rcpt: Option<&'a str>,
    /// Time of receipt.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Keeps a client-supplied name from bending a header's or reply's syntax.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-:[]_".contains(c) {
                c
            } else {
                '?'
            }
        })
        .take(255)
        .collect()
}

impl Trace<'_> {
    /// The header, folded, ending in CRLF.
    pub fn header(&self) -> String {
        // RFC 3848 / RFC 6531 protocol names.
        let proto = match (self.smtputf8, self.ehlo, self.tls.is_some()) {
            (true, _, true) => "UTF8SMTPS",
            (true, _, false) => "UTF8SMTP",
            (false, true, true) => "ESMTPS",
            (false, true, false) => "ESMTP",
            (false, false, _) => "SMTP",
        };
        let peer = match self.peer {
            IpAddr::V4(v4) => format!("[{v4}]"),
            IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
        };
        let tls = match self.tls {
            Some(t) => format!("(using {} with cipher {})", t.version, t.cipher),
            None => "(no TLS)".to_string(),
        };
        let for_clause = match self.for_rcpt {
            Some(r) => format!("\r\n\tfor <{r}>"),
            None => String::new(),
        };
        format!(
            "Received: from {} ({})\r\n\tby {} (Sealgate) with {} id {}\r\n\t{}{};\r\n\t{}\r\n",
            clean(self.helo),
            peer,
            self.by,
            proto,
            self.id,
            tls,
            for_clause,
            self.at.to_rfc2822()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_peer_helo_and_tls() {
        let facts = TlsFacts {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            client_names: vec![],
        };
        let t = Trace {
            helo: "client.example (evil)\r\nX: y",
            ehlo: true,
            peer: "192.0.2.1".parse().unwrap(),
            by: "mx.example.org",
            id: QueueId(0xABC),
            tls: Some(&facts),
            smtputf8: false,
            for_rcpt: Some("a@b.example"),
            at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
        };
        let h = t.header();
        assert!(
            h.starts_with("Received: from client.example??evil???X:?y ([192.0.2.1])\r\n"),
            "{h}"
        );
        assert!(h.contains("with ESMTPS id 0000000000000ABC"));
        assert!(h.contains("(using TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384)"));
        assert!(h.contains("for <a@b.example>;"));
        assert!(h.ends_with("+0000\r\n"));
        let plain = Trace {
            tls: None,
            ehlo: false,
            for_rcpt: None,
            ..t
        };
        let h = plain.header();
        assert!(h.contains("with SMTP id") && h.contains("(no TLS);"), "{h}");
    }
}
