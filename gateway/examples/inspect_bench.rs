//! Whole-stage DLP benchmark (run by bench/inspect.sh): generates a corpus
//! of realistic .eml messages — text and HTML bodies, quoted-printable and
//! base64, attachments in docx, xlsx, csv, PDF and zip, sparse identifiers —
//! and times the inspect stage on one core: MIME decode + extraction +
//! detection, exactly what the gateway runs per message. Prints MB/s of
//! message bytes, the share spent extracting, and the findings seen.
//!
//! Usage: inspect_bench [MB]

use sealgate::inspect::{extract, inspect, inspect_extraction, InspectLimits};
use std::io::Write;
use std::time::Instant;

const WORDS: &[&str] = &[
    "patient",
    "results",
    "potassium",
    "invoice",
    "meeting",
    "schedule",
    "report",
    "quarterly",
    "review",
    "insulin",
    "referral",
    "appointment",
    "billing",
    "claim",
    "policy",
    "renewal",
    "contract",
    "draft",
    "budget",
    "cardiology",
    "radiology",
    "discharge",
    "summary",
    "the",
    "and",
    "of",
    "to",
    "please",
    "attached",
    "regards",
    "thanks",
    "for",
    "with",
    "on",
    "team",
];

/// A deterministic generator (xorshift), so every run measures the same corpus.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn prose(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes + 16);
        while s.len() < bytes {
            s.push_str(WORDS[self.below(WORDS.len() as u64) as usize]);
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

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

const CT: &[u8] = br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#;

fn docx(text: &str) -> Vec<u8> {
    let mut body = String::from(
        r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#,
    );
    for p in text.split('\n') {
        body.push_str(&format!("<w:p><w:r><w:t>{p}</w:t></w:r></w:p>"));
    }
    body.push_str("</w:body></w:document>");
    zip_of(&[
        ("[Content_Types].xml", CT),
        ("word/document.xml", body.as_bytes()),
    ])
}

fn xlsx(cells: &[String]) -> Vec<u8> {
    let mut sst = String::from(r#"<?xml version="1.0"?><sst>"#);
    let mut sheet = String::from(r#"<?xml version="1.0"?><worksheet><sheetData>"#);
    for (i, c) in cells.iter().enumerate() {
        sst.push_str(&format!("<si><t>{c}</t></si>"));
        sheet.push_str(&format!(
            "<row r=\"{}\"><c r=\"A{}\" t=\"s\"><v>{i}</v></c><c r=\"B{}\"><v>{}</v></c></row>",
            i + 1,
            i + 1,
            i + 1,
            i * 7
        ));
    }
    sst.push_str("</sst>");
    sheet.push_str("</sheetData></worksheet>");
    zip_of(&[
        ("[Content_Types].xml", CT),
        ("xl/workbook.xml", b"<workbook/>"),
        ("xl/sharedStrings.xml", sst.as_bytes()),
        ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
    ])
}

/// A PDF with one page per line group of `text`.
fn pdf(text: &str) -> Vec<u8> {
    let lines: Vec<&str> = text.lines().collect();
    let pages: Vec<String> = lines
        .chunks(40)
        .map(|ls| {
            let mut c = String::from("BT /F1 10 Tf 50 750 Td 12 TL");
            for l in ls {
                c.push_str(&format!(" ({}) '", l.replace(['(', ')', '\\'], " ")));
            }
            c.push_str(" ET");
            c
        })
        .collect();
    let n = pages.len().max(1);
    let mut objs = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {n} >>",
            (0..n)
                .map(|i| format!("{} 0 R", 4 + 2 * i))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
    ];
    for (i, c) in pages.iter().enumerate() {
        objs.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R /Resources << /Font << /F1 3 0 R >> >> >>",
            5 + 2 * i
        ));
        objs.push(format!("<< /Length {} >>\nstream\n{c}\nendstream", c.len()));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objs.len() + 1).as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objs.len() + 1
        )
        .as_bytes(),
    );
    out
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
            docx(&attached),
        )),
        1 => Some((
            "claims.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            xlsx(&attached.split('\n').map(str::to_string).collect::<Vec<_>>()),
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
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
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
        "corpus: {} messages, {:.1} MB of .eml (bodies text/HTML, ~1 in 2 with a docx/xlsx/csv/PDF/zip attachment)",
        corpus.len(),
        total as f64 / 1e6
    );
    // Warm-up (page faults, lazy statics), not timed.
    for m in corpus.iter().take(50) {
        let _ = inspect(m, &rules, &limits);
    }
    let t = Instant::now();
    let mut extracted = 0usize;
    let mut extractions = Vec::with_capacity(corpus.len());
    let mut by_kind: std::collections::BTreeMap<&str, (f64, usize)> = Default::default();
    for (m, kind) in corpus.iter().zip(&kinds) {
        let one = Instant::now();
        let e = extract(m, &limits);
        let k = by_kind.entry(kind).or_default();
        k.0 += one.elapsed().as_secs_f64();
        k.1 += m.len();
        extracted += e.texts.iter().map(|t| t.text.len()).sum::<usize>();
        extractions.push(e);
    }
    let t_extract = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut findings = 0usize;
    let mut unscannable = 0usize;
    for e in &extractions {
        let i = inspect_extraction(e, &rules);
        findings += i.findings.len();
        unscannable += i.unscannable.len();
    }
    let t_detect = t.elapsed().as_secs_f64();
    let whole = t_extract + t_detect;
    let rate = |secs: f64| total as f64 / 1e6 / secs;
    println!(
        "whole stage (MIME decode + extraction + detection), one core: {:>7.1} MB/s of .eml ({:.2} s)",
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
    println!("  extraction by attachment kind (MB/s of those messages' .eml bytes):");
    for (kind, (secs, bytes)) in by_kind {
        println!(
            "    {kind:<5} {:>7.1} MB/s  ({:.1} MB)",
            bytes as f64 / 1e6 / secs,
            bytes as f64 / 1e6
        );
    }
}
