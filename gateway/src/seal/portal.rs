//! The portal step of the seal chain: the message (as it would leave) is
//! deposited in the escrow store for one recipient, and the mail that
//! tells people about it is composed — the notice with the link for the
//! recipient, and for the sender a confirmation with a withdraw link.

use super::notice::{self, Mail, NoticeOptions, Templates};
use crate::config::Config;
use crate::model::address::Mailbox;
use crate::model::escrow::{Deposit, NewDeposit};
use crate::model::verdict::Seal;
use crate::spool::{Direction, QueuedMessage, SealRecord};
use crate::store::escrow::{EscrowError, EscrowStore};
use crate::telemetry::metrics::Metrics;
use chrono::Utc;
use std::sync::Arc;

/// A message Sealgate writes because of a deposit.
#[derive(Debug)]
pub struct Outgoing {
    /// MAIL FROM.
    pub from: String,
    /// The one recipient.
    pub to: Mailbox,
    /// Which way it travels.
    pub direction: Direction,
    /// The message.
    pub bytes: Vec<u8>,
}

/// Holds messages in the escrow store and writes the notices.
#[derive(Clone)]
pub struct PortalSeal {
    escrow: Arc<dyn EscrowStore>,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    templates: Templates,
}

impl std::fmt::Debug for PortalSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PortalSeal")
    }
}

/// The address portal mail is sent from for a message from `sender`.
pub fn notice_from(config: &Config, sender: &str) -> String {
    match &config.portal.notice_from {
        Some(a) => a.clone(),
        None if !sender.is_empty() => sender.to_string(),
        None => format!("postmaster@{}", config.server.hostname),
    }
}

/// The direction of mail to `to`: inbound to the organisation's own domains.
pub fn direction_to(config: &Config, to: &Mailbox) -> Direction {
    if config.is_local_domain(to.domain()) {
        Direction::Inbound
    } else {
        Direction::Outbound
    }
}

/// Why a recipient could not be held in the portal (it is then blocked).
#[derive(Debug, thiserror::Error)]
pub enum PortalHoldError {
    /// The verdict says portal, but the portal is off.
    #[error("the escrow portal is off ([portal] enabled = false)")]
    Off,
    /// The escrow store did not take the deposit.
    #[error(transparent)]
    Deposit(#[from] EscrowError),
}

impl PortalSeal {
    /// The portal step for `config`, depositing into `escrow`.
    pub fn new(
        config: Arc<Config>,
        escrow: Arc<dyn EscrowStore>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let templates = match &config.portal.templates_dir {
            Some(dir) => Templates::load(dir)?,
            None => Templates::default(),
        };
        Ok(PortalSeal {
            escrow,
            config,
            metrics,
            templates,
        })
    }

    /// Deposits `outgoing` (recipient `index` of `msg`, as it would leave)
    /// for as long as the DLP rules that fired on it (`dlp_hits`) allow, and
    /// composes the notice and, if configured, the sender's confirmation.
    pub async fn hold(
        &self,
        msg: &QueuedMessage,
        index: usize,
        outgoing: &[u8],
        dlp_hits: &[String],
    ) -> Result<(SealRecord, Vec<Outgoing>), PortalHoldError> {
        let p = &self.config.portal;
        let rcpt = &msg.recipients[index].address;
        let recipient = crate::keys::filed_as(rcpt);
        let stay = p.expiry_for(dlp_hits);
        let expires_at =
            Utc::now() + chrono::Duration::from_std(stay.0).unwrap_or(chrono::Duration::days(30));
        let Deposit {
            entry,
            token,
            revoke_token,
        } = self
            .escrow
            .deposit(NewDeposit {
                queue_id: &msg.id.to_string(),
                sender: &msg.from,
                recipient: &recipient,
                message: outgoing,
                expires_at,
            })
            .await?;
        let from = notice_from(&self.config, &msg.from);
        let subject = p
            .reveal_subject
            .then(|| crate::model::header_fields::subject(outgoing))
            .flatten();
        let sender_shown = if msg.from.is_empty() {
            self.config.portal.organisation.clone()
        } else {
            msg.from.clone()
        };
        let mut mail = vec![Outgoing {
            from: from.clone(),
            to: rcpt.clone(),
            direction: Direction::Outbound,
            bytes: notice::notice(
                &rcpt.to_string(),
                &sender_shown,
                &token,
                &NoticeOptions {
                    public_url: &p.public_url,
                    from: &from,
                    organisation: &p.organisation,
                    expires_at,
                    subject: subject.as_deref(),
                    brand_color: &p.brand_color,
                    templates: &self.templates,
                },
            ),
        }];
        if p.sender_confirmation {
            if let Ok(sender) = Mailbox::parse(&msg.from) {
                let url = format!("{}/r/{revoke_token}", p.public_url.trim_end_matches('/'));
                let text = format!(
                    "Your message to {rcpt} was sent securely: it is held in the {org} portal, and {rcpt} was sent a link to read it there.\r\n\r\n\
                     It can be read until {until}.\r\n\r\n\
                     To withdraw it before then, open this link:\r\n{url}\r\n",
                    org = notice::header_safe(&p.organisation),
                    until = expires_at.format("%-d %B %Y"),
                );
                mail.push(Outgoing {
                    from: format!("postmaster@{}", self.config.server.hostname),
                    to: sender.clone(),
                    direction: direction_to(&self.config, &sender),
                    bytes: notice::compose(&Mail {
                        from_name: &p.organisation,
                        from: &format!("postmaster@{}", self.config.server.hostname),
                        to: &msg.from,
                        subject: &format!("Sent securely to {rcpt}"),
                        text: &text,
                        html: None,
                        in_reply_to: Some(entry.message_id.as_str()),
                    }),
                });
            }
        }
        self.metrics
            .portal_events
            .with_label_values(&["notice"])
            .inc();
        let record = SealRecord {
            method: Seal::Portal,
            key: entry.id.clone(),
            label: format!("escrow until {}", expires_at.to_rfc3339()),
            key_source: "escrow".into(),
            at: Utc::now(),
            size: outgoing.len() as u64,
        };
        Ok((record, mail))
    }
}
