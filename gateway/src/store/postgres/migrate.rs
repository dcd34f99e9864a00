//! The schema's versions. Each migration is SQL in the crate, applied in
//! order, once, inside one transaction that holds an advisory lock, so two
//! nodes running `store init` together neither race nor apply one twice.
//! `sealgate_schema` lists the versions applied. A node starts only on the
//! version it was built for ([`check`]); `store init` ([`migrate`]) brings
//! an older schema up to it and refuses a newer one.

use super::PgError;
use tokio_postgres::error::SqlState;

/// The migrations, version `n` at index `n - 1`. Append only: an applied
/// migration is never edited.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_ground.sql"),
    include_str!("migrations/0002_spool.sql"),
    include_str!("migrations/0003_archive.sql"),
    include_str!("migrations/0004_console.sql"),
    include_str!("migrations/0005_cluster.sql"),
];

/// The schema version this binary is built for.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Key of the advisory lock `store init` holds ("sealgate" in ASCII).
const LOCK: i64 = 0x7365_616c_6761_7465;

/// The version the database is at: 0 when it has no Sealgate schema.
pub async fn version(client: &tokio_postgres::Client) -> Result<i32, PgError> {
    match client
        .query_one("SELECT coalesce(max(version), 0) FROM sealgate_schema", &[])
        .await
    {
        Ok(row) => Ok(row.get(0)),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Ok when the database is at [`SCHEMA_VERSION`]; which command to run
/// (or that this binary is too old) otherwise.
pub async fn check(client: &tokio_postgres::Client) -> Result<(), PgError> {
    compare(version(client).await?)
}

fn compare(found: i32) -> Result<(), PgError> {
    let known = SCHEMA_VERSION;
    match found.cmp(&known) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(PgError::SchemaNewer { found, known }),
        std::cmp::Ordering::Less => Err(PgError::SchemaOlder { found, known }),
    }
}

/// Applies the migrations the database lacks and returns the version it
/// is at; does nothing on a current schema, refuses a newer one.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<i32, PgError> {
    let tx = client.transaction().await?;
    // Held to the end of the transaction: a second node waits here, then
    // finds the work done.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS sealgate_schema (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM sealgate_schema", &[])
        .await?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(PgError::SchemaNewer {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (at, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = at as i32 + 1;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO sealgate_schema (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(SCHEMA_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_server;

    #[tokio::test]
    async fn init_is_idempotent_and_versions_are_enforced() {
        let db = test_server::database().await;
        let mut client = db.client().await.unwrap();
        assert!(
            matches!(
                check(&client).await,
                Err(PgError::SchemaOlder { found: 0, .. })
            ),
            "an empty database needs store init"
        );
        let said = PgError::SchemaOlder { found: 0, known: 1 }.to_string();
        assert!(said.contains("sealgate store init"), "{said}");
        assert_eq!(migrate(&mut client).await.unwrap(), SCHEMA_VERSION);
        check(&client).await.unwrap();
        assert_eq!(
            migrate(&mut client).await.unwrap(),
            SCHEMA_VERSION,
            "a second init changes nothing"
        );
        let rows: i64 = client
            .query_one("SELECT count(*) FROM sealgate_schema", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, i64::from(SCHEMA_VERSION));

        client
            .execute(
                "INSERT INTO sealgate_schema (version) VALUES ($1)",
                &[&(SCHEMA_VERSION + 1)],
            )
            .await
            .unwrap();
        let newer = check(&client).await.unwrap_err();
        assert!(
            matches!(newer, PgError::SchemaNewer { found, .. } if found == SCHEMA_VERSION + 1),
            "{newer}"
        );
        assert!(newer.to_string().contains("upgrade sealgate"), "{newer}");
        assert!(matches!(
            migrate(&mut client).await,
            Err(PgError::SchemaNewer { .. })
        ));
    }

    #[tokio::test]
    async fn an_older_schema_is_refused_until_init_brings_it_up() {
        let db = test_server::database().await;
        let mut client = db.client().await.unwrap();
        // The database as the first release's `store init` left it.
        client
            .batch_execute(
                "CREATE TABLE sealgate_schema (version integer PRIMARY KEY, \
                 applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .await
            .unwrap();
        client.batch_execute(MIGRATIONS[0]).await.unwrap();
        client
            .batch_execute("INSERT INTO sealgate_schema (version) VALUES (1)")
            .await
            .unwrap();
        client
            .batch_execute(
                "INSERT INTO api_tokens (name, role, sha256, created_at) \
                            VALUES ('kept', 'admin', 'aa', now())",
            )
            .await
            .unwrap();
        assert!(matches!(
            check(&client).await,
            Err(PgError::SchemaOlder { found: 1, known }) if known == SCHEMA_VERSION
        ));
        assert_eq!(migrate(&mut client).await.unwrap(), SCHEMA_VERSION);
        check(&client).await.unwrap();
        let kept: i64 = client
            .query_one("SELECT count(*) FROM api_tokens", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(kept, 1, "an upgrade keeps what was stored");
    }

    #[tokio::test]
    async fn two_nodes_initialising_together_apply_each_migration_once() {
        let db = test_server::database().await;
        let run = || {
            let db = db.clone();
            tokio::spawn(async move { migrate(&mut db.client().await.unwrap()).await })
        };
        let (a, b) = (run(), run());
        assert_eq!(a.await.unwrap().unwrap(), SCHEMA_VERSION);
        assert_eq!(b.await.unwrap().unwrap(), SCHEMA_VERSION);
        let client = db.client().await.unwrap();
        check(&client).await.unwrap();
        let heads: i64 = client
            .query_one("SELECT count(*) FROM audit_head", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(heads, 1, "the migration ran once");
    }
}
