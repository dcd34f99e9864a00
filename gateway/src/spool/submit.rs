//! Messages Sealgate writes itself — DSNs, portal notices, one-time codes,
//! read receipts, replies from the portal — enter the spool here, durably,
//! and then take the same path as mail that arrived by SMTP.

use super::{Direction, Origin, QueueId, QueuedMessage, QueuedRecipient, Spool, SpoolError};
use crate::model::address::Mailbox;
use crate::model::envelope::{BodyType, MailParams};
use chrono::Utc;

/// One message Sealgate composed.
pub struct Submission<'a> {
    /// MAIL FROM; empty for the null reverse path.
    pub from: &'a str,
    /// RCPT TO.
    pub to: Vec<Mailbox>,
    /// [`PORTAL_ORIGIN`] or [`DSN_ORIGIN`].
    pub origin: &'static str,
    /// Which way it travels.
    pub direction: Direction,
    /// The gateway's host name (the `Received:` line and the origin's HELO).
    pub hostname: &'a str,
    /// The whole message, CRLF line ends.
    pub bytes: &'a [u8],
}

impl Spool {
    /// Stores `s` with fsync and announces it to the next stage.
    pub async fn submit(&self, s: Submission<'_>) -> Result<QueueId, SpoolError> {
        let mut w = self.writer();
        let id = w.id();
        w.write(s.bytes).await?;
        let received_header = format!(
            "Received: by {} (Sealgate) id {id};\r\n\t{}\r\n",
            s.hostname,
            Utc::now().to_rfc2822()
        );
        // UTF-8 headers or mailboxes need 8BITMIME / SMTPUTF8 on the way out
        // like any other message.
        let mail_params = MailParams {
            body: (!s.bytes.is_ascii()).then_some(BodyType::EightBitMime),
            smtputf8: !s.from.is_ascii() || s.to.iter().any(|m| !m.to_string().is_ascii()),
            ..Default::default()
        };
        let record = QueuedMessage {
            id,
            received_at: Utc::now(),
            from: s.from.to_string(),
            mail_params,
            recipients: s
                .to
                .into_iter()
                .map(|m| QueuedRecipient::new(m, None, None))
                .collect(),
            origin: Origin {
                listener: s.origin.into(),
                peer: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                helo: s.hostname.to_string(),
                tls: None,
                connector: None,
                direction: s.direction,
            },
            size: 0,
            body_sha256: String::new(),
            chunks: 0,
            received_header,
            new_subject: None,
            decided: false,
            auth: None,
            scan: None,
        };
        w.commit(record).await.map(|m| m.id)
    }
}
