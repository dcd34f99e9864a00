//! Throughput benchmark: generates ~150 MB of synthetic mail-like text with sparse
//! identifiers, scans it message by message on one core, and compares with ripgrep
//! (`rg -j1`) running the same patterns over the same text when `rg` is installed.
//! Usage: cargo run --release --example bench -- [MB] (default 150); `DLP_RULES=dir`
//! benchmarks another rule directory.
//! Prints figures, counts and detector ids only, never matched values.

use sealgate_dlp::RuleSet;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

const WORDS: &[&str] = &[
    "the",
    "patient",
    "meeting",
    "schedule",
    "please",
    "review",
    "attached",
    "report",
    "thanks",
    "regards",
    "follow",
    "up",
    "on",
    "our",
    "call",
    "about",
    "the",
    "quarterly",
    "budget",
    "and",
    "invoice",
    "for",
    "services",
    "clinic",
    "appointment",
    "team",
    "update",
    "project",
    "will",
    "be",
    "next",
    "week",
    "let",
    "me",
    "know",
    "if",
    "you",
    "have",
    "questions",
    "hospital",
    "billing",
    "department",
    "insurance",
    "claim",
    "status",
    "approved",
    "pending",
    "office",
    "hours",
    "reminder",
    "policy",
    "training",
    "completed",
    "shared",
    "document",
    "link",
    "with",
    "is",
    "a",
    "to",
    "of",
    "in",
    "we",
    "this",
    "that",
    "it",
    "for",
    "as",
    "at",
    "by",
    "from",
    "lab",
];

fn luhn_complete(prefix: &str, len: usize, rng: &mut Rng) -> String {
    let mut s = format!("{prefix}{}", rng.digits(len - prefix.len() - 1));
    for c in 0..10 {
        let cand = format!("{s}{c}");
        if sealgate_dlp::validators::luhn(&cand) {
            s = cand;
            break;
        }
    }
    s
}

fn sprinkle(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => format!(
            "SSN: {}-{}-{}",
            100 + rng.below(600),
            10 + rng.below(89),
            1000 + rng.below(8999)
        ),
        1 => {
            let c = luhn_complete("4", 16, rng);
            format!(
                "Visa card {} {} {} {} exp 04/29",
                &c[..4],
                &c[4..8],
                &c[8..12],
                &c[12..]
            )
        }
        2 => format!(
            "call me at ({}) {}-{}",
            200 + rng.below(700),
            200 + rng.below(700),
            1000 + rng.below(8999)
        ),
        3 => format!("from j.doe{}@example.org", rng.below(1000)),
        4 => format!(
            "Medicare ID {}EG4-TE5-MK{}",
            1 + rng.below(9),
            10 + rng.below(89)
        ),
        5 => format!(
            "DOB {}/{}/19{}",
            1 + rng.below(12),
            1 + rng.below(28),
            40 + rng.below(59)
        ),
        6 => "IBAN DE44 5001 0517 5407 3249 31".to_string(),
        7 => format!("order {} shipped", rng.digits(10)),
        8 => format!("NPI {}", &luhn_complete("808401", 15, rng)[5..]),
        _ => "diagnosed with diabetes, metformin started".to_string(),
    }
}

fn message(rng: &mut Rng, target: usize) -> String {
    let mut m = String::with_capacity(target + 256);
    m.push_str(&format!(
        "From: staff{}@hospital.example\nDate: Mon, {} Mar 2026 {:02}:{:02}:00 +0000\nSubject: {} {}\n\n",
        rng.below(500),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.pick(WORDS),
        rng.pick(WORDS)
    ));
    while m.len() < target {
        let words = 8 + rng.below(12);
        for i in 0..words {
            if i > 0 {
                m.push(' ');
            }
            m.push_str(rng.pick(WORDS));
        }
        match rng.below(40) {
            0 => m.push_str(&format!(
                " on {}/{}/2026 at {}:{:02}",
                1 + rng.below(12),
                1 + rng.below(28),
                1 + rng.below(12),
                rng.below(60)
            )),
            1 => m.push_str(&format!(
                " total ${}.{:02}",
                rng.below(100_000),
                rng.below(100)
            )),
            2 => m.push_str(&format!(" ticket #{}", rng.below(1_000_000))),
            // About one identifier per ~4 KB of prose.
            3 | 4 => {
                m.push(' ');
                m.push_str(&sprinkle(rng));
            }
            _ => {}
        }
        m.push_str(".\n");
    }
    m.push_str("\n-- \nSent from the clinic\n");
    m
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(150);
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(std::env::var("DLP_RULES").unwrap_or_else(|_| "../dlp-rules".into()));
    let t = Instant::now();
    let rs = RuleSet::load_dir(&rules).unwrap_or_else(|e| panic!("rules: {e}"));
    println!(
        "rule set: {} detectors, {} patterns, loaded in {:.1} ms",
        rs.detector_ids().len(),
        rs.pattern_sources().len(),
        t.elapsed().as_secs_f64() * 1e3
    );

    let mut rng = Rng(0x5EA1_6A7E_D1B5_0001);
    let mut corpus = String::with_capacity(mb * 1_000_000 + 100_000);
    let mut bounds = Vec::new();
    while corpus.len() < mb * 1_000_000 {
        let size = 2_000 + rng.below(60_000) as usize;
        let start = corpus.len();
        corpus.push_str(&message(&mut rng, size));
        bounds.push((start, corpus.len()));
    }
    let total = corpus.len();
    println!(
        "corpus: {:.1} MB in {} messages",
        total as f64 / 1e6,
        bounds.len()
    );

    const RUNS: usize = 3;
    // Median time of RUNS passes of `pass` over every message, and its total count.
    let timed = |pass: &dyn Fn(&str) -> usize| {
        let mut n = 0;
        let d = median(
            (0..RUNS)
                .map(|_| {
                    let t = Instant::now();
                    n = bounds.iter().map(|&(s, e)| pass(&corpus[s..e])).sum();
                    t.elapsed()
                })
                .collect(),
        );
        (d, n)
    };
    let (regex_pass, cand) = timed(&|t| rs.candidate_pass(t));
    let (keyword_pass, kw) = timed(&|t| rs.keyword_pass(t));
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let full = median(
        (0..RUNS)
            .map(|i| {
                let t = Instant::now();
                for &(s, e) in &bounds {
                    let f = rs.scan(&corpus[s..e]);
                    if i == 0 {
                        for d in &f.detectors {
                            let c = counts.entry(d.detector.to_string()).or_default();
                            c.0 += d.total_count;
                            c.1 += d.unique_count;
                        }
                    }
                }
                t.elapsed()
            })
            .collect(),
    );
    println!(
        "regex pass (combined pattern set, per message): {:>8.1} MB/s  ({cand} raw hits)",
        mbps(total, regex_pass)
    );
    println!(
        "keyword pass (every term list, whole words):     {:>8.1} MB/s  ({kw} occurrences)",
        mbps(total, keyword_pass)
    );
    println!(
        "full scan (regex + anchored checks + validators + keywords): {:>8.1} MB/s",
        mbps(total, full)
    );
    println!("findings per detector (matches / per-message unique, summed):");
    for (d, (n, u)) in &counts {
        println!("  {d:<20} {n:>9} {u:>9}");
    }

    // ripgrep over the same text with the same patterns, one thread.
    let Ok(out) = Command::new("rg").arg("--version").output() else {
        println!("rg not installed: skipping the ripgrep comparison (apt-get install -y ripgrep)");
        return;
    };
    let version = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("rg")
        .to_string();
    let dir = std::env::temp_dir().join(format!("sealgate-dlp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let corpus_path = dir.join("corpus.txt");
    let pat_path = dir.join("patterns.txt");
    std::fs::write(&corpus_path, &corpus).expect("write corpus");
    let mut pf = std::fs::File::create(&pat_path).expect("patterns");
    for (_, p) in rs.pattern_sources() {
        writeln!(pf, "{p}").expect("patterns");
    }
    drop(pf);
    let mut rg_matches = String::new();
    let rg = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let o = Command::new("rg")
                    .args(["-j1", "--no-filename", "--count-matches", "-f"])
                    .arg(&pat_path)
                    .arg(&corpus_path)
                    .output()
                    .expect("run rg");
                let d = t.elapsed();
                rg_matches = String::from_utf8_lossy(&o.stdout).trim().to_string();
                d
            })
            .collect(),
    );
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{version} -j1, same {} patterns, same text: {:>8.1} MB/s  ({rg_matches} matches)",
        rs.pattern_sources().len(),
        mbps(total, rg)
    );
    println!(
        "ratio engine/rg: regex pass {:.2}x, full scan {:.2}x",
        mbps(total, regex_pass) / mbps(total, rg),
        mbps(total, full) / mbps(total, rg)
    );
}
