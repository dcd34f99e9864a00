//! Several Sealgate nodes on one PostgreSQL act as one gateway: mail
//! accepted by any node is delivered once; a node SIGKILLed while it holds
//! deferred mail, or in the middle of delivering it, loses nothing (another
//! node takes its messages once its lease has run out, and counts each
//! possible second copy); `queue retry --all` through one node reaches
//! every node's mail; PostgreSQL stopped mid-load gets senders 4xx, never
//! a 250 for a message that is not kept, and everything acknowledged is
//! delivered once it is back; a database that hangs gets the sender
//! `451 4.3.0` at the end of DATA once `[store] commit_timeout` has passed.
//!
//! Every node runs the real binary with its own data directory and shares
//! the database and the key files. The remote MX is the scripted server of
//! `sealgate_e2e::fault`, reached through a static `[[route]]`.

use sealgate_e2e::fault::{Fault, FaultServer};
use sealgate_e2e::{postgres, queued_id, sealgate_bin, swaks, Gateway, Smtp};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SENDER: &str = "nurse@hospital.test";

/// Short delivery timings; `{retry}` is the wait before each new attempt.
const TIMINGS: &str = "retry_schedule = [\"{retry}\"]\nconnect_timeout = \"2s\"\ncommand_timeout = \"2s\"\ndata_timeout = \"3s\"\nmax_lifetime = \"2h\"\n";

/// A deferred message is tried again after 1 s.
const RETRY_SOON: &str = "1s";

/// Applies the schema to the database at `url` (`sealgate store init`).
fn store_init(url: &str, dir: &Path) {
    let config = dir.join("init.toml");
    std::fs::write(
        &config,
        format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n"),
    )
    .unwrap();
    let out = Command::new(sealgate_bin())
        .args(["store", "init", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "store init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A node named `name` on the database at `url`, with the key files in
/// `keys` (shared by every node), leases of `lease`, delivering dest.test
/// to 127.0.0.1:`mx` (deferred mail tried again after `retry`);
/// `store_extra` is added to `[store]`.
fn node(
    url: &str,
    keys: &Path,
    (name, lease, retry): (&str, &str, &str),
    mx: u16,
    store_extra: &str,
) -> Gateway {
    let k = keys.display();
    let timings = TIMINGS.replace("{retry}", retry);
    Gateway::start(&format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n{store_extra}\n\
         [cluster]\nnode = \"{name}\"\nlease = \"{lease}\"\n\n\
         [spool]\nkey_file = \"{k}/spool.keys\"\n\n\
         [archive]\nkey_file = \"{k}/archive.keys\"\nsigning_key_file = \"{k}/archive-signing.pk8\"\n\n\
         [delivery]\n{timings}\n\
         [tls]\ndane = false\nmta_sts = false\nremember = false\n\n\
         [[route]]\ndomains = [\"dest.test\"]\nhost = \"127.0.0.1\"\nport = {mx}\ntls = \"may\"\n"
    ))
}

/// Sends one message through `g` with swaks; swaks's output and whether
/// it ended with the message accepted.
fn try_send(g: &Gateway, message_id: &str) -> (bool, String) {
    let o = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", g.smtp),
        "--from",
        SENDER,
        "--to",
        "doctor@dest.test",
        "--header",
        "Subject: cluster test",
        "--header",
        &format!("Message-Id: <{message_id}>"),
        "--body",
        "Results attached.",
        "--timeout",
        "40",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    (o.status.success(), out)
}

/// Sends one message through `g`; its queue id.
fn send(g: &Gateway, message_id: &str) -> String {
    let (ok, out) = try_send(g, message_id);
    assert!(ok, "{out}\n{}", g.log());
    queued_id(&out).expect("queued id")
}

/// The Message-Ids the sink took, each as often as it took it.
fn received_ids(sink: &FaultServer) -> Vec<String> {
    sink.accepted()
        .iter()
        .filter_map(|r| r.message_id())
        .collect()
}

/// `sealgate cluster ls --json` through `g`'s configuration.
fn cluster_ls(g: &Gateway) -> Vec<serde_json::Value> {
    let out = Command::new(sealgate_bin())
        .args(["cluster", "ls", "--json", "--config"])
        .arg(&g.config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cluster ls: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One node on a database of its own, delivering to an accepting sink,
/// with a 3 s commit timeout.
struct One {
    pg: sealgate_e2e::PgServer,
    sink: FaultServer,
    g: Gateway,
    _keys: tempfile::TempDir,
}

fn one_node() -> One {
    let (pg, url) = postgres();
    let keys = tempfile::tempdir().unwrap();
    store_init(&url, keys.path());
    let sink = FaultServer::start(Fault::Accept);
    let store = "commit_timeout = \"3s\"\n";
    let g = node(
        &url,
        keys.path(),
        ("mx1", "60s", RETRY_SOON),
        sink.port,
        store,
    );
    One {
        pg,
        sink,
        g,
        _keys: keys,
    }
}

#[test]
fn mail_through_every_node_reaches_the_sink_exactly_once() {
    let (_pg, url) = postgres();
    let keys = tempfile::tempdir().unwrap();
    store_init(&url, keys.path());
    let sink = FaultServer::start(Fault::Accept);
    let nodes: Vec<Gateway> = ["mx1", "mx2", "mx3"]
        .iter()
        .map(|n| node(&url, keys.path(), (n, "60s", RETRY_SOON), sink.port, ""))
        .collect();

    let mut sent = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for round in 0..4 {
        for (i, g) in nodes.iter().enumerate() {
            let mid = format!("m{round}-{i}@hospital.test");
            ids.insert(send(g, &mid));
            sent.insert(format!("<{mid}>"));
        }
    }
    assert_eq!(ids.len(), 12, "queue ids are unique across nodes: {ids:?}");
    // Each node's number is in its ids: three nodes, three numbers.
    let numbers: BTreeSet<u64> = ids
        .iter()
        .map(|id| (u64::from_str_radix(id, 16).unwrap() >> 10) & 63)
        .collect();
    assert_eq!(numbers.len(), 3, "{ids:?}");

    sink.wait_accepted(12, 60);
    // Time for a second copy to show up, if any node delivered twice.
    std::thread::sleep(Duration::from_secs(3));
    let mut got = received_ids(&sink);
    got.sort();
    let unique: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(unique, sent, "every message arrived");
    assert_eq!(got.len(), 12, "and each once: {got:?}");

    let listed = cluster_ls(&nodes[0]);
    let names: Vec<&str> = listed.iter().filter_map(|n| n["node"].as_str()).collect();
    assert_eq!(names, ["mx1", "mx2", "mx3"]);
    for n in &listed {
        for k in [
            "last_heartbeat",
            "version",
            "config_hash",
            "leases",
            "index_seq",
        ] {
            assert!(n.get(k).is_some(), "{k} missing in {n}");
        }
        assert_eq!(n["config_differs"], false, "{n}");
        assert_eq!(n["config_hash"], listed[0]["config_hash"]);
    }
    for g in &nodes {
        assert_eq!(g.metric("sealgate_cluster_takeovers_total"), 0.0);
    }
}

/// Two nodes with 5 s leases on a database of their own: the victim
/// delivers to an MX with `fault`, the survivor to an accepting sink.
struct Pair {
    _pg: sealgate_e2e::PgServer,
    _keys: tempfile::TempDir,
    victim_mx: FaultServer,
    sink: FaultServer,
    victim: Gateway,
    survivor: Gateway,
}

fn pair(fault: Fault) -> Pair {
    let (pg, url) = postgres();
    let keys = tempfile::tempdir().unwrap();
    store_init(&url, keys.path());
    let victim_mx = FaultServer::start(fault);
    let sink = FaultServer::start(Fault::Accept);
    let at = |name, mx| node(&url, keys.path(), (name, "5s", RETRY_SOON), mx, "");
    let victim = at("victim", victim_mx.port);
    let survivor = at("survivor", sink.port);
    Pair {
        _pg: pg,
        _keys: keys,
        victim_mx,
        sink,
        victim,
        survivor,
    }
}

#[test]
fn a_node_killed_holding_deferred_mail_loses_none_of_it() {
    // The victim's MX tempfails every RCPT: its mail stays deferred, each
    // message held under the victim's lease.
    let Pair {
        victim_mx: busy,
        sink,
        mut victim,
        survivor,
        _pg,
        _keys,
    } = pair(Fault::RcptTemp);
    // Configured otherwise (its route): named by cluster ls.
    let listed = cluster_ls(&survivor);
    assert_ne!(listed[0]["config_hash"], listed[1]["config_hash"]);
    let odd = listed
        .iter()
        .filter(|n| n["config_differs"] == true)
        .count();
    assert_eq!(odd, 1, "one of two is named: {listed:?}");
    assert!(
        victim.log().contains("configuration differs")
            || survivor.log().contains("configuration differs")
    );

    let mut sent = BTreeSet::new();
    for i in 0..6 {
        let mid = format!("k{i}@hospital.test");
        send(&victim, &mid);
        sent.insert(format!("<{mid}>"));
    }
    // Every message was tried (and deferred) by the victim.
    let deadline = Instant::now() + Duration::from_secs(30);
    while busy.transactions() < 6 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(busy.transactions() >= 6, "{}", busy.transcript());
    assert!(
        received_ids(&sink).is_empty(),
        "the survivor holds none yet"
    );
    let held = cluster_ls(&survivor)
        .into_iter()
        .find(|n| n["node"] == "victim")
        .unwrap();
    assert_eq!(held["leases"], 6, "{held}");

    let killed = Instant::now();
    victim.kill9();
    // The lease (5 s) runs out, the grace (10 s) passes, the survivor's
    // next beat takes the messages and delivers them on their schedule.
    sink.wait_accepted(6, 60);
    let taken_after = killed.elapsed();
    eprintln!("the survivor delivered the killed node's 6 messages {taken_after:?} after the kill (lease 5 s + grace 10 s)");
    let got: BTreeSet<String> = received_ids(&sink).into_iter().collect();
    assert_eq!(got, sent, "0 lost\n{}", survivor.log());
    assert!(
        taken_after >= Duration::from_secs(5),
        "not before the lease ran out ({taken_after:?})"
    );
    assert_eq!(
        survivor.metric("sealgate_cluster_takeovers_total{stage=\"deliver\"}"),
        6.0,
        "each take-over at delivery counted (a possible second delivery)"
    );
    let after = cluster_ls(&survivor);
    let s = after.iter().find(|n| n["node"] == "survivor").unwrap();
    let v = after.iter().find(|n| n["node"] == "victim").unwrap();
    assert_eq!(v["leases"], 0, "{v}");
    assert!(s["leases"].as_i64().unwrap() <= 6, "{s}");
}

#[test]
fn postgres_stopped_mid_load_defers_senders_and_loses_nothing_acknowledged() {
    let One { pg, sink, g, _keys } = one_node();
    let mut acknowledged = BTreeSet::new();
    for i in 0..3 {
        let mid = format!("before{i}@hospital.test");
        send(&g, &mid);
        acknowledged.insert(format!("<{mid}>"));
    }

    pg.stop();
    let mut refused = 0;
    for i in 0..4 {
        let mid = format!("down{i}@hospital.test");
        let (ok, out) = try_send(&g, &mid);
        assert!(
            !out.contains("queued as"),
            "no 250 while the database is down:\n{out}"
        );
        assert!(!ok);
        assert!(
            out.contains("<** 451 4.3.0") || out.contains("<** 421"),
            "a temporary failure:\n{out}"
        );
        refused += 1;
    }
    assert_eq!(refused, 4);

    pg.run().unwrap();
    // Senders retry: accepted again once the node sees the database back.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after = 0;
    while after < 3 && Instant::now() < deadline {
        let mid = format!("after{after}@hospital.test");
        let (ok, out) = try_send(&g, &mid);
        if ok {
            assert!(out.contains("queued as"), "{out}");
            acknowledged.insert(format!("<{mid}>"));
            after += 1;
        } else {
            assert!(!out.contains("queued as"), "{out}");
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    assert_eq!(after, 3, "accepting again\n{}", g.log());
    // Messages delivered while their result could not be recorded go
    // again (at least once): wait for every one, not for a count.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got: BTreeSet<String> = BTreeSet::new();
    while Instant::now() < deadline {
        got = received_ids(&sink).into_iter().collect();
        if acknowledged.is_subset(&got) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        acknowledged.is_subset(&got),
        "every acknowledged message delivered: missing {:?}\n{}",
        acknowledged.difference(&got).collect::<Vec<_>>(),
        g.log()
    );
}

#[test]
fn a_commit_that_hangs_past_commit_timeout_gets_451_and_is_not_lost() {
    let One { pg, sink, g, _keys } = one_node();
    send(&g, "first@hospital.test");
    sink.wait_accepted(1, 30);

    let mut s = Smtp::connect(g.smtp).unwrap();
    assert_eq!(s.cmd("EHLO client.test").unwrap().0, 250);
    pg.freeze();
    let started = Instant::now();
    let body = b"Message-Id: <hung@hospital.test>\r\nSubject: cluster test\r\n\r\nResults.\r\n";
    let (code, text) = s.message(SENDER, &["doctor@dest.test"], body).unwrap();
    let waited = started.elapsed();
    // MAIL and RCPT need no database; the end of DATA waits for the commit.
    assert_eq!(code, 451, "{text}");
    assert!(text.contains("4.3.0"), "{text}");
    assert!(
        waited >= Duration::from_secs(3),
        "after commit_timeout ({waited:?})"
    );
    // While the database stays away, new transactions are deferred at MAIL.
    let (code, text) = s.cmd(&format!("MAIL FROM:<{SENDER}>")).unwrap();
    assert_eq!(code, 451, "{text}");
    pg.thaw();

    // The commit went through once the database answered: the message is
    // queued after all and delivered (the sender's retry would be a second
    // copy; never none).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !received_ids(&sink).contains(&"<hung@hospital.test>".to_string())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        received_ids(&sink).contains(&"<hung@hospital.test>".to_string()),
        "{}",
        g.log()
    );
    // And the node accepts again.
    let (ok, out) = try_send(&g, "again@hospital.test");
    assert!(ok, "{out}");
}

#[test]
fn queue_retry_all_on_one_node_retries_every_nodes_mail() {
    let (_pg, url) = postgres();
    let keys = tempfile::tempdir().unwrap();
    store_init(&url, keys.path());
    // The first four transactions are tempfailed; what is deferred waits
    // an hour unless an operator asks for a retry.
    let mx = FaultServer::start(Fault::FailFirstThenAccept(4));
    let a = node(&url, keys.path(), ("mx1", "60s", "1h"), mx.port, "");
    let b = node(&url, keys.path(), ("mx2", "60s", "1h"), mx.port, "");
    let mut sent = BTreeSet::new();
    for (i, g) in [&a, &a, &b, &b].iter().enumerate() {
        let mid = format!("r{i}@hospital.test");
        send(g, &mid);
        sent.insert(format!("<{mid}>"));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while mx.transactions() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(mx.transactions(), 4, "each tried once and deferred");
    std::thread::sleep(Duration::from_secs(1));
    assert!(received_ids(&mx).is_empty());

    // Asked through mx2 only: mx1's mail is retried too.
    let out = b.cli(&["queue", "retry", "--all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while received_ids(&mx).len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let got: BTreeSet<String> = received_ids(&mx).into_iter().collect();
    assert_eq!(got, sent, "{}\n{}", a.log(), b.log());
}

#[test]
fn a_node_killed_mid_delivery_loses_nothing_and_counts_the_possible_second_copies() {
    // The victim's MX holds its reply after the dot: the victim is killed
    // while its deliveries are in flight (the MX keeps what it received).
    let Pair {
        victim_mx: slow,
        sink,
        mut victim,
        survivor,
        _pg,
        _keys,
    } = pair(Fault::SlowData(Duration::from_secs(8)));
    let mut sent = BTreeSet::new();
    for i in 0..3 {
        let mid = format!("f{i}@hospital.test");
        send(&victim, &mid);
        sent.insert(format!("<{mid}>"));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while slow.in_flight() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(slow.in_flight() > 0, "{}", slow.transcript());
    victim.kill9();

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got: BTreeSet<String> = BTreeSet::new();
    while got != sent && Instant::now() < deadline {
        got = received_ids(&sink).into_iter().collect();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(got, sent, "0 lost\n{}", survivor.log());
    // What the slow MX took before the kill came twice: each such message
    // was taken over at delivery, and counted there.
    let twice = received_ids(&slow).len();
    // (A message the victim had not decided yet resumes at an earlier stage.)
    assert_eq!(survivor.metric("sealgate_cluster_takeovers_total"), 3.0);
    let counted = survivor.metric("sealgate_cluster_takeovers_total{stage=\"deliver\"}");
    assert!(
        twice as f64 <= counted,
        "{twice} copies at the slow MX, {counted} counted"
    );
    eprintln!("killed mid-delivery: {twice} of 3 messages reached the MX twice; {counted} take-overs counted at delivery");
}
