//! Evaluation against the labelled dev set (`shared/eval/dlp-dev`), shared by
//! `examples/eval.rs` (prints the table) and `tests/eval_dev_set.rs` (asserts floors).
//! Reports counts and case ids, never matched values.

#![allow(dead_code)]

use sealgate_dlp::{RuleSet, Validator};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Presidio entity → Sealgate detectors whose matches count for it.
pub fn detectors_for(entity: &str) -> Option<&'static [&'static str]> {
    Some(match entity {
        "US_SSN" => &["us_ssn"],
        "CREDIT_CARD" => &["credit_card"],
        "ABA_ROUTING_NUMBER" => &["aba_routing"],
        "US_BANK_NUMBER" => &["us_bank_account"],
        "US_DRIVER_LICENSE" => &["us_drivers_license"],
        "US_ITIN" => &["us_itin"],
        "US_MBI" => &["us_mbi"],
        "US_NPI" => &["us_npi"],
        "US_PASSPORT" => &["us_passport"],
        "MEDICAL_LICENSE (US DEA number)" => &["dea_number"],
        "IBAN_CODE" => &["iban"],
        "EMAIL_ADDRESS" => &["email_address"],
        "PHONE_NUMBER" => &["us_phone", "intl_phone"],
        _ => return None,
    })
}

/// Context word to put in front of a missed case, to tell "keyword-gated by design"
/// misses from real ones.
fn context_for(entity: &str) -> &'static str {
    match entity {
        "US_SSN" => "SSN: ",
        "US_BANK_NUMBER" => "bank account number: ",
        "US_DRIVER_LICENSE" => "driver license: ",
        "US_PASSPORT" => "passport number: ",
        "US_ITIN" => "ITIN: ",
        _ => "",
    }
}

/// Per-entity span-level counts.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    /// Misses that the detector finds once a context keyword is present.
    pub fn_keyword_gated: usize,
    pub cases: usize,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// Recall when keyword-gated misses are counted as intended behaviour.
    pub fn recall_in_context(&self) -> f64 {
        ratio(self.tp + self.fn_keyword_gated, self.tp + self.fn_)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// One case that did not come out as labelled.
#[derive(Debug, Clone)]
pub struct Miss {
    pub id: String,
    pub entity: String,
    pub kind: &'static str,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ChecksumReport {
    pub total: usize,
    pub agree: usize,
    pub disagreements: Vec<String>,
    pub detector_rejects_checked: usize,
    pub detector_rejects_failed: Vec<String>,
}

#[derive(Debug, Default)]
pub struct ContextReport {
    pub total: usize,
    pub medium_or_better: usize,
    pub misses: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub per_entity: BTreeMap<String, Counts>,
    pub unmapped: BTreeMap<String, usize>,
    pub misses: Vec<Miss>,
    pub checksum: ChecksumReport,
    pub context: ContextReport,
}

/// The dev set next to the repository checkout: `<crate>/../../shared/eval/dlp-dev`.
pub fn default_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/eval/dlp-dev")
}

pub fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dlp-rules")
}

fn char_to_byte(text: &str, c: usize) -> usize {
    text.char_indices().nth(c).map_or(text.len(), |(b, _)| b)
}

/// Byte spans found by the detectors mapped to `entity`, at any confidence.
fn found_spans(rs: &RuleSet, text: &str, dets: &[&str]) -> Vec<(usize, usize)> {
    let f = rs.scan(text);
    let mut v: Vec<(usize, usize)> = dets
        .iter()
        .filter_map(|d| f.get(d))
        .flat_map(|d| d.matches.iter().map(|m| (m.start, m.end)))
        .collect();
    v.sort();
    v
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

pub fn run(rs: &RuleSet, dir: &Path) -> Result<Report, String> {
    let mut rep = Report::default();
    let cases_path = dir.join("presidio-recognizer-cases.jsonl");
    let src = std::fs::read_to_string(&cases_path)
        .map_err(|e| format!("{}: {e}", cases_path.display()))?;
    for (n, line) in src
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let case: Value = serde_json::from_str(line)
            .map_err(|e| format!("{}:{}: {e}", cases_path.display(), n + 1))?;
        let entity = case["entity"].as_str().unwrap_or_default().to_string();
        let id = case["id"].as_str().unwrap_or_default().to_string();
        let text = case["text"].as_str().unwrap_or_default();
        let Some(dets) = detectors_for(&entity) else {
            *rep.unmapped.entry(entity).or_default() += 1;
            continue;
        };
        let expected: Vec<(usize, usize)> = case["expected_spans"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| Some((s[0].as_u64()? as usize, s[1].as_u64()? as usize)))
                    .map(|(s, e)| (char_to_byte(text, s), char_to_byte(text, e)))
                    .collect()
            })
            .unwrap_or_default();
        let found = found_spans(rs, text, dets);
        let c = rep.per_entity.entry(entity.clone()).or_default();
        c.cases += 1;
        let mut used = vec![false; found.len()];
        for &exp in &expected {
            match found
                .iter()
                .enumerate()
                .position(|(i, &f)| !used[i] && overlaps(f, exp))
            {
                Some(i) => {
                    used[i] = true;
                    c.tp += 1;
                }
                None => {
                    c.fn_ += 1;
                    // Would the detector find it with a context keyword in front?
                    let ctx = context_for(&entity);
                    let gated = !ctx.is_empty() && {
                        let shifted = (exp.0 + ctx.len(), exp.1 + ctx.len());
                        found_spans(rs, &format!("{ctx}{text}"), dets)
                            .iter()
                            .any(|&f| overlaps(f, shifted))
                    };
                    if gated {
                        c.fn_keyword_gated += 1;
                    }
                    rep.misses.push(Miss {
                        id: id.clone(),
                        entity: entity.clone(),
                        kind: "FN",
                        reason: if gated {
                            "keyword-gated: found once a context keyword is present (by design)"
                                .into()
                        } else {
                            "not found".into()
                        },
                    });
                }
            }
        }
        for (i, u) in used.iter().enumerate() {
            if !u {
                c.fp += 1;
                rep.misses.push(Miss {
                    id: id.clone(),
                    entity: entity.clone(),
                    kind: "FP",
                    reason: format!("unexpected match at bytes {}..{}", found[i].0, found[i].1),
                });
            }
        }
    }

    // Checksum vectors: each validator must agree with each label.
    let vec_path = dir.join("checksum-vectors-dd-sds.jsonl");
    let src =
        std::fs::read_to_string(&vec_path).map_err(|e| format!("{}: {e}", vec_path.display()))?;
    for line in src.lines().filter(|l| !l.trim().is_empty()) {
        let row: Value =
            serde_json::from_str(line).map_err(|e| format!("{}: {e}", vec_path.display()))?;
        let name = row["validator"].as_str().unwrap_or_default();
        let value = row["value"].as_str().unwrap_or_default();
        let valid = row["label"].as_str() == Some("valid");
        let note = row["note"].as_str().unwrap_or_default();
        let (validators, norm, det, ctx): (&[Validator], sealgate_dlp::Normalize, &str, &str) =
            match name {
                "ABA_RTN" => (
                    &[Validator::AbaChecksum],
                    sealgate_dlp::Normalize::Digits,
                    "aba_routing",
                    "routing number ",
                ),
                "US_DEA" => (
                    &[Validator::DeaChecksum],
                    sealgate_dlp::Normalize::AlnumUpper,
                    "dea_number",
                    "DEA ",
                ),
                "US_NPI_checksum_only" => (
                    &[Validator::NpiLuhn],
                    sealgate_dlp::Normalize::Digits,
                    "us_npi",
                    "NPI ",
                ),
                "LUHN" => (
                    &[Validator::Luhn],
                    sealgate_dlp::Normalize::Digits,
                    "credit_card",
                    "card ",
                ),
                "IBAN" => (
                    &[Validator::IbanMod97, Validator::IbanStructure],
                    sealgate_dlp::Normalize::AlnumUpper,
                    "iban",
                    "IBAN ",
                ),
                other => {
                    return Err(format!(
                        "unknown validator family `{other}` in checksum vectors"
                    ))
                }
            };
        let v = norm.apply(value);
        let got = validators.iter().all(|x| x.check(&v, 2100));
        rep.checksum.total += 1;
        if got == valid {
            rep.checksum.agree += 1;
        } else {
            rep.checksum.disagreements.push(format!(
                "{name} row {} expected {}",
                rep.checksum.total, row["label"]
            ));
        }
        if note.contains("should reject") || note.contains("not a plausible") {
            rep.checksum.detector_rejects_checked += 1;
            let f = rs.scan(&format!("{ctx}{value}"));
            if f.get(det).is_some() {
                rep.checksum.detector_rejects_failed.push(format!(
                    "{name} row {}: detector {det} did not reject",
                    rep.checksum.total
                ));
            }
        }
    }

    // Context sentences: with the context word present, our detector should say medium+.
    let ctx_path = dir.join("presidio-context-sentences.tsv");
    let src =
        std::fs::read_to_string(&ctx_path).map_err(|e| format!("{}: {e}", ctx_path.display()))?;
    for (n, line) in src.lines().enumerate().skip(1) {
        let Some((entity, sentence)) = line.split_once('\t') else {
            continue;
        };
        let Some(dets) = detectors_for(entity) else {
            continue;
        };
        rep.context.total += 1;
        let f = rs.scan(sentence);
        let best = dets
            .iter()
            .filter_map(|d| f.get(d))
            .map(|d| d.confidence)
            .max();
        if best >= Some(sealgate_dlp::Confidence::Medium) {
            rep.context.medium_or_better += 1;
        } else {
            rep.context
                .misses
                .push(format!("line {} ({entity}): got {:?}", n + 1, best));
        }
    }
    Ok(rep)
}
