//! A client for rspamd's HTTP protocol (`POST /checkv2` on the normal
//! worker): the message as the body, the envelope in request headers, and
//! a JSON reply with the score, the action rspamd's configuration chose and
//! the symbols that fired. Made with ureq, the project's HTTP client, on
//! the blocking pool.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::model::inbound::Identities;

/// What went wrong asking rspamd.
#[derive(Debug, thiserror::Error)]
pub enum RspamdError {
    /// No answer (connection refused, timeout) or not a 200.
    #[error("rspamd at {url}: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// Why.
        reason: String,
    },
    /// An answer that is not the JSON of /checkv2.
    #[error("rspamd at {url} answered something other than a check result: {reason}")]
    BadReply {
        /// The URL asked.
        url: String,
        /// Why.
        reason: String,
    },
    /// The blocking task was lost.
    #[error("rspamd check task: {0}")]
    Task(String),
}

/// rspamd's verdict on one message.
#[derive(Debug, Clone, PartialEq)]
pub struct RspamdReply {
    /// The action: "no action", "greylist", "add header", "rewrite subject",
    /// "soft reject" or "reject".
    pub action: String,
    /// The message's score.
    pub score: f64,
    /// The score at which rspamd rejects.
    pub required_score: f64,
    /// Names of the symbols that fired, sorted.
    pub symbols: Vec<String>,
}

#[derive(Deserialize)]
struct Wire {
    action: String,
    score: f64,
    required_score: f64,
    #[serde(default)]
    symbols: BTreeMap<String, serde::de::IgnoredAny>,
}

/// The envelope facts rspamd scores with.
pub struct Envelope<'a> {
    /// Client address, HELO name and MAIL FROM.
    pub who: &'a Identities<'a>,
    /// RCPT TO addresses.
    pub rcpts: Vec<String>,
    /// Our queue id, for rspamd's log.
    pub queue_id: String,
}

/// rspamd's normal worker.
#[derive(Clone)]
pub struct Rspamd {
    agent: ureq::Agent,
    url: String,
}

impl Rspamd {
    /// A client for the worker at `base` (`http://host:port`), each check
    /// bounded by `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Rspamd {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build();
        Rspamd {
            agent: config.into(),
            url: format!("{}/checkv2", base.trim_end_matches('/')),
        }
    }

    /// Scores `message`.
    pub async fn check(
        &self,
        message: std::sync::Arc<Vec<u8>>,
        env: Envelope<'_>,
    ) -> Result<RspamdReply, RspamdError> {
        let (agent, url) = (self.agent.clone(), self.url.clone());
        // Header values must not break the request: addresses and names
        // are SMTP syntax already; control characters are dropped anyway.
        let clean = |s: &str| s.chars().filter(|c| !c.is_control()).collect::<String>();
        let mut headers = vec![
            ("IP", env.who.ip.to_string()),
            ("Helo", clean(env.who.helo)),
            ("From", clean(env.who.mail_from)),
            ("Queue-Id", clean(&env.queue_id)),
        ];
        headers.extend(env.rcpts.iter().map(|r| ("Rcpt", clean(r))));
        tokio::task::spawn_blocking(move || {
            let mut req = agent.post(&url);
            for (name, value) in &headers {
                req = req.header(*name, value);
            }
            let unreachable = |reason: String| RspamdError::Unreachable {
                url: url.clone(),
                reason,
            };
            let mut resp = req
                .send(&message[..])
                .map_err(|e| unreachable(e.to_string()))?;
            if resp.status() != 200 {
                return Err(unreachable(format!("HTTP {}", resp.status())));
            }
            let wire: Wire = resp
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_json()
                .map_err(|e| RspamdError::BadReply {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
            Ok(RspamdReply {
                action: wire.action,
                score: wire.score,
                required_score: wire.required_score,
                symbols: wire.symbols.into_keys().collect(),
            })
        })
        .await
        .map_err(|e| RspamdError::Task(e.to_string()))?
    }
}
