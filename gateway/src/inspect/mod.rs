//! Inspect: turn a spooled message into text parts and run the DLP rules over each.
//!
//! `extract` walks every MIME part (any charset and transfer encoding, nested
//! `message/rfc822`), free-text headers, attachment names, HTML, Office Open XML, PDF and
//! zip archives, within [`InspectLimits`]. Whatever cannot be read becomes an
//! [`Unscannable`] with its reason, never a silent skip. `inspect` scans each text on its
//! own (keyword proximity never crosses parts) and merges the results so that a value
//! quoted in several parts counts once.
//!
//! Nothing here logs; callers may log detector ids, counts, reason codes and part
//! numbers, never text, subjects, file names or matched values.

mod archive;
mod blob;
mod gzip;
mod html;
mod limits;
mod mask;
mod mime;
mod ocr;
mod office;
mod ole;
mod pdf;
pub mod report;
mod rtf;
mod runs;
mod sevenz;
mod tar;
mod tnef;
pub mod worker;

// The Office XML and PDF content tokenizers: pure, in sealgate-parse (fuzzed there).
use sealgate_parse::{office_xml as xml, pdf_content};

pub use html::html_to_text;
pub use limits::InspectLimits;
pub use mask::mask_value;

use limits::Budget;
use sealgate_dlp::{Action, Confidence, DetectorId, PolicyHit, RuleSet};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// Where a text came from inside a message, e.g. `2/1:report.docx` or
/// `3:bundle.zip!data/people.csv` or `header:subject`.
///
/// MIME parts are numbered as IMAP does (`1`, `2/1`); `:name` gives an attachment's file
/// name (long digit runs masked), `!name` an entry inside an archive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PartPath(String);

impl PartPath {
    /// The whole message (the root of every path).
    pub fn root() -> Self {
        PartPath(String::new())
    }

    /// The path as a string (empty for the message root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `n`-th (1-based) MIME child of this part.
    pub(crate) fn child(&self, n: usize) -> Self {
        self.join('/', &n.to_string())
    }

    /// This part with its attachment file name shown.
    pub(crate) fn named(&self, name: Option<&str>) -> Self {
        match name {
            Some(n) if !n.is_empty() => PartPath(format!("{}:{}", self.0, display_name(n))),
            _ => self.clone(),
        }
    }

    /// An entry of the archive at this path.
    pub(crate) fn entry(&self, name: &str) -> Self {
        PartPath(format!("{}!{}", self.0, display_name(name)))
    }

    /// A header of the message at this path.
    pub(crate) fn header(&self, field: &str) -> Self {
        self.join('/', &format!("header:{field}"))
    }

    fn join(&self, sep: char, seg: &str) -> Self {
        if self.0.is_empty() {
            PartPath(seg.to_string())
        } else {
            PartPath(format!("{}{sep}{seg}", self.0))
        }
    }
}

impl fmt::Display for PartPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("message")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// A file name as shown in a path: control characters dropped, at most 80 characters,
/// and digit runs that could be identifiers masked (names are scanned as text too, and
/// paths are printed where matched values must not be).
fn display_name(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).take(80).collect();
    mask::mask_digit_runs(&clean)
}

/// What kind of text a [`TextPart`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// A free-text header (subject, display names, comments, keywords).
    Header,
    /// An attachment or archive entry's file name.
    FileName,
    /// A `text/plain` body.
    TextBody,
    /// A `text/html` body, converted to text.
    HtmlBody,
    /// A text attachment (plain, CSV, JSON, XML...).
    TextAttachment,
    /// An HTML attachment, converted to text.
    HtmlAttachment,
    /// Word document text.
    Docx,
    /// Excel workbook text (shared strings and cell values).
    Xlsx,
    /// PowerPoint slide and note text.
    Pptx,
    /// PDF page text.
    Pdf,
    /// Legacy Word (.doc) text.
    Doc,
    /// Legacy Excel (.xls) text and cell numbers.
    Xls,
    /// Legacy PowerPoint (.ppt) text.
    Ppt,
    /// An RTF document's text, without its markup.
    Rtf,
    /// Text of an Outlook TNEF wrapper (winmail.dat): body and properties.
    Tnef,
    /// Text read from an image by OCR.
    ImageText,
    /// Raw bytes of input that did not parse as a message, scanned as text.
    Raw,
}

impl PartKind {
    /// Snake-case name as used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PartKind::Header => "header",
            PartKind::FileName => "file_name",
            PartKind::TextBody => "text_body",
            PartKind::HtmlBody => "html_body",
            PartKind::TextAttachment => "text_attachment",
            PartKind::HtmlAttachment => "html_attachment",
            PartKind::Docx => "docx",
            PartKind::Xlsx => "xlsx",
            PartKind::Pptx => "pptx",
            PartKind::Pdf => "pdf",
            PartKind::Doc => "doc",
            PartKind::Xls => "xls",
            PartKind::Ppt => "ppt",
            PartKind::Rtf => "rtf",
            PartKind::Tnef => "tnef",
            PartKind::ImageText => "ocr",
            PartKind::Raw => "raw",
        }
    }
}

impl fmt::Display for PartKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of text extracted from a message.
#[derive(Debug, Clone)]
pub struct TextPart {
    /// Where it came from.
    pub path: PartPath,
    /// What it is.
    pub kind: PartKind,
    /// The text itself (content: never log it).
    pub text: String,
}

/// Why a part could not be scanned (in full).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnscannableReason {
    /// Password-protected: encrypted zip entry, encrypted PDF, or protected Office file.
    #[error("encrypted ({0})")]
    Encrypted(&'static str),
    /// The container or document is damaged; the detail is the parser's reason.
    #[error("corrupt {format}: {detail}")]
    Corrupt {
        /// Which format failed to parse (`zip`, `pdf`, `docx`, `mime`...).
        format: &'static str,
        /// The parser's reason (never content).
        detail: String,
    },
    /// A transfer encoding (base64, quoted-printable) could not be decoded cleanly; the
    /// part was scanned as far as it decoded.
    #[error("transfer encoding could not be fully decoded (scanned as far as it decoded)")]
    BadTransferEncoding,
    /// Containers nested deeper than `max_depth` (or `max_multipart_nesting`).
    #[error("nested deeper than {limit} levels")]
    TooDeep {
        /// The limit that was hit.
        limit: usize,
    },
    /// One part or entry is larger than `max_part_bytes`.
    #[error("{size} bytes exceeds the per-part limit of {limit}")]
    TooLarge {
        /// Its (declared or decoded) size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The message's expansion budget (`max_expanded_bytes`) ran out before this part.
    #[error("message expansion budget exhausted ({limit} bytes)")]
    BudgetExhausted {
        /// The limit.
        limit: u64,
    },
    /// An archive entry expands more than `max_compression_ratio` times (zip bomb).
    #[error("compression ratio {ratio}:1 exceeds {limit}:1")]
    CompressionRatio {
        /// Uncompressed / compressed size.
        ratio: u64,
        /// The limit.
        limit: u64,
    },
    /// An archive has more entries than `max_archive_entries`; the rest were not read.
    #[error("{count} entries; only the first {limit} were read")]
    TooManyEntries {
        /// Entries in the archive.
        count: usize,
        /// Entries read.
        limit: usize,
    },
    /// A PDF has more pages than `max_pdf_pages`; the rest were not read.
    #[error("{count} pages; only the first {limit} were read")]
    TooManyPages {
        /// Pages in the document.
        count: usize,
        /// Pages read.
        limit: usize,
    },
    /// Extraction ran out of time (`max_pdf_seconds`); what was read by then was scanned.
    #[error(
        "{format} extraction stopped after {seconds} s; only what was read by then was scanned"
    )]
    TimeLimit {
        /// The format.
        format: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// A zip entry uses a compression method this build does not read.
    #[error("unsupported compression method ({0})")]
    UnsupportedCompression(String),
    /// An image that OCR did not read (off, not installed, or over the per-message cap).
    #[error("image ({0})")]
    Image(String),
    /// A document with pages but no extractable text (a scan, or text drawn as shapes).
    #[error("no extractable text in {0} (scanned image?)")]
    NoText(&'static str),
    /// A binary type there is no extractor for.
    #[error("unsupported binary type ({0})")]
    UnsupportedType(String),
    /// An extractor panicked on this input; it was contained and the part skipped.
    #[error("{0} extractor failed on malformed input")]
    ExtractorPanic(&'static str),
}

impl UnscannableReason {
    /// A [`UnscannableReason::Corrupt`] whose parser message is cut to 160 characters
    /// with identifier-like digit runs masked: parser messages sometimes quote input.
    pub(crate) fn corrupt(format: &'static str, detail: impl fmt::Display) -> Self {
        let d: String = detail.to_string().chars().take(160).collect();
        UnscannableReason::Corrupt {
            format,
            detail: mask::mask_digit_runs(&d),
        }
    }

    /// A stable short code for metrics, logs and policy (`encrypted`, `too_deep`...).
    pub fn code(&self) -> &'static str {
        match self {
            UnscannableReason::Encrypted(_) => "encrypted",
            UnscannableReason::Corrupt { .. } => "corrupt",
            UnscannableReason::BadTransferEncoding => "bad_transfer_encoding",
            UnscannableReason::TooDeep { .. } => "too_deep",
            UnscannableReason::TooLarge { .. } => "too_large",
            UnscannableReason::BudgetExhausted { .. } => "budget_exhausted",
            UnscannableReason::CompressionRatio { .. } => "compression_ratio",
            UnscannableReason::TooManyEntries { .. } => "too_many_entries",
            UnscannableReason::TooManyPages { .. } => "too_many_pages",
            UnscannableReason::TimeLimit { .. } => "time_limit",
            UnscannableReason::UnsupportedCompression(_) => "unsupported_compression",
            UnscannableReason::Image(_) => "image",
            UnscannableReason::NoText(_) => "no_text",
            UnscannableReason::UnsupportedType(_) => "unsupported_type",
            UnscannableReason::ExtractorPanic(_) => "extractor_panic",
        }
    }
}

impl Serialize for UnscannableReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// A part that was not (fully) scanned, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unscannable {
    /// Where it is.
    pub path: PartPath,
    /// Why it was not scanned (serialised as its code).
    pub reason: UnscannableReason,
    /// The reason in words.
    pub detail: String,
}

/// Everything extracted from one message.
#[derive(Debug, Clone, Default)]
pub struct Extraction {
    /// Texts to scan, in message order.
    pub texts: Vec<TextPart>,
    /// Parts that could not be (fully) read.
    pub unscannable: Vec<Unscannable>,
}

/// Shared state of one extraction: limits, budget and output.
pub(crate) struct Ctx<'l> {
    pub(crate) limits: &'l InspectLimits,
    pub(crate) budget: Budget,
    pub(crate) out: Extraction,
    /// Images read by OCR so far.
    pub(crate) ocr_runs: usize,
    /// Time OCR has taken so far.
    pub(crate) ocr_time: std::time::Duration,
}

impl<'l> Ctx<'l> {
    fn new(limits: &'l InspectLimits) -> Self {
        Ctx {
            limits,
            budget: Budget::new(limits),
            out: Extraction::default(),
            ocr_runs: 0,
            ocr_time: std::time::Duration::ZERO,
        }
    }

    /// Records a text unless it is blank.
    pub(crate) fn text(&mut self, path: PartPath, kind: PartKind, text: String) {
        if !text.trim().is_empty() {
            self.out.texts.push(TextPart { path, kind, text });
        }
    }

    /// Records an unscannable part.
    pub(crate) fn unscannable(&mut self, path: PartPath, reason: UnscannableReason) {
        let detail = reason.to_string();
        self.out.unscannable.push(Unscannable {
            path,
            reason,
            detail,
        });
    }

    /// Charges `n` decoded bytes of one part against the limits; on refusal records why.
    pub(crate) fn charge(&mut self, path: &PartPath, n: u64) -> bool {
        if n > self.limits.max_part_bytes {
            self.unscannable(
                path.clone(),
                UnscannableReason::TooLarge {
                    size: n,
                    limit: self.limits.max_part_bytes,
                },
            );
            return false;
        }
        if !self.budget.take(n) {
            self.unscannable(
                path.clone(),
                UnscannableReason::BudgetExhausted {
                    limit: self.limits.max_expanded_bytes,
                },
            );
            return false;
        }
        true
    }

    /// True when `depth` is within `max_depth`; otherwise records why not.
    pub(crate) fn depth_ok(&mut self, path: &PartPath, depth: usize) -> bool {
        if depth > self.limits.max_depth {
            self.unscannable(
                path.clone(),
                UnscannableReason::TooDeep {
                    limit: self.limits.max_depth,
                },
            );
            return false;
        }
        true
    }
}

/// Extracts every scannable text of an RFC 5322 message (as stored in the spool).
/// Never fails and never panics: what cannot be read is listed in `unscannable`.
pub fn extract(msg: &[u8], limits: &InspectLimits) -> Extraction {
    let mut ctx = Ctx::new(limits);
    mime::walk_message(&mut ctx, msg, &PartPath::root(), 0);
    ctx.out
}

/// What one detector found across a whole message.
#[derive(Debug, Clone, Serialize)]
pub struct MessageFinding {
    /// Which detector.
    pub detector: DetectorId,
    /// Highest confidence over all parts.
    pub confidence: Confidence,
    /// Distinct values over all parts (a value in the body and an attachment counts once).
    pub count: usize,
    /// All accepted matches over all parts, repeats included.
    pub total: usize,
    /// Parts where it matched, in message order.
    pub parts: Vec<PartPath>,
    /// Masked forms of a few distinct values (e.g. `***-**-4399`); never raw values.
    pub samples: Vec<String>,
}

/// What detectors matched in one part.
#[derive(Debug, Clone, Serialize)]
pub struct PartFinding {
    /// The part.
    pub path: PartPath,
    /// Its kind.
    pub kind: PartKind,
    /// Detectors that matched in it, with their confidence and distinct count there.
    pub detectors: Vec<PartDetector>,
}

/// One detector's result in one part.
#[derive(Debug, Clone, Serialize)]
pub struct PartDetector {
    /// Which detector.
    pub detector: DetectorId,
    /// Highest confidence in this part.
    pub confidence: Confidence,
    /// Distinct values in this part.
    pub count: usize,
}

/// The result of inspecting one message: findings, unscannable parts and policy outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// Per detector, merged over the whole message.
    pub findings: Vec<MessageFinding>,
    /// Per part that had any finding.
    pub parts: Vec<PartFinding>,
    /// Parts that could not be (fully) scanned.
    pub unscannable: Vec<Unscannable>,
    /// Policy rules that fired on the merged findings.
    #[serde(serialize_with = "ser_hits")]
    pub policy_hits: Vec<PolicyHit>,
    /// The strongest action among `policy_hits`.
    pub action: Option<Action>,
    /// Number of texts scanned.
    pub texts_scanned: usize,
    /// File name extensions of attachments and archive entries (lower case,
    /// distinct, sorted): what an attachment policy judges, without the names.
    pub extensions: Vec<String>,
}

fn ser_hits<S: serde::Serializer>(hits: &[PolicyHit], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(hits.len()))?;
    for h in hits {
        seq.serialize_element(&serde_json::json!({
            "policy": h.policy.as_str(),
            "rule": h.rule,
            "action": h.action,
        }))?;
    }
    seq.end()
}

/// Samples kept per detector in [`MessageFinding::samples`].
const MAX_SAMPLES: usize = 3;

/// Extracts and scans a message: [`extract`] then [`inspect_extraction`].
pub fn inspect(msg: &[u8], rules: &RuleSet, limits: &InspectLimits) -> Inspection {
    inspect_extraction(&extract(msg, limits), rules)
}

/// Scans each extracted text on its own and merges the findings over the message.
pub fn inspect_extraction(ex: &Extraction, rules: &RuleSet) -> Inspection {
    let mut acc = rules.accumulator();
    let mut parts = Vec::new();
    // Detector id → (parts in order, masked samples).
    let mut seen: BTreeMap<DetectorId, (Vec<PartPath>, Vec<String>)> = BTreeMap::new();
    for t in &ex.texts {
        let f = rules.scan(&t.text);
        if f.is_empty() {
            continue;
        }
        acc.add(&t.text, &f);
        let mut dets = Vec::new();
        for d in &f.detectors {
            dets.push(PartDetector {
                detector: d.detector.clone(),
                confidence: d.confidence,
                count: d.unique_count,
            });
            let (paths, samples) = seen.entry(d.detector.clone()).or_default();
            if !paths.contains(&t.path) {
                paths.push(t.path.clone());
            }
            // Bounded: repeats mask alike (every dictionary term is `*******`), and
            // masking each of thousands of matches would cost more than finding them.
            for m in d.matches.iter().take(MAX_SAMPLES * 8) {
                if samples.len() >= MAX_SAMPLES {
                    break;
                }
                if let Some(raw) = t.text.get(m.start..m.end) {
                    let masked = mask_value(raw);
                    if !samples.contains(&masked) {
                        samples.push(masked);
                    }
                }
            }
        }
        parts.push(PartFinding {
            path: t.path.clone(),
            kind: t.kind,
            detectors: dets,
        });
    }
    let merged = acc.finish();
    let policy_hits = rules.evaluate(&merged);
    let action = sealgate_dlp::strongest_action(&policy_hits);
    let findings = merged
        .detectors
        .iter()
        .map(|d| {
            let (paths, samples) = seen.remove(&d.detector).unwrap_or_default();
            MessageFinding {
                detector: d.detector.clone(),
                confidence: d.confidence,
                count: d.unique_count,
                total: d.total_count,
                parts: paths,
                samples,
            }
        })
        .collect();
    Inspection {
        findings,
        parts,
        unscannable: ex.unscannable.clone(),
        policy_hits,
        action,
        texts_scanned: ex.texts.len(),
        extensions: extensions(ex),
    }
}

/// The extensions of every attachment and archive-entry name in `ex`: the
/// text after the last dot when it is 1 to 10 letters or digits.
fn extensions(ex: &Extraction) -> Vec<String> {
    let mut out: Vec<String> = ex
        .texts
        .iter()
        .filter(|t| t.kind == PartKind::FileName)
        .filter_map(|t| {
            let (_, ext) = t.text.trim().rsplit_once('.')?;
            let ok =
                (1..=10).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric());
            ok.then(|| ext.to_ascii_lowercase())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Scans one plain text as if it were a message body (for `sealgate dlp scan --text`).
pub fn inspect_text(text: &str, rules: &RuleSet) -> Inspection {
    let ex = Extraction {
        texts: vec![TextPart {
            path: PartPath("text".to_string()),
            kind: PartKind::TextBody,
            text: text.to_string(),
        }],
        unscannable: Vec::new(),
    };
    inspect_extraction(&ex, rules)
}

#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;
