//! Whole-stage DLP benchmark (run by bench/inspect.sh): generates a corpus
//! of realistic .eml messages — text and HTML bodies, quoted-printable and
//! base64, attachments in docx, xlsx, csv, PDF and zip, sparse identifiers —
//! and times the inspect stage on one core: MIME decode + extraction +
//! detection, exactly what the gateway runs per message. Prints MB/s of
//! message bytes, the share spent extracting, and the findings seen.
//!
//! Usage: inspect_bench [MB]

use corpus::Rng;
use sealgate::inspect::{extract, inspect, inspect_extraction, InspectLimits};
use std::collections::BTreeMap;
use std::time::Instant;
use testdata::{docx, pdf, zip_of};

#[path = "shared/corpus.rs"]
#[allow(dead_code)]
mod corpus;

// The attachment builders the inspect tests use.
#[path = "../src/inspect/testdata.rs"]
#[allow(dead_code)]
mod testdata;

/// The corpus generator: the shared mail vocabulary and xorshift.
struct Gen(Rng);

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
    fn prose(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes + 16);
        while s.len() < bytes {
            s.push_str(corpus::word(&mut self.0));
            s.push(if self.below(12) == 0 { '\n' } else { ' ' });
        }
        s
    }
    /// Prose with, now and then, an identifier in context.
    fn text(&mut self, bytes: usize) -> String {
        let mut s = self.prose(bytes);
        if self.below(20) == 0 {
            let id = match self.below(3) {
                0 => {
                    let (a, b, c) = (10 + self.below(80), self.below(10), self.below(999));
                    format!(" Patient SSN: 5{a}-4{b}-3{c:03} ")
                }
                1 => " card 4556 7375 8689 9855 exp 04/29 ".to_string(),
                _ => " Medicare ID 3CD5-FG7-HJ89 ".to_string(),
            };
            let len = s.len() as u64;
            let at = self.below(len) as usize;
            let at = (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
            s.insert_str(at, &id);
        }
        s
    }
}

fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    let s = base64::engine::general_purpose::STANDARD.encode(data);
    s.as_bytes()
        .chunks(76)
        .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
        .collect()
}

/// An xlsx with one row per cell text (and a number beside it).
fn xlsx(cells: &[&str]) -> Vec<u8> {
    let mut sheet = String::from(r#"<?xml version="1.0"?><worksheet><sheetData>"#);
    for i in 0..cells.len() {
        let r = i + 1;
        sheet.push_str(&format!(
            "<row r=\"{r}\"><c r=\"A{r}\" t=\"s\"><v>{i}</v></c><c r=\"B{r}\"><v>{}</v></c></row>",
            i * 7
        ));
    }
    sheet.push_str("</sheetData></worksheet>");
    testdata::xlsx_with(cells, &sheet)
}

/// One message: a body, and for about half of them an attachment; returns
/// the message and the attachment's kind ("none" without one).
fn message(g: &mut Gen, n: usize) -> (Vec<u8>, &'static str) {
    let body_len = 1500 + g.below(12_000) as usize;
    let text = g.text(body_len);
    let mut m = format!(
        "From: nurse{n}@hospital.test\r\nTo: partner@clinic.test\r\nSubject: {}\r\nMessage-ID: <{n}@hospital.test>\r\nMIME-Version: 1.0\r\n",
        g.prose(40).trim().replace('\n', " ")
    );
    let boundary = format!("b{n}");
    m.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    ));
    if g.below(4) == 0 {
        let html = format!(
            "<html><body><p>{}</p></body></html>",
            text.replace('\n', "</p><p>")
        );
        m.push_str(&format!("--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}", b64(html.as_bytes())));
    } else {
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
            text.replace('\n', "\r\n")
        ));
    }
    let attached_len = 4000 + g.below(40_000) as usize;
    let attached = g.text(attached_len);
    let att: Option<(&'static str, &str, Vec<u8>)> = match g.below(9) {
        0 => Some((
            "report.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            docx(&attached.lines().collect::<Vec<_>>()),
        )),
        1 => Some((
            "claims.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            xlsx(&attached.lines().collect::<Vec<_>>()),
        )),
        2 => Some((
            "export.csv",
            "text/csv",
            attached.replace(' ', ",").into_bytes(),
        )),
        3 => Some(("scan.pdf", "application/pdf", pdf(&attached))),
        4 => Some((
            "records.zip",
            "application/zip",
            zip_of(&[("notes.txt", attached.as_bytes())]),
        )),
        _ => None,
    };
    let kind = att
        .as_ref()
        .map_or("none", |a| a.0.rsplit('.').next().unwrap_or("none"));
    if let Some((name, ctype, data)) = att {
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            b64(&data)
        ));
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    (m.into_bytes(), kind)
}

fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let rules = sealgate_dlp::RuleSet::load_builtin().expect("built-in rules load");
    let limits = InspectLimits::default();
    let mut g = Gen(Rng(0x9E37_79B9_7F4A_7C15));
    let mut corpus = Vec::new();
    let mut total = 0usize;
    let mut kinds = Vec::new();
    while total < mb << 20 {
        let (m, kind) = message(&mut g, corpus.len());
        total += m.len();
        corpus.push(m);
        kinds.push(kind);
    }
    println!(
        "corpus: {} messages, {:.1} MB of .eml (English prose with clinical and office words; bodies text/HTML, ~1 in 2 with a docx/xlsx/csv/PDF/zip attachment)",
        corpus.len(),
        total as f64 / 1e6
    );
    // Warm-up (page faults, lazy statics), not timed.
    for m in corpus.iter().take(50) {
        let _ = inspect(m, &rules, &limits);
    }
    // Each phase runs RUNS times and the fastest run counts: on a shared VM the
    // slower runs measure the neighbours, not the code. Per attachment kind too.
    const RUNS: usize = 5;
    let mut kind_bytes: BTreeMap<&str, usize> = BTreeMap::new();
    for (m, kind) in corpus.iter().zip(&kinds) {
        *kind_bytes.entry(kind).or_default() += m.len();
    }
    let mut kind_secs: BTreeMap<&str, [f64; 2]> = BTreeMap::new();
    let mut keep_fastest = |phase: usize, times: BTreeMap<&'static str, f64>| {
        for (kind, secs) in times {
            let k = kind_secs.entry(kind).or_insert([f64::MAX; 2]);
            k[phase] = k[phase].min(secs);
        }
    };
    let mut t_extract = f64::MAX;
    let mut extracted = 0usize;
    let mut extractions = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut times = BTreeMap::new();
        let mut run = Vec::with_capacity(corpus.len());
        extracted = 0;
        for (m, &kind) in corpus.iter().zip(&kinds) {
            let one = Instant::now();
            let e = extract(m, &limits);
            *times.entry(kind).or_default() += one.elapsed().as_secs_f64();
            extracted += e.texts.iter().map(|t| t.text.len()).sum::<usize>();
            run.push(e);
        }
        t_extract = t_extract.min(t.elapsed().as_secs_f64());
        keep_fastest(0, times);
        extractions = run;
    }
    let mut t_detect = f64::MAX;
    let mut findings = 0usize;
    let mut unscannable = 0usize;
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut times = BTreeMap::new();
        findings = 0;
        unscannable = 0;
        for (e, &kind) in extractions.iter().zip(&kinds) {
            let one = Instant::now();
            let i = inspect_extraction(e, &rules);
            *times.entry(kind).or_default() += one.elapsed().as_secs_f64();
            findings += i.findings.len();
            unscannable += i.unscannable.len();
        }
        t_detect = t_detect.min(t.elapsed().as_secs_f64());
        keep_fastest(1, times);
    }
    let whole = t_extract + t_detect;
    let rate = |secs: f64| total as f64 / 1e6 / secs;
    println!(
        "whole stage (MIME decode + extraction + detection), one core, fastest of {RUNS}: {:>7.1} MB/s of .eml ({:.2} s)",
        rate(whole),
        whole
    );
    println!(
        "  extraction: {:>7.1} MB/s ({:.0}% of the time; {:.1} MB of text out)",
        rate(t_extract),
        100.0 * t_extract / whole,
        extracted as f64 / 1e6
    );
    println!(
        "  detection on the extracted text: {:>7.1} MB/s of text",
        extracted as f64 / 1e6 / t_detect
    );
    println!("  findings: {findings} (detector x message), unscannable parts: {unscannable}");
    println!(
        "  by attachment kind, MB/s of those messages' .eml bytes: whole stage (extraction alone)"
    );
    for (kind, [ex, det]) in kind_secs {
        let mb = kind_bytes[kind] as f64 / 1e6;
        println!(
            "    {kind:<5} {:>7.1} ({:>6.1})  {mb:.1} MB",
            mb / (ex + det),
            mb / ex,
        );
    }
}
