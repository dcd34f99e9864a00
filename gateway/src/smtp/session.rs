//! The SMTP server session as a typed state machine. Each command has its
//! own small handler that returns a [`Step`]; the connection driver
//! (`server.rs`) does the I/O, TLS and DATA streaming.

use super::address::{Mailbox, ReversePath};
use super::command::{BodyType, Command, MailParams, RcptParams};
use super::reply::Reply;
use crate::config::{Config, ListenerConfig, ListenerTls};
use crate::smtp::tls::name_matches;
use crate::spool::{Direction, QueuedRecipient, TlsFacts};
use crate::telemetry::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where the session is in the protocol.
#[derive(Debug)]
pub enum State {
    /// Connected, no EHLO/HELO yet (also right after STARTTLS).
    Connected,
    /// Greeted, no transaction.
    Greeted,
    /// MAIL FROM accepted; collecting recipients.
    Transaction(Transaction),
}

/// A mail transaction being built.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// MAIL FROM path.
    pub from: ReversePath,
    /// MAIL FROM parameters.
    pub params: MailParams,
    /// Connector that matched at MAIL time.
    pub connector: Option<String>,
    /// Direction decided at MAIL time.
    pub direction: Direction,
    /// The Microsoft 365 tenant the message must prove it comes from.
    pub required_tenant: Option<String>,
    /// With a null sender through a connector that names its sender domains:
    /// the domains the header `From` must be in, since there is no envelope
    /// sender to check.
    pub required_from_domains: Option<Vec<String>>,
    /// Accepted recipients.
    pub recipients: Vec<QueuedRecipient>,
}

/// Whether `domain` (lower-case ASCII) is one of `domains` or below one.
pub fn domain_within(domain: &str, domains: &[String]) -> bool {
    domains.iter().any(|s| {
        domain == s
            || domain
                .strip_suffix(s.as_str())
                .is_some_and(|p| p.ends_with('.'))
    })
}

/// Whether every address in a header `From` value is in `domains`; false
/// when it holds no address. Quoted display names are skipped, so
/// `"a@evil" <b@tenant>` is judged by `b@tenant`.
pub fn header_from_within(value: &str, domains: &[String]) -> bool {
    let mut unquoted = String::with_capacity(value.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ if !quoted => unquoted.push(c),
            _ => {}
        }
    }
    let mut found = false;
    for (i, _) in unquoted.match_indices('@') {
        let domain: String = unquoted[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
            .collect::<String>()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if !domain_within(&domain, domains) {
            return false;
        }
        found = true;
    }
    found
}

/// What the driver should do next.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Send this reply and read the next command.
    Reply(Reply),
    /// Send this reply and close the connection.
    Close(Reply),
    /// Send 220 and start the TLS handshake.
    StartTls,
    /// Send 354 and receive the message.
    Data,
    /// Discard this many octets of BDAT data, then reply 502.
    SkipBdat(u64),
}

/// One SMTP session's protocol state.
pub struct Session {
    config: Arc<Config>,
    listener: Arc<ListenerConfig>,
    metrics: Arc<Metrics>,
    /// Peer address.
    pub peer: SocketAddr,
    /// Protocol state.
    pub state: State,
    /// HELO/EHLO name and whether it was EHLO.
    pub helo: Option<(String, bool)>,
    /// TLS facts once encrypted.
    pub tls: Option<TlsFacts>,
    errors: u32,
    junk: u32,
    recipients: Option<super::recipients::SharedRecipients>,
}

impl Session {
    /// A new session on `listener` from `peer`.
    pub fn new(
        config: Arc<Config>,
        listener: Arc<ListenerConfig>,
        metrics: Arc<Metrics>,
        peer: SocketAddr,
    ) -> Self {
        Session {
            config,
            listener,
            metrics,
            peer,
            state: State::Connected,
            helo: None,
            tls: None,
            errors: 0,
            junk: 0,
            recipients: None,
        }
    }

    /// Checks inbound recipients against this list of known addresses.
    pub fn with_recipients(mut self, list: super::recipients::SharedRecipients) -> Self {
        self.recipients = Some(list);
        self
    }

    /// The greeting banner.
    pub fn greeting(&self) -> Reply {
        Reply::new(
            220,
            "",
            format!("{} ESMTP Sealgate ready", self.config.server.hostname),
        )
    }

    /// Records a completed TLS handshake; the client must greet again (RFC 3207 §4.2).
    pub fn tls_started(&mut self, facts: TlsFacts) {
        self.tls = Some(facts);
        self.state = State::Connected;
        self.helo = None;
    }

    /// The config in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The listener this session arrived on.
    pub fn listener(&self) -> &ListenerConfig {
        &self.listener
    }

    /// Ends the current transaction (after DATA, whatever its outcome).
    pub fn take_transaction(&mut self) -> Option<Transaction> {
        match std::mem::replace(&mut self.state, State::Greeted) {
            State::Transaction(t) => Some(t),
            other => {
                self.state = other;
                None
            }
        }
    }

    fn starttls_offered(&self) -> bool {
        self.listener.tls == ListenerTls::Starttls && self.tls.is_none()
    }

    /// Counts a failed command; closes the session past the limit.
    fn fail(&mut self, reason: &str, reply: Reply) -> Step {
        self.metrics.refused(reason);
        self.errors += 1;
        if self.errors >= self.config.limits.max_errors {
            self.metrics.refused("too_many_errors");
            return Step::Close(Reply::new(
                421,
                "4.7.0",
                "Too many errors, closing connection",
            ));
        }
        Step::Reply(reply)
    }

    /// Handles a line that did not parse.
    pub fn parse_failed(&mut self, reply: Reply) -> Step {
        self.fail("syntax", reply)
    }

    /// Handles a line longer than the limit.
    pub fn line_too_long(&mut self) -> Step {
        self.fail("line_too_long", Reply::new(500, "5.5.2", "Line too long"))
    }

    /// Dispatches one command.
    pub fn handle(&mut self, cmd: Command) -> Step {
        // Commands that move no mail can keep a session busy for its whole
        // lifetime; cap them (Postfix: smtpd_junk_command_limit).
        if matches!(
            cmd,
            Command::Noop
                | Command::Rset
                | Command::Vrfy
                | Command::Expn
                | Command::Help
                | Command::Ehlo(_)
                | Command::Helo(_)
        ) {
            self.junk += 1;
            if self.junk > self.config.limits.max_junk_commands {
                self.metrics.refused("too_many_commands");
                return Step::Close(Reply::new(
                    421,
                    "4.7.0",
                    "Too many commands, closing connection",
                ));
            }
        }
        match cmd {
            Command::Ehlo(name) => self.ehlo(name, true),
            Command::Helo(name) => self.ehlo(name, false),
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to, params } => self.rcpt(to, params),
            Command::Data => self.data(),
            Command::Bdat { size, .. } => {
                self.metrics.refused("bdat");
                Step::SkipBdat(size)
            }
            Command::Rset => {
                if matches!(self.state, State::Transaction(_)) {
                    self.state = State::Greeted;
                }
                Step::Reply(Reply::new(250, "2.0.0", "Ok"))
            }
            Command::Noop => Step::Reply(Reply::new(250, "2.0.0", "Ok")),
            Command::Quit => Step::Close(Reply::new(221, "2.0.0", "Bye")),
            Command::Vrfy => Step::Reply(Reply::new(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Command::Expn => self.fail("expn", Reply::new(502, "5.5.1", "EXPN not available")),
            Command::Help => Step::Reply(Reply::new(
                214,
                "2.0.0",
                "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS",
            )),
            Command::StartTls => self.starttls(),
            Command::Auth => self.fail(
                "auth",
                Reply::new(502, "5.5.1", "AUTH not available on this listener"),
            ),
        }
    }

    fn ehlo(&mut self, name: String, ehlo: bool) -> Step {
        let greeting = format!(
            "{} Hello {} [{}]",
            self.config.server.hostname,
            crate::smtp::received::clean(&name),
            self.peer.ip()
        );
        self.helo = Some((name, ehlo));
        self.state = State::Greeted;
        if !ehlo {
            return Step::Reply(Reply::new(250, "", greeting));
        }
        let mut lines: Vec<std::borrow::Cow<'static, str>> = vec![
            greeting.into(),
            "PIPELINING".into(),
            format!("SIZE {}", self.config.limits.max_message_size).into(),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "DSN".into(),
        ];
        if self.starttls_offered() {
            lines.push("STARTTLS".into());
        }
        Step::Reply(Reply::multi(250, "", lines))
    }

    fn starttls(&mut self) -> Step {
        if self.tls.is_some() {
            return self.fail("sequence", Reply::new(503, "5.5.1", "TLS already active"));
        }
        if !self.starttls_offered() {
            return self.fail(
                "starttls_unavailable",
                Reply::new(502, "5.5.1", "STARTTLS not available"),
            );
        }
        if matches!(self.state, State::Transaction(_)) {
            return self.fail(
                "sequence",
                Reply::new(503, "5.5.1", "STARTTLS not allowed during a transaction"),
            );
        }
        Step::StartTls
    }

    /// Which connector, if any, this session matches now.
    fn connector(&self, from: &ReversePath) -> Option<&crate::config::ConnectorConfig> {
        let ip = self.peer.ip().to_canonical();
        let sender_domain = match from {
            ReversePath::Mailbox(m) => Some(m.domain_ascii()),
            ReversePath::Null => None,
        };
        self.config.connector.iter().find(|c| {
            // Bounces (null sender) from the tenant must flow too.
            // (their header From is checked after DATA: see `required_from_domains`).
            let sender_ok = c.sender_domains.is_empty()
                || sender_domain
                    .as_deref()
                    .is_none_or(|d| domain_within(d, &c.sender_domains));
            let on_listener =
                c.listeners.is_empty() || c.listeners.iter().any(|l| *l == self.listener.name);
            let ip_ok = c.cidrs.is_empty() || c.cidrs.iter().any(|n| n.contains(&ip));
            let cert_ok = c.tls_client_names.is_empty()
                || self.tls.as_ref().is_some_and(|t| {
                    t.client_names
                        .iter()
                        .any(|n| c.tls_client_names.iter().any(|p| name_matches(p, n)))
                });
            on_listener && ip_ok && cert_ok && sender_ok
        })
    }

    fn mail(&mut self, from: ReversePath, params: MailParams) -> Step {
        let ehlo = match (&self.state, &self.helo) {
            (State::Transaction(_), _) => {
                return self.fail(
                    "sequence",
                    Reply::new(503, "5.5.1", "Sender already specified"),
                )
            }
            (_, None) => {
                return self.fail(
                    "sequence",
                    Reply::new(503, "5.5.1", "Send EHLO or HELO first"),
                )
            }
            (_, Some((_, ehlo))) => *ehlo,
        };
        if self.listener.require_tls && self.tls.is_none() {
            return self.fail(
                "requires_tls",
                Reply::new(530, "5.7.0", "Must issue a STARTTLS command first"),
            );
        }
        if !ehlo && (params != MailParams::default()) {
            return self.fail(
                "syntax",
                Reply::new(555, "5.5.4", "MAIL parameters need EHLO"),
            );
        }
        if params.body == Some(BodyType::BinaryMime) {
            return self.fail(
                "syntax",
                Reply::new(
                    555,
                    "5.5.4",
                    "BINARYMIME needs CHUNKING, which is not offered",
                ),
            );
        }
        if params
            .size
            .is_some_and(|s| s > self.config.limits.max_message_size)
        {
            self.metrics.refused("size");
            return Step::Reply(Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ));
        }
        if let ReversePath::Mailbox(m) = &from {
            if m.needs_smtputf8() && !params.smtputf8 {
                return self.fail(
                    "smtputf8",
                    Reply::new(553, "5.6.7", "Sender address needs SMTPUTF8"),
                );
            }
        }
        let matched = self.connector(&from);
        let connector = matched.map(|c| c.name.clone());
        let required_tenant = matched
            .and_then(|c| c.m365_tenant_id.as_ref())
            .map(|t| t.to_ascii_lowercase());
        let required_from_domains = matched
            .filter(|c| from == ReversePath::Null && !c.sender_domains.is_empty())
            .map(|c| c.sender_domains.clone());
        let direction = if connector.is_some() {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        self.state = State::Transaction(Transaction {
            from,
            params,
            connector,
            direction,
            required_tenant,
            required_from_domains,
            recipients: Vec::new(),
        });
        Step::Reply(Reply::new(250, "2.1.0", "Sender ok"))
    }

    fn rcpt(&mut self, to: Option<Mailbox>, params: RcptParams) -> Step {
        let local = self
            .config
            .server
            .local_domains
            .first()
            .cloned()
            .unwrap_or_else(|| self.config.server.hostname.clone());
        let State::Transaction(txn) = &mut self.state else {
            return self.fail("sequence", Reply::new(503, "5.5.1", "Send MAIL first"));
        };
        // A bare <Postmaster> must always be accepted (RFC 5321 §4.5.1).
        let (to, postmaster) = match to {
            Some(m) => (m, false),
            None => match Mailbox::parse(&format!("postmaster@{local}")) {
                Ok(m) => (m, true),
                Err(_) => {
                    return self.fail("syntax", Reply::new(550, "5.1.1", "No postmaster here"))
                }
            },
        };
        if txn.recipients.len() >= self.config.limits.max_recipients {
            self.metrics.refused("too_many_recipients");
            return Step::Reply(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        if to.needs_smtputf8() && !txn.params.smtputf8 {
            return self.fail(
                "smtputf8",
                Reply::new(553, "5.6.7", "Recipient address needs SMTPUTF8"),
            );
        }
        if txn.direction == Direction::Inbound && !postmaster {
            if !self.config.is_local_domain(to.domain()) {
                return self.fail("relay_denied", Reply::new(550, "5.7.1", "Relaying denied"));
            }
            // user%other@local, a!b@local, "x@other"@local: a backend that
            // honours these would relay for us (Postfix: allow_untrusted_routing = no).
            let known = self.recipients.as_ref().is_none_or(|r| {
                crate::locks::read(r)
                    .as_ref()
                    .is_none_or(|l| l.accepts(&to))
            });
            if !known {
                return self.fail(
                    "unknown_recipient",
                    Reply::new(550, "5.1.1", "No such user here"),
                );
            }
            let local_part = to.local().trim_matches('"');
            if local_part.contains(['%', '!', '@']) {
                return self.fail(
                    "relay_denied",
                    Reply::new(550, "5.7.1", "Sender-specified routing denied"),
                );
            }
        }
        // The same recipient twice would be delivered twice.
        let duplicate = txn.recipients.iter().any(|r| {
            r.address.local() == to.local() && r.address.domain_ascii() == to.domain_ascii()
        });
        if duplicate {
            return Step::Reply(Reply::new(250, "2.1.5", "Recipient ok (duplicate ignored)"));
        }
        txn.recipients
            .push(QueuedRecipient::new(to, params.notify, params.orcpt));
        Step::Reply(Reply::new(250, "2.1.5", "Recipient ok"))
    }

    fn data(&mut self) -> Step {
        match &self.state {
            State::Transaction(t) if !t.recipients.is_empty() => Step::Data,
            State::Transaction(_) => {
                self.fail("sequence", Reply::new(554, "5.5.1", "No valid recipients"))
            }
            _ => self.fail(
                "sequence",
                Reply::new(503, "5.5.1", "Send MAIL and RCPT first"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::command::{parse_command, EnvelopeSyntax};

    fn session(peer: &str, local_domains: &[&str]) -> Session {
        let mut c = Config::embedded();
        c.server.hostname = "mx.test".into();
        c.server.local_domains = local_domains.iter().map(|s| s.to_string()).collect();
        c.fill_defaults(); // as loading a file does: normalises domains
        let l = Arc::new(c.listener[0].clone());
        Session::new(
            Arc::new(c),
            l,
            Arc::new(Metrics::new()),
            peer.parse().unwrap(),
        )
    }

    fn code(s: &mut Session, line: &str) -> u16 {
        match parse_command(line.as_bytes(), EnvelopeSyntax::Strict) {
            Ok(cmd) => match s.handle(cmd) {
                Step::Reply(r) | Step::Close(r) => r.code,
                Step::StartTls => 220,
                Step::Data => 354,
                Step::SkipBdat(_) => 502,
            },
            Err(e) => match s.parse_failed(e.reply()) {
                Step::Reply(r) | Step::Close(r) => r.code,
                _ => 0,
            },
        }
    }

    #[test]
    fn loopback_is_outbound_and_may_relay() {
        let mut s = session("127.0.0.1:40000", &[]);
        assert_eq!(code(&mut s, "EHLO c.test"), 250);
        assert_eq!(code(&mut s, "MAIL FROM:<a@tenant.test>"), 250);
        assert_eq!(code(&mut s, "RCPT TO:<someone@example.com>"), 250);
        let State::Transaction(t) = &s.state else {
            panic!()
        };
        assert_eq!(t.direction, Direction::Outbound);
        assert_eq!(t.connector.as_deref(), Some("loopback"));
        assert_eq!(code(&mut s, "DATA"), 354);
    }

    #[test]
    fn internet_may_only_reach_local_domains() {
        let mut s = session("192.0.2.7:40000", &["hospital.test"]);
        assert_eq!(code(&mut s, "EHLO c.test"), 250);
        assert_eq!(code(&mut s, "MAIL FROM:<a@elsewhere.test>"), 250);
        assert_eq!(code(&mut s, "RCPT TO:<x@example.com>"), 550);
        assert_eq!(code(&mut s, "RCPT TO:<doc@Hospital.TEST>"), 250);
        assert_eq!(code(&mut s, "RCPT TO:<Postmaster>"), 250);
        let State::Transaction(t) = &s.state else {
            panic!()
        };
        assert_eq!(t.direction, Direction::Inbound);
        assert_eq!(
            t.recipients[1].address.to_string(),
            "postmaster@hospital.test"
        );
    }

    #[test]
    fn sequence_errors() {
        let mut s = session("127.0.0.1:1", &[]);
        assert_eq!(code(&mut s, "MAIL FROM:<a@b.test>"), 503);
        assert_eq!(code(&mut s, "HELO c.test"), 250);
        assert_eq!(code(&mut s, "MAIL FROM:<a@b.test> SIZE=10"), 555);
        assert_eq!(code(&mut s, "RCPT TO:<a@b.test>"), 503);
        assert_eq!(code(&mut s, "DATA"), 503);
        assert_eq!(code(&mut s, "MAIL FROM:<a@b.test>"), 250);
        assert_eq!(code(&mut s, "MAIL FROM:<a@b.test>"), 503);
        assert_eq!(code(&mut s, "DATA"), 554);
        assert_eq!(code(&mut s, "RSET"), 250);
        assert_eq!(code(&mut s, "RCPT TO:<a@b.test>"), 503);
    }

    #[test]
    fn size_and_utf8_rules() {
        let mut s = session("127.0.0.1:1", &[]);
        code(&mut s, "EHLO c.test");
        assert_eq!(code(&mut s, "MAIL FROM:<a@b.test> SIZE=999999999999"), 552);
        assert_eq!(code(&mut s, "MAIL FROM:<ü@b.test>"), 553);
        assert_eq!(code(&mut s, "MAIL FROM:<ü@b.test> SMTPUTF8"), 250);
        assert_eq!(code(&mut s, "RCPT TO:<ö@b.test>"), 250);
    }

    #[test]
    fn too_many_errors_closes() {
        let mut s = session("127.0.0.1:1", &[]);
        let mut last = None;
        for _ in 0..10 {
            let step = s.parse_failed(Reply::new(500, "5.5.1", "x"));
            last = Some(step);
        }
        assert!(matches!(last, Some(Step::Close(r)) if r.code == 421));
    }

    #[test]
    fn junk_command_limit() {
        let mut s = session("127.0.0.1:1", &[]);
        for _ in 0..100 {
            assert_eq!(code(&mut s, "NOOP"), 250);
        }
        assert_eq!(code(&mut s, "NOOP"), 421);
    }

    #[test]
    fn recipient_limit() {
        let mut s = session("127.0.0.1:1", &[]);
        code(&mut s, "EHLO c.test");
        code(&mut s, "MAIL FROM:<a@b.test>");
        for i in 0..1000 {
            assert_eq!(code(&mut s, &format!("RCPT TO:<r{i}@b.test>")), 250);
        }
        assert_eq!(code(&mut s, "RCPT TO:<one.more@b.test>"), 452);
    }

    #[test]
    fn ehlo_advertises_and_starttls_resets() {
        let mut s = session("127.0.0.1:1", &[]);
        let Step::Reply(r) = s.handle(Command::Ehlo("c".into())) else {
            panic!()
        };
        assert!(r.lines.iter().any(|l| l == "STARTTLS"));
        assert!(r.lines.iter().any(|l| l.starts_with("SIZE ")));
        assert_eq!(s.handle(Command::StartTls), Step::StartTls);
        s.tls_started(TlsFacts {
            version: "TLSv1.3".into(),
            cipher: "x".into(),
            client_names: vec![],
        });
        assert_eq!(code(&mut s, "MAIL FROM:<a@b.test>"), 503);
        let Step::Reply(r) = s.handle(Command::Ehlo("c".into())) else {
            panic!()
        };
        assert!(!r.lines.iter().any(|l| l == "STARTTLS"));
    }

    #[test]
    fn connector_by_certificate_name() {
        let mut c = Config::embedded();
        c.connector = vec![crate::config::ConnectorConfig {
            name: "m365".into(),
            cidrs: vec![],
            tls_client_names: vec!["*.mail.protection.outlook.com".into()],
            m365_tenant_id: Some("8F3A1C2E-0000-4000-8000-123456789ABC".into()),
            ..Default::default()
        }];
        let l = Arc::new(c.listener[0].clone());
        let mut s = Session::new(
            Arc::new(c),
            l,
            Arc::new(Metrics::new()),
            "203.0.113.9:25".parse().unwrap(),
        );
        code(&mut s, "EHLO c");
        code(&mut s, "MAIL FROM:<a@b.test>");
        let State::Transaction(t) = &s.state else {
            panic!()
        };
        assert_eq!(t.direction, Direction::Inbound);
        code(&mut s, "RSET");
        s.tls_started(TlsFacts {
            version: "TLSv1.3".into(),
            cipher: "x".into(),
            client_names: vec!["contoso.mail.protection.outlook.com".into()],
        });
        code(&mut s, "EHLO c");
        code(&mut s, "MAIL FROM:<a@b.test>");
        let State::Transaction(t) = &s.state else {
            panic!()
        };
        assert_eq!(t.connector.as_deref(), Some("m365"));
        assert_eq!(
            t.required_tenant.as_deref(),
            Some("8f3a1c2e-0000-4000-8000-123456789abc")
        );
    }

    #[test]
    fn idn_local_domains_match_in_either_form() {
        let mut s = session("192.0.2.7:40000", &["bücher.example"]);
        code(&mut s, "EHLO c.test");
        code(&mut s, "MAIL FROM:<a@elsewhere.test> SMTPUTF8");
        assert_eq!(code(&mut s, "RCPT TO:<a@xn--bcher-kva.example>"), 250);
        assert_eq!(code(&mut s, "RCPT TO:<b@BÜCHER.example>"), 250);
        assert_eq!(code(&mut s, "RCPT TO:<c@buecher.example>"), 550);
    }

    #[test]
    fn sender_specified_routing_and_duplicates() {
        let mut s = session("192.0.2.7:40000", &["hospital.test"]);
        code(&mut s, "EHLO c.test");
        code(&mut s, "MAIL FROM:<a@elsewhere.test>");
        assert_eq!(code(&mut s, "RCPT TO:<v%evil.test@hospital.test>"), 550);
        assert_eq!(code(&mut s, "RCPT TO:<v!evil.test@hospital.test>"), 550);
        assert_eq!(code(&mut s, "RCPT TO:<\"v@evil.test\"@hospital.test>"), 550);
        assert_eq!(code(&mut s, "RCPT TO:<doc@hospital.test>"), 250);
        assert_eq!(code(&mut s, "RCPT TO:<doc@HOSPITAL.test>"), 250);
        let State::Transaction(t) = &s.state else {
            panic!()
        };
        assert_eq!(t.recipients.len(), 1);
    }

    #[test]
    fn header_from_checked_against_sender_domains() {
        let tenant = vec!["tenant.example".to_string()];
        assert!(header_from_within(
            " \"x@evil.example\" <MAILER-DAEMON@mail.Tenant.example>",
            &tenant
        ));
        assert!(header_from_within("postmaster@tenant.example", &tenant));
        assert!(!header_from_within(
            "a@tenant.example, b@evil.example",
            &tenant
        ));
        assert!(!header_from_within("ceo@nottenant.example", &tenant));
        assert!(!header_from_within("Mail Delivery System", &tenant));
    }

    #[test]
    fn connector_sender_domains() {
        let mut c = Config::embedded();
        c.connector[0].sender_domains = vec!["tenant.test".into()];
        c.fill_defaults();
        let l = Arc::new(c.listener[0].clone());
        let mut s = Session::new(
            Arc::new(c),
            l,
            Arc::new(Metrics::new()),
            "127.0.0.1:5".parse().unwrap(),
        );
        code(&mut s, "EHLO c");
        for (from, dir) in [
            ("a@tenant.test", Direction::Outbound),
            ("a@mail.tenant.test", Direction::Outbound),
            ("a@eviltenant.test", Direction::Inbound),
            ("", Direction::Outbound),
        ] {
            code(&mut s, &format!("MAIL FROM:<{from}>"));
            let State::Transaction(t) = &s.state else {
                panic!()
            };
            assert_eq!(t.direction, dir, "{from}");
            code(&mut s, "RSET");
        }
    }
}
