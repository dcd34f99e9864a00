use super::testing::open;
use super::*;
use crate::store::archive::testing::capture;
use crate::store::postgres::test_server;

/// Runs `sql` (one statement, parameter `$1` the sequence number) from a
/// synchronous closure, as the conformance test's tamper hook is.
fn run_blocking(db: &Database, sql: &'static str, seq: u64) {
    let db = db.clone();
    tokio::task::block_in_place(move || {
        tokio::runtime::Handle::current().block_on(async move {
            let n = db
                .client()
                .await
                .unwrap()
                .execute(sql, &[&(seq as i64)])
                .await
                .unwrap();
            assert_eq!(n, 1, "{sql} changed one row");
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_archive_keeps_the_promises() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_server::migrated().await;
    // A byte of the sealed event record flipped, as damage on disk or an
    // edit by someone without the key would.
    let tamper = |seq: u64| {
        run_blocking(
            &db,
            "UPDATE archive_event SET record = set_byte(record, 20, get_byte(record, 20) # 1) \
             WHERE seq = $1",
            seq,
        )
    };
    crate::store::conformance::archive_store(
        &|| Box::new(open(&db, dir.path(), 100)),
        Some(&tamper),
    )
    .await;
    let r = open(&db, dir.path(), 100).verify(1).await.unwrap();
    assert!(
        r.damaged[0].1.contains("event 7"),
        "verify names the record: {:?}",
        r.damaged
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_journaling_at_once_make_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_server::migrated().await;
    // Two nodes: each its own pool, the same key files.
    let nodes = [
        Arc::new(open(&db, dir.path(), 7)),
        Arc::new(open(&db, dir.path(), 7)),
    ];
    let mut tasks = Vec::new();
    // Each node also relays the same bytes once (a Bcc copy through both).
    let same = b"Subject: to both\r\n\r\nthe same bytes\r\n".to_vec();
    for (n, node) in nodes.iter().enumerate() {
        let (both, same) = (node.clone(), same.clone());
        tasks.push(tokio::spawn(async move {
            let q = format!("n{n}-same");
            both.journal(capture(&q, &same, &["c@x.test"]), &same)
                .await
                .unwrap()
        }));
        for i in 0..20 {
            let node = node.clone();
            tasks.push(tokio::spawn(async move {
                let m = format!("Subject: {n}-{i}\r\n\r\nbody {n} {i}\r\n").into_bytes();
                let q = format!("n{n}-{i}");
                node.journal(capture(&q, &m, &["b@x.test"]), &m)
                    .await
                    .unwrap()
            }));
        }
    }
    let (mut seqs, mut merged) = (Vec::new(), 0);
    for t in tasks {
        match t.await.unwrap() {
            Journaled::New(s) => seqs.push(s),
            Journaled::Merged { seq, .. } => {
                merged += 1;
                seqs.push(seq);
            }
            other => panic!("{other:?}"),
        }
    }
    seqs.sort();
    assert_eq!(seqs, (1..=42).collect::<Vec<u64>>(), "one sequence, no gap");
    assert_eq!(merged, 1, "the same bytes through two nodes are one item");
    for node in &nodes {
        assert_eq!(
            node.head_seq().await,
            42,
            "each node sees the cluster's head"
        );
    }
    let r = nodes[1].verify(1).await.unwrap();
    assert!(r.damaged.is_empty(), "{:?}", r.damaged);
    assert_eq!((r.events_ok, r.blobs_ok, r.head_seq), (42, 41, 42));
    assert_eq!(r.checkpoints_ok, 6, "every 7 events, whichever node");
    let mut qids: Vec<String> = nodes[0]
        .items()
        .await
        .unwrap()
        .into_iter()
        .flat_map(|i| i.captures.into_iter().map(|(_, c)| c.queue_id))
        .collect();
    qids.sort();
    let mut expected: Vec<String> = (0..2)
        .flat_map(|n| (0..20).map(move |i| format!("n{n}-{i}")))
        .chain(["n0-same".to_string(), "n1-same".to_string()])
        .collect();
    expected.sort();
    assert_eq!(qids, expected, "every journal once");
    // One link per event (the walk above found them in one line).
    let client = db.client().await.unwrap();
    let links: i64 = client
        .query_one("SELECT count(DISTINCT link) FROM archive_chain", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(links, 42);
    let blobs: i64 = client
        .query_one("SELECT count(*) FROM archive_blob", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(blobs, 41, "content stored once per SHA-256");
    // The same journals again from the other node: nothing new.
    let m = b"Subject: 0-3\r\n\r\nbody 0 3\r\n".to_vec();
    let again = nodes[1]
        .journal(capture("n0-3", &m, &["b@x.test"]), &m)
        .await
        .unwrap();
    assert!(matches!(again, Journaled::Already(_)), "{again:?}");
}

#[tokio::test]
async fn the_tables_hold_no_clear_content() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_server::migrated().await;
    let a = open(&db, dir.path(), 1);
    let m = b"Subject: lab results\r\n\r\nPatient 4711 is positive\r\n".to_vec();
    a.journal(capture("q1", &m, &["b@x.test"]), &m)
        .await
        .unwrap();
    a.purge(&[99], "nothing").await.unwrap();
    let client = db.client().await.unwrap();
    let tables = [
        "archive_head",
        "archive_chain",
        "archive_event",
        "archive_blob",
        "archive_item",
        "archive_merge",
        "archive_queue",
        "archive_checkpoint",
    ];
    let mut rows = 0;
    for table in tables {
        for r in client
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .await
            .unwrap()
        {
            let text: String = r.get(0);
            rows += 1;
            for clear in ["lab results", "Patient 4711", "b@x.test"] {
                assert!(!text.contains(clear), "{table} holds {clear:?} in clear");
                assert!(
                    !text.contains(&hex::encode(clear)),
                    "{table} holds {clear:?} in clear (hex)"
                );
            }
        }
    }
    assert!(rows >= 7, "the journal wrote its rows ({rows})");
}

/// A journal that stored its content, then lost it to a purge of the same
/// bytes before it linked, stores it again: the item it makes has content.
#[tokio::test]
async fn a_purge_between_storing_and_linking_does_not_lose_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_server::migrated().await;
    let a = open(&db, dir.path(), 100);
    let m = b"Subject: again\r\n\r\nsame bytes\r\n".to_vec();
    a.journal(capture("q1", &m, &["b@x.test"]), &m)
        .await
        .unwrap();
    // Prepared while item 1 holds the bytes (nothing stored), purged, then linked.
    let known = a
        .prepare(capture("q2", &m, &["c@x.test"]), Arc::new(m.clone()))
        .await
        .unwrap();
    let fresh = b"Subject: new\r\n\r\nother bytes\r\n".to_vec();
    assert_eq!(a.purge(&[1], "retention").await.unwrap().seq, 2);
    let sha = hex::encode(chain::sha256(&m));
    assert!(a.raw(&sha).await.unwrap().is_none(), "purged");
    let other = a
        .prepare(capture("q3", &fresh, &["c@x.test"]), Arc::new(fresh))
        .await
        .unwrap();
    let answers = a.commit_group(vec![known, other]).await.unwrap();
    let got: Vec<Journaled> = answers.into_iter().map(|x| x.unwrap().0).collect();
    assert_eq!(got, [Journaled::New(3), Journaled::New(4)]);
    assert_eq!(a.raw(&sha).await.unwrap().as_deref(), Some(&m[..]));
    let r = a.verify(1).await.unwrap();
    assert!(r.damaged.is_empty(), "{:?}", r.damaged);
    assert_eq!((r.events_ok, r.events_purged, r.blobs_ok), (4, 1, 2));
}

#[tokio::test]
async fn verify_names_damaged_content_links_and_a_cut_tail() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_server::migrated().await;
    let a = open(&db, dir.path(), 100);
    for i in 1..=5u8 {
        let m = format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes();
        a.journal(capture(&format!("q{i}"), &m, &["b@x.test"]), &m)
            .await
            .unwrap();
    }
    let client = db.client().await.unwrap();
    let item5 = a.item(5).await.unwrap().unwrap();
    let sha5 = hex::decode(&item5.captures[0].1.sha256).unwrap();
    client
        .execute(
            "UPDATE archive_blob SET data = set_byte(data, 30, get_byte(data, 30) # 1) \
             WHERE sha256 = $1",
            &[&sha5],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE archive_chain SET link = set_byte(link, 8, get_byte(link, 8) # 1) \
             WHERE seq = 3",
            &[],
        )
        .await
        .unwrap();
    let r = a.verify(1).await.unwrap();
    let seqs: Vec<u64> = r.damaged.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [3, 5], "{:?}", r.damaged);
    assert!(r.damaged[0].1.contains("chain link"), "{:?}", r.damaged);
    assert!(r.damaged[1].1.contains("item 5"), "{:?}", r.damaged);
    assert_eq!(r.events_ok, 3);
    // The last event cut away with its chain entry, the head left alone.
    client
        .batch_execute(
            "DELETE FROM archive_chain WHERE seq = 5; DELETE FROM archive_event WHERE seq = 5",
        )
        .await
        .unwrap();
    let r = a.verify(1).await.unwrap();
    assert!(
        r.damaged
            .iter()
            .any(|(s, w)| *s == 5 && w.contains("chain entry missing")),
        "{:?}",
        r.damaged
    );
    // A wrong content-index entry would merge new mail into the wrong item.
    let item1 = a.item(1).await.unwrap().unwrap();
    let sha1 = hex::decode(&item1.captures[0].1.sha256).unwrap();
    client
        .execute(
            "UPDATE archive_item SET item = 2 WHERE sha256 = $1",
            &[&sha1],
        )
        .await
        .unwrap();
    let r = a.verify(1).await.unwrap();
    assert!(
        r.damaged
            .iter()
            .any(|(s, w)| *s == 2 && w.contains("items index")),
        "{:?}",
        r.damaged
    );
    // The head set back over events the chain still has.
    client
        .batch_execute("UPDATE archive_head SET seq = 2")
        .await
        .unwrap();
    let r = a.verify(1).await.unwrap();
    assert!(
        r.damaged
            .iter()
            .any(|(s, w)| *s == 2 && w.contains("the head names link")),
        "{:?}",
        r.damaged
    );
    assert!(
        r.damaged
            .iter()
            .any(|(s, w)| *s == 4 && w.contains("after the head")),
        "{:?}",
        r.damaged
    );
}

#[tokio::test]
async fn locks_hold_for_every_node_and_a_read_only_handle_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_server::migrated().await;
    let rule = |days: u32, locked: bool| crate::config::RetentionRule {
        name: "sec17a4".into(),
        days,
        locked,
        ..Default::default()
    };
    open(&db, dir.path(), 100)
        .enforce_locks(&[rule(2190, true)])
        .await
        .unwrap();
    let other = open(&db, dir.path(), 100);
    other.enforce_locks(&[rule(2555, true)]).await.unwrap();
    assert!(matches!(
        other.enforce_locks(&[rule(2190, true)]).await,
        Err(ArchiveError::Locked(_, 2555))
    ));
    assert!(matches!(
        other.enforce_locks(&[rule(3000, false)]).await,
        Err(ArchiveError::Locked(..))
    ));
    assert!(matches!(
        other.enforce_locks(&[]).await,
        Err(ArchiveError::Locked(..))
    ));
    let keys = Arc::new(Keyring::load(&dir.path().join("archive.keys")).unwrap());
    let ro = PgArchive::read_only(db.reopen(), keys);
    assert!(ro.signer_public_key().is_none());
    let m = b"Subject: x\r\n\r\ny\r\n".to_vec();
    assert!(matches!(
        ro.journal(capture("q1", &m, &["b@x.test"]), &m).await,
        Err(ArchiveError::ReadOnly)
    ));
    assert!(matches!(ro.checkpoint().await, Err(ArchiveError::ReadOnly)));
    assert!(matches!(
        ro.purge(&[1], "x").await,
        Err(ArchiveError::ReadOnly)
    ));
    assert!(ro.verify(1).await.unwrap().damaged.is_empty());
}

/// Contents go wherever the blob store keeps them (here a second database,
/// as object storage would be another place).
#[tokio::test]
async fn contents_go_to_the_blob_store_given() {
    let dir = tempfile::tempdir().unwrap();
    let (db, elsewhere) = (test_server::migrated().await, test_server::migrated().await);
    let a = open(&db, dir.path(), 100).with_blobs(Arc::new(PgBlobs::new(elsewhere.clone())));
    let m = b"Subject: kept elsewhere\r\n\r\nbody\r\n".to_vec();
    assert_eq!(
        a.journal(capture("q1", &m, &["b@x.test"]), &m)
            .await
            .unwrap(),
        Journaled::New(1)
    );
    let count = |db: Database| async move {
        let n = crate::store::postgres::test_server::rows(&db, "archive_blob").await;
        n
    };
    assert_eq!(count(db.clone()).await, 0, "not in the chain's database");
    assert_eq!(count(elsewhere.clone()).await, 1);
    let sha = hex::encode(chain::sha256(&m));
    assert_eq!(a.raw(&sha).await.unwrap().as_deref(), Some(&m[..]));
    let r = a.verify(1).await.unwrap();
    assert_eq!((r.blobs_ok, r.damaged.len()), (1, 0), "{:?}", r.damaged);
    a.purge(&[1], "retention").await.unwrap();
    assert_eq!(count(elsewhere).await, 0, "a purge removes it there");
}

/// Journals that wait together are linked in one transaction; when it
/// fails, every one of them is told and nothing of the group is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journals_waiting_together_commit_as_one_group_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_server::migrated().await;
    let a = Arc::new(open(&db, dir.path(), 100));
    let client = db.client().await.unwrap();
    // A group of `n` journals: the leader's place is held until all queue.
    let group = |tag: &'static str, n: usize| {
        let a = a.clone();
        async move {
            let held = a.leader.lock().await;
            let tasks: Vec<_> = (0..n)
                .map(|i| {
                    let a = a.clone();
                    tokio::spawn(async move {
                        let m = format!("Subject: {tag}{i}\r\n\r\n{tag} {i}\r\n").into_bytes();
                        a.journal(capture(&format!("{tag}{i}"), &m, &["b@x.test"]), &m)
                            .await
                    })
                })
                .collect();
            while a.queue.len() < n {
                tokio::task::yield_now().await;
            }
            drop(held);
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        }
    };
    let done = group("g", 5).await;
    assert!(
        done.iter().all(|r| matches!(r, Ok(Journaled::New(_)))),
        "{done:?}"
    );
    let xacts: i64 = client
        .query_one("SELECT count(DISTINCT xmin::text) FROM archive_chain", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(xacts, 1, "five journals, one transaction");
    // The next sequence number taken (as damage would): the group fails whole.
    client
        .execute(
            "INSERT INTO archive_chain (seq, event_hash, link) VALUES (6, '\\x00', '\\x00')",
            &[],
        )
        .await
        .unwrap();
    let failed = group("f", 3).await;
    assert!(
        failed.iter().all(|r| matches!(r, Err(ArchiveError::Db(_)))),
        "{failed:?}"
    );
    assert_eq!(a.head_seq().await, 5, "the head did not move");
    let queued: i64 = client
        .query_one("SELECT count(*) FROM archive_queue", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(queued, 5, "no journal of the failed group is kept");
    client
        .execute("DELETE FROM archive_chain WHERE seq = 6", &[])
        .await
        .unwrap();
    // Journaled again (as the spool retries them): now they go in.
    let again = group("f", 3).await;
    let mut seqs: Vec<u64> = again
        .into_iter()
        .map(|r| match r.unwrap() {
            Journaled::New(s) => s,
            other => panic!("{other:?}"),
        })
        .collect();
    seqs.sort();
    assert_eq!(seqs, [6, 7, 8]);
    let r = a.verify(1).await.unwrap();
    assert!(r.damaged.is_empty(), "{:?}", r.damaged);
}
