//! `sealgate dlp scan` / `sealgate dlp check` end to end, on the committed fixtures in
//! `tests/fixtures/inspect/` (made by a short Python `email` + `zipfile` script: a real
//! multipart message with docx, xlsx, zip, PDF, PNG and a forwarded message attached).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inspect")
        .join(name)
}

fn sealgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealgate"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run sealgate")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn scan_json_lines_name_each_file_and_never_print_values() {
    let records = fixture("records.eml");
    let clean = fixture("clean.eml");
    let o = sealgate(&[
        "dlp",
        "scan",
        "--json",
        records.to_str().unwrap(),
        clean.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    for raw in [
        "536-90-4399",
        "536904399",
        "457-12-3456",
        "4556 7375 8689 9855",
        "3CD5-FG7-HJ89",
    ] {
        assert!(!out.contains(raw), "raw value {raw} printed: {out}");
    }
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    let r = &lines[0];
    assert!(r["file"].as_str().unwrap().ends_with("records.eml"));
    assert_eq!(r["action"], "encrypt");
    let by = |id: &str| {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["detector"] == id)
            .unwrap_or_else(|| panic!("no {id}: {r}"))
            .clone()
    };
    let ssn = by("us_ssn");
    assert_eq!(ssn["count"], 2, "{ssn}");
    assert_eq!(
        ssn["parts"],
        serde_json::json!(["1/1", "1/2", "2:summary.docx", "7/1"])
    );
    assert_eq!(
        by("credit_card")["parts"],
        serde_json::json!(["5:invoice.pdf"])
    );
    assert_eq!(by("us_mbi")["parts"], serde_json::json!(["3:members.xlsx"]));
    assert_eq!(
        by("date_of_birth")["parts"],
        serde_json::json!(["4:export.zip!export/people.csv"])
    );
    assert_eq!(r["unscannable"][0]["path"], "6:logo.png");
    assert_eq!(
        r["unscannable"][0]["reason"], "image",
        "a logo too small to OCR"
    );

    let c = &lines[1];
    assert!(c["file"].as_str().unwrap().ends_with("clean.eml"));
    assert_eq!(c["findings"], serde_json::json!([]));
    assert!(c["action"].is_null());
}

#[test]
fn scan_text_report_and_errors() {
    let o = sealgate(&["dlp", "scan", fixture("records.eml").to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("action encrypt"), "{out}");
    assert!(out.contains("***-**-4399"), "{out}");
    assert!(out.contains("unscannable 6:logo.png"), "{out}");

    let o = sealgate(&["dlp", "scan", "/nonexistent/x.eml"]);
    assert!(!o.status.success());
}

#[test]
fn check_runs_examples_and_names_broken_files() {
    let o = sealgate(&["dlp", "check"]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("ok    us_ssn"), "{out}");
    assert!(out.contains(" 0 failed"), "{out}");

    // A copy of the rules with one broken regex.
    let dir = tempfile::tempdir().unwrap();
    for sub in ["detectors", "keywords", "filters", "policies"] {
        let from = root().join("dlp-rules").join(sub);
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.path().join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    let ssn = dir.path().join("detectors/us_ssn.toml");
    let src = std::fs::read_to_string(&ssn).unwrap();
    let broken = src.replacen("regex = '", "regex = '[9-0]", 1);
    assert_ne!(
        src, broken,
        "us_ssn.toml has a single-quoted regex to break"
    );
    std::fs::write(&ssn, broken).unwrap();
    let o = sealgate(&["dlp", "check", "--rules", dir.path().to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("us_ssn.toml:"), "{err}");
    assert!(err.contains("bad regex"), "{err}");
}
