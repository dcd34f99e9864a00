//! (tests) A real PostgreSQL from Debian's `postgresql` package
//! (`sealgate-test-postgres`, which the end-to-end tests share), started
//! once per test process in `/tmp/sealgate-pg-tests/run-<pid>`; each test
//! takes a database of its own ([`database`], [`migrated`]) so tests run
//! in parallel. The directories of finished runs are removed by the next.

use super::Database;
use sealgate_test_postgres::PgServer;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Where every run's directory goes (`run-<pid>`).
const BASE: &str = "/tmp/sealgate-pg-tests";

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();

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
fn server() -> &'static PgServer {
    match SERVER.get_or_init(|| {
        sealgate_test_postgres::sweep_old_runs(Path::new(BASE));
        PgServer::start(&Path::new(BASE).join(format!("run-{}", std::process::id())))
    }) {
        Ok(s) => s,
        Err(e) => panic!("test PostgreSQL: {e}"),
    }
}

/// How many rows `table` of `db` holds.
pub async fn rows(db: &Database, table: &str) -> i64 {
    db.client()
        .await
        .expect("a test database connection")
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count rows")
        .get(0)
}
