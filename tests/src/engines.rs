//! Debian's rspamd and clamd, started for a test in a temporary directory
//! on loopback ports and stopped when dropped.

use crate::free_port;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The EICAR test file (a harmless string every scanner is meant to find).
pub const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// GTUBE: the string spam filters score as certain spam.
pub const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

fn wait(what: &str, secs: u64, log: &std::path::Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A line-protocol exchange on 127.0.0.1:`port`: what came back.
fn ask(port: u16, request: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(request).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    Some(out)
}

/// rspamd (Debian's package, its stock rules) with a normal worker on a free port.
pub struct Rspamd {
    /// The normal worker's port (`/checkv2`).
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Rspamd {
    /// Starts rspamd and waits until it answers `/ping` (it loads its Lua
    /// rules first: several seconds).
    pub fn start() -> Rspamd {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("local.d");
        for d in [&local, &dir.path().join("db"), &dir.path().join("run")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let port = free_port();
        let worker = |name: &str, port: u16| {
            std::fs::write(
                local.join(format!("worker-{name}.inc")),
                format!("bind_socket = \"127.0.0.1:{port}\";\ncount = 1;\n"),
            )
            .unwrap()
        };
        worker("normal", port);
        worker("controller", free_port());
        worker("proxy", free_port());
        std::fs::write(
            local.join("logging.inc"),
            "type = \"console\";\nlevel = \"error\";\n",
        )
        .unwrap();
        let log = dir.path().join("rspamd.log");
        let var = |k: &str, v: PathBuf| format!("--var={k}={}", v.display());
        // Its own process group, so stopping it stops its workers too.
        let child = Command::new("rspamd")
            .process_group(0)
            .args(["-f", "-i", "-u", "root", "-g", "root"])
            .arg(var("LOCAL_CONFDIR", dir.path().to_path_buf()))
            .arg(var("DBDIR", dir.path().join("db")))
            .arg(var("RUNDIR", dir.path().join("run")))
            .arg(var("LOGDIR", dir.path().to_path_buf()))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("rspamd is not installed (scripts/install-deps test)");
        wait("rspamd", 90, &log, || {
            ask(port, b"GET /ping HTTP/1.0\r\n\r\n")
                .is_some_and(|r| r.ends_with(b"pong\r\n") || r.ends_with(b"pong"))
        });
        Rspamd {
            port,
            child,
            _dir: dir,
        }
    }

    /// Stops it (the test of a scanner that is down).
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// clamd (Debian's clamav-daemon) with a signature database of one test
/// signature: the EICAR file's MD5 (the real databases come from the
/// internet, which tests do not reach).
pub struct Clamd {
    /// Its TCP port.
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Clamd {
    /// Starts clamd and waits until it answers PING.
    pub fn start() -> Clamd {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir_all(&db).unwrap();
        let md5 = {
            let out = Command::new("md5sum")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    c.stdin.take().unwrap().write_all(EICAR)?;
                    c.wait_with_output()
                })
                .expect("md5sum");
            String::from_utf8_lossy(&out.stdout)[..32].to_string()
        };
        std::fs::write(
            db.join("test.hdb"),
            format!("{md5}:{}:Sealgate-Test.EICAR\n", EICAR.len()),
        )
        .unwrap();
        let port = free_port();
        let log = dir.path().join("clamd.log");
        let conf = dir.path().join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "Foreground yes\nDatabaseDirectory {}\nTCPSocket {port}\nTCPAddr 127.0.0.1\nLogFile {}\nPidFile {}\nUser root\nStreamMaxLength 50M\n",
                db.display(),
                log.display(),
                dir.path().join("clamd.pid").display()
            ),
        )
        .unwrap();
        let child = Command::new("clamd")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clamd is not installed (scripts/install-deps test)");
        wait("clamd", 90, &log, || {
            ask(port, b"zPING\0").is_some_and(|r| r.starts_with(b"PONG"))
        });
        Clamd {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
