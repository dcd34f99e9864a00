//! One test per store trait, checking the promises its doc makes against
//! any implementation. A backend's own tests call these with a function
//! that opens the store afresh (over the same data), so durability at
//! return is checked by reading through a second handle.

use super::cache::Cache;
use super::tls_memory::TlsMemory;
use super::tokens::{ApiTokens, Role, TokenEntry, TokenError};

fn entry(name: &str, role: Role, sha: &str) -> TokenEntry {
    TokenEntry {
        name: name.into(),
        role,
        sha256: sha.into(),
        created_at: chrono::Utc::now(),
    }
}

/// [`ApiTokens`]: unique names, changes seen at once by a fresh handle,
/// removal by name, lookup by hash only.
pub async fn api_tokens(open: &dyn Fn() -> Box<dyn ApiTokens>) {
    let a = open();
    assert!(a.list().await.unwrap().is_empty(), "a new store is empty");
    a.insert(entry("alice", Role::Archivist, "aa"))
        .await
        .unwrap();
    a.insert(entry("bob", Role::Auditor, "bb")).await.unwrap();
    assert!(matches!(
        a.insert(entry("alice", Role::Admin, "cc")).await,
        Err(TokenError::Exists(n)) if n == "alice"
    ));
    let b = open();
    let names: Vec<String> = b
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["alice", "bob"], "durable and in the order made");
    assert_eq!(
        b.find_hash("bb").await.unwrap().map(|e| e.role),
        Some(Role::Auditor)
    );
    assert!(
        b.find_hash("alice").await.unwrap().is_none(),
        "by hash only"
    );
    assert_eq!(a.remove("alice").await.unwrap().sha256, "aa");
    assert!(
        b.find_hash("aa").await.unwrap().is_none(),
        "revoked at once"
    );
    assert!(matches!(
        b.remove("alice").await,
        Err(TokenError::Missing(n)) if n == "alice"
    ));
    assert_eq!(open().list().await.unwrap().len(), 1);
}

/// [`TlsMemory`]: the first time is kept, reads see writes at once through
/// a fresh handle, forgetting says whether there was anything, the list
/// is ordered by domain and names domains case-insensitively.
pub async fn tls_memory(open: &dyn Fn() -> Box<dyn TlsMemory>) {
    let a = open();
    assert!(a.list().await.unwrap().is_empty(), "a new store is empty");
    assert!(a.remembered("b.test").await.unwrap().is_none());
    a.remember("b.test").await.unwrap();
    let first = a.remembered("b.test").await.unwrap().expect("remembered");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    a.remember("B.Test").await.unwrap();
    a.remember("a.test").await.unwrap();
    let b = open();
    assert_eq!(
        b.remembered("b.test").await.unwrap(),
        Some(first),
        "the first time is kept, whatever the case"
    );
    let domains: Vec<String> = b
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.domain)
        .collect();
    assert_eq!(domains, ["a.test", "b.test"]);
    assert!(a.forget("b.test").await.unwrap());
    assert!(!b.forget("b.test").await.unwrap(), "nothing left to forget");
    assert!(open().remembered("b.test").await.unwrap().is_none());
    assert_eq!(open().list().await.unwrap().len(), 1);
}

/// [`Cache`]: a get sees the last put, values are replaced whole, keys
/// are distinct.
pub async fn cache(open: &dyn Fn() -> Box<dyn Cache>) {
    let a = open();
    assert!(a.get("mta-sts/a.test").await.unwrap().is_none());
    a.put("mta-sts/a.test", b"one").await.unwrap();
    a.put("mta-sts/b.test", b"").await.unwrap();
    assert_eq!(
        open().get("mta-sts/a.test").await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    a.put("mta-sts/a.test", b"two, longer").await.unwrap();
    assert_eq!(
        open().get("mta-sts/a.test").await.unwrap().as_deref(),
        Some(&b"two, longer"[..])
    );
    assert_eq!(
        open().get("mta-sts/b.test").await.unwrap().as_deref(),
        Some(&b""[..])
    );
}

fn hold(name: &str, address: &str) -> super::holds::Hold {
    super::holds::Hold {
        name: name.into(),
        query: None,
        addresses: vec![address.into()],
        created_at: chrono::Utc::now(),
    }
}

/// [`LegalHolds`](super::holds::LegalHolds): unique names, placements and
/// releases seen at once by a fresh handle, the list in placement order.
pub async fn legal_holds(open: &dyn Fn() -> Box<dyn super::holds::LegalHolds>) {
    use super::holds::HoldStoreError;
    let a = open();
    assert!(a.list().await.unwrap().is_empty(), "a new store is empty");
    a.place(hold("matter-b", "b@x.test")).await.unwrap();
    a.place(hold("matter-a", "a@x.test")).await.unwrap();
    assert!(matches!(
        a.place(hold("matter-b", "other@x.test")).await,
        Err(HoldStoreError::Exists(n)) if n == "matter-b"
    ));
    let b = open();
    let listed = b.list().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["matter-b", "matter-a"],
        "durable, in placement order"
    );
    assert_eq!(
        listed[0].addresses,
        ["b@x.test"],
        "the first placement stands"
    );
    assert_eq!(b.release("matter-b").await.unwrap().name, "matter-b");
    assert!(matches!(
        a.release("matter-b").await,
        Err(HoldStoreError::Missing(n)) if n == "matter-b"
    ));
    let left = open().list().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, "matter-a");
}

/// [`AuditLog`](super::audit_log::AuditLog): appends durable and chained in
/// order through any handle, reads in chain order, a tail of the newest.
pub async fn audit_log(open: &dyn Fn() -> Box<dyn super::audit_log::AuditLog>) {
    use super::audit_log::Actor;
    let a = open();
    assert!(
        a.read(None).await.unwrap().is_empty(),
        "a new store is empty"
    );
    assert_eq!(a.verify().await.unwrap().lines_ok, 0);
    a.append(Actor::Cli, "one", "1", "first").await.unwrap();
    let b = open();
    b.append(Actor::Api, "two", "2", "").await.unwrap();
    a.append(Actor::Gateway, "three", "3", "x@y.test")
        .await
        .unwrap();
    let all = open().read(None).await.unwrap();
    let actions: Vec<&str> = all.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["one", "two", "three"], "one chain, in order");
    assert_eq!(all[0].prev, "genesis");
    assert_ne!(all[1].prev, all[2].prev);
    assert_eq!(
        (all[1].actor.as_str(), all[2].detail.as_str()),
        ("api", "x@y.test")
    );
    let tail = open().read(Some(2)).await.unwrap();
    assert_eq!(tail.first().map(|r| r.id.as_str()), Some("2"));
    let r = open().verify().await.unwrap();
    assert_eq!((r.lines_ok, r.first_broken), (3, None));
}

fn key(kind: crate::model::key::KeyKind, id: &str, address: &str) -> crate::model::key::KeyEntry {
    use crate::model::key::{KeyEntry, KeySource, KeyState};
    KeyEntry {
        id: id.into(),
        kind,
        addresses: vec![address.into()],
        bound: Vec::new(),
        source: KeySource::Imported,
        state: KeyState::Active,
        added_at: chrono::Utc::now(),
        serial: None,
        issuer: None,
        not_after: None,
        data: format!("key data of {id}"),
    }
}

/// [`KeyRecords`](super::keys::KeyRecords): puts replace by kind and id,
/// changes are seen at once by a fresh handle, the stamp moves on every
/// change, deletes say whether there was anything.
pub async fn key_records(open: &dyn Fn() -> Box<dyn super::keys::KeyRecords>) {
    use crate::model::key::{KeyKind, KeyState};
    let a = open();
    assert!(a.all().await.unwrap().is_empty(), "a new store is empty");
    let tick = || tokio::time::sleep(std::time::Duration::from_millis(30));
    let before = a.stamp().await.unwrap();
    a.put(&key(KeyKind::Pgp, "AA11", "a@x.test")).await.unwrap();
    let first = a.stamp().await.unwrap();
    assert_ne!(before, first, "a put moves the stamp");
    a.put(&key(KeyKind::Smime, "aa11", "a@x.test"))
        .await
        .unwrap();
    let mut pending = key(KeyKind::Pgp, "AA11", "a@x.test");
    pending.state = KeyState::Pending;
    a.put(&pending).await.unwrap();
    let b = open();
    let mut all = b.all().await.unwrap();
    all.sort_by_key(|e| e.kind.as_str());
    assert_eq!(all.len(), 2, "one record per kind and id");
    assert_eq!(
        (all[0].kind, all[0].state),
        (KeyKind::Pgp, KeyState::Pending)
    );
    assert_eq!(all[1].kind, KeyKind::Smime);
    let second = b.stamp().await.unwrap();
    tick().await;
    assert!(b.delete(KeyKind::Pgp, "AA11").await.unwrap());
    assert!(
        !a.delete(KeyKind::Pgp, "AA11").await.unwrap(),
        "already gone"
    );
    assert_ne!(
        open().stamp().await.unwrap(),
        second,
        "a delete moves the stamp"
    );
    let left = open().all().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].kind, KeyKind::Smime);
}

/// [`super::escrow::EscrowStore`]: a deposit is found by id, by its two
/// tokens and by its recipient in any case, and durably; `peek` leaves it
/// unread, `read` marks it; a withdrawn or expired message stays as a
/// tombstone whose content no longer reads; `sweep` takes only what expired.
/// `open` is called again only after the previous handle is dropped.
pub async fn escrow_store(open: &dyn Fn() -> super::escrow::PortalStores) {
    use super::escrow::EscrowError;
    use crate::model::escrow::{EscrowState, NewDeposit};
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let deposit = |recipient: &'static str, message: &'static [u8], expires_at| NewDeposit {
        queue_id: "q1",
        sender: "s@h.test",
        recipient,
        message,
        expires_at,
    };
    let a = open().messages;
    let kept = a
        .deposit(deposit(
            "pat@x.test",
            b"Message-ID: <m1@h>\r\n\r\none",
            later,
        ))
        .await
        .unwrap();
    assert_eq!(kept.entry.state, EscrowState::Unread);
    assert_eq!(
        kept.entry.message_id, "m1@h",
        "the Message-ID is kept to thread replies"
    );
    assert_ne!(kept.token, kept.revoke_token);
    let soon = chrono::Utc::now() + chrono::Duration::seconds(1);
    let due = a
        .deposit(deposit("other@x.test", b"two", soon))
        .await
        .unwrap();
    drop(a);

    let b = open().messages;
    let id = &kept.entry.id;
    assert_eq!(
        b.entry(id).await.unwrap().unwrap(),
        kept.entry,
        "durable at return"
    );
    assert_eq!(b.by_token(&kept.token).await.unwrap().unwrap().id, *id);
    assert_eq!(
        b.by_revoke_token(&kept.revoke_token)
            .await
            .unwrap()
            .unwrap()
            .id,
        *id
    );
    assert!(
        b.by_token(&kept.revoke_token).await.unwrap().is_none(),
        "the links differ"
    );
    assert!(b.by_revoke_token(&kept.token).await.unwrap().is_none());
    assert!(b.by_token(&"0".repeat(64)).await.unwrap().is_none());
    let mine = b.entries_for("PAT@X.test").await.unwrap();
    assert_eq!(
        mine.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        [id.as_str()]
    );
    assert_eq!(b.list().await.unwrap().len(), 2);
    assert_eq!(b.peek(id).await.unwrap(), b"Message-ID: <m1@h>\r\n\r\none");
    assert_eq!(
        b.entry(id).await.unwrap().unwrap().state,
        EscrowState::Unread,
        "peek does not mark"
    );
    b.read(id).await.unwrap();
    let read = b.entry(id).await.unwrap().unwrap();
    assert_eq!(read.state, EscrowState::Read);
    assert!(read.read_at.is_some());
    b.mark_replied(id).await.unwrap();
    assert_eq!(
        b.entry(id).await.unwrap().unwrap().state,
        EscrowState::Replied
    );

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let swept = b.sweep(chrono::Utc::now()).await.unwrap();
    assert_eq!(
        swept.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        [due.entry.id.as_str()]
    );
    assert!(matches!(
        b.read(&due.entry.id).await,
        Err(EscrowError::Gone(_, EscrowState::Expired))
    ));
    assert!(
        b.sweep(chrono::Utc::now()).await.unwrap().is_empty(),
        "once"
    );
    assert_eq!(
        b.peek(id).await.unwrap(),
        b"Message-ID: <m1@h>\r\n\r\none",
        "the other stays"
    );

    let revoked = b.revoke(id).await.unwrap().unwrap();
    assert_eq!(revoked.state, EscrowState::Revoked);
    assert!(revoked.erased_at.is_some());
    assert!(matches!(
        b.peek(id).await,
        Err(EscrowError::Gone(_, EscrowState::Revoked))
    ));
    assert_eq!(
        b.revoke(id).await.unwrap().unwrap(),
        revoked,
        "a second withdraw changes nothing"
    );
    assert!(b.revoke("no-such-id").await.unwrap().is_none());
    b.mark_replied(id).await.unwrap();
    assert_eq!(
        b.entry(id).await.unwrap().unwrap().state,
        EscrowState::Revoked,
        "a tombstone stays one"
    );
    drop(b);
    let c = open().messages;
    assert_eq!(
        c.by_token(&kept.token).await.unwrap().unwrap().state,
        EscrowState::Revoked
    );
    assert!(c.read(id).await.is_err(), "erased for good");
}

/// [`super::escrow::SignInRecords`]: records by kind and key, durable at
/// return, deleted for good; one address's lock keeps a second caller out
/// until dropped, and other addresses are not held up.
pub async fn sign_in_records(open: &dyn Fn() -> super::escrow::PortalStores) {
    use crate::model::escrow::SignInRecord::{Account, Session};
    use std::time::Duration;
    let a = open().sign_in;
    assert!(a.get(Account, "pat@x.test").await.unwrap().is_none());
    a.put(Account, "pat@x.test", b"{\"a\":1}".to_vec())
        .await
        .unwrap();
    a.put(Session, "s1", b"{}".to_vec()).await.unwrap();
    a.put(Session, "s2", b"{}".to_vec()).await.unwrap();
    drop(a);
    let b = open().sign_in;
    assert_eq!(
        b.get(Account, "pat@x.test").await.unwrap().unwrap(),
        b"{\"a\":1}"
    );
    assert!(
        b.get(Session, "pat@x.test").await.unwrap().is_none(),
        "kinds are apart"
    );
    let mut keys = b.keys(Session).await.unwrap();
    keys.sort();
    assert_eq!(keys, ["s1", "s2"]);
    b.delete(Session, "s1").await.unwrap();
    b.delete(Session, "never").await.unwrap();
    assert_eq!(b.keys(Session).await.unwrap(), ["s2"]);

    let held = b.lock("pat@x.test").await.unwrap();
    let b2 = b.clone();
    let waiter = tokio::spawn(async move { b2.lock("PAT@x.test").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "the same address waits");
    tokio::time::timeout(Duration::from_secs(5), b.lock("other@x.test"))
        .await
        .expect("another address is not held up")
        .unwrap();
    drop(held);
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the lock is given back on drop")
        .unwrap()
        .unwrap();
    drop(b);
    let c = open().sign_in;
    assert!(
        c.get(Session, "s1").await.unwrap().is_none(),
        "deleted for good"
    );
}

/// [`ArchiveStore`](super::archive::ArchiveStore): appends take head + 1
/// and link to the entry before; a queue id is journaled once; the same
/// bytes merge into their item; a checkpoint signs the head; a purge
/// removes content and records and leaves its own event in the chain;
/// concurrent appends get one order; everything is there through a
/// handle opened after the first is dropped (a backend may allow one
/// writer at a time). With `tamper` (a backend that can damage event
/// `seq`'s record behind the store's back), verify names the damage.
pub async fn archive_store(
    open: &dyn Fn() -> Box<dyn super::archive::ArchiveStore>,
    tamper: Option<&dyn Fn(u64)>,
) {
    use super::archive::chain::{self, GENESIS};
    use super::archive::testing::capture;
    use super::archive::Journaled;
    use crate::model::archive::Event;
    let a = open();
    assert_eq!(a.head_seq().await, 0, "a new store is empty");
    assert!(a.items().await.unwrap().is_empty());
    assert!(a.signer_public_key().is_some(), "opened for writing");
    let m1 = b"Subject: one\r\nMessage-ID: <1@x.test>\r\n\r\nbody one\r\n".to_vec();
    let m2 = b"Subject: two\r\n\r\nbody two\r\n".to_vec();
    let sha1 = hex::encode(chain::sha256(&m1));
    let mut c1 = capture("q1", &m1, &["b@x.test"]);
    c1.sha256 = "not the content's".into();
    assert_eq!(a.journal(c1, &m1).await.unwrap(), Journaled::New(1));
    let (j, stored) = a
        .journal_sized(capture("q2", &m2, &["c@x.test"]), m2.clone().into())
        .await
        .unwrap();
    assert_eq!(j, Journaled::New(2));
    assert!(stored > 0, "new content is stored");
    // The same bytes again (another relay, a Bcc copy): merged, not stored again.
    let (j, stored) = a
        .journal_sized(capture("q3", &m1, &["d@x.test"]), m1.clone().into())
        .await
        .unwrap();
    assert_eq!((j, stored), (Journaled::Merged { item: 1, seq: 3 }, 0));
    // A queue id journaled before (a crash before the spool let go): nothing new.
    assert_eq!(
        a.journal(capture("q3", &m1, &["d@x.test"]), &m1)
            .await
            .unwrap(),
        Journaled::Already(3)
    );
    assert_eq!(
        a.journal(capture("q1", &m2, &["e@x.test"]), &m2)
            .await
            .unwrap(),
        Journaled::Already(1),
        "by queue id, whatever the bytes"
    );
    assert_eq!(a.head_seq().await, 3);
    let item = a.item(1).await.unwrap().unwrap();
    let relays: Vec<(u64, &str)> = item
        .captures
        .iter()
        .map(|(s, c)| (*s, c.queue_id.as_str()))
        .collect();
    assert_eq!(relays, [(1, "q1"), (3, "q3")]);
    assert_eq!(
        item.captures[0].1.sha256, sha1,
        "the content key is the store's"
    );
    assert_eq!(a.raw(&sha1).await.unwrap().as_deref(), Some(&m1[..]));
    assert!(a.raw("not hex").await.unwrap().is_none());
    let ids: Vec<u64> = a.items().await.unwrap().iter().map(|i| i.id).collect();
    assert_eq!(ids, [1, 2], "oldest first");
    assert!(matches!(a.event(2).await.unwrap(), Some(Event::Ingest(_))));
    assert!(matches!(
        a.event(3).await.unwrap(),
        Some(Event::Merge { item: 1, .. })
    ));
    assert!(a.event(4).await.unwrap().is_none());
    // Each event is linked to the one before: the chain's head follows
    // from the events read back.
    let mut link = GENESIS;
    for seq in 1..=3 {
        let event = a.event(seq).await.unwrap().unwrap();
        let plain = serde_json::to_vec(&event).unwrap();
        link = chain::link(&link, seq, &chain::sha256(&plain));
    }
    let r = a.verify(1).await.unwrap();
    assert!(r.damaged.is_empty(), "{:?}", r.damaged);
    assert_eq!((r.head_seq, r.events_ok, r.blobs_ok), (3, 3, 2));
    assert_eq!(r.head, hex::encode(link));
    // A checkpoint signs the head (unless one already covers it), once.
    if let Some(cp) = a.checkpoint().await.unwrap() {
        assert_eq!(cp.covers, 3);
        cp.verify(&link).unwrap();
        assert_eq!(Some(cp.public_key), a.signer_public_key());
    }
    assert!(
        a.checkpoint().await.unwrap().is_none(),
        "the head is covered"
    );
    let key = a.signer_public_key();
    assert!(a
        .verify_signed_by(1, key.as_deref())
        .await
        .unwrap()
        .damaged
        .is_empty());
    assert!(
        !a.verify_signed_by(1, Some("another key"))
            .await
            .unwrap()
            .damaged
            .is_empty(),
        "a checkpoint by another key is damage"
    );
    // A purge: content and records go, its event stays in the chain.
    let p = a.purge(&[1, 99], "conformance").await.unwrap();
    assert_eq!(
        (p.seq, p.items.clone(), p.bytes),
        (4, vec![1], m1.len() as u64)
    );
    assert!(a.item(1).await.unwrap().is_none());
    assert!(a.raw(&sha1).await.unwrap().is_none(), "the content is gone");
    assert!(a.event(1).await.unwrap().is_none());
    assert!(matches!(
        a.event(4).await.unwrap(),
        Some(Event::Purge { ref items, ref events, .. }) if items == &[1] && events == &[1, 3]
    ));
    assert_eq!(
        a.purge(&[1], "again").await.unwrap().seq,
        0,
        "nothing to purge"
    );
    assert_eq!(a.head_seq().await, 4, "an empty purge appends nothing");
    // A purged queue id may come again.
    assert_eq!(
        a.journal(capture("q1", &m1, &["b@x.test"]), &m1)
            .await
            .unwrap(),
        Journaled::New(5)
    );
    // Appends at once still get one order.
    let ms: Vec<Vec<u8>> = (0..4)
        .map(|i| format!("Subject: {i}\r\n\r\nat once {i}\r\n").into_bytes())
        .collect();
    let (a, ms) = (
        std::sync::Arc::<dyn super::archive::ArchiveStore>::from(a),
        ms,
    );
    let tasks: Vec<_> = ms
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (a, m) = (a.clone(), m.clone());
            tokio::spawn(async move {
                a.journal(capture(&format!("c{i}"), &m, &["f@x.test"]), &m)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Journaled::New(s) => seqs.push(s),
            other => panic!("{other:?}"),
        }
    }
    seqs.sort();
    assert_eq!(seqs, [6, 7, 8, 9]);
    let r = a.verify(1).await.unwrap();
    assert!(r.damaged.is_empty(), "{:?}", r.damaged);
    assert_eq!((r.events_ok, r.events_purged), (9, 2));
    let head = r.head;
    // Durable at return: a handle opened afterwards sees it all.
    drop(a);
    let b = open();
    assert_eq!(b.head_seq().await, 9);
    let ids: Vec<u64> = b.items().await.unwrap().iter().map(|i| i.id).collect();
    assert_eq!(ids, [2, 5, 6, 7, 8, 9]);
    assert_eq!(b.raw(&sha1).await.unwrap().as_deref(), Some(&m1[..]));
    let r = b.verify(1).await.unwrap();
    assert!(r.damaged.is_empty(), "{:?}", r.damaged);
    assert_eq!((r.head_seq, r.head.as_str()), (9, head.as_str()));
    assert!(r.checkpoints_ok >= 1);
    assert!(matches!(
        b.event(4).await.unwrap(),
        Some(Event::Purge { .. })
    ));
    let Some(tamper) = tamper else {
        return;
    };
    drop(b);
    tamper(7);
    let c = open();
    let r = c.verify(1).await.unwrap();
    assert!(r.damaged.iter().any(|(s, _)| *s == 7), "{:?}", r.damaged);
    assert_eq!(r.first_broken().map(|(s, _)| *s), Some(7));
}

/// [`SpoolStore`](super::spool::SpoolStore): chunks stored while a message
/// is received read back with its envelope; an accepted envelope is never
/// overwritten; updates, sealed copies and completion are refused once a
/// message is deleted, and do not bring it back; completion moves the
/// record to the done set, prune forgets it; inspections are put, read
/// and leave the uninspected list; totals and the highest id follow what
/// is stored; everything committed is there through a handle opened after
/// the first is dropped (a backend may allow one writer at a time), and
/// chunks never committed are not.
pub async fn spool_store(open: &dyn Fn() -> Box<dyn super::spool::SpoolStore>) {
    use super::spool::testing::message;
    use super::spool::{CommitError, Durability, SpoolError, SpoolStore, CHUNK_SIZE};
    use crate::model::id::QueueId;
    use crate::model::record::{InspectionRecord, QueuedMessage};
    use sha2::{Digest, Sha256};
    use std::sync::Arc;

    /// `message()` as the writer completes it for `body` under `id`.
    fn received(id: u64, body: &[u8]) -> QueuedMessage {
        let mut m = message();
        m.id = QueueId(id);
        m.size = body.len() as u64;
        m.chunks = body.chunks(CHUNK_SIZE).count().max(1) as u32;
        m.body_sha256 = hex::encode(Sha256::digest(body));
        m
    }
    fn gone<T: std::fmt::Debug>(r: Result<T, SpoolError>) -> bool {
        matches!(r, Err(SpoolError::Commit(CommitError::Gone(_))))
    }
    let ids = |list: Vec<QueuedMessage>| list.iter().map(|m| m.id.0).collect::<Vec<_>>();
    let inspection = InspectionRecord::clean();

    let a = open();
    assert!(
        a.envelopes().await.unwrap().is_empty(),
        "a new store is empty"
    );
    assert_eq!(a.totals().await.unwrap(), (0, 0));
    assert_eq!(a.highest_id().await.unwrap(), 0);
    // Three chunks: two stored while received, the last with the envelope.
    let body: Vec<u8> = (0..CHUNK_SIZE * 2 + 17).map(|i| (i % 251) as u8).collect();
    let parts: Vec<&[u8]> = body.chunks(CHUNK_SIZE).collect();
    let m1 = received(100, &body);
    a.put_chunk(m1.id, 0, parts[0]).await.unwrap();
    a.put_chunk(m1.id, 1, parts[1]).await.unwrap();
    assert!(
        a.envelope(m1.id).await.unwrap().is_none(),
        "not queued before its envelope"
    );
    a.commit(&m1, Some(parts[2])).await.unwrap();
    assert_eq!(a.read_body(&m1).await.unwrap(), body);
    assert_eq!(a.read_head(&m1).await.unwrap(), parts[0]);
    assert_eq!(a.read_chunks(&m1, 2).await.unwrap(), body[..2 * CHUNK_SIZE]);
    // An empty message: one empty chunk, with its envelope.
    let m2 = received(200, b"");
    a.commit(&m2, Some(b"")).await.unwrap();
    assert_eq!(a.read_body(&m2).await.unwrap(), b"");
    // Every chunk stored before the envelope.
    let small = b"Subject: x\r\n\r\nhi\r\n";
    let m3 = received(300, small);
    a.put_chunk(m3.id, 0, small).await.unwrap();
    a.commit(&m3, None).await.unwrap();
    assert_eq!(a.read_body(&m3).await.unwrap(), small);
    assert_eq!(ids(a.envelopes().await.unwrap()), [100, 200, 300]);
    assert_eq!(
        a.envelope(m3.id).await.unwrap().map(|m| m.body_sha256),
        Some(m3.body_sha256.clone())
    );
    assert_eq!(
        a.totals().await.unwrap(),
        (3, body.len() as u64 + small.len() as u64)
    );
    assert!(a.highest_id().await.unwrap() >= 300);
    // An accepted envelope is never overwritten.
    let mut other = m1.clone();
    other.from = "x@y.test".into();
    assert!(matches!(
        a.commit(&other, Some(b"other")).await,
        Err(SpoolError::Commit(CommitError::EnvelopeExists(_)))
    ));
    assert_eq!(a.envelope(m1.id).await.unwrap().unwrap().from, m1.from);
    assert_eq!(a.read_body(&m1).await.unwrap(), body);
    // What this node works: everything it accepted.
    let owned: Vec<QueueId> = a.owned().await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(owned, [m1.id, m2.id, m3.id]);
    assert!(a.owns(m1.id).await.unwrap());
    // Inspections.
    assert_eq!(a.uninspected().await.unwrap(), [m1.id, m2.id, m3.id]);
    assert!(a.inspection(m1.id).await.unwrap().is_none());
    a.put_inspection(m1.id, &inspection).await.unwrap();
    assert!(a.inspection(m1.id).await.unwrap().is_some());
    assert_eq!(a.uninspected().await.unwrap(), [m2.id, m3.id]);
    a.put_inspection(QueueId(999), &inspection).await.unwrap();
    assert!(
        a.inspection(QueueId(999)).await.unwrap().is_none(),
        "not kept for a message not queued"
    );
    // Updates and sealed copies.
    let mut m3u = m3.clone();
    m3u.decided = true;
    // An ordered update is seen at once (and durable with the next synced
    // write: the handle opened below sees it).
    a.update(&m3u, Durability::Ordered).await.unwrap();
    assert!(a.envelope(m3.id).await.unwrap().unwrap().decided);
    m3u.new_subject = Some("sealed".into());
    a.put_sealed(&m3u, vec![(0, b"sealed copy".to_vec())])
        .await
        .unwrap();
    assert_eq!(a.read_sealed(&m3u, 0).await.unwrap(), b"sealed copy");
    assert!(a.read_sealed(&m3u, 1).await.is_err(), "no copy for 1");
    assert_eq!(
        a.envelope(m3.id)
            .await
            .unwrap()
            .unwrap()
            .new_subject
            .as_deref(),
        Some("sealed"),
        "the record is stored with its copies"
    );
    // Delete; nothing brings a deleted message back.
    let removed = a.delete(m2.id).await.unwrap();
    assert_eq!(removed.map(|m| m.id), Some(m2.id));
    assert!(a.delete(m2.id).await.unwrap().is_none(), "already gone");
    assert!(
        gone(a.update(&m2, Durability::Synced).await),
        "update after delete refused"
    );
    assert!(gone(a.update(&m2, Durability::Ordered).await));
    assert!(gone(a.put_sealed(&m2, vec![(0, b"x".to_vec())]).await));
    assert!(gone(a.complete(&m2, Durability::Synced).await));
    assert!(gone(a.complete(&m2, Durability::Ordered).await));
    assert!(
        a.envelope(m2.id).await.unwrap().is_none(),
        "not resurrected"
    );
    assert!(a.done(m2.id).await.unwrap().is_none());
    a.put_inspection(m2.id, &inspection).await.unwrap();
    assert!(a.inspection(m2.id).await.unwrap().is_none());
    assert_eq!(ids(a.envelopes().await.unwrap()), [100, 300]);
    // Complete: the record moves to the done set, the rest goes (ordered:
    // the synced writes after it make it durable).
    a.complete(&m3u, Durability::Ordered).await.unwrap();
    assert!(a.envelope(m3.id).await.unwrap().is_none());
    assert!(a.done(m3.id).await.unwrap().unwrap().decided);
    assert!(a.read_sealed(&m3u, 0).await.is_err(), "sealed copies go");
    assert!(
        gone(a.update(&m3u, Durability::Synced).await),
        "no update once done"
    );
    assert!(a.done(m1.id).await.unwrap().is_none(), "still queued");
    assert_eq!(a.totals().await.unwrap(), (1, body.len() as u64));
    // Writes at once are all kept.
    let a: Arc<dyn SpoolStore> = Arc::from(a);
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move {
                let m = received(1000 + i, b"at once");
                a.commit(&m, Some(b"at once")).await.unwrap();
                a.delete(m.id).await.unwrap().unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let r = a.verify().await.unwrap();
    assert!(r.damaged.is_empty(), "{:?}", r.damaged);
    assert_eq!((r.ok, r.orphan_chunks), (1, 0));
    // A message never committed: its chunks count for ids, not for the queue.
    a.put_chunk(QueueId(400), 0, b"partial").await.unwrap();
    assert!(a.highest_id().await.unwrap() >= 400);
    assert_eq!(ids(a.envelopes().await.unwrap()), [100]);
    a.discard(QueueId(400), 1).await;
    assert_eq!(a.verify().await.unwrap().orphan_chunks, 0);
    a.put_chunk(QueueId(500), 0, b"cut off").await.unwrap();

    // Durable at return: a handle opened afterwards sees it all.
    drop(a);
    let b = open();
    assert_eq!(ids(b.envelopes().await.unwrap()), [100]);
    let m1b = b.envelope(m1.id).await.unwrap().unwrap();
    assert_eq!(b.read_body(&m1b).await.unwrap(), body);
    assert!(b.inspection(m1.id).await.unwrap().is_some());
    assert_eq!(b.uninspected().await.unwrap(), Vec::<QueueId>::new());
    assert!(b.done(m3.id).await.unwrap().is_some());
    assert!(b.envelope(m2.id).await.unwrap().is_none());
    assert_eq!(b.totals().await.unwrap(), (1, body.len() as u64));
    assert!(
        b.highest_id().await.unwrap() >= 500,
        "ids on disk when opened count, a message cut off too"
    );
    let r = b.verify().await.unwrap();
    assert!(r.damaged.is_empty(), "{:?}", r.damaged);
    assert_eq!(
        (r.ok, r.orphan_chunks),
        (1, 0),
        "chunks never committed are not kept"
    );
    // Finished records by id range (the trace's time window).
    assert_eq!(
        ids(b
            .done_between(QueueId(300), QueueId(301), 10)
            .await
            .unwrap()),
        [300]
    );
    assert!(b
        .done_between(QueueId(301), QueueId(u64::MAX), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(b
        .done_between(QueueId(0), QueueId(300), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(b
        .done_between(QueueId(0), QueueId(u64::MAX), 0)
        .await
        .unwrap()
        .is_empty());
    // Prune: finished messages before the cutoff go.
    assert_eq!(b.prune_done(QueueId(300)).await.unwrap(), 0);
    assert_eq!(b.prune_done(QueueId(301)).await.unwrap(), 1);
    assert!(b.done(m3.id).await.unwrap().is_none());
    assert_eq!(b.prune_done(QueueId(u64::MAX)).await.unwrap(), 0);
    assert!(b.free_bytes().unwrap() > 0);
    // A finished message's id counts too, so a clock stepped back cannot
    // hand it out again and overwrite its record.
    let m9 = received(900, small);
    b.commit(&m9, Some(small)).await.unwrap();
    b.complete(&m9, Durability::Synced).await.unwrap();
    drop(b);
    let c = open();
    assert!(c.envelope(m9.id).await.unwrap().is_none());
    assert!(
        c.highest_id().await.unwrap() >= 900,
        "ids of finished messages count"
    );
}

/// (tests) An admin console user named `name` with a placeholder password.
pub fn console_user_for_tests(name: &str) -> super::console::ConsoleUser {
    console_user(name, Role::Admin)
}

fn console_user(name: &str, role: Role) -> super::console::ConsoleUser {
    super::console::ConsoleUser {
        name: name.into(),
        role,
        domains: vec![],
        password: "$argon2id$x".into(),
        totp: None,
        totp_step: None,
        failures: 0,
        locked_until: None,
        created_at: chrono::Utc::now(),
    }
}

/// [`super::console::ConsoleUsers`]: unique names, changes seen at once by
/// a fresh handle, updates atomic under concurrency, removal ends the
/// user's sessions, sessions by key, the sweep by idle and age.
pub async fn console_users(open: &dyn Fn() -> Box<dyn super::console::ConsoleUsers>) {
    use super::console::{ConsoleSession, ConsoleStoreError};
    use chrono::{Duration, Utc};
    let a: std::sync::Arc<dyn super::console::ConsoleUsers> = open().into();
    assert!(a.list().await.unwrap().is_empty(), "a new store is empty");
    a.insert(console_user("ann", Role::Admin)).await.unwrap();
    let mut arch = console_user("arc", Role::Archivist);
    arch.domains = vec!["a.test".into()];
    a.insert(arch.clone()).await.unwrap();
    assert!(matches!(
        a.insert(console_user("ann", Role::Auditor)).await,
        Err(ConsoleStoreError::Exists(n)) if n == "ann"
    ));
    let b = open();
    let names: Vec<String> = b
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["ann", "arc"], "durable and in the order added");
    assert_eq!(b.get("arc").await.unwrap(), Some(arch));
    assert!(b.get("nobody").await.unwrap().is_none());

    // Updates from many tasks at once: none is lost.
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { a.update("ann", &|u| u.failures += 1).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(b.get("ann").await.unwrap().unwrap().failures, 16);
    let changed = a
        .update("ann", &|u| u.totp = Some("sealed".into()))
        .await
        .unwrap();
    assert_eq!(changed.totp.as_deref(), Some("sealed"));
    assert!(matches!(
        a.update("nobody", &|_| {}).await,
        Err(ConsoleStoreError::Missing(_))
    ));

    let now = Utc::now();
    let s = |user: &str, age: i64, idle: i64| ConsoleSession {
        user: user.into(),
        created_at: now - Duration::minutes(age),
        last_seen: now - Duration::minutes(idle),
    };
    a.put_session("k1", &s("ann", 0, 0)).await.unwrap();
    a.put_session("k2", &s("arc", 0, 0)).await.unwrap();
    a.put_session("k3", &s("arc", 0, 50)).await.unwrap();
    a.put_session("k4", &s("arc", 800, 0)).await.unwrap();
    assert_eq!(b.session("k1").await.unwrap(), Some(s("ann", 0, 0)));
    a.put_session("k1", &s("ann", 0, 1)).await.unwrap();
    assert_eq!(
        b.session("k1").await.unwrap(),
        Some(s("ann", 0, 1)),
        "replaced"
    );
    assert_eq!(
        b.sweep_sessions(now - Duration::minutes(30), now - Duration::hours(12))
            .await
            .unwrap(),
        2,
        "the idle one and the old one"
    );
    assert!(a.session("k3").await.unwrap().is_none());
    assert!(a.session("k4").await.unwrap().is_none());
    b.end_session("k1").await.unwrap();
    assert!(a.session("k1").await.unwrap().is_none(), "ended at once");
    b.end_session("k1").await.unwrap();

    assert_eq!(a.remove("arc").await.unwrap().name, "arc");
    assert!(b.session("k2").await.unwrap().is_none(), "its sessions end");
    assert!(matches!(
        b.remove("arc").await,
        Err(ConsoleStoreError::Missing(n)) if n == "arc"
    ));
    assert_eq!(open().list().await.unwrap().len(), 1);
}
