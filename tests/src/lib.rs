//! Harness for the end-to-end tests: runs the real `sealgate` binary on
//! loopback ports in a temporary data directory, talks raw SMTP to it, and
//! runs private Postfix instances as real peers.

pub mod crypto;
pub mod engines;
pub mod fault;
pub mod webdriver;
pub use crypto::{base64, base64_lines, dkim_key, openssl, Gpg};
pub use engines::{Clamd, Rspamd, EICAR, GTUBE};
pub use sealgate_test_postgres::PgServer;
pub use webdriver::Browser;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of the `sealgate` binary under test (`SEALGATE_BIN`, else target/debug).
pub fn sealgate_bin() -> PathBuf {
    if let Ok(p) = std::env::var("SEALGATE_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin = target.join("debug").join("sealgate");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p sealgate` first (the README's test command does)",
        bin.display()
    );
    bin
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running (or stopped) Sealgate instance with its own data directory.
pub struct Gateway {
    /// The temporary directory holding config and data.
    pub dir: tempfile::TempDir,
    /// SMTP port (STARTTLS listener).
    pub smtp: u16,
    /// Admin HTTP port.
    pub admin: u16,
    /// The config file.
    pub config: PathBuf,
    child: Option<Child>,
}

impl Gateway {
    /// Writes a config (`extra` is appended TOML) and starts the gateway.
    pub fn start(extra: &str) -> Gateway {
        Self::start_with_listeners(extra, true)
    }

    /// Like [`Gateway::start`]; with `default_listener = false`, `extra` must
    /// declare its own `[[listener]]` tables (use `{smtp}` for the port).
    pub fn start_with_listeners(extra: &str, default_listener: bool) -> Gateway {
        Self::start_full("", "", extra, default_listener)
    }

    /// Like [`Gateway::start`], with `server_extra` lines added to `[server]`.
    pub fn start_with_server_extra(server_extra: &str, extra: &str) -> Gateway {
        Self::start_full(server_extra, "", extra, true)
    }

    /// Like [`Gateway::start`], with `admin_extra` lines added to `[admin]`.
    pub fn start_with_admin_extra(admin_extra: &str, extra: &str) -> Gateway {
        Self::start_full("", admin_extra, extra, true)
    }

    fn start_full(
        server_extra: &str,
        admin_extra: &str,
        extra: &str,
        default_listener: bool,
    ) -> Gateway {
        // A port free when chosen can be taken before the gateway binds it
        // (another test, another process): then start again on new ports.
        let mut attempts = 0;
        loop {
            let mut g = Self::configure(server_extra, admin_extra, extra, default_listener);
            match g.try_run() {
                Ok(()) => return g,
                Err(log) if log.contains("Address already in use") && attempts < 3 => {
                    attempts += 1;
                }
                Err(log) => panic!("sealgate exited at start; log:\n{log}"),
            }
        }
    }

    fn configure(
        server_extra: &str,
        admin_extra: &str,
        extra: &str,
        default_listener: bool,
    ) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let smtp = free_port();
        let admin = free_port();
        let config = dir.path().join("sealgate.toml");
        let mut text = format!(
            "[server]\nhostname = \"gw.sealgate.test\"\ndata_dir = \"{}\"\nlocal_domains = [\"hospital.test\"]\n{server_extra}\n[admin]\naddress = \"127.0.0.1:{admin}\"\n{admin_extra}\n[log]\nformat = \"json\"\nlevel = \"info\"\n\n",
            dir.path().join("data").display()
        );
        if default_listener {
            text.push_str(&format!("[[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:{smtp}\"\ntls = \"starttls\"\n\n"));
        }
        // Tests that do not deliver keep their mail queued, where they look
        // at it; delivery tests configure `[delivery]` themselves.
        if !extra.contains("[delivery]") {
            text.push_str("[delivery]\nenabled = false\n\n");
        }
        // Sender authentication asks DNS about every inbound message; tests
        // that check it configure `[inbound]` (and a resolver) themselves.
        if !extra.contains("[inbound]") {
            text.push_str("[inbound]\nauthenticate = false\n\n");
        }
        text.push_str(&extra.replace("{smtp}", &smtp.to_string()));
        std::fs::write(&config, text).unwrap();
        Gateway {
            dir,
            smtp,
            admin,
            config,
            child: None,
        }
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the process and waits until SMTP and admin ports answer.
    pub fn run(&mut self) {
        if let Err(log) = self.try_run() {
            panic!("sealgate exited at start; log:\n{log}");
        }
    }

    /// Like [`Gateway::run`]; the log when the process exits at start.
    fn try_run(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("sealgate.log"))
            .unwrap();
        let child = Command::new(sealgate_bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sealgate");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("({status})\n{}", self.log()));
            }
            if TcpStream::connect(("127.0.0.1", self.admin)).is_ok()
                && TcpStream::connect(("127.0.0.1", self.smtp)).is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sealgate did not start; log:\n{}", self.log());
    }

    /// Sends SIGHUP (reload recipients and DLP rules) and waits until the
    /// log contains `expect`.
    pub fn reload(&self, expect: &str) {
        let pid = self.child.as_ref().expect("gateway running").id();
        let _ = Command::new("kill")
            .arg("-HUP")
            .arg(pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log().contains(expect) {
            assert!(
                Instant::now() < deadline,
                "no `{expect}` in the log after SIGHUP:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sealgate.log")).unwrap_or_default()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            send_sigterm(c.id());
            let deadline = Instant::now() + Duration::from_secs(40);
            while Instant::now() < deadline {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!("sealgate did not stop on SIGTERM");
        }
    }

    /// Runs `sealgate <args> --config <ours>`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(sealgate_bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap()
    }

    /// `sealgate queue ls --json`, parsed.
    pub fn queue(&self) -> Vec<serde_json::Value> {
        let out = self.cli(&["queue", "ls", "--json"]);
        assert!(
            out.status.success(),
            "queue ls failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `sealgate queue show ID --json` of a queued or finished message;
    /// `Null` when there is none (yet), for tests that poll.
    pub fn queue_show(&self, id: &str) -> serde_json::Value {
        let o = self.cli(&["queue", "show", id, "--json"]);
        serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// Fetches an admin URL path with a plain HTTP/1.0 request.
    pub fn http_get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.admin)).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// The admin API token the gateway made at its first start.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data().join("admin.token"))
            .expect("admin.token in the data directory")
            .trim()
            .to_string()
    }

    /// POSTs `body` to the admin API (with the admin token); returns the
    /// whole HTTP response.
    pub fn http_post(&self, path: &str, body: &[u8]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.admin)).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: message/rfc822\r\nContent-Length: {}\r\n\r\n",
            self.admin_token(),
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// Value of a Prometheus sample line that starts with `prefix`, summed.
    pub fn metric(&self, prefix: &str) -> f64 {
        self.http_get("/metrics")
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

fn send_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A minimal blocking SMTP client for tests that need raw control.
pub struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Smtp {
    /// Connects and reads the greeting.
    pub fn connect(port: u16) -> std::io::Result<Smtp> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut c = Smtp {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        };
        let (code, _) = c.reply()?;
        if code != 220 {
            return Err(std::io::Error::other(format!("greeting {code}")));
        }
        Ok(c)
    }

    /// Reads one (possibly multi-line) reply.
    pub fn reply(&mut self) -> std::io::Result<(u16, String)> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            text.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                return Ok((code, text));
            }
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Sends a command line and reads the reply.
    pub fn cmd(&mut self, line: &str) -> std::io::Result<(u16, String)> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// Sends one message (body must already be dot-stuffed and CRLF-ended)
    /// and returns the reply to the end of data.
    pub fn message(
        &mut self,
        from: &str,
        to: &[&str],
        body: &[u8],
    ) -> std::io::Result<(u16, String)> {
        let (c, t) = self.cmd(&format!("MAIL FROM:<{from}>"))?;
        if c != 250 {
            return Ok((c, t));
        }
        for r in to {
            let (c, t) = self.cmd(&format!("RCPT TO:<{r}>"))?;
            if c != 250 {
                return Ok((c, t));
            }
        }
        let (c, t) = self.cmd("DATA")?;
        if c != 354 {
            return Ok((c, t));
        }
        self.send(body)?;
        self.send(b".\r\n")?;
        self.reply()
    }
}

/// Where tests keep screenshots: `SEALGATE_ARTEFACTS`, else `target/artefacts`.
pub fn artefacts() -> PathBuf {
    std::env::var_os("SEALGATE_ARTEFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/artefacts"))
}

/// Sends a plain text message (`subject`, `body`) from `from` to `to`
/// through `g`'s SMTP listener with swaks; asserts it was accepted and
/// returns its queue id.
pub fn send_text(g: &Gateway, from: &str, to: &str, subject: &str, body: &str) -> String {
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", g.smtp),
        "--from",
        from,
        "--to",
        to,
        "--header",
        &format!("Subject: {subject}"),
        "--body",
        body,
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    queued_id(&out).expect("queued as ID")
}

/// A gateway whose tenant sends from hospital.test over loopback (anyone
/// else on loopback is the internet: inbound), delivering to `home`, with
/// `inbound` as its `[inbound]` table's lines and `delivery` added to
/// `[delivery]`.
pub fn inbound_gateway(home: &Postfix, inbound: &str, delivery: &str) -> Gateway {
    Gateway::start(&format!(
        "[[connector]]\nname = \"tenant\"\ncidrs = [\"127.0.0.0/8\"]\nsender_domains = [\"hospital.test\"]\n\n\
         [inbound]\n{inbound}\n\n\
         [delivery]\n{delivery}\nsmart_host = {{ host = \"127.0.0.1\", port = {home} }}\n\n\
         [tls]\ndane = false\nmta_sts = false\nremember = false\n\n\
         [seal]\nwkd = false\n",
        home = home.port,
    ))
}

/// Sends `body` (CRLF) from `from` to nurse@hospital.test over SMTP after
/// `EHLO helo`; the reply to the end of DATA.
pub fn send_inbound(g: &Gateway, helo: &str, from: &str, body: &str) -> (u16, String) {
    let mut s = Smtp::connect(g.smtp).unwrap();
    s.cmd(&format!("EHLO {helo}")).unwrap();
    s.message(from, &["nurse@hospital.test"], body.as_bytes())
        .unwrap()
}

/// A PostgreSQL server of this test's own (it may stop and start it), in
/// `/tmp/sealgate-pg-tests/run-<pid>-<n>`, with an empty database
/// `sealgate` and that database's URL; directories of finished runs are
/// swept first.
pub fn postgres() -> (PgServer, String) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = Path::new("/tmp/sealgate-pg-tests");
    sealgate_test_postgres::sweep_old_runs(base);
    let dir = base.join(format!(
        "run-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let server = PgServer::start(&dir).unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = server
        .create_database("sealgate")
        .unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    (server, url)
}

/// Runs swaks with the given arguments.
pub fn swaks(args: &[&str]) -> Output {
    Command::new("swaks")
        .args(args)
        .output()
        .expect("swaks is not installed: the README's test command installs it")
}

/// The queue id from a `250 ... queued as ID` reply.
pub fn queued_id(text: &str) -> Option<String> {
    let i = text.find("queued as ")?;
    Some(
        text[i + 10..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect(),
    )
}

/// SHA-256 hex of bytes.
pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// A private Postfix instance (own config, queue and port), stopped on drop.
pub struct Postfix {
    /// Its directory.
    pub dir: tempfile::TempDir,
    /// Its smtpd port.
    pub port: u16,
    name: String,
}

impl Postfix {
    /// Starts Postfix with `main_cf` lines added to a minimal base config.
    pub fn start(name: &str, main_cf: &str) -> Postfix {
        let dir = tempfile::Builder::new()
            .prefix("sealgate-pf-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for sub in ["etc", "queue", "data", "vmail"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        // Postfix insists on owning its data directory and on a default
        // main.cf; virtual(8) writes the Maildir as postfix.
        Command::new("chown")
            .arg("postfix")
            .arg(d.join("data"))
            .arg(d.join("vmail"))
            .status()
            .unwrap();
        let main_cf = main_cf.replace("{VMAIL}", &d.join("vmail").display().to_string());
        if !Path::new("/etc/postfix/main.cf").exists() {
            std::fs::write("/etc/postfix/main.cf", "").unwrap();
        }
        let port = free_port();
        let log = format!("/var/log/sealgate-test-{name}-{port}.log");
        let main = format!(
            "compatibility_level = 3.6\nqueue_directory = {q}\ndata_directory = {data}\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmyhostname = {name}.test\nmydestination =\nmynetworks = 127.0.0.0/8\nmaillog_file = {log}\nsmtputf8_enable = yes\n{main_cf}\n",
            q = d.join("queue").display(),
            data = d.join("data").display(),
        );
        std::fs::write(d.join("etc/main.cf"), main).unwrap();
        let master =
            std::fs::read_to_string("/etc/postfix/master.cf").expect("postfix is not installed");
        let mut out = String::new();
        for line in master.lines() {
            let mut fields: Vec<&str> = line.split_whitespace().collect();
            if !line.starts_with(|c: char| c.is_ascii_alphanumeric()) || fields.len() < 8 {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            let port_s = port.to_string();
            if fields[0] == "smtp" && fields[1] == "inet" {
                fields[0] = &port_s;
            }
            fields[4] = "n"; // no chroot: the private queue has no chroot files
            out.push_str(&fields.join(" "));
            out.push('\n');
        }
        std::fs::write(d.join("etc/master.cf"), out).unwrap();
        let st = Command::new("postfix")
            .arg("-c")
            .arg(d.join("etc"))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "postfix start failed: {}\n{}",
            String::from_utf8_lossy(&st.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "postfix did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Postfix {
            dir,
            port,
            name: log,
        }
    }

    /// Its mail log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.name).unwrap_or_default()
    }

    /// Changes main.cf settings (`name = value` lines) and reloads.
    pub fn set(&self, settings: &str) {
        let etc = self.dir.path().join("etc");
        for line in settings.lines().filter(|l| !l.trim().is_empty()) {
            run_ok(
                Command::new("postconf")
                    .arg("-c")
                    .arg(&etc)
                    .arg("-e")
                    .arg(line),
            );
        }
        run_ok(Command::new("postfix").arg("-c").arg(&etc).arg("reload"));
    }

    /// `postqueue -p` output of this instance.
    pub fn queue(&self) -> String {
        let out = Command::new("postqueue")
            .arg("-c")
            .arg(self.dir.path().join("etc"))
            .arg("-p")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(self.dir.path().join("etc"))
            .arg("stop")
            .output();
    }
}

/// A private Postfix instance that keeps mail for `domains` in a Maildir
/// (`<dir>/vmail/inbox/`) instead of relaying: the "remote MX" or the
/// tenant's mailbox server.
pub fn postfix_mailbox(name: &str, domains: &str, main_cf: &str) -> Postfix {
    let uid = id_of("-u", "postfix");
    let gid = id_of("-g", "postfix");
    let pf = Postfix::start(
        name,
        &format!(
            "virtual_mailbox_domains = {domains}\nvirtual_mailbox_base = {{VMAIL}}\nvirtual_mailbox_maps = static:inbox/\nvirtual_uid_maps = static:{uid}\nvirtual_gid_maps = static:{gid}\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n{main_cf}\n"
        ),
    );
    pf
}

fn id_of(flag: &str, user: &str) -> String {
    let o = Command::new("id").arg(flag).arg(user).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

impl Postfix {
    /// Messages delivered to this instance's Maildir (see [`postfix_mailbox`]), oldest first.
    pub fn mailbox(&self) -> Vec<Vec<u8>> {
        let dir = self.dir.path().join("vmail/inbox/new");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
    }

    /// The first delivered message whose header has `Subject: subject`,
    /// waiting up to a minute.
    pub fn wait_subject(&self, subject: &str) -> String {
        wait_for(60, &format!("delivery of {subject:?}"), || {
            self.mailbox()
                .into_iter()
                .map(|m| String::from_utf8_lossy(&m).into_owned())
                .find(|t| t.contains(&format!("Subject: {subject}")))
        })
    }

    /// Waits until the Maildir holds at least `n` messages; returns them.
    pub fn wait_mail(&self, n: usize, secs: u64) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let m = self.mailbox();
            if m.len() >= n || Instant::now() > deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// dnsmasq serving fixed records on a loopback port (no recursion): the
/// "internet DNS" for routing tests.
pub struct Dns {
    /// UDP/TCP port on 127.0.0.1.
    pub port: u16,
    child: Child,
}

impl Dns {
    /// Starts dnsmasq with `options` such as `--mx-host=dest.test,mx.dest.test,10`,
    /// `--host-record=mx.dest.test,127.0.0.1`, `--txt-record=name,"text"`.
    pub fn start(options: &[String]) -> Dns {
        let port = free_port();
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--pid-file=",
                "--user=root",
                "--log-facility=-",
            ])
            .arg(format!("--port={port}"))
            .args(options)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq is not installed (scripts/install-deps test)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "dnsmasq did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Dns { port, child }
    }
}

/// dnsmasq's `--txt-record` for `value`, cut into character-strings of at
/// most 255 octets (an RSA key record is longer); verifiers join them.
pub fn txt_record(name: &str, value: &str) -> String {
    let parts: Vec<&str> = value
        .as_bytes()
        .chunks(250)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!("--txt-record={name},{}", parts.join(","))
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway certificate authority made with openssl, for TLS tests.
pub struct TestCa {
    /// Directory with `ca.pem`, `ca.key` and issued certificates.
    pub dir: tempfile::TempDir,
}

impl TestCa {
    /// A new CA.
    pub fn new() -> TestCa {
        let dir = tempfile::Builder::new()
            .prefix("sealgate-ca-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        run_ok(Command::new("openssl").current_dir(d).args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Sealgate Test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]));
        // Postfix (running as postfix) must be able to read what we issue.
        let _ = Command::new("chmod").arg("755").arg(d).status();
        TestCa { dir }
    }

    /// The CA certificate file.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Issues a certificate for `names` (first is the CN); `days` may be
    /// negative for one that has expired. Returns (cert, key) paths.
    pub fn issue(&self, label: &str, names: &[&str], days: i64) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        let key = d.join(format!("{label}.key"));
        let csr = d.join(format!("{label}.csr"));
        let cert = d.join(format!("{label}.pem"));
        let ext = d.join(format!("{label}.ext"));
        let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={}\nextendedKeyUsage=serverAuth\n",
                san.join(",")
            ),
        )
        .unwrap();
        run_ok(
            Command::new("openssl")
                .current_dir(d)
                .args([
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                ])
                .arg(&key)
                .arg("-out")
                .arg(&csr)
                .args(["-subj", &format!("/CN={}", names[0])]),
        );
        if days < 0 {
            // `openssl x509` cannot back-date; `openssl ca` can.
            std::fs::write(
                d.join("ca.cnf"),
                "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\n\
                 serial = serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n\
                 [any]\ncommonName = supplied\n",
            )
            .unwrap();
            if !d.join("serial").exists() {
                std::fs::write(d.join("index.txt"), "").unwrap();
                std::fs::write(d.join("serial"), "1000\n").unwrap();
            }
            run_ok(
                Command::new("openssl")
                    .current_dir(d)
                    .args([
                        "ca", "-batch", "-notext", "-config", "ca.cnf", "-cert", "ca.pem",
                    ])
                    .args(["-keyfile", "ca.key", "-in"])
                    .arg(&csr)
                    .arg("-out")
                    .arg(&cert)
                    .arg("-extfile")
                    .arg(&ext)
                    .args([
                        "-startdate",
                        "20200101000000Z",
                        "-enddate",
                        "20200102000000Z",
                    ]),
            );
        } else {
            run_ok(
                Command::new("openssl")
                    .current_dir(d)
                    .args(["x509", "-req", "-in"])
                    .arg(&csr)
                    .args([
                        "-CA",
                        "ca.pem",
                        "-CAkey",
                        "ca.key",
                        "-CAcreateserial",
                        "-out",
                    ])
                    .arg(&cert)
                    .arg("-extfile")
                    .arg(&ext)
                    .args(["-days", &days.to_string()]),
            );
        }
        // Postfix peers read the pair as user postfix: the key is shared
        // through its group (0640), as Debian's ssl-cert group shares keys,
        // which Sealgate accepts; others get nothing.
        let _ = Command::new("chmod").arg("644").arg(&cert).status();
        let _ = Command::new("chgrp").arg("postfix").arg(&key).status();
        let _ = Command::new("chmod").arg("640").arg(&key).status();
        (cert, key)
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

fn run_ok(c: &mut Command) {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Waits until `f` returns `Some`, or panics with `what` after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
