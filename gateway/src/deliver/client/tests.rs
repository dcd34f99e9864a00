//! The client against a scripted in-process SMTP server.

use super::*;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Mutex;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

/// How the fake server behaves.
#[derive(Clone, Default)]
struct Fake {
    /// EHLO keywords before TLS.
    ext: Vec<&'static str>,
    /// EHLO keywords after STARTTLS.
    ext_tls: Vec<&'static str>,
    /// Accept the connection and never say anything.
    silent: bool,
    /// Answer EHLO with 502.
    no_ehlo: bool,
    /// Answer DATA with 354 even when no recipient was accepted.
    always_354: bool,
    /// TLS for STARTTLS.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Send an extra reply right behind the 220 to STARTTLS.
    inject: bool,
}

/// What the fake server saw.
#[derive(Default)]
struct Log {
    commands: Vec<String>,
    /// Raw DATA content of each message, terminator included.
    data: Vec<Vec<u8>>,
    /// For each MAIL: whether more commands were already waiting behind it.
    pipelined: Vec<bool>,
}

impl Log {
    fn has(&self, prefix: &str) -> bool {
        self.commands.iter().any(|c| c.starts_with(prefix))
    }
}

async fn start(fake: Fake) -> (SocketAddr, Arc<Mutex<Log>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let shared = log.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(fake.clone().session(tcp, shared.clone()));
        }
    });
    (addr, log)
}

impl Fake {
    async fn session(self, mut tcp: TcpStream, log: Arc<Mutex<Log>>) {
        if self.silent {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        if tcp.write_all(b"220 fake.test ESMTP\r\n").await.is_err() {
            return;
        }
        let Some(tcp) = self.run(tcp, &log, false).await else {
            return;
        };
        let Some(config) = self.tls.clone() else {
            return;
        };
        if let Ok(tls) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await {
            self.run(tls, &log, true).await;
        }
    }

    /// Serves commands; returns the stream when the client asks for TLS.
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: S,
        log: &Mutex<Log>,
        tls: bool,
    ) -> Option<S> {
        let mut io = BufReader::new(io);
        let mut accepted = 0;
        loop {
            let mut line = Vec::new();
            if io.read_until(b'\n', &mut line).await.ok()? == 0 {
                return None;
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            log.lock().unwrap().commands.push(text.clone());
            let verb = text.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let reply: String = match verb.as_str() {
                "EHLO" if self.no_ehlo => "502 5.5.2 EHLO not here\r\n".into(),
                "EHLO" => ehlo_reply(if tls { &self.ext_tls } else { &self.ext }),
                "HELO" => "250 fake.test\r\n".into(),
                "MAIL" => {
                    accepted = 0;
                    // Pipelined commands are already here; a client that
                    // waits for this reply sends nothing more.
                    let more = tokio::time::timeout(Duration::from_millis(100), io.fill_buf())
                        .await
                        .is_ok_and(|r| r.is_ok_and(|b| !b.is_empty()));
                    log.lock().unwrap().pipelined.push(more);
                    if text.contains("bad-sender") {
                        "550 5.1.8 sender refused\r\n".into()
                    } else {
                        "250 2.1.0 Ok\r\n".into()
                    }
                }
                "RCPT" if text.contains("reject") => "550 5.1.1 <x@y> unknown\r\n".into(),
                "RCPT" => {
                    accepted += 1;
                    "250 2.1.5 Ok\r\n".into()
                }
                "DATA" if accepted == 0 && !self.always_354 => {
                    "554 5.5.1 no valid recipients\r\n".into()
                }
                "DATA" => {
                    io.write_all(b"354 go ahead\r\n").await.ok()?;
                    io.flush().await.ok()?;
                    let mut data = Vec::new();
                    loop {
                        let mut l = Vec::new();
                        if io.read_until(b'\n', &mut l).await.ok()? == 0 {
                            return None;
                        }
                        data.extend_from_slice(&l);
                        if l == b".\r\n" {
                            break;
                        }
                    }
                    log.lock().unwrap().data.push(data);
                    "250-2.0.0 Ok:\r\n250 2.0.0 queued as 1\r\n".into()
                }
                "RSET" => "250 2.0.0 Ok\r\n".into(),
                "QUIT" => {
                    let _ = io.write_all(b"221 2.0.0 Bye\r\n").await;
                    let _ = io.flush().await;
                    return None;
                }
                "STARTTLS" => {
                    let r: &[u8] = if self.inject {
                        b"220 2.0.0 go\r\n250 injected\r\n"
                    } else {
                        b"220 2.0.0 go\r\n"
                    };
                    io.write_all(r).await.ok()?;
                    io.flush().await.ok()?;
                    return Some(io.into_inner());
                }
                _ => "502 5.5.1 unknown\r\n".into(),
            };
            io.write_all(reply.as_bytes()).await.ok()?;
            io.flush().await.ok()?;
        }
    }
}

fn ehlo_reply(ext: &[&str]) -> String {
    let mut lines = vec!["fake.test"];
    lines.extend_from_slice(ext);
    let last = lines.len() - 1;
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
        .collect()
}

fn settings() -> ClientSettings {
    ClientSettings {
        helo: "gw.example.test".into(),
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        data_timeout: Duration::from_secs(5),
    }
}

fn rcpt(address: &str) -> RcptTo {
    RcptTo {
        address: address.into(),
        notify: None,
        orcpt: None,
    }
}

fn envelope(rcpts: &[&str]) -> Envelope {
    Envelope {
        from: "s@x.test".into(),
        params: MailParams::default(),
        recipients: rcpts.iter().map(|r| rcpt(r)).collect(),
    }
}

const MSG: &[u8] = b"Subject: t\r\n\r\nhello\r\n";

#[tokio::test]
async fn greeting_and_ehlo_extensions() {
    let (addr, log) = start(Fake {
        ext: vec![
            "PIPELINING",
            "SIZE 1000000",
            "8BITMIME",
            "smtputf8",
            "DSN",
            "ENHANCEDSTATUSCODES",
            "STARTTLS",
            "CHUNKING",
            "AUTH PLAIN",
        ],
        ..Fake::default()
    })
    .await;
    let conn = Connection::connect(addr, &settings()).await.unwrap();
    assert_eq!(conn.peer(), addr);
    assert!(!conn.is_tls());
    assert_eq!(conn.tls_facts(), None);
    assert_eq!(
        conn.extensions(),
        &Extensions {
            starttls: true,
            pipelining: true,
            size: Some(1_000_000),
            eightbitmime: true,
            smtputf8: true,
            dsn: true,
            enhanced_status_codes: true,
            chunking: true,
        }
    );
    conn.quit().await;
    let log = log.lock().unwrap();
    assert_eq!(log.commands, vec!["EHLO gw.example.test", "QUIT"]);
}

#[test]
fn size_without_limit() {
    let r = reply::parse(b"250-h\r\n250 SIZE\r\n").unwrap().unwrap().0;
    assert_eq!(Extensions::parse(&r).size, Some(0));
    let r = reply::parse(b"250 h\r\n").unwrap().unwrap().0;
    assert_eq!(Extensions::parse(&r), Extensions::default());
}

#[tokio::test]
async fn helo_when_ehlo_refused() {
    let (addr, log) = start(Fake {
        no_ehlo: true,
        ..Fake::default()
    })
    .await;
    let mut conn = Connection::connect(addr, &settings()).await.unwrap();
    assert_eq!(conn.extensions(), &Extensions::default());
    let t = conn.send(&envelope(&["r@y.test"]), MSG).await.unwrap();
    assert_eq!(t.data.unwrap().code, 250);
    conn.quit().await;
    let log = log.lock().unwrap();
    assert_eq!(
        &log.commands[..4],
        &[
            "EHLO gw.example.test",
            "HELO gw.example.test",
            "MAIL FROM:<s@x.test>",
            "RCPT TO:<r@y.test>"
        ]
    );
}

#[tokio::test]
async fn pipelined_with_one_recipient_refused() {
    let (addr, log) = start(Fake {
        ext: vec!["PIPELINING", "SIZE 1000"],
        ..Fake::default()
    })
    .await;
    let mut conn = Connection::connect(addr, &settings()).await.unwrap();
    let t = conn
        .send(&envelope(&["reject@y.test", "ok@y.test"]), MSG)
        .await
        .unwrap();
    assert_eq!(t.mail.code, 250);
    assert_eq!(t.rcpts.len(), 2);
    assert_eq!(t.rcpts[0].to_string(), "550 5.1.1 <x@y> unknown");
    assert_eq!(t.rcpts[1].code, 250);
    let data = t.data.unwrap();
    assert_eq!(data.to_string(), "250 2.0.0 Ok: queued as 1");
    assert_eq!(data.enhanced(), Some("2.0.0"));
    conn.quit().await;
    let log = log.lock().unwrap();
    assert_eq!(log.pipelined, vec![true]);
    assert_eq!(
        log.commands,
        vec![
            "EHLO gw.example.test",
            &format!("MAIL FROM:<s@x.test> SIZE={}", MSG.len()),
            "RCPT TO:<reject@y.test>",
            "RCPT TO:<ok@y.test>",
            "DATA",
            "QUIT"
        ]
    );
    assert_eq!(log.data, vec![[MSG, b".\r\n"].concat()]);
}

#[tokio::test]
async fn without_pipelining_one_command_at_a_time() {
    let (addr, log) = start(Fake::default()).await;
    let mut conn = Connection::connect(addr, &settings()).await.unwrap();
    let t = conn
        .send(&envelope(&["a@y.test", "b@y.test"]), MSG)
        .await
        .unwrap();
    assert_eq!(
        t.rcpts.iter().map(|r| r.code).collect::<Vec<_>>(),
        [250, 250]
    );
    assert_eq!(t.data.unwrap().code, 250);
    assert_eq!(log.lock().unwrap().pipelined, vec![false]);
}

#[tokio::test]
async fn all_recipients_refused() {
    // Without pipelining DATA is never sent.
    let (addr, log) = start(Fake::default()).await;
    let mut conn = Connection::connect(addr, &settings()).await.unwrap();
    let t = conn
        .send(&envelope(&["reject1@y.test", "reject2@y.test"]), MSG)
        .await
        .unwrap();
    assert_eq!(
        t.rcpts.iter().map(|r| r.code).collect::<Vec<_>>(),
        [550, 550]
    );
    assert_eq!(t.data, None);
    assert!(!log.lock().unwrap().has("DATA"));
    // The session is still in step for the next message.
    conn.reset().await.unwrap();
    let t = conn.send(&envelope(&["ok@y.test"]), MSG).await.unwrap();
    assert_eq!(t.data.unwrap().code, 250);

    // Pipelined, DATA refused by the server: its reply is consumed.
    let (addr, log) = start(Fake {
        ext: vec!["PIPELINING"],
        ..Fake::default()
    })
    .await;
    let mut conn = Connection::connect(addr, &settings()).await.unwrap();
    let t = conn.send(&envelope(&["reject@y.test"]), MSG).await.unwrap();
    assert_eq!(t.data, None);
    conn.reset().await.unwrap();
    let t = conn.send(&envelope(&["ok@y.test"]), MSG).await.unwrap();
    assert_eq!(t.data.unwrap().code, 250);
    assert_eq!(log.lock().unwrap().data.len(), 1);

    // Pipelined, server says 354 anyway: a lone "." ends it, nothing is sent.
    let (addr, log) = start(Fake {
        ext: vec!["PIPELINING"],
        always_354: true,
        ..Fake::default()
    })
    .await;
    let mut conn = Connection::connect(addr, &settings()).await.unwrap();
    let t = conn.send(&envelope(&["reject@y.test"]), MSG).await.unwrap();
    assert_eq!(t.data, None);
    conn.reset().await.unwrap();
    conn.quit().await;
    let log = log.lock().unwrap();
    assert_eq!(log.data, vec![b".\r\n".to_vec()]);
    assert_eq!(log.commands.last().unwrap(), "QUIT");
}

#[tokio::test]
async fn refused_mail_keeps_the_session_in_step() {
    for ext in [vec![], vec!["PIPELINING"]] {
        let (addr, log) = start(Fake {
            ext,
            always_354: true,
            ..Fake::default()
        })
        .await;
        let mut conn = Connection::connect(addr, &settings()).await.unwrap();
        let mut env = envelope(&["ok@y.test"]);
        env.from = "bad-sender@x.test".into();
        let err = conn.send(&env, MSG).await.unwrap_err();
        match &err {
            ClientError::Rejected {
                stage: "MAIL",
                reply,
            } => assert_eq!(reply.code, 550),
            other => panic!("{other:?}"),
        }
        assert!(err.is_permanent());
        assert_eq!(err.to_string(), "MAIL refused with 550");
        conn.reset().await.unwrap();
        let t = conn.send(&envelope(&["ok@y.test"]), MSG).await.unwrap();
        assert_eq!(t.data.unwrap().code, 250);
        // Only the second message's content arrived.
        assert_eq!(
            log.lock().unwrap().data.last().unwrap(),
            &[MSG, b".\r\n"].concat()
        );
    }
}

#[tokio::test]
async fn dot_stuffing_and_bare_line_endings_on_the_wire() {
    let (addr, log) = start(Fake {
        ext: vec!["PIPELINING"],
        ..Fake::default()
    })
    .await;
    let mut conn = Connection::connect(addr, &settings()).await.unwrap();
    let message =
        b"Subject: x\r\n\r\n.leading\r\nlone\nLF\rCR\r\n..two\n.\r\nMAIL FROM:<evil>\r\n.\rend";
    conn.send(&envelope(&["ok@y.test"]), message).await.unwrap();
    // A large message crosses chunk boundaries with a CR LF split between chunks.
    let mut big = Vec::new();
    while big.len() < 3 * CHUNK {
        big.extend_from_slice(b".line of text\r\n");
    }
    big.truncate(CHUNK - 1);
    big.extend_from_slice(b"\r\n.after\r\n");
    conn.send(&envelope(&["ok@y.test"]), &big).await.unwrap();
    conn.quit().await;
    let log = log.lock().unwrap();
    assert_eq!(
        log.data[0],
        b"Subject: x\r\n\r\n..leading\r\nlone\r\nLF\r\nCR\r\n...two\r\n..\r\nMAIL FROM:<evil>\r\n..\r\nend\r\n.\r\n"
    );
    assert_eq!(log.data[1], stuff::encode(&big));
    assert!(log.data[1].ends_with(b"\r\n..after\r\n.\r\n"));
}

#[tokio::test]
async fn smtputf8_never_downgraded() {
    let (addr, log) = start(Fake {
        ext: vec!["PIPELINING"],
        ..Fake::default()
    })
    .await;
    let mut conn = Connection::connect(addr, &settings()).await.unwrap();
    let mut env = envelope(&["ok@y.test"]);
    env.from = "jöran@x.test".into();
    let err = conn.send(&env, MSG).await.unwrap_err();
    assert!(matches!(err, ClientError::NeedsSmtpUtf8));
    assert!(err.is_permanent());
    assert_eq!(
        err.reply().to_string(),
        "554 5.6.7 message requires SMTPUTF8, which the receiving server does not support"
    );
    // The flag alone is enough, with ASCII addresses.
    let mut env = envelope(&["ok@y.test"]);
    env.params.smtputf8 = true;
    assert!(matches!(
        conn.send(&env, MSG).await,
        Err(ClientError::NeedsSmtpUtf8)
    ));
    let env = envelope(&["ök@y.test"]);
    assert!(matches!(
        conn.send(&env, MSG).await,
        Err(ClientError::NeedsSmtpUtf8)
    ));
    // Nothing was sent, and the session is still usable.
    assert!(!log.lock().unwrap().has("MAIL"));
    conn.send(&envelope(&["ok@y.test"]), MSG).await.unwrap();

    let (addr, log) = start(Fake {
        ext: vec!["SMTPUTF8"],
        ..Fake::default()
    })
    .await;
    let mut conn = Connection::connect(addr, &settings()).await.unwrap();
    let env = envelope(&["ök@y.test"]);
    conn.send(&env, MSG).await.unwrap();
    let log = log.lock().unwrap();
    assert!(log.has("MAIL FROM:<s@x.test> SMTPUTF8"));
    assert!(log.has("RCPT TO:<ök@y.test>"));
}

#[tokio::test]
async fn size_limit_refused_before_mail() {
    let (addr, log) = start(Fake {
        ext: vec!["SIZE 10"],
        ..Fake::default()
    })
    .await;
    let mut conn = Connection::connect(addr, &settings()).await.unwrap();
    let message = vec![b'a'; 100];
    let err = conn
        .send(&envelope(&["ok@y.test"]), &message)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ClientError::TooBig {
            limit: 10,
            size: 100
        }
    ));
    assert!(err.is_permanent());
    let r = err.reply();
    assert_eq!((r.code, r.enhanced()), (552, Some("5.3.4")));
    assert!(!log.lock().unwrap().has("MAIL"));
    // Within the limit it goes, with SIZE declared.
    conn.send(&envelope(&["ok@y.test"]), b"hi\r\n")
        .await
        .unwrap();
    assert!(log.lock().unwrap().has("MAIL FROM:<s@x.test> SIZE=4"));
}

fn dsn_envelope() -> Envelope {
    Envelope {
        from: "s@x.test".into(),
        params: MailParams {
            size: Some(5),
            body: Some(BodyType::EightBitMime),
            smtputf8: false,
            ret: Some(Ret::Hdrs),
            envid: Some("abc+2Bd".into()),
        },
        recipients: vec![
            RcptTo {
                address: "a@y.test".into(),
                notify: Some(Notify {
                    success: true,
                    failure: true,
                    delay: false,
                }),
                orcpt: Some("rfc822;a@y.test".into()),
            },
            RcptTo {
                address: "b@y.test".into(),
                notify: Some(Notify::default()),
                orcpt: None,
            },
        ],
    }
}

#[tokio::test]
async fn dsn_and_body_parameters_only_when_offered() {
    let (addr, log) = start(Fake {
        ext: vec!["DSN", "8BITMIME", "PIPELINING"],
        ..Fake::default()
    })
    .await;
    let mut conn = Connection::connect(addr, &settings()).await.unwrap();
    conn.send(&dsn_envelope(), MSG).await.unwrap();
    {
        let log = log.lock().unwrap();
        assert_eq!(
            &log.commands[1..4],
            &[
                "MAIL FROM:<s@x.test> BODY=8BITMIME RET=HDRS ENVID=abc+2Bd",
                "RCPT TO:<a@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@y.test",
                "RCPT TO:<b@y.test> NOTIFY=NEVER",
            ]
        );
    }

    let (addr, log) = start(Fake::default()).await;
    let mut conn = Connection::connect(addr, &settings()).await.unwrap();
    let mut env = dsn_envelope();
    env.from = String::new();
    conn.send(&env, MSG).await.unwrap();
    let log = log.lock().unwrap();
    assert_eq!(
        &log.commands[1..4],
        &["MAIL FROM:<>", "RCPT TO:<a@y.test>", "RCPT TO:<b@y.test>"]
    );
}

#[tokio::test]
async fn control_characters_never_reach_the_wire() {
    let (addr, log) = start(Fake::default()).await;
    let mut conn = Connection::connect(addr, &settings()).await.unwrap();
    let env = envelope(&["a@y.test>\r\nRCPT TO:<b@y.test"]);
    assert!(matches!(
        conn.send(&env, MSG).await,
        Err(ClientError::Protocol(_))
    ));
    assert!(!log.lock().unwrap().has("MAIL"));
    let mut bad = settings();
    bad.helo = "a\r\nMAIL".into();
    assert!(Connection::connect(addr, &bad).await.is_err());
}

#[tokio::test]
async fn timeouts() {
    let (addr, _) = start(Fake {
        silent: true,
        ..Fake::default()
    })
    .await;
    let mut s = settings();
    s.command_timeout = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let err = Connection::connect(addr, &s).await.err().unwrap();
    assert!(matches!(err, ClientError::Timeout { stage: "greeting" }));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(!err.is_permanent());
    assert_eq!(err.reply().to_string(), "451 4.4.2 timeout during greeting");
}

#[tokio::test]
async fn connection_refused_and_lost() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = Connection::connect(addr, &settings()).await.err().unwrap();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    assert_eq!(err.reply().code, 451);

    // A server that greets and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"220 hi\r\n").await.unwrap();
    });
    let err = Connection::connect(addr, &settings()).await.err().unwrap();
    assert!(matches!(err, ClientError::Io("EHLO", _)), "{err:?}");
    assert_eq!(
        err.reply().to_string(),
        "451 4.4.2 connection lost during EHLO"
    );
}

#[tokio::test]
async fn malformed_and_refused_greetings() {
    for (greeting, want) in [
        (&b"554 5.7.1 go away\r\n"[..], "rejected"),
        (b"220-a\r\n221 b\r\n", "protocol"),
        (b"hello there\r\n", "protocol"),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(greeting).await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        let err = Connection::connect(addr, &settings()).await.err().unwrap();
        match (want, &err) {
            (
                "rejected",
                ClientError::Rejected {
                    stage: "greeting",
                    reply,
                },
            ) => {
                assert_eq!(reply.to_string(), "554 5.7.1 go away");
                assert!(err.is_permanent());
            }
            ("protocol", ClientError::Protocol(_)) => assert!(!err.is_permanent()),
            _ => panic!("{want}: {err:?}"),
        }
    }
}

#[test]
fn error_replies() {
    let e = ClientError::Io("message transfer", io::ErrorKind::BrokenPipe.into());
    assert_eq!(
        e.reply().to_string(),
        "451 4.4.2 connection lost during message transfer"
    );
    assert!(!e.is_permanent());
    let e = ClientError::Timeout { stage: "connect" };
    assert_eq!(e.reply().enhanced(), Some("4.4.1"));
    let e = ClientError::Tls("bad certificate".into());
    assert!(e.reply().is_transient());
    let e = ClientError::Rejected {
        stage: "EHLO",
        reply: Reply::local(421, "4.3.2", "busy"),
    };
    assert!(!e.is_permanent());
    assert_eq!(e.reply().to_string(), "421 4.3.2 busy");
}

/// A self-signed certificate for `localhost` and a TLS server config with it.
fn tls_server() -> (Arc<rustls::ServerConfig>, CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let der = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(crate::net::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    (Arc::new(config), der)
}

fn tls_fake(config: Arc<rustls::ServerConfig>) -> Fake {
    Fake {
        ext: vec!["STARTTLS", "SIZE 10"],
        ext_tls: vec!["PIPELINING", "8BITMIME"],
        tls: Some(config),
        ..Fake::default()
    }
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

#[tokio::test]
async fn starttls_opportunistic() {
    let (config, der) = tls_server();
    let (addr, log) = start(tls_fake(config)).await;
    let conn = Connection::connect(addr, &settings()).await.unwrap();
    assert!(conn.extensions().starttls);
    let mut conn = conn
        .starttls(tls::opportunistic_config(), localhost())
        .await
        .unwrap();
    assert!(conn.is_tls());
    // The plain-text list is gone; the one given under TLS applies.
    assert_eq!(
        conn.extensions(),
        &Extensions {
            pipelining: true,
            eightbitmime: true,
            ..Extensions::default()
        }
    );
    let facts = conn.tls_facts().unwrap();
    assert_eq!(facts.version, "TLSv1.3");
    assert!(facts.cipher.starts_with("TLS_"), "{}", facts.cipher);
    assert!(!facts.cipher.starts_with("TLS13_"));
    assert_eq!(
        facts.peer_cert_sha256,
        hex::encode(Sha256::digest(der.as_ref()))
    );
    assert!(!facts.verified);
    assert_eq!(conn.peer_certificates().unwrap()[0], der);
    let t = conn.send(&envelope(&["ok@y.test"]), MSG).await.unwrap();
    assert_eq!(t.data.unwrap().code, 250);
    conn.quit().await;
    let log = log.lock().unwrap();
    assert_eq!(
        log.commands
            .iter()
            .filter(|c| c.starts_with("EHLO"))
            .count(),
        2
    );
    assert_eq!(log.data, vec![[MSG, b".\r\n"].concat()]);
}

#[tokio::test]
async fn starttls_verifying() {
    let (config, der) = tls_server();
    let (addr, _) = start(tls_fake(config)).await;

    // Roots that do not include the server's certificate: refused.
    let other = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(other.cert.der().clone()).unwrap();
    let conn = Connection::connect(addr, &settings()).await.unwrap();
    let err = conn
        .starttls(tls::verifying_config(Arc::new(roots)), localhost())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
    assert!(!err.is_permanent());

    // Trusted, but for another name: refused.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let roots = Arc::new(roots);
    let conn = Connection::connect(addr, &settings()).await.unwrap();
    let err = conn
        .starttls(
            tls::verifying_config(roots.clone()),
            ServerName::try_from("mx.other.test").unwrap(),
        )
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");

    // Trusted and named: accepted.
    let conn = Connection::connect(addr, &settings()).await.unwrap();
    let conn = conn
        .starttls(tls::verifying_config(roots), localhost())
        .await
        .unwrap();
    assert!(conn.is_tls());
}

#[tokio::test]
async fn data_injected_after_starttls_reply_is_refused() {
    let (config, _) = tls_server();
    let (addr, _) = start(Fake {
        inject: true,
        ..tls_fake(config)
    })
    .await;
    let conn = Connection::connect(addr, &settings()).await.unwrap();
    let err = conn
        .starttls(tls::opportunistic_config(), localhost())
        .await
        .err()
        .unwrap();
    match err {
        ClientError::Protocol(why) => assert!(why.contains("after its STARTTLS reply")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn broken_session_refuses_further_commands() {
    // The server stops answering after the 354: the transfer's final reply
    // times out, and the session must not be reused.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let mut s = BufReader::new(s);
        s.write_all(b"220 hi\r\n").await.unwrap();
        let mut line = String::new();
        for reply in [
            &b"250 hi\r\n"[..],
            b"250 ok\r\n",
            b"250 ok\r\n",
            b"354 go\r\n",
        ] {
            line.clear();
            s.read_line(&mut line).await.unwrap();
            s.write_all(reply).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut s = settings();
    s.data_timeout = Duration::from_millis(200);
    let mut conn = Connection::connect(addr, &s).await.unwrap();
    let err = conn.send(&envelope(&["ok@y.test"]), MSG).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                stage: "end of data"
            }
        ),
        "{err:?}"
    );
    assert!(matches!(conn.reset().await, Err(ClientError::Protocol(_))));
    assert!(matches!(
        conn.send(&envelope(&["ok@y.test"]), MSG).await,
        Err(ClientError::Protocol(_))
    ));
    conn.quit().await;
}
