//! Archive benchmark (run by bench/archive.sh): journals N generated
//! messages (varied sizes, a share of exact duplicates) into a fresh
//! archive and search index, as the archive stage does (one synced write
//! per message, index commits batched), then times typical archivist
//! queries and a full reindex. Writes each distinct message as an .eml file
//! under WORK/eml too, for ripgrep to search in the same run.
//!
//! Usage: archive_bench WORK N DUP_PERCENT

use sealgate::archive::{ArchiveStore, Capture, HeaderFacts, Journaled, Outcome, SearchIndex};
use sealgate::inspect::InspectLimits;
use sealgate::spool::{Direction, Keyring};
use sealgate::store::archive::chain;
use sealgate::store::rocksdb::archive::RocksArchive;
use std::path::Path;
use std::time::Instant;

#[path = "shared/corpus.rs"]
#[allow(dead_code)]
mod corpus;
use corpus::{Rng, WORDS};

const DOMAINS: &[&str] = &[
    "partner.com",
    "clinic.org",
    "insurer.net",
    "lab.test",
    "bank.example",
];

/// Message `n`: sizes from ~1 KB to ~100 KB (most small), some with a CSV attachment.
fn message(n: u64, rng: &mut Rng) -> (Vec<u8>, String, Vec<String>) {
    let to = format!("user{}@{}", rng.next() % 500, rng.pick(DOMAINS));
    let bcc = format!("audit{}@hospital.test", rng.next() % 5);
    let subject = format!("{} {} {n}", rng.pick(WORDS), rng.pick(WORDS));
    let size_class = rng.next() % 100;
    let words = match size_class {
        0..=69 => 100,
        70..=94 => 1_500,
        _ => 12_000,
    };
    let mut body = String::new();
    for i in 0..words {
        body.push_str(rng.pick(WORDS));
        body.push(if i % 12 == 11 { '\n' } else { ' ' });
    }
    let body = body.replace('\n', "\r\n");
    let attach = rng.next().is_multiple_of(4);
    let mut m = format!(
        "From: Sender <sender{}@hospital.test>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench-{n}@hospital.test>\r\nMIME-Version: 1.0\r\n",
        rng.next() % 50
    );
    if attach {
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n\
             --b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=\"labs-{n}.csv\"\r\n\r\n\
             test,value\r\nsodium,{}\r\n--b--\r\n",
            130 + n % 20
        ));
    } else {
        m.push_str(&format!("Content-Type: text/plain\r\n\r\n{body}\r\n"));
    }
    (m.into_bytes(), subject, vec![to, bcc])
}

fn capture(
    n: u64,
    raw: &[u8],
    rcpts: &[String],
    received: chrono::DateTime<chrono::Utc>,
) -> Capture {
    Capture {
        queue_id: format!("{n:016x}"),
        sha256: hex::encode(chain::sha256(raw)),
        size: raw.len() as u64,
        received_at: received,
        journaled_at: chrono::Utc::now(),
        direction: if n.is_multiple_of(3) {
            Direction::Inbound
        } else {
            Direction::Outbound
        },
        connector: Some("tenant".into()),
        listener: "smtp".into(),
        peer: "127.0.0.2:40000".into(),
        helo: "tenant.test".into(),
        tls: None,
        mail_from: "sender@hospital.test".into(),
        recipients: rcpts.iter().map(|a| Outcome::delivered(a)).collect(),
        dlp: None,
        headers: HeaderFacts::of(raw),
        from_journal_report: false,
        retain_until: None,
        retention_rule: None,
    }
}

fn du(p: &Path) -> u64 {
    walk(p)
        .iter()
        .map(|f| f.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let work = Path::new(&args[1]);
    let n: u64 = args[2].parse().expect("N");
    let dup: u64 = args[3].parse().expect("DUP_PERCENT");
    std::fs::create_dir_all(work.join("eml")).unwrap();
    let keys = Keyring::load_or_create(&work.join("archive.keys")).unwrap();
    let signer = chain::load_or_create_signer(&work.join("archive.pk8")).unwrap();
    let archive = RocksArchive::open(&work.join("archive"), keys, signer, 1000).unwrap();
    let index = SearchIndex::open(&work.join("index"), InspectLimits::default()).unwrap();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut distinct: Vec<(Vec<u8>, Vec<String>)> = Vec::new();
    let (mut raw_bytes, mut dups) = (0u64, 0u64);
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let started = Instant::now();
    let mut pending = 0;
    for i in 0..n {
        let (raw, rcpts) = if !distinct.is_empty() && rng.next() % 100 < dup {
            dups += 1;
            let k = (rng.next() % distinct.len() as u64) as usize;
            distinct[k].clone()
        } else {
            let (raw, _, rcpts) = message(i, &mut rng);
            std::fs::write(work.join("eml").join(format!("{i}.eml")), &raw).unwrap();
            distinct.push((raw.clone(), rcpts.clone()));
            (raw, rcpts)
        };
        raw_bytes += raw.len() as u64;
        let received = base + chrono::Duration::seconds((i * 300) as i64);
        let item = match archive
            .journal(capture(i, &raw, &rcpts, received), &raw)
            .await
            .unwrap()
        {
            Journaled::New(s) => s,
            Journaled::Merged { item, .. } => item,
            Journaled::Already(s) => s,
        };
        let it = archive.item(item).await.unwrap().unwrap();
        index.add(&it, &raw).unwrap();
        pending += 1;
        if pending == 256 {
            index.commit(archive.head_seq().await).unwrap();
            pending = 0;
        }
    }
    index.commit(archive.head_seq().await).unwrap();
    let secs = started.elapsed().as_secs_f64();
    let (store, idx) = (du(&work.join("archive")), du(&work.join("index")));
    println!("ingest: {n} messages ({dups} duplicates, {} distinct) in {secs:.1} s = {:.0} messages/s (synced write per message, indexed)", distinct.len(), n as f64 / secs);
    println!(
        "size: raw {:.1} MB, archive store {:.1} MB ({:.1}% of raw), search index {:.1} MB ({:.1}% of raw)",
        raw_bytes as f64 / 1e6,
        store as f64 / 1e6,
        100.0 * store as f64 / raw_bytes as f64,
        idx as f64 / 1e6,
        100.0 * idx as f64 / raw_bytes as f64
    );
    let queries = [
        "potassium",
        "subject:invoice",
        "from:sender1@hospital.test",
        "to:*@partner.com",
        "to:clinic.org",
        "bcc:audit3@hospital.test",
        "subject:\"quarterly review\"",
        "has:attachment",
        "filename:labs-77.csv",
        "attachment:sodium",
        "after:2026-03-01 before:2026-03-08",
        "direction:inbound insulin",
        "invoic* OR claim",
        "radiology -has:attachment",
        "message-id:<bench-4242@hospital.test>",
        "larger:100K",
        "cardiology discharge summary",
        "\"discharge summary\"",
        "from:*@hospital.test subject:report after:2026-02-01",
        "(billing OR budget) to:*@bank.example",
    ];
    let mut times = Vec::new();
    println!("queries (each run 5 times; total matches, best ms):");
    for q in queries {
        let mut best = f64::MAX;
        let mut total = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let hits = index.search(q, 100).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            times.push(ms);
            best = best.min(ms);
            total = hits.total;
        }
        println!("  {total:>7}  {best:>7.2} ms  {q}");
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "query latency over {} runs: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
        times.len(),
        pct(&times, 0.5),
        pct(&times, 0.95),
        pct(&times, 0.99)
    );
    drop(index);
    std::fs::remove_dir_all(work.join("index")).unwrap();
    let t = Instant::now();
    let index = SearchIndex::open(&work.join("index"), InspectLimits::default()).unwrap();
    let k = index.catch_up(&archive).await.unwrap();
    let rs = t.elapsed().as_secs_f64();
    println!(
        "reindex: {k} item updates in {rs:.1} s = {:.0} items/s",
        k as f64 / rs
    );
    let t = Instant::now();
    let report = archive.verify(1).await.unwrap();
    println!(
        "verify: {} events, {} contents, {} checkpoints in {:.1} s, {} damaged",
        report.events_ok,
        report.blobs_ok,
        report.checkpoints_ok,
        t.elapsed().as_secs_f64(),
        report.damaged.len()
    );
}
