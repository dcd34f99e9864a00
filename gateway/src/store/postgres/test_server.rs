//! (tests) A real PostgreSQL from Debian's `postgresql` package, started
//! once per test process in a fresh directory on 127.0.0.1 and a free
//! port, trust authentication; each test takes a database of its own
//! ([`database`], [`migrated`]) so tests run in parallel.
//!
//! initdb and the server refuse to run as root: as root they run as the
//! `postgres` user the package makes, owning the directory. The server is
//! a child of a thread that lives as long as the process, and asks the
//! kernel to send it SIGINT (PostgreSQL's fast shutdown) when that thread
//! dies, so no server outlives its test run, however the run ends; the
//! directories of finished runs are removed by the next run.

use super::Database;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where every run's directory goes (`run-<pid>`).
const BASE: &str = "/tmp/sealgate-pg-tests";

/// The running server of this test process.
struct Server {
    port: u16,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// A fresh, empty database on the test server (no schema).
pub async fn database() -> Database {
    Database::new(&crate::config::StoreConfig {
        backend: crate::config::StoreBackend::Postgres,
        url: Some(database_url().await),
        pool_size: 4,
        ..Default::default()
    })
    .expect("a pool on the test database")
}

/// The URL of a fresh, empty database on the test server.
pub async fn database_url() -> String {
    let port = server().port;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let admin = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("connect to the test server");
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    drop(client);
    let _ = task.await;
    format!("postgres://postgres@127.0.0.1:{port}/{name}")
}

/// A fresh database with the schema applied (`store init`).
pub async fn migrated() -> Database {
    let db = database().await;
    super::migrate::migrate(&mut db.client().await.unwrap())
        .await
        .expect("migrate the test database");
    db
}

/// The test server, started on first use; every test fails with the
/// reason when it cannot start (never skipped).
fn server() -> &'static Server {
    match SERVER.get_or_init(start) {
        Ok(s) => s,
        Err(e) => panic!("test PostgreSQL: {e}"),
    }
}

/// The directory of PostgreSQL's programs (`/usr/lib/postgresql/<ver>/bin`),
/// the newest version installed.
fn bin_dir() -> Result<PathBuf, String> {
    bin_dir_under(Path::new("/usr/lib/postgresql"))
}

/// The newest `<root>/<version>/bin` that has initdb, or what to install.
fn bin_dir_under(root: &Path) -> Result<PathBuf, String> {
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

/// Removes the directories of earlier runs whose test process is gone and
/// whose server has finished stopping (its shutdown checkpoint may outlast
/// the test process by seconds).
fn sweep_old_runs() {
    let alive = |pid: &str| !pid.is_empty() && Path::new("/proc").join(pid).exists();
    for e in std::fs::read_dir(BASE).into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("run-")) else {
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

fn start() -> Result<Server, String> {
    let bin = bin_dir()?;
    let user = run_as()?;
    sweep_old_runs();
    let dir = PathBuf::from(BASE).join(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sock")).map_err(|e| format!("{}: {e}", dir.display()))?;
    if let Some((uid, gid)) = user {
        for d in [dir.clone(), dir.join("sock")] {
            std::os::unix::fs::chown(&d, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
    }
    let as_user = |c: &mut Command| {
        if let Some((uid, gid)) = user {
            c.uid(uid).gid(gid);
        }
    };
    let data = dir.join("data");
    let mut initdb = Command::new(bin.join("initdb"));
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
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .current_dir(&dir);
    as_user(&mut initdb);
    let out = initdb.output().map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
    let mut postgres = Command::new(bin.join("postgres"));
    postgres
        .arg("-D")
        .arg(&data)
        .args(["-c", "listen_addresses=127.0.0.1", "-k"])
        .arg(dir.join("sock"))
        .args(["-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .current_dir(&dir);
    as_user(&mut postgres);
    // SAFETY: prctl is async-signal-safe; it runs in the forked child only.
    unsafe {
        postgres.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::INT))
                .map_err(std::io::Error::from)
        });
    }
    // The death signal follows the *thread* that spawned the server, so a
    // thread that lives as long as the process spawns it and waits on it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("test-postgres".into())
        .spawn(move || match postgres.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(()));
                let status = child.wait();
                let _ = tx.send(Err(format!("the server exited: {status:?}")));
            }
            Err(e) => {
                let _ = tx.send(Err(format!("postgres: {e}")));
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv().map_err(|e| e.to_string())??;
    let ready = Instant::now();
    loop {
        if let Ok(Err(e)) = rx.try_recv() {
            return Err(format!("{e}; its log: {}", server_log(&dir)));
        }
        let up = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if up {
            return Ok(Server { port });
        }
        if ready.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "not ready after 60 s; its log: {}",
                server_log(&dir)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn server_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_version_is_taken_and_a_missing_one_names_the_package() {
        let root = tempfile::tempdir().unwrap();
        let missing = bin_dir_under(root.path()).unwrap_err();
        assert!(missing.contains("`postgresql` package"), "{missing}");
        for v in ["9", "15", "13"] {
            let bin = root.path().join(v).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("initdb"), "").unwrap();
        }
        std::fs::create_dir_all(root.path().join("16/bin")).unwrap();
        assert_eq!(
            bin_dir_under(root.path()).unwrap(),
            root.path().join("15/bin"),
            "by number, and only with initdb"
        );
    }
}
