//! Durability under SIGKILL: several clients send messages while Sealgate is
//! killed at random moments and restarted. Every message that got "250" must
//! be in the spool, intact (same SHA-256); nothing that did not get 250 may be
//! half-present; the store must verify clean.

use rand::Rng;
use sealgate_e2e::{queued_id, sha256_hex, Gateway, Smtp};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENTS: usize = 6;
const ROUNDS: usize = 5;

#[derive(Default)]
struct Ledger {
    /// Every body we started to send, by hash.
    attempted: HashSet<String>,
    /// Queue id -> body hash, for messages that got 250.
    acked: HashMap<String, String>,
}

fn body(rng: &mut impl Rng, tag: &str) -> Vec<u8> {
    // 1 KB .. 700 KB, so some messages span several spool chunks.
    let size: usize = if rng.random_bool(0.2) {
        rng.random_range(300_000..700_000)
    } else {
        rng.random_range(1_000..20_000)
    };
    let mut b = format!("Subject: durability {tag}\r\nX-Test: {tag}\r\n\r\n").into_bytes();
    while b.len() < size {
        let n: u64 = rng.random();
        b.extend_from_slice(
            format!("{n:020} abcdefghijklmnopqrstuvwxyz 0123456789\r\n").as_bytes(),
        );
    }
    b
}

fn client(port: u16, n: usize, round: usize, stop: Arc<AtomicBool>, ledger: Arc<Mutex<Ledger>>) {
    let mut rng = rand::rng();
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut c) = Smtp::connect(port) else {
            return;
        };
        if c.cmd("EHLO durability.test").is_err() {
            return;
        }
        for _ in 0..rng.random_range(1..5) {
            seq += 1;
            let b = body(&mut rng, &format!("r{round}-c{n}-m{seq}"));
            let hash = sha256_hex(&b);
            ledger.lock().unwrap().attempted.insert(hash.clone());
            match c.message("sender@tenant.test", &["rcpt@example.com"], &b) {
                Ok((250, text)) => {
                    let id = queued_id(&text).expect("id in 250 reply");
                    ledger.lock().unwrap().acked.insert(id, hash);
                }
                Ok((code, text)) => panic!("unexpected reply {code}: {text}"),
                Err(_) => return, // killed mid-transaction
            }
        }
        let _ = c.cmd("QUIT");
    }
}

#[test]
fn sigkill_never_loses_an_acknowledged_message() {
    let mut g = Gateway::start("");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = rand::rng();
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..CLIENTS)
            .map(|n| {
                let (stop, ledger, port) = (stop.clone(), ledger.clone(), g.smtp);
                std::thread::spawn(move || client(port, n, round, stop, ledger))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(300..1500)));
        g.kill9();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("client thread");
        }
        g.run();
    }
    // One more clean restart sweeps what the last kill left, then verify.
    g.stop();
    g.run();
    g.stop();

    let ledger = ledger.lock().unwrap();
    let q = g.queue();
    let in_queue: HashMap<String, String> = q
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["body_sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        ledger.acked.len() >= 10,
        "too few messages acknowledged to mean anything: {}",
        ledger.acked.len()
    );
    for (id, hash) in &ledger.acked {
        assert_eq!(
            in_queue.get(id),
            Some(hash),
            "message {id} got 250 but is missing or altered"
        );
    }
    for (id, hash) in &in_queue {
        assert!(
            ledger.attempted.contains(hash),
            "{id} in the spool is not a message any client sent"
        );
    }
    let v = g.cli(&["queue", "verify", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert!(v.status.success(), "{report:#}");
    assert_eq!(report["ok"].as_u64().unwrap() as usize, in_queue.len());
    assert_eq!(report["orphan_chunks"], 0);
    let unacked = in_queue.len() - ledger.acked.len();
    println!(
        "durability: {ROUNDS} SIGKILLs, {} attempted, {} acknowledged and all present intact, {unacked} accepted-but-unacknowledged (reply lost to the kill), 0 partial",
        ledger.attempted.len(),
        ledger.acked.len()
    );
}
