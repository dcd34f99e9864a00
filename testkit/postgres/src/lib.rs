//! A real PostgreSQL for tests, from Debian's `postgresql` package: initdb
//! into a directory of the caller's, the server on 127.0.0.1 and a free
//! port, trust authentication. Shared by the library's tests (one server
//! per test process) and the end-to-end tests (one per test, which may
//! stop and start it again).
//!
//! initdb and the server refuse to run as root: as root they run as the
//! `postgres` user the package makes, owning the directory. The server is
//! a child of a thread that lives as long as it runs and asks the kernel
//! to send it SIGINT (PostgreSQL's fast shutdown) when that thread dies,
//! so no server outlives its test process, however the process ends;
//! [`sweep_old_runs`] removes the directories of finished runs.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A server made by [`PgServer::start`]; stopped when the test process ends.
pub struct PgServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    /// The running server's pid and the end of its waiting thread.
    running: Mutex<Option<(u32, Receiver<String>)>>,
}

impl PgServer {
    /// A new cluster in `dir` (made, and owned by the `postgres` user when
    /// we are root), its server started and ready.
    pub fn start(dir: &Path) -> Result<PgServer, String> {
        let bin = bin_dir()?;
        let user = run_as()?;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("sock")).map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some((uid, gid)) = user {
            for d in [dir.to_path_buf(), dir.join("sock")] {
                std::os::unix::fs::chown(&d, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let server = PgServer {
            port,
            dir: dir.to_path_buf(),
            bin,
            user,
            running: Mutex::new(None),
        };
        let mut initdb = server.command("initdb");
        initdb
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-D",
            ])
            .arg(dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let out = initdb.output().map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        server.run()?;
        Ok(server)
    }

    /// A program of the package, run as the server's user in its directory.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        c.current_dir(&self.dir);
        if let Some((uid, gid)) = self.user {
            c.uid(uid).gid(gid);
        }
        c
    }

    /// Starts the server (again) on its port and waits until it is ready.
    pub fn run(&self) -> Result<(), String> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .map_err(|e| e.to_string())?;
        let mut postgres = self.command("postgres");
        postgres
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-c", "listen_addresses=127.0.0.1", "-k"])
            .arg(self.dir.join("sock"))
            .args(["-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; it runs in the forked child only.
        unsafe {
            postgres.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::INT))
                    .map_err(std::io::Error::from)
            });
        }
        // The death signal follows the *thread* that spawned the server, so
        // a thread that lives as long as the server spawns it and waits.
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("test-postgres".into())
            .spawn(move || match postgres.spawn() {
                Ok(mut child) => {
                    let _ = tx.send(Ok(child.id()));
                    let status = child.wait();
                    let _ = tx.send(Err(format!("the server exited: {status:?}")));
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("postgres: {e}")));
                }
            })
            .map_err(|e| e.to_string())?;
        let pid = rx.recv().map_err(|e| e.to_string())??;
        let (done_tx, done_rx) = channel();
        std::thread::spawn(move || {
            // Forward the exit (the second message) to whoever waits for it.
            if let Ok(Err(e)) = rx.recv() {
                let _ = done_tx.send(e);
            }
        });
        let ready = Instant::now();
        loop {
            if let Ok(e) = done_rx.try_recv() {
                return Err(format!("{e}; its log: {}", self.log()));
            }
            let up = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if up {
                *running = Some((pid, done_rx));
                return Ok(());
            }
            if ready.elapsed() > Duration::from_secs(60) {
                return Err(format!("not ready after 60 s; its log: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown: clients cut off) and waits until
    /// it has exited; [`PgServer::run`] starts it again.
    pub fn stop(&self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((pid, exited)) = running.take() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
            }
            let _ = exited.recv_timeout(Duration::from_secs(60));
        }
    }

    /// Freezes the server and every backend (SIGSTOP): connections stay
    /// open and nothing answers, as a database host that hangs.
    pub fn freeze(&self) {
        self.signal_all(rustix::process::Signal::STOP);
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal_all(rustix::process::Signal::CONT);
    }

    /// Sends `signal` to the server and its children (the backends).
    fn signal_all(&self, signal: rustix::process::Signal) {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let Some((server, _)) = running.as_ref() else {
            return;
        };
        let mut pids = vec![*server];
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            // The parent pid is the second field after the name in parentheses.
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if parent == Some(*server) {
                pids.push(pid);
            }
        }
        for pid in pids {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, signal);
            }
        }
    }

    /// Makes database `name` (empty) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ])
            .output()
            .map_err(|e| format!("createdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "createdb {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(self.url(name))
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

/// The directory of PostgreSQL's programs (`/usr/lib/postgresql/<ver>/bin`),
/// the newest version installed.
fn bin_dir() -> Result<PathBuf, String> {
    bin_dir_under(Path::new("/usr/lib/postgresql"))
}

/// The newest `<root>/<version>/bin` that has initdb, or what to install.
pub fn bin_dir_under(root: &Path) -> Result<PathBuf, String> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or_else(|| {
        format!(
            "no {}/<version>/bin/initdb: install Debian's `postgresql` package \
             (scripts/install-deps test)",
            root.display()
        )
    })
}

/// uid and gid of the `postgres` user, when we are root (who may not run
/// the server); `None` when we are not.
fn run_as() -> Result<Option<(u32, u32)>, String> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postgres") && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .map(Some)
        .ok_or_else(|| {
            "running as root, and there is no `postgres` user to run the server as \
             (Debian's `postgresql` package makes it)"
                .to_string()
        })
}

/// Removes the directories `<base>/run-<pid>` of earlier runs whose test
/// process is gone and whose server has finished stopping (its shutdown
/// checkpoint may outlast the test process by seconds).
pub fn sweep_old_runs(base: &Path) {
    let alive = |pid: &str| !pid.is_empty() && Path::new("/proc").join(pid).exists();
    for e in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("run-"))
            .map(|rest| rest.split('-').next().unwrap_or(""))
        else {
            continue;
        };
        let server = std::fs::read_to_string(e.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
            .unwrap_or_default();
        if !alive(pid) && !alive(&server) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_version_is_taken_and_a_missing_one_names_the_package() {
        let root = std::env::temp_dir().join(format!("pg-bin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let missing = bin_dir_under(&root).unwrap_err();
        assert!(missing.contains("`postgresql` package"), "{missing}");
        for v in ["9", "15", "13"] {
            let bin = root.join(v).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("initdb"), "").unwrap();
        }
        std::fs::create_dir_all(root.join("16/bin")).unwrap();
        assert_eq!(
            bin_dir_under(&root).unwrap(),
            root.join("15/bin"),
            "by number, and only with initdb"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
