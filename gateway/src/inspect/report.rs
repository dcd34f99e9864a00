//! Rendering an [`Inspection`] for people (`sealgate dlp scan`) and for tools (JSON
//! lines). Neither form contains a matched value: only detector ids, counts, part paths,
//! masked samples and reasons.

use super::Inspection;
use sealgate_dlp::{ExampleFailure, RuleSet};
use serde::Serialize;
use std::fmt::Write;

/// One JSON object (one line) for one scanned file: `{"file": ..., "findings": [...],
/// "parts": [...], "unscannable": [...], "policy_hits": [...], "action": ...,
/// "texts_scanned": N}`.
pub fn to_json(file: &str, inspection: &Inspection) -> String {
    #[derive(Serialize)]
    struct FileReport<'a> {
        file: &'a str,
        #[serde(flatten)]
        inspection: &'a Inspection,
    }
    serde_json::to_string(&FileReport { file, inspection })
        .unwrap_or_else(|e| format!("{{\"file\":{file:?},\"error\":\"{e}\"}}"))
}

/// A human-readable report for one scanned file.
pub fn to_text(file: &str, i: &Inspection) -> String {
    let mut s = String::new();
    let action = i.action.map_or("none", |a| a.as_str());
    let _ = writeln!(
        s,
        "{file}: action {action}; {} detector(s), {} unscannable part(s), {} text(s) scanned",
        i.findings.len(),
        i.unscannable.len(),
        i.texts_scanned
    );
    for f in &i.findings {
        let parts: Vec<String> = f.parts.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            s,
            "  {:<20} {:<6} unique {:<4} total {:<4} in {}{}",
            f.detector.as_str(),
            f.confidence.as_str(),
            f.count,
            f.total,
            parts.join(", "),
            if f.samples.is_empty() {
                String::new()
            } else {
                format!("  e.g. {}", f.samples.join(" "))
            }
        );
    }
    for u in &i.unscannable {
        let _ = writeln!(s, "  unscannable {}: {}", u.path, u.detail);
    }
    for h in &i.policy_hits {
        let _ = writeln!(s, "  policy {}/{} -> {}", h.policy, h.rule, h.action);
    }
    s
}

/// Pass/fail of every detector's embedded examples: the report lines, and whether all
/// passed.
pub fn check_examples(rules: &RuleSet) -> (String, bool) {
    let fails: Vec<ExampleFailure> = rules.check_examples();
    let mut s = String::new();
    for d in rules.detector_info() {
        let mine: Vec<&ExampleFailure> = fails.iter().filter(|f| f.detector == d.id).collect();
        if mine.is_empty() {
            let _ = writeln!(s, "ok    {}", d.id);
        } else {
            let _ = writeln!(s, "FAIL  {} ({} example(s))", d.id, mine.len());
            for f in mine {
                // Example texts are synthetic data written into the rule files.
                let _ = writeln!(s, "      {f}");
            }
        }
    }
    let _ = writeln!(
        s,
        "{} detectors; examples: {} passed, {} failed",
        rules.detector_ids().len(),
        rules.example_count() - fails.len(),
        fails.len()
    );
    (s, fails.is_empty())
}
