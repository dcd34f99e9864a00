//! The outbound SMTP client the deliver stage sends with: greeting, EHLO
//! (HELO fallback), STARTTLS, one transaction per message (pipelined when
//! offered, RFC 2920), RSET for reuse, QUIT.
//!
//! What it refuses to do on the sender's behalf: downgrade a message that
//! needs SMTPUTF8 ([`ClientError::NeedsSmtpUtf8`]), or send one over the
//! server's declared SIZE ([`ClientError::TooBig`]). What it guards against:
//! a server that talks without bound (reply limits in [`reply`]), one that
//! stalls (a deadline on every read and write), one that injects replies
//! before the TLS handshake (refused), and a message that tries to end DATA
//! early at the next hop (lone CR/LF and dot handling in [`stuff`]).
//!
//! Logs carry the peer IP, the stage and reply codes only: never addresses,
//! reply text or message content.

pub mod stuff;
pub mod tls;

/// The next hop's replies: the pure parser, in sealgate-parse (fuzzed there).
pub use sealgate_parse::client_reply as reply;

pub use reply::{Reply, ReplyError};

use crate::model::envelope::{BodyType, MailParams, Notify, Ret};
use crate::spool::OutboundTls;
use reply::ReplyParser;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use stuff::DotStuffer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};

/// Message bytes encoded and written per step of the DATA transfer.
const CHUNK: usize = 64 * 1024;

/// Upper bound on the wait for the reply to QUIT: the message is already
/// delivered by then and a slow goodbye must not hold a worker.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Names and timeouts for outbound sessions.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Our name in EHLO/HELO.
    pub helo: String,
    /// Limit on the TCP connect.
    pub connect_timeout: Duration,
    /// Limit on each command's reply (and the greeting, and the TLS handshake).
    pub command_timeout: Duration,
    /// Limit on the whole message transfer, and separately on the reply after it.
    pub data_timeout: Duration,
}

/// One recipient as it goes into RCPT TO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptTo {
    /// The address in the form to send, without `<>`.
    pub address: String,
    /// DSN `NOTIFY=`, passed on when the server offers DSN.
    pub notify: Option<Notify>,
    /// DSN `ORCPT=` as received (`rfc822;xtext`), passed on when the server offers DSN.
    pub orcpt: Option<String>,
}

/// The envelope of one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path without `<>`; empty for the null sender.
    pub from: String,
    /// MAIL parameters as received (BODY, SMTPUTF8, RET, ENVID); SIZE is
    /// recomputed from the message.
    pub params: MailParams,
    /// The recipients, in the order their replies are reported.
    pub recipients: Vec<RcptTo>,
}

/// What the server offered in its EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// SIZE (RFC 1870): `None` when not offered, `Some(0)` when offered
    /// without a fixed limit.
    pub size: Option<u64>,
    /// 8BITMIME (RFC 6152).
    pub eightbitmime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// DSN (RFC 3461).
    pub dsn: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub enhanced_status_codes: bool,
    /// CHUNKING (RFC 3030); noted, not used: messages go with DATA.
    pub chunking: bool,
}

impl Extensions {
    /// Reads the keywords of an EHLO reply (the first line is the server's name).
    pub fn parse(ehlo: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in ehlo.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => ext.starttls = true,
                "PIPELINING" => ext.pipelining = true,
                // A missing or unreadable limit is "no fixed limit".
                "SIZE" => ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => ext.eightbitmime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "DSN" => ext.dsn = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_status_codes = true,
                "CHUNKING" => ext.chunking = true,
                _ => {}
            }
        }
        ext
    }
}

/// The replies of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The reply to MAIL FROM (always positive: a refused MAIL is an error).
    pub mail: Reply,
    /// One reply per recipient of the envelope, in the same order.
    pub rcpts: Vec<Reply>,
    /// For the recipients whose RCPT got 2xx: the reply after the message
    /// (or DATA's own refusal). `None` when no recipient was accepted.
    pub data: Option<Reply>,
}

/// Why a session or transaction failed. `Display` gives the stage and code
/// only, fit for logs; [`ClientError::reply`] gives the full text for
/// evidence and DSNs.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be made.
    #[error("connecting to {addr}: {reason}")]
    Connect {
        /// Where to.
        addr: SocketAddr,
        /// The system's reason.
        reason: String,
    },
    /// No reply (or no progress) within the stage's timeout.
    #[error("timed out during {stage}")]
    Timeout {
        /// `connect`, `greeting`, `EHLO`, `MAIL`, `message transfer`...
        stage: &'static str,
    },
    /// The connection failed or was closed at this stage.
    #[error("connection lost during {0}: {1}")]
    Io(&'static str, #[source] io::Error),
    /// The server broke the protocol (malformed reply, injected data...),
    /// or the envelope cannot be sent as it is.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The TLS handshake failed (including certificate verification).
    #[error("TLS: {0}")]
    Tls(String),
    /// The server refused the greeting, EHLO/HELO, STARTTLS, MAIL or RSET.
    #[error("{stage} refused with {}", reply.code)]
    Rejected {
        /// The command (or `greeting`).
        stage: &'static str,
        /// What the server said.
        reply: Reply,
    },
    /// The message needs SMTPUTF8 and the server does not offer it; it is
    /// not downgraded (RFC 6531 §3.2).
    #[error("the message needs SMTPUTF8, which the server does not offer")]
    NeedsSmtpUtf8,
    /// The message is larger than the server's declared SIZE limit.
    #[error("message of {size} octets exceeds the server's limit of {limit}")]
    TooBig {
        /// The server's SIZE.
        limit: u64,
        /// The message's size.
        size: u64,
    },
}

impl ClientError {
    /// True when retrying the same server later cannot help.
    pub fn is_permanent(&self) -> bool {
        match self {
            ClientError::Rejected { reply, .. } => reply.is_permanent(),
            ClientError::NeedsSmtpUtf8 | ClientError::TooBig { .. } => true,
            _ => false,
        }
    }

    /// A reply describing the failure: the server's own for a refusal,
    /// otherwise one of ours (for delivery evidence and DSNs).
    pub fn reply(&self) -> Reply {
        match self {
            ClientError::Connect { addr, reason } => {
                Reply::local(451, "4.4.1", format_args!("connect to {addr}: {reason}"))
            }
            ClientError::Timeout { stage: "connect" } => {
                Reply::local(451, "4.4.1", "connection timed out")
            }
            ClientError::Timeout { stage } => {
                Reply::local(451, "4.4.2", format_args!("timeout during {stage}"))
            }
            ClientError::Io(stage, _) => {
                Reply::local(451, "4.4.2", format_args!("connection lost during {stage}"))
            }
            ClientError::Protocol(why) => {
                Reply::local(451, "4.5.0", format_args!("protocol error: {why}"))
            }
            ClientError::Tls(why) => Reply::local(451, "4.7.5", format_args!("TLS failed: {why}")),
            ClientError::Rejected { reply, .. } => reply.clone(),
            ClientError::NeedsSmtpUtf8 => Reply::local(
                554,
                "5.6.7",
                "message requires SMTPUTF8, which the receiving server does not support",
            ),
            ClientError::TooBig { limit, size } => Reply::local(
                552,
                "5.3.4",
                format_args!(
                    "message of {size} octets exceeds the receiving server's limit of {limit}"
                ),
            ),
        }
    }

    /// True when the session may be out of step with the server afterwards.
    fn breaks_session(&self) -> bool {
        !matches!(
            self,
            ClientError::Rejected { .. } | ClientError::NeedsSmtpUtf8 | ClientError::TooBig { .. }
        )
    }
}

/// The socket, plain or after STARTTLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// TLS facts and the peer's chain, taken once the handshake is done.
struct TlsState {
    facts: OutboundTls,
    chain: Vec<CertificateDer<'static>>,
}

/// An SMTP session with the next hop, greeted and EHLO'd.
pub struct Connection {
    stream: Stream,
    peer: SocketAddr,
    settings: ClientSettings,
    extensions: Extensions,
    /// Bytes read and not yet parsed; never more than one reply line long
    /// past what is parsed.
    buf: Vec<u8>,
    parser: ReplyParser,
    tls: Option<TlsState>,
    /// Set after a timeout or I/O or protocol error: the session may be out
    /// of step (half a message sent), so it must not carry another command.
    broken: bool,
}

/// True when `s` holds no byte that could end or split a command line.
fn no_controls(s: &str) -> bool {
    !s.bytes().any(|b| b < 0x20 || b == 0x7f)
}

fn check_address(s: &str) -> Result<(), ClientError> {
    if no_controls(s) {
        Ok(())
    } else {
        Err(ClientError::Protocol(
            "control character in an envelope address".into(),
        ))
    }
}

/// xtext parameters (ENVID, ORCPT) never contain spaces or controls.
fn check_param(s: &str) -> Result<(), ClientError> {
    if no_controls(s) && !s.contains(' ') {
        Ok(())
    } else {
        Err(ClientError::Protocol(
            "space or control character in a DSN parameter".into(),
        ))
    }
}

fn notify_value(n: Notify) -> String {
    let words: Vec<&str> = [
        (n.success, "SUCCESS"),
        (n.failure, "FAILURE"),
        (n.delay, "DELAY"),
    ]
    .into_iter()
    .filter_map(|(on, w)| on.then_some(w))
    .collect();
    if words.is_empty() {
        "NEVER".into()
    } else {
        words.join(",")
    }
}

fn tls_version_name(v: Option<rustls::ProtocolVersion>) -> String {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
        Some(v) => format!("{v:?}"),
        None => "unknown".into(),
    }
}

/// The IANA name of a suite: rustls spells TLS 1.3 suites `TLS13_...`
/// where the registry has `TLS_...`.
fn iana_suite_name(suite: rustls::SupportedCipherSuite) -> String {
    let name = suite.suite().as_str().unwrap_or("unknown");
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_string(),
    }
}

impl Connection {
    /// Connects (within `connect_timeout`), reads the 220 greeting and sends
    /// EHLO, falling back to HELO when EHLO gets a 5xx.
    pub async fn connect(
        addr: SocketAddr,
        settings: &ClientSettings,
    ) -> Result<Connection, ClientError> {
        if settings.helo.is_empty() || !no_controls(&settings.helo) || settings.helo.contains(' ') {
            return Err(ClientError::Protocol("invalid HELO name".into()));
        }
        let tcp = match timeout(settings.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(ClientError::Timeout { stage: "connect" }),
            Ok(Err(e)) => {
                return Err(ClientError::Connect {
                    addr,
                    reason: e.to_string(),
                })
            }
            Ok(Ok(s)) => s,
        };
        // Commands are small and each waits for its reply: no Nagle delay.
        let _ = tcp.set_nodelay(true);
        let mut conn = Connection {
            stream: Stream::Plain(tcp),
            peer: addr,
            settings: settings.clone(),
            extensions: Extensions::default(),
            buf: Vec::with_capacity(1024),
            parser: ReplyParser::new(),
            tls: None,
            broken: false,
        };
        let greeting = conn.read_reply("greeting", conn.command_deadline()).await?;
        tracing::debug!(peer = %addr.ip(), code = greeting.code, "greeting");
        if !greeting.is_success() {
            return Err(ClientError::Rejected {
                stage: "greeting",
                reply: greeting,
            });
        }
        conn.hello().await?;
        Ok(conn)
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// What the server offered in its last EHLO (all off after HELO).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// True after a successful STARTTLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Version, suite and certificate hash of the TLS session; `verified` is
    /// false here, the caller sets it when its policy authenticated the peer.
    pub fn tls_facts(&self) -> Option<OutboundTls> {
        self.tls.as_ref().map(|t| t.facts.clone())
    }

    /// The peer's certificate chain, end-entity first (for DANE or MTA-STS
    /// checks made after the handshake).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.tls.as_ref().map(|t| t.chain.as_slice())
    }

    /// Sends STARTTLS, runs the handshake with `config` and `server_name`
    /// (SNI, and the name checked by a verifying config), forgets the
    /// plain-text extensions and sends EHLO again (RFC 3207 §4.2).
    pub async fn starttls(
        mut self,
        config: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Result<Connection, ClientError> {
        if self.is_tls() {
            return Err(ClientError::Protocol("STARTTLS inside TLS".into()));
        }
        let reply = self.command("STARTTLS", "STARTTLS").await?;
        if !reply.is_success() {
            return Err(ClientError::Rejected {
                stage: "STARTTLS",
                reply,
            });
        }
        // Anything the server sent after its 220 would be read as if it came
        // through TLS: a man in the middle injecting replies (CVE-2011-0411
        // and kin, mirrored). Refuse the session.
        if !self.buf.is_empty() {
            return Err(ClientError::Protocol(
                "server sent data after its STARTTLS reply".into(),
            ));
        }
        let Connection {
            stream,
            peer,
            settings,
            buf,
            ..
        } = self;
        let Stream::Plain(tcp) = stream else {
            return Err(ClientError::Protocol("STARTTLS inside TLS".into()));
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = match timeout(
            settings.command_timeout,
            connector.connect(server_name, tcp),
        )
        .await
        {
            Err(_) => {
                return Err(ClientError::Timeout {
                    stage: "TLS handshake",
                })
            }
            Ok(Err(e)) => return Err(ClientError::Tls(e.to_string())),
            Ok(Ok(s)) => s,
        };
        let session = tls.get_ref().1;
        let chain: Vec<CertificateDer<'static>> = session
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        let facts = OutboundTls {
            version: tls_version_name(session.protocol_version()),
            cipher: session
                .negotiated_cipher_suite()
                .map(iana_suite_name)
                .unwrap_or_else(|| "unknown".into()),
            peer_cert_sha256: chain
                .first()
                .map(|c| hex::encode(Sha256::digest(c.as_ref())))
                .unwrap_or_default(),
            verified: false,
        };
        tracing::debug!(peer = %peer.ip(), version = %facts.version, cipher = %facts.cipher, "TLS established");
        let mut conn = Connection {
            stream: Stream::Tls(Box::new(tls)),
            peer,
            settings,
            extensions: Extensions::default(),
            buf,
            parser: ReplyParser::new(),
            tls: Some(TlsState { facts, chain }),
            broken: false,
        };
        conn.hello().await?;
        Ok(conn)
    }

    /// Runs one transaction: MAIL, RCPT for each recipient, DATA and the
    /// message. Recipient refusals and DATA refusals are in the
    /// [`Transaction`]; a refused MAIL is `Err(Rejected { stage: "MAIL" })`,
    /// after which the session is still in step (RSET and reuse it).
    /// `NeedsSmtpUtf8` and `TooBig` are decided before anything is sent.
    /// After any other error the connection must be dropped.
    pub async fn send(
        &mut self,
        env: &Envelope,
        message: &[u8],
    ) -> Result<Transaction, ClientError> {
        if self.broken {
            return Err(ClientError::Protocol(
                "connection unusable after an earlier error".into(),
            ));
        }
        let (mail, rcpts) = self.envelope_commands(env, message.len() as u64)?;
        let result = if self.extensions.pipelining {
            self.pipelined(&mail, &rcpts, message).await
        } else {
            self.one_by_one(&mail, &rcpts, message).await
        };
        match &result {
            Ok(t) => tracing::debug!(
                peer = %self.peer.ip(),
                mail = t.mail.code,
                accepted = t.rcpts.iter().filter(|r| r.is_success()).count(),
                refused = t.rcpts.iter().filter(|r| !r.is_success()).count(),
                data = t.data.as_ref().map(|r| r.code),
                "transaction"
            ),
            Err(e) => {
                if e.breaks_session() {
                    self.broken = true;
                }
                tracing::debug!(peer = %self.peer.ip(), error = %e, "transaction failed");
            }
        }
        result
    }

    /// Sends RSET, so the connection can carry the next message.
    pub async fn reset(&mut self) -> Result<(), ClientError> {
        if self.broken {
            return Err(ClientError::Protocol(
                "connection unusable after an earlier error".into(),
            ));
        }
        let reply = match self.command("RSET", "RSET").await {
            Ok(r) => r,
            Err(e) => {
                self.broken = true;
                return Err(e);
            }
        };
        if reply.is_success() {
            Ok(())
        } else {
            Err(ClientError::Rejected {
                stage: "RSET",
                reply,
            })
        }
    }

    /// Sends QUIT and closes, best effort and briefly. A session broken
    /// mid-transaction is just closed: a QUIT there could be taken as
    /// message content, and closing makes the server drop the message.
    pub async fn quit(mut self) {
        let deadline = Instant::now() + self.settings.command_timeout.min(QUIT_TIMEOUT);
        if !self.broken && self.write(b"QUIT\r\n", "QUIT", deadline).await.is_ok() {
            let _ = self.read_reply("QUIT", deadline).await;
        }
        let _ = timeout_at(deadline, self.stream.shutdown()).await;
    }

    fn command_deadline(&self) -> Instant {
        Instant::now() + self.settings.command_timeout
    }

    /// EHLO, or HELO when EHLO gets a 5xx (a server without ESMTP).
    async fn hello(&mut self) -> Result<(), ClientError> {
        let ehlo = format!("EHLO {}", self.settings.helo);
        let reply = self.command(&ehlo, "EHLO").await?;
        if reply.is_success() {
            self.extensions = Extensions::parse(&reply);
            tracing::debug!(peer = %self.peer.ip(), tls = self.is_tls(), extensions = ?self.extensions, "EHLO");
            return Ok(());
        }
        if !reply.is_permanent() {
            return Err(ClientError::Rejected {
                stage: "EHLO",
                reply,
            });
        }
        let helo = format!("HELO {}", self.settings.helo);
        let reply = self.command(&helo, "HELO").await?;
        if !reply.is_success() {
            return Err(ClientError::Rejected {
                stage: "HELO",
                reply,
            });
        }
        self.extensions = Extensions::default();
        tracing::debug!(peer = %self.peer.ip(), "HELO (no ESMTP)");
        Ok(())
    }

    /// Builds MAIL and RCPT lines for what this server offers, or refuses
    /// the message before anything is sent.
    fn envelope_commands(
        &self,
        env: &Envelope,
        size: u64,
    ) -> Result<(String, Vec<String>), ClientError> {
        if env.recipients.is_empty() {
            return Err(ClientError::Protocol("envelope without recipients".into()));
        }
        let ext = &self.extensions;
        let needs_utf8 = env.params.smtputf8
            || !env.from.is_ascii()
            || env.recipients.iter().any(|r| {
                !r.address.is_ascii() || r.orcpt.as_deref().is_some_and(|o| !o.is_ascii())
            });
        if needs_utf8 && !ext.smtputf8 {
            return Err(ClientError::NeedsSmtpUtf8);
        }
        if let Some(limit) = ext.size.filter(|&l| l > 0) {
            if size > limit {
                return Err(ClientError::TooBig { limit, size });
            }
        }
        check_address(&env.from)?;
        let mut mail = format!("MAIL FROM:<{}>", env.from);
        if ext.size.is_some() {
            let _ = write!(mail, " SIZE={size}");
        }
        // BODY=8BITMIME only where 8BITMIME is offered. Without it the
        // message is still sent, unconverted and without BODY, as Postfix
        // does with `disable_mime_output_conversion = yes` (its default
        // converts to 7-bit): converting to quoted-printable would break
        // DKIM signatures, and servers that really refuse 8-bit bytes are
        // vanishingly rare; one that does answers the DATA with a refusal.
        // BINARYMIME cannot reach us (the listener refuses it without
        // CHUNKING); were it to, 8BITMIME is the nearest thing DATA can carry.
        if matches!(
            env.params.body,
            Some(BodyType::EightBitMime | BodyType::BinaryMime)
        ) && ext.eightbitmime
        {
            mail.push_str(" BODY=8BITMIME");
        }
        if needs_utf8 {
            mail.push_str(" SMTPUTF8");
        }
        // RFC 3461 §4: DSN parameters go only to a server that offers DSN.
        if ext.dsn {
            match env.params.ret {
                Some(Ret::Full) => mail.push_str(" RET=FULL"),
                Some(Ret::Hdrs) => mail.push_str(" RET=HDRS"),
                None => {}
            }
            if let Some(envid) = &env.params.envid {
                check_param(envid)?;
                let _ = write!(mail, " ENVID={envid}");
            }
        }
        let mut rcpts = Vec::with_capacity(env.recipients.len());
        for r in &env.recipients {
            check_address(&r.address)?;
            let mut line = format!("RCPT TO:<{}>", r.address);
            if ext.dsn {
                if let Some(n) = r.notify {
                    let _ = write!(line, " NOTIFY={}", notify_value(n));
                }
                if let Some(orcpt) = &r.orcpt {
                    check_param(orcpt)?;
                    let _ = write!(line, " ORCPT={orcpt}");
                }
            }
            rcpts.push(line);
        }
        Ok((mail, rcpts))
    }

    /// RFC 2920: MAIL, every RCPT and DATA in one write, replies read in order.
    async fn pipelined(
        &mut self,
        mail: &str,
        rcpts: &[String],
        message: &[u8],
    ) -> Result<Transaction, ClientError> {
        let mut batch = String::with_capacity(mail.len() + 8 + rcpts.len() * 64);
        for line in std::iter::once(mail).chain(rcpts.iter().map(String::as_str)) {
            batch.push_str(line);
            batch.push_str("\r\n");
        }
        batch.push_str("DATA\r\n");
        // Replies are small and few (one per command); the server's socket
        // buffer takes them while we write, so one write cannot deadlock.
        self.write(batch.as_bytes(), "MAIL", self.command_deadline())
            .await?;
        let mail_reply = self.read_reply("MAIL", self.command_deadline()).await?;
        let mut replies = Vec::with_capacity(rcpts.len());
        for _ in rcpts {
            replies.push(self.read_reply("RCPT", self.command_deadline()).await?);
        }
        let data = self.read_reply("DATA", self.command_deadline()).await?;
        let accepted = mail_reply.is_success() && replies.iter().any(Reply::is_success);
        let outcome = match (data.code, accepted) {
            (354, true) => Some(self.transfer(message).await?),
            (354, false) => {
                // RFC 2920 §3.1: DATA was accepted though nothing else was;
                // a lone "." ends it without sending the message.
                self.write(b".\r\n", "DATA", self.command_deadline())
                    .await?;
                self.read_reply("end of data", self.command_deadline())
                    .await?;
                None
            }
            (_, true) => Some(Self::data_refusal(data)?),
            (_, false) => None,
        };
        if !mail_reply.is_success() {
            return Err(ClientError::Rejected {
                stage: "MAIL",
                reply: mail_reply,
            });
        }
        Ok(Transaction {
            mail: mail_reply,
            rcpts: replies,
            data: outcome,
        })
    }

    /// Without PIPELINING: each command waits for its reply; DATA is not
    /// sent when no recipient was accepted.
    async fn one_by_one(
        &mut self,
        mail: &str,
        rcpts: &[String],
        message: &[u8],
    ) -> Result<Transaction, ClientError> {
        let mail_reply = self.command(mail, "MAIL").await?;
        if !mail_reply.is_success() {
            return Err(ClientError::Rejected {
                stage: "MAIL",
                reply: mail_reply,
            });
        }
        let mut replies = Vec::with_capacity(rcpts.len());
        for line in rcpts {
            replies.push(self.command(line, "RCPT").await?);
        }
        let data = if replies.iter().any(Reply::is_success) {
            let reply = self.command("DATA", "DATA").await?;
            if reply.code == 354 {
                Some(self.transfer(message).await?)
            } else {
                Some(Self::data_refusal(reply)?)
            }
        } else {
            None
        };
        Ok(Transaction {
            mail: mail_reply,
            rcpts: replies,
            data,
        })
    }

    /// A reply to DATA other than 354 must be a refusal; a 2xx there would
    /// pass for delivery of a message never sent.
    fn data_refusal(reply: Reply) -> Result<Reply, ClientError> {
        if reply.is_positive() {
            Err(ClientError::Protocol(format!(
                "unexpected reply {} to DATA",
                reply.code
            )))
        } else {
            Ok(reply)
        }
    }

    /// Streams the message (CRLF-normalised, dot-stuffed, terminated) within
    /// `data_timeout`, then waits up to `data_timeout` for the final reply.
    async fn transfer(&mut self, message: &[u8]) -> Result<Reply, ClientError> {
        let deadline = Instant::now() + self.settings.data_timeout;
        let mut stuffer = DotStuffer::new();
        let mut out = Vec::with_capacity(CHUNK + CHUNK / 8);
        for chunk in message.chunks(CHUNK) {
            out.clear();
            stuffer.feed(chunk, &mut out);
            self.write(&out, "message transfer", deadline).await?;
        }
        out.clear();
        stuffer.finish(&mut out);
        self.write(&out, "message transfer", deadline).await?;
        let deadline = Instant::now() + self.settings.data_timeout;
        let reply = self.read_reply("end of data", deadline).await?;
        if (300..400).contains(&reply.code) {
            return Err(ClientError::Protocol(format!(
                "unexpected reply {} after the message",
                reply.code
            )));
        }
        Ok(reply)
    }

    /// Sends one command line and reads its reply, each within `command_timeout`.
    async fn command(&mut self, line: &str, stage: &'static str) -> Result<Reply, ClientError> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.write(&bytes, stage, self.command_deadline()).await?;
        self.read_reply(stage, self.command_deadline()).await
    }

    async fn write(
        &mut self,
        bytes: &[u8],
        stage: &'static str,
        deadline: Instant,
    ) -> Result<(), ClientError> {
        let stream = &mut self.stream;
        let io = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match timeout_at(deadline, io).await {
            Err(_) => Err(ClientError::Timeout { stage }),
            Ok(Err(e)) => Err(ClientError::Io(stage, e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads one complete reply; the bytes after it stay buffered (the next
    /// pipelined reply).
    async fn read_reply(
        &mut self,
        stage: &'static str,
        deadline: Instant,
    ) -> Result<Reply, ClientError> {
        let mut tmp = [0u8; 4096];
        loop {
            let mut used = 0;
            let mut done = None;
            while let Some(n) = self.buf[used..].iter().position(|&b| b == b'\n') {
                let line = &self.buf[used..used + n];
                used += n + 1;
                match self.parser.line(line) {
                    Ok(Some(reply)) => {
                        done = Some(reply);
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return Err(ClientError::Protocol(format!("{stage} reply: {e}")));
                    }
                }
            }
            self.buf.drain(..used);
            if let Some(reply) = done {
                return Ok(reply);
            }
            if self.buf.len() > reply::MAX_LINE + 1 {
                return Err(ClientError::Protocol(format!(
                    "{stage} reply: {}",
                    ReplyError::LineTooLong
                )));
            }
            match timeout_at(deadline, self.stream.read(&mut tmp)).await {
                Err(_) => return Err(ClientError::Timeout { stage }),
                Ok(Err(e)) => return Err(ClientError::Io(stage, e)),
                Ok(Ok(0)) => {
                    return Err(ClientError::Io(
                        stage,
                        io::Error::new(io::ErrorKind::UnexpectedEof, "closed by the server"),
                    ))
                }
                Ok(Ok(n)) => self.buf.extend_from_slice(&tmp[..n]),
            }
        }
    }
}

#[cfg(test)]
mod tests;
