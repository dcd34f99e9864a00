//! Listeners and the connection driver: accepts connections within the
//! limits, runs a [`Session`] over plain or TLS streams, streams DATA into the
//! spool and replies 250 only after the spool has synced the message.

use super::command::{parse_command, Command};
use super::content_filter::{ContentFilter, Scanned};
use super::data::{BareLineEnding, DataReader, DataViolation, HeaderScan};
use super::received::Trace;
use super::recipients::SharedRecipients;
use super::reply::Reply;
use super::sender_auth::{Outcome as AuthOutcome, SenderAuth};
use super::session::{header_from_within, Session, Step, Transaction};
use super::tls;
use crate::config::{Config, ListenerConfig, ListenerTls};
use crate::model::inbound::{Identities, InboundAction};
use crate::spool::{Direction, Origin, QueueId, QueuedMessage, Spool, SpoolError};
use crate::telemetry::metrics::Metrics;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

/// Everything sessions share.
pub struct Gateway {
    /// The configuration.
    pub config: Arc<Config>,
    /// The spool.
    pub spool: Spool,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// TLS set-up, to judge client certificates.
    pub server_tls: tls::ServerTls,
    /// Known local recipients, if configured.
    pub recipients: SharedRecipients,
    /// Sender authentication of inbound mail, unless `[inbound]` turned it off.
    sender_auth: Option<SenderAuth>,
    /// rspamd and clamd for inbound mail, when `[inbound]` names them.
    content_filter: Option<ContentFilter>,
    connections: Arc<Semaphore>,
    /// MiB of inbound messages held in memory for their checks, all
    /// sessions together (`[inbound] check_memory_mib`).
    check_memory: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// An inbound message kept whole while it is checked; each MiB held counts
/// against the gateway's budget for all sessions (`[inbound]
/// check_memory_mib`), so many large messages at once cannot exhaust memory.
#[derive(Default)]
struct HeldForChecks {
    bytes: Vec<u8>,
    permits: Vec<OwnedSemaphorePermit>,
    /// The budget ran out: the message gets 451 and the sender tries later.
    over_budget: bool,
}

impl HeldForChecks {
    /// Keeps `data`, or drops everything once the budget has no room.
    fn push(&mut self, budget: &Arc<Semaphore>, data: &[u8]) {
        if self.over_budget {
            return;
        }
        self.bytes.extend_from_slice(data);
        while self.permits.len() << 20 < self.bytes.len() {
            match budget.clone().try_acquire_owned() {
                Ok(p) => self.permits.push(p),
                Err(_) => {
                    *self = HeldForChecks {
                        over_budget: true,
                        ..Default::default()
                    };
                    return;
                }
            }
        }
    }
}

/// What the inbound checks add to an accepted message.
#[derive(Default)]
struct InboundChecks {
    /// Trace fields for the front: Authentication-Results, then X-Sealgate-Spam-*.
    fields: String,
    auth: Option<crate::model::inbound::AuthVerdict>,
    scan: Option<crate::model::inbound::ScanVerdict>,
}

/// The address a per-IP limit counts against: the IPv4 address, or the
/// IPv6 /64 (one subscriber's allocation), so a host cannot dodge the limit
/// by rotating through its own /64.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut seg = v6.segments();
            seg[4..].fill(0);
            IpAddr::V6(seg.into())
        }
        v4 => v4,
    }
}

/// Releases a per-IP connection slot when the connection ends.
struct IpSlot<'a> {
    gw: &'a Gateway,
    ip: IpAddr,
}

impl Drop for IpSlot<'_> {
    fn drop(&mut self) {
        let mut map = crate::locks::lock(&self.gw.per_ip);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// How a session ended, for metrics.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Quit,
    ClientClosed,
    Timeout,
    Closed,
    TlsFailed,
    Shutdown,
    IoError,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Quit => "quit",
            Outcome::ClientClosed => "client_closed",
            Outcome::Timeout => "timeout",
            Outcome::Closed => "closed_by_server",
            Outcome::TlsFailed => "tls_failed",
            Outcome::Shutdown => "shutdown",
            Outcome::IoError => "io_error",
        }
    }
}

enum End {
    Done(Outcome),
    StartTls,
}

/// Read failures.
enum ReadErr {
    Eof,
    Timeout,
    Io,
}

impl From<ReadErr> for Outcome {
    fn from(e: ReadErr) -> Self {
        match e {
            ReadErr::Eof => Outcome::ClientClosed,
            ReadErr::Timeout => Outcome::Timeout,
            ReadErr::Io => Outcome::IoError,
        }
    }
}

/// One command line as read.
enum Line {
    /// Ended by CRLF.
    Crlf(Vec<u8>),
    /// Ended by a bare LF.
    BareLf(Vec<u8>),
    /// Longer than the limit; discarded.
    TooLong,
}

/// A buffered connection; dropping it drops any unread (pipelined) input.
struct Conn<'a, S> {
    io: &'a mut S,
    buf: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<'_, S> {
    fn unread(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn has_line(&self) -> bool {
        self.unread().contains(&b'\n')
    }

    async fn fill(&mut self, deadline: Instant) -> Result<(), ReadErr> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        let read = tokio::time::timeout_at(deadline.into(), self.io.read(&mut chunk)).await;
        match read {
            Err(_) => Err(ReadErr::Timeout),
            Ok(Err(_)) => Err(ReadErr::Io),
            Ok(Ok(0)) => Err(ReadErr::Eof),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }

    /// Reads one command line (without its ending).
    async fn line(&mut self, max: usize, deadline: Instant) -> Result<Line, ReadErr> {
        let mut too_long = false;
        loop {
            if let Some(i) = self.unread().iter().position(|&b| b == b'\n') {
                let mut line = self.buf[self.pos..self.pos + i].to_vec();
                self.pos += i + 1;
                let crlf = line.last() == Some(&b'\r');
                if crlf {
                    line.pop();
                }
                if too_long || line.len() > max {
                    return Ok(Line::TooLong);
                }
                return Ok(if crlf {
                    Line::Crlf(line)
                } else {
                    Line::BareLf(line)
                });
            }
            if self.unread().len() > max {
                // Keep memory bounded: drop what we have, remember the line is bad.
                too_long = true;
                self.pos = self.buf.len();
            }
            self.fill(deadline).await?;
        }
    }

    /// Sends a last reply and ends the session with `outcome`.
    async fn close(&mut self, r: Reply, outcome: Outcome) -> End {
        self.queue(&r);
        let _ = self.flush().await;
        End::Done(outcome)
    }

    fn queue(&mut self, r: &Reply) {
        self.out.extend_from_slice(&r.to_bytes());
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.io.write_all(&self.out).await?;
            self.out.clear();
        }
        self.io.flush().await
    }
}

impl Gateway {
    /// Builds the shared state.
    pub fn new(
        config: Arc<Config>,
        spool: Spool,
        metrics: Arc<Metrics>,
        server_tls: tls::ServerTls,
        recipients: SharedRecipients,
        sender_auth: Option<SenderAuth>,
        content_filter: Option<ContentFilter>,
    ) -> Arc<Self> {
        let connections = Arc::new(Semaphore::new(config.limits.max_connections));
        let check_memory = Arc::new(Semaphore::new(config.inbound.check_memory_mib));
        Arc::new(Gateway {
            config,
            spool,
            metrics,
            server_tls,
            recipients,
            sender_auth,
            content_filter,
            connections,
            check_memory,
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Accepts connections on `listener` until `shutdown` turns true.
    pub async fn run_listener(
        self: Arc<Self>,
        cfg: Arc<ListenerConfig>,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, listener = %cfg.name, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let gw = self.clone();
            let cfg = cfg.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { gw.connection(cfg, stream, peer, shutdown).await });
        }
    }

    /// Whether the spool's file system has the configured free space.
    fn spool_has_room(&self) -> bool {
        match self.spool.free_bytes() {
            Ok(free) => free >= self.config.spool.min_free_space,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the spool's free space; accepting");
                true
            }
        }
    }

    /// The reply while the spool's file system is nearly full.
    fn no_room(&self) -> Reply {
        self.metrics.refused("no_room");
        tracing::warn!(
            min_free_space = self.config.spool.min_free_space,
            "spool file system nearly full: new mail deferred"
        );
        Reply::new(452, "4.3.1", "Insufficient system storage, try again later")
    }

    /// The reply while the spool's store fails its writes (a cluster's
    /// database unreachable or read-only during a failover).
    fn store_down(&self) -> Reply {
        self.metrics.refused("store_down");
        Reply::new(
            451,
            "4.3.0",
            "Temporary failure writing to the spool, try again later",
        )
    }

    /// The reply when a commit has not returned within `limit`: the store
    /// is marked down, so the next transactions are deferred at MAIL.
    fn commit_timed_out(&self, limit: Duration) -> Reply {
        self.spool.store_failed();
        self.metrics.refused("spool_timeout");
        tracing::error!(
            seconds = limit.as_secs_f64(),
            "spool commit not done within [store] commit_timeout"
        );
        Reply::new(
            451,
            "4.3.0",
            "Temporary failure writing to the spool, try again",
        )
    }

    fn admit(&self, ip: IpAddr) -> Result<(OwnedSemaphorePermit, IpSlot<'_>), Reply> {
        let permit = self.connections.clone().try_acquire_owned().map_err(|_| {
            self.metrics
                .connections_refused
                .with_label_values(&["max_connections"])
                .inc();
            Reply::new(421, "4.3.2", "Too many connections, try again later")
        })?;
        let mut map = crate::locks::lock(&self.per_ip);
        let n = map.entry(ip).or_insert(0);
        if *n >= self.config.limits.max_connections_per_ip {
            self.metrics
                .connections_refused
                .with_label_values(&["max_connections_per_ip"])
                .inc();
            return Err(Reply::new(
                421,
                "4.7.0",
                "Too many connections from your address",
            ));
        }
        *n += 1;
        Ok((permit, IpSlot { gw: self, ip }))
    }

    async fn connection(
        self: Arc<Self>,
        cfg: Arc<ListenerConfig>,
        mut stream: TcpStream,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        let _slots = match self.admit(limit_key(peer.ip())) {
            Ok(s) => s,
            Err(reply) => {
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    stream.write_all(&reply.to_bytes()),
                )
                .await;
                return;
            }
        };
        self.metrics
            .connections
            .with_label_values(&[&cfg.name])
            .inc();
        self.metrics.connections_open.inc();
        let deadline = Instant::now() + self.config.limits.session_timeout.0;
        let mut session =
            Session::new(self.config.clone(), cfg.clone(), self.metrics.clone(), peer)
                .with_recipients(self.recipients.clone());
        let outcome = self.serve(&mut session, stream, deadline, shutdown).await;
        self.metrics.connections_open.dec();
        self.metrics
            .sessions
            .with_label_values(&[outcome.as_str()])
            .inc();
        tracing::debug!(peer = %peer.ip().to_canonical(), listener = %cfg.name, outcome = outcome.as_str(), "session ended");
    }

    async fn serve(
        &self,
        session: &mut Session,
        mut stream: TcpStream,
        deadline: Instant,
        mut shutdown: watch::Receiver<bool>,
    ) -> Outcome {
        // A handshake needs seconds, not the command timeout's minutes.
        let handshake_limit = self
            .config
            .limits
            .command_timeout
            .0
            .min(Duration::from_secs(60));
        let acceptor = TlsAcceptor::from(self.server_tls.config.clone());
        let handshake = |s| tokio::time::timeout(handshake_limit, acceptor.accept(s));
        if session.listener().tls == ListenerTls::Implicit {
            let Ok(Ok(mut tls)) = handshake(stream).await else {
                return Outcome::TlsFailed;
            };
            session.tls_started(self.server_tls.facts(tls.get_ref().1));
            let greeting = session.greeting();
            if tls.write_all(&greeting.to_bytes()).await.is_err() {
                return Outcome::IoError;
            }
            return match self.drive(session, &mut tls, deadline, &mut shutdown).await {
                End::Done(o) => o,
                End::StartTls => Outcome::Closed,
            };
        }
        if stream
            .write_all(&session.greeting().to_bytes())
            .await
            .is_err()
        {
            return Outcome::IoError;
        }
        match self
            .drive(session, &mut stream, deadline, &mut shutdown)
            .await
        {
            End::Done(o) => o,
            End::StartTls => {
                let Ok(Ok(mut tls)) = handshake(stream).await else {
                    return Outcome::TlsFailed;
                };
                session.tls_started(self.server_tls.facts(tls.get_ref().1));
                match self.drive(session, &mut tls, deadline, &mut shutdown).await {
                    End::Done(o) => o,
                    End::StartTls => Outcome::Closed,
                }
            }
        }
    }

    /// Runs commands until the session ends or asks for TLS.
    async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        session: &mut Session,
        io: &mut S,
        session_deadline: Instant,
        shutdown: &mut watch::Receiver<bool>,
    ) -> End {
        let limits = self.config.limits.clone();
        let syntax = limits.envelope_syntax();
        let mut conn = Conn {
            io,
            buf: Vec::with_capacity(4096),
            pos: 0,
            out: Vec::new(),
        };
        loop {
            if *shutdown.borrow() {
                return conn
                    .close(
                        Reply::new(421, "4.3.2", "Service shutting down, try again later"),
                        Outcome::Shutdown,
                    )
                    .await;
            }
            if !conn.has_line() && conn.flush().await.is_err() {
                return End::Done(Outcome::IoError);
            }
            let line_deadline = (Instant::now() + limits.command_timeout.0).min(session_deadline);
            // An idle client hears about a shutdown at once, not at its next command.
            let read = tokio::select! {
                r = conn.line(limits.max_line_length, line_deadline) => r,
                _ = shutdown.changed() => continue,
            };
            let step = match read {
                Ok(Line::BareLf(_)) if limits.bare_line_ending == BareLineEnding::Reject => {
                    // Postfix's smtpd_forbid_bare_newline covers commands too.
                    session.parse_failed(Reply::new(
                        500,
                        "5.5.2",
                        "Bare <LF> received; end lines with <CR><LF>",
                    ))
                }
                Ok(Line::Crlf(line) | Line::BareLf(line)) => match parse_command(&line, syntax) {
                    Ok(Command::Mail { .. }) if !self.spool_has_room() => {
                        Step::Reply(self.no_room())
                    }
                    Ok(Command::Mail { .. }) if !self.spool.accepting() => {
                        Step::Reply(self.store_down())
                    }
                    Ok(cmd) => session.handle(cmd),
                    Err(e) => session.parse_failed(e.reply()),
                },
                Ok(Line::TooLong) => session.line_too_long(),
                Err(ReadErr::Timeout) => {
                    return conn
                        .close(
                            Reply::new(421, "4.4.2", "Timeout, closing connection"),
                            Outcome::Timeout,
                        )
                        .await;
                }
                Err(e) => return End::Done(e.into()),
            };
            match step {
                Step::Reply(r) => conn.queue(&r),
                Step::Close(r) => {
                    let outcome = if r.code == 221 {
                        Outcome::Quit
                    } else {
                        Outcome::Closed
                    };
                    return conn.close(r, outcome).await;
                }
                Step::StartTls => {
                    conn.queue(&Reply::new(220, "2.0.0", "Ready to start TLS"));
                    if conn.flush().await.is_err() {
                        return End::Done(Outcome::IoError);
                    }
                    if !conn.unread().is_empty() {
                        // RFC 3207 §5 / CVE-2011-0411: plaintext sent after STARTTLS is dropped.
                        self.metrics.refused("starttls_pipelined_input");
                        tracing::warn!(peer = %session.peer.ip(), octets = conn.unread().len(), "discarded input pipelined after STARTTLS");
                    }
                    return End::StartTls;
                }
                Step::SkipBdat(size) if size > limits.max_message_size => {
                    // Too big to read past: refuse and close rather than desynchronise.
                    return conn
                        .close(
                            Reply::new(552, "5.3.4", "BDAT chunk too large; closing connection"),
                            Outcome::Closed,
                        )
                        .await;
                }
                Step::SkipBdat(size) => {
                    let reply = match self.skip(&mut conn, size, session_deadline).await {
                        Ok(()) => {
                            Reply::new(502, "5.5.1", "BDAT not available (CHUNKING is not offered)")
                        }
                        Err(e) => return End::Done(e.into()),
                    };
                    conn.queue(&reply);
                }
                Step::Data => {
                    conn.queue(&Reply::new(354, "", "End data with <CR><LF>.<CR><LF>"));
                    if conn.flush().await.is_err() {
                        return End::Done(Outcome::IoError);
                    }
                    let txn = session
                        .take_transaction()
                        .expect("Step::Data only in a transaction");
                    match self
                        .receive(session, &mut conn, txn, session_deadline)
                        .await
                    {
                        Ok(reply) => conn.queue(&reply),
                        Err(ReadErr::Timeout) => {
                            return conn
                                .close(
                                    Reply::new(
                                        421,
                                        "4.4.2",
                                        "Timeout during DATA, closing connection",
                                    ),
                                    Outcome::Timeout,
                                )
                                .await;
                        }
                        Err(e) => return End::Done(e.into()),
                    }
                }
            }
        }
    }

    /// Reads and discards `size` octets (BDAT chunks we do not accept), so
    /// they are never mistaken for commands.
    async fn skip<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut Conn<'_, S>,
        mut size: u64,
        session_deadline: Instant,
    ) -> Result<(), ReadErr> {
        let limits = &self.config.limits;
        loop {
            let n = (conn.unread().len() as u64).min(size);
            conn.pos += n as usize;
            size -= n;
            if size == 0 {
                return Ok(());
            }
            conn.fill((Instant::now() + limits.data_block_timeout.0).min(session_deadline))
                .await?;
        }
    }

    /// Receives one message after 354 and returns the reply for it.
    async fn receive<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        session: &Session,
        conn: &mut Conn<'_, S>,
        txn: Transaction,
        session_deadline: Instant,
    ) -> Result<Reply, ReadErr> {
        let limits = &self.config.limits;
        let data_started = Instant::now();
        // The disk may have filled since MAIL; refuse before writing anything.
        let room = self.spool_has_room();
        let mut writer = self.spool.writer();
        let id = writer.id();
        let mut reader = DataReader::new(limits.bare_line_ending, limits.max_data_line_length);
        let mut scan = HeaderScan::default();
        let mut out = Vec::with_capacity(32 * 1024);
        let mut too_big = false;
        let mut received = 0u64;
        let mut spool_error = None;
        // Inbound mail is authenticated and scanned before "250", which
        // needs it whole.
        let inbound = txn.direction == Direction::Inbound;
        let checks = inbound && (self.sender_auth.is_some() || self.content_filter.is_some());
        let mut held = checks.then(HeldForChecks::default);
        loop {
            let fed = reader.feed(conn.unread(), &mut out);
            conn.pos += fed.consumed;
            received += out.len() as u64;
            too_big |= received > limits.max_message_size;
            // Once the message is sure to be refused, keep reading but stop storing.
            if !out.is_empty()
                && room
                && !too_big
                && spool_error.is_none()
                && reader.violation().is_none()
            {
                scan.feed(&out);
                if let Some(h) = &mut held {
                    h.push(&self.check_memory, &out);
                }
                if let Err(e) = writer.write(&out).await {
                    spool_error = Some(e);
                }
            }
            out.clear();
            if fed.done {
                break;
            }
            // The whole transfer gets data_timeout plus time for what has
            // arrived at min_data_rate: a large message on a slow but steady
            // link finishes, a trickle does not.
            let earned = Duration::from_secs(received / limits.min_data_rate.max(1));
            let data_deadline =
                (data_started + limits.data_timeout.0 + earned).min(session_deadline);
            let deadline = (Instant::now() + limits.data_block_timeout.0).min(data_deadline);
            conn.fill(deadline).await?;
        }
        let ended = Instant::now();
        let refuse = |reason: &str, reply: Reply| {
            self.metrics.refused(reason);
            reply
        };
        if !room {
            return Ok(self.no_room());
        }
        if too_big {
            return Ok(refuse(
                "size",
                Reply::new(
                    552,
                    "5.3.4",
                    "Message size exceeds fixed maximum message size",
                ),
            ));
        }
        match reader.violation() {
            Some(DataViolation::BareLineEnding) => {
                return Ok(refuse(
                    "bare_line_ending",
                    Reply::new(
                        550,
                        "5.5.2",
                        "Message refused: bare CR or LF in DATA (RFC 5321 section 2.3.8)",
                    ),
                ))
            }
            Some(DataViolation::Nul) => {
                return Ok(refuse(
                    "nul",
                    Reply::new(550, "5.5.2", "Message refused: NUL octet in DATA"),
                ))
            }
            Some(DataViolation::LineTooLong) => {
                return Ok(refuse(
                    "line_too_long",
                    Reply::new(
                        550,
                        "5.6.0",
                        format!(
                            "Message refused: line longer than {} octets",
                            limits.max_data_line_length
                        ),
                    ),
                ))
            }
            None => {}
        }
        if scan.received >= self.config.limits.max_hops {
            return Ok(refuse(
                "hop_limit",
                Reply::new(
                    554,
                    "5.4.6",
                    format!("Too many hops ({}), possible mail loop", scan.received),
                ),
            ));
        }
        if let Some(required) = &txn.required_tenant {
            if scan.ms_tenant_id.as_deref() != Some(required.as_str()) {
                // Another M365 tenant using the same shared infrastructure.
                tracing::warn!(connector = txn.connector.as_deref().unwrap_or(""), peer = %session.peer.ip(), "message not from the connector's Microsoft 365 tenant");
                return Ok(refuse(
                    "wrong_tenant",
                    Reply::new(
                        550,
                        "5.7.1",
                        "Relaying denied: message is not from the configured Microsoft 365 tenant",
                    ),
                ));
            }
        }
        if let Some(domains) = &txn.required_from_domains {
            let from_ok = scan
                .from
                .as_deref()
                .is_some_and(|f| header_from_within(f, domains));
            if !from_ok {
                tracing::warn!(connector = txn.connector.as_deref().unwrap_or(""), peer = %session.peer.ip(), "null-sender message's From is outside the connector's sender domains");
                return Ok(refuse(
                    "sender_domain",
                    Reply::new(
                        550,
                        "5.7.1",
                        "Relaying denied: a message with a null sender must be From one of the connector's sender domains",
                    ),
                ));
            }
        }
        if let Some(e) = spool_error {
            tracing::error!(error = %e, "spool write failed");
            return Ok(refuse(
                "spool_error",
                Reply::new(
                    451,
                    "4.3.0",
                    "Temporary failure writing to the spool, try again",
                ),
            ));
        }
        let checked = match held {
            Some(h) if h.over_budget => {
                return Ok(refuse(
                    "check_memory",
                    Reply::new(
                        451,
                        "4.3.2",
                        "Too much inbound mail is being checked at once, try again later",
                    ),
                ))
            }
            Some(h) => match self.check_inbound(session, &txn, id, h.bytes).await {
                Ok(checked) => Some(checked),
                Err((reason, reply)) => return Ok(refuse(reason, reply)),
            },
            None => None,
        };
        let mut msg = self.envelope(session, txn, id);
        if let Some(c) = checked {
            msg.received_header.insert_str(0, &c.fields);
            msg.auth = c.auth;
            msg.scan = c.scan;
        }
        let direction = msg.origin.direction;
        let rcpts = msg.recipients.len();
        let committed = match self.spool.commit_limit() {
            None => writer.commit(msg).await,
            Some(limit) => {
                // The commit runs on: if it ends after the sender got its
                // 451, the message is queued all the same (and may come
                // twice: never lost).
                let commit = tokio::spawn(writer.commit(msg));
                match tokio::time::timeout(limit, commit).await {
                    Ok(Ok(done)) => done,
                    Ok(Err(e)) => Err(SpoolError::Task(e)),
                    Err(_) => return Ok(self.commit_timed_out(limit)),
                }
            }
        };
        match committed {
            Ok(msg) => {
                self.metrics
                    .messages_accepted
                    .with_label_values(&[direction.as_str()])
                    .inc();
                self.metrics.bytes_accepted.inc_by(msg.size);
                self.metrics
                    .accept_seconds
                    .with_label_values(&[&session.listener().name])
                    .observe(ended.elapsed().as_secs_f64());
                tracing::info!(
                    id = %msg.id,
                    size = msg.size,
                    recipients = rcpts,
                    direction = direction.as_str(),
                    connector = msg.origin.connector.as_deref().unwrap_or(""),
                    tls = msg.origin.tls.is_some(),
                    "message accepted"
                );
                // The client's address only at debug: the general log is
                // read more widely than the spool, which keeps it.
                tracing::debug!(id = %msg.id, peer = %session.peer.ip(), "accepted from");
                Ok(Reply::new(
                    250,
                    "2.0.0",
                    format!("Ok: queued as {}", msg.id),
                ))
            }
            Err(e) => {
                tracing::error!(error = %e, "spool commit failed");
                Ok(refuse(
                    "spool_error",
                    Reply::new(
                        451,
                        "4.3.0",
                        "Temporary failure writing to the spool, try again",
                    ),
                ))
            }
        }
    }

    /// Sender authentication and the content scan of an inbound message
    /// (as received): the trace fields and verdicts to keep, or why it is
    /// refused (metric reason and reply).
    async fn check_inbound(
        &self,
        session: &Session,
        txn: &Transaction,
        id: QueueId,
        message: Vec<u8>,
    ) -> Result<InboundChecks, (&'static str, Reply)> {
        let (helo, _) = session.helo.clone().unwrap_or_default();
        let mail_from = txn.from.to_string();
        let who = Identities {
            ip: session.peer.ip().to_canonical(),
            helo: &helo,
            mail_from: &mail_from,
        };
        let message = Arc::new(message);
        let mut out = InboundChecks::default();
        if let Some(auth) = &self.sender_auth {
            match auth.check(&message, &who).await {
                AuthOutcome::Reject { domain } => {
                    self.metrics
                        .inbound_auth
                        .with_label_values(&["dmarc", "fail", "reject"])
                        .inc();
                    tracing::info!(id = %id, domain = %domain, "refused: DMARC policy reject");
                    return Err((
                        "dmarc",
                        Reply::new(
                            550,
                            "5.7.1",
                            format!("Message refused: it fails DMARC and {domain} asks that such mail be rejected"),
                        ),
                    ));
                }
                AuthOutcome::Accept { field, verdict } => {
                    for (check, result) in [
                        ("spf", verdict.spf),
                        ("dkim", verdict.dkim),
                        ("arc", verdict.arc),
                        ("dmarc", verdict.dmarc),
                    ] {
                        let action = match (check, verdict.action) {
                            ("dmarc", InboundAction::Quarantine) => "quarantine",
                            _ => "deliver",
                        };
                        self.metrics
                            .inbound_auth
                            .with_label_values(&[check, result.as_str(), action])
                            .inc();
                    }
                    out.fields.push_str(&field);
                    out.auth = Some(verdict);
                }
            }
        }
        if let Some(filter) = &self.content_filter {
            let env = crate::net::rspamd::Envelope {
                who: &who,
                rcpts: txn
                    .recipients
                    .iter()
                    .map(|r| r.address.to_string())
                    .collect(),
                queue_id: id.to_string(),
            };
            match filter.scan(message, env).await {
                Scanned::Refuse { reply, reason } => {
                    tracing::info!(id = %id, reason, "refused by content scan");
                    return Err((reason, reply));
                }
                Scanned::Accept { fields, verdict } => {
                    if let Some(name) = &verdict.malware {
                        tracing::info!(id = %id, signature = %name, "malware found; held");
                    }
                    out.fields.push_str(&fields);
                    out.scan = Some(verdict);
                }
            }
        }
        Ok(out)
    }

    fn envelope(&self, session: &Session, txn: Transaction, id: QueueId) -> QueuedMessage {
        let (helo, ehlo) = session.helo.clone().unwrap_or_default();
        let now = chrono::Utc::now();
        let single = (txn.recipients.len() == 1).then(|| txn.recipients[0].address.to_string());
        let received_header = Trace {
            helo: &helo,
            ehlo,
            peer: session.peer.ip().to_canonical(),
            by: &self.config.server.hostname,
            id,
            tls: session.tls.as_ref(),
            smtputf8: txn.params.smtputf8,
            for_rcpt: single.as_deref(),
            at: now,
        }
        .header();
        QueuedMessage {
            id,
            received_at: now,
            from: txn.from.to_string(),
            mail_params: txn.params,
            recipients: txn.recipients,
            origin: Origin {
                listener: session.listener().name.clone(),
                peer: session.peer,
                helo,
                tls: session.tls.clone(),
                connector: txn.connector,
                direction: txn.direction,
            },
            size: 0,
            body_sha256: String::new(),
            chunks: 0,
            received_header,
            new_subject: None,
            decided: false,
            auth: None,
            scan: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::limit_key;

    #[test]
    fn per_ip_key_groups_ipv6_by_64() {
        let a = limit_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = limit_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = limit_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            limit_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<std::net::IpAddr>().unwrap()
        );
    }
}
