//! A scripted SMTP server for fault-injection tests: a "remote MX" on
//! 127.0.0.1 that misbehaves in one chosen way ([`Fault`]) and records what
//! it saw (connections, transactions, accepted messages, a transcript of the
//! commands), so a test can tell what reached it and what did not.
//!
//! One thread per connection, blocking std I/O; no PIPELINING is offered,
//! so every command waits for its reply.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// None: a well-behaved server that accepts everything.
    Accept,
    /// `450 4.2.1` to every RCPT.
    RcptTemp,
    /// `550 5.1.1` to every RCPT.
    RcptPerm,
    /// `451 4.3.0` after the final dot.
    DataTemp,
    /// Closes the connection halfway through the message (by the SIZE the
    /// client declared; at the end of the header when it declared none).
    DropMidData,
    /// Accepts the TCP connection and never says anything.
    Silent,
    /// Offers STARTTLS, answers `220`, then sends garbage instead of a TLS
    /// handshake and closes. Plain transactions (no STARTTLS) are accepted.
    BrokenStarttls,
    /// `450` at RCPT for the first `n` transactions (MAIL FROM), then accepts.
    FailFirstThenAccept(usize),
    /// Accepts each message, then hangs up at once instead of waiting for
    /// the next command (as a server's idle timeout would, between messages
    /// on a reused connection).
    HangUpAfterMessage,
    /// Accepts, but holds the reply after the final dot this long. The
    /// message counts as accepted when the `250` is written, whether or not
    /// the client is still there to read it (as a real MTA that has already
    /// committed it).
    SlowData(Duration),
}

/// A message the server accepted (answered `250` after its dot).
#[derive(Debug, Clone)]
pub struct Received {
    /// MAIL FROM, without `<>`.
    pub from: String,
    /// The accepted RCPT TO addresses, without `<>`.
    pub rcpts: Vec<String>,
    /// The message as sent, dot-stuffing removed, CRLF kept.
    pub data: Vec<u8>,
    /// When the server took it (wrote, or was about to write, its `250`).
    pub at: Instant,
}

impl Received {
    /// The value of the message's `Message-ID` header, if any.
    pub fn message_id(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.data);
        text.split("\r\n")
            .take_while(|l| !l.is_empty())
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("message-id")
                    .then(|| value.trim().to_string())
            })
    }
}

#[derive(Debug, Default)]
struct Record {
    connections: usize,
    transactions: usize,
    starttls: usize,
    in_flight: usize,
    cut_mid_data: usize,
    accepted: Vec<Received>,
    transcript: Vec<String>,
}

/// The running server; it stops accepting when dropped.
pub struct FaultServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
}

impl FaultServer {
    /// Starts a server with `fault` on a free loopback port.
    pub fn start(fault: Fault) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let record = Arc::new(Mutex::new(Record::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (rec, st) = (record.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let n = {
                    let mut r = rec.lock().unwrap();
                    r.connections += 1;
                    r.connections
                };
                let (rec, st) = (rec.clone(), st.clone());
                std::thread::spawn(move || {
                    let _ = Session::new(fault, conn, rec, st, n).run();
                });
            }
        });
        FaultServer { port, record, stop }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.record.lock().unwrap().connections
    }

    /// Transactions begun (MAIL FROM commands answered) so far.
    pub fn transactions(&self) -> usize {
        self.record.lock().unwrap().transactions
    }

    /// STARTTLS commands received so far.
    pub fn starttls(&self) -> usize {
        self.record.lock().unwrap().starttls
    }

    /// Messages whose final dot has arrived and whose reply is being held
    /// ([`Fault::SlowData`]).
    pub fn in_flight(&self) -> usize {
        self.record.lock().unwrap().in_flight
    }

    /// Connections closed halfway through a message ([`Fault::DropMidData`]).
    pub fn cut_mid_data(&self) -> usize {
        self.record.lock().unwrap().cut_mid_data
    }

    /// The messages accepted so far, in order.
    pub fn accepted(&self) -> Vec<Received> {
        self.record.lock().unwrap().accepted.clone()
    }

    /// Commands and replies so far (`#n C: ...` / `#n S: ...`, n the
    /// connection), message content left out: for assertion messages.
    pub fn transcript(&self) -> String {
        self.record.lock().unwrap().transcript.join("\n")
    }

    /// Waits until at least `n` messages have been accepted; returns them.
    pub fn wait_accepted(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let a = self.accepted();
            if a.len() >= n || Instant::now() > deadline {
                return a;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Most a transcript keeps, so a busy server does not grow without bound.
const MAX_TRANSCRIPT: usize = 20_000;

struct Session {
    fault: Fault,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
    conn: usize,
}

impl Session {
    fn new(
        fault: Fault,
        conn: TcpStream,
        record: Arc<Mutex<Record>>,
        stop: Arc<AtomicBool>,
        n: usize,
    ) -> Session {
        // Bounded, so threads of abandoned sessions end by themselves.
        let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
        Session {
            fault,
            reader: BufReader::new(conn.try_clone().unwrap()),
            writer: conn,
            record,
            stop,
            conn: n,
        }
    }

    fn note(&self, dir: &str, line: &str) {
        let mut r = self.record.lock().unwrap();
        if r.transcript.len() < MAX_TRANSCRIPT {
            r.transcript
                .push(format!("#{} {dir}: {}", self.conn, line.trim_end()));
        }
    }

    fn reply(&mut self, text: &str) -> std::io::Result<()> {
        for line in text.lines() {
            self.note("S", line);
        }
        self.writer
            .write_all(text.replace('\n', "\r\n").as_bytes())
            .and_then(|()| self.writer.write_all(b"\r\n"))
    }

    /// One line with its line end, or `None` at EOF.
    fn line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        let n = self.reader.read_until(b'\n', &mut buf)?;
        Ok((n > 0).then_some(buf))
    }

    fn run(mut self) -> std::io::Result<()> {
        if self.fault == Fault::Silent {
            // Read (and ignore) whatever comes until the client gives up.
            let mut buf = [0u8; 1024];
            while !self.stop.load(Ordering::SeqCst) {
                match self.reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            self.note("S", "(silent; closed)");
            return Ok(());
        }
        self.reply("220 fault.test ESMTP fault server")?;
        let mut from = None::<String>;
        let mut rcpts: Vec<String> = Vec::new();
        let mut size: Option<usize> = None;
        let mut txn = 0;
        while let Some(raw) = self.line()? {
            let line = String::from_utf8_lossy(&raw).trim_end().to_string();
            self.note("C", &line);
            let upper = line.to_ascii_uppercase();
            let verb = upper.split(' ').next().unwrap_or("").to_string();
            match verb.as_str() {
                "EHLO" => {
                    let tls = if self.fault == Fault::BrokenStarttls {
                        "250-STARTTLS\n"
                    } else {
                        ""
                    };
                    self.reply(&format!(
                        "250-fault.test\n{tls}250-SIZE 52428800\n250-8BITMIME\n250 ENHANCEDSTATUSCODES"
                    ))?;
                }
                "HELO" => self.reply("250 fault.test")?,
                "STARTTLS" if self.fault == Fault::BrokenStarttls => {
                    self.record.lock().unwrap().starttls += 1;
                    self.reply("220 2.0.0 Ready to start TLS")?;
                    // Take the ClientHello, answer with something that is
                    // not TLS at all, and hang up.
                    let _ = self.writer.set_read_timeout(Some(Duration::from_secs(3)));
                    let mut hello = [0u8; 4096];
                    let _ = self.reader.read(&mut hello);
                    self.note("S", "(garbage instead of a TLS handshake; closed)");
                    let _ = self
                        .writer
                        .write_all(b"this is not a TLS record, just noise\r\n");
                    let _ = self.writer.shutdown(Shutdown::Both);
                    return Ok(());
                }
                "MAIL" => {
                    txn = {
                        let mut r = self.record.lock().unwrap();
                        r.transactions += 1;
                        r.transactions
                    };
                    from = Some(between_brackets(&line));
                    size = upper
                        .split(' ')
                        .find_map(|p| p.strip_prefix("SIZE="))
                        .and_then(|s| s.parse().ok());
                    rcpts.clear();
                    self.reply("250 2.1.0 Ok")?;
                }
                "RCPT" if from.is_some() => {
                    let to = between_brackets(&line);
                    match self.fault {
                        Fault::RcptTemp => self.reply(&format!(
                            "450 4.2.1 <{to}>: mailbox busy, try again later (fault rcpt-temp)"
                        ))?,
                        Fault::RcptPerm => self.reply(&format!(
                            "550 5.1.1 <{to}>: no such mailbox here (fault rcpt-perm)"
                        ))?,
                        Fault::FailFirstThenAccept(n) if txn <= n => self.reply(&format!(
                            "450 4.3.2 <{to}>: not yet, attempt {txn} of {n} refused (fault flaky)"
                        ))?,
                        _ => {
                            rcpts.push(to);
                            self.reply("250 2.1.5 Ok")?;
                        }
                    }
                }
                "DATA" if from.is_some() => {
                    if rcpts.is_empty() {
                        self.reply("554 5.5.1 Error: no valid recipients")?;
                        continue;
                    }
                    self.reply("354 End data with <CR><LF>.<CR><LF>")?;
                    let Some(data) = self.data(size)? else {
                        return Ok(()); // cut or closed
                    };
                    let msg = Received {
                        from: from.take().unwrap_or_default(),
                        rcpts: std::mem::take(&mut rcpts),
                        data,
                        at: Instant::now(),
                    };
                    self.note("C", &format!("(message, {} octets, dot)", msg.data.len()));
                    match self.fault {
                        Fault::DataTemp => {
                            self.reply("451 4.3.0 Error: queue file write error (fault data-temp)")?
                        }
                        Fault::SlowData(hold) => {
                            self.record.lock().unwrap().in_flight += 1;
                            std::thread::sleep(hold);
                            let n = self.accept(msg);
                            let sent = self.reply(&format!("250 2.0.0 Ok: queued as FAULT{n}"));
                            self.record.lock().unwrap().in_flight -= 1;
                            sent?;
                        }
                        Fault::HangUpAfterMessage => {
                            let n = self.accept(msg);
                            self.reply(&format!("250 2.0.0 Ok: queued as FAULT{n}"))?;
                            self.note("S", "(hung up)");
                            let _ = self.writer.shutdown(Shutdown::Both);
                            return Ok(());
                        }
                        _ => {
                            let n = self.accept(msg);
                            self.reply(&format!("250 2.0.0 Ok: queued as FAULT{n}"))?;
                        }
                    }
                }
                "RSET" => {
                    from = None;
                    rcpts.clear();
                    self.reply("250 2.0.0 Ok")?;
                }
                "NOOP" => self.reply("250 2.0.0 Ok")?,
                "QUIT" => {
                    self.reply("221 2.0.0 Bye")?;
                    return Ok(());
                }
                "RCPT" | "DATA" => self.reply("503 5.5.1 Error: need MAIL first")?,
                _ => self.reply("502 5.5.2 Error: command not recognized")?,
            }
        }
        Ok(())
    }

    /// Records an accepted message; returns its number (from 1).
    fn accept(&self, msg: Received) -> usize {
        let mut r = self.record.lock().unwrap();
        let msg = Received {
            at: Instant::now(),
            ..msg
        };
        r.accepted.push(msg);
        r.accepted.len()
    }

    /// Reads the message up to the final dot; `None` when the connection
    /// was cut (by [`Fault::DropMidData`], or by the client).
    fn data(&mut self, size: Option<usize>) -> std::io::Result<Option<Vec<u8>>> {
        let mut data = Vec::new();
        let mut read = 0;
        let mut in_header = true;
        loop {
            let Some(line) = self.line()? else {
                self.note("C", "(closed during DATA)");
                return Ok(None);
            };
            read += line.len();
            if line == b".\r\n" || line == b".\n" {
                return Ok(Some(data));
            }
            let end_of_header = in_header && (line == b"\r\n" || line == b"\n");
            in_header &= !end_of_header;
            let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
            data.extend_from_slice(unstuffed);
            let cut = match size {
                Some(s) => read >= s / 2,
                None => end_of_header,
            };
            if self.fault == Fault::DropMidData && cut {
                self.record.lock().unwrap().cut_mid_data += 1;
                self.note(
                    "S",
                    &format!("(connection cut after {read} octets of DATA)"),
                );
                let _ = self.writer.shutdown(Shutdown::Both);
                return Ok(None);
            }
        }
    }
}

/// The address inside `<...>` of a MAIL or RCPT line.
fn between_brackets(line: &str) -> String {
    match (line.find('<'), line.find('>')) {
        (Some(a), Some(b)) if b > a => line[a + 1..b].to_string(),
        _ => String::new(),
    }
}
