//! Compiled rule set and the scanner.
//!
//! Scanning is one leftmost-first pass of a single multi-pattern regex over the text
//! (the same work ripgrep does for an alternation). At each hit, an anchored
//! `MatchKind::All` check finds every other pattern matching at the same start, so
//! overlapping detectors (a 9-digit number can be an SSN, ABA or account number) all
//! see the candidate. Keywords are found once per text (`keywords.rs`, word by word),
//! only when a candidate or a dictionary detector needs them, and proximity is offset
//! arithmetic.

use crate::error::{line_of, RuleError, RuleErrorKind};
use crate::keywords::{KeywordIndex, Occurrences};
use crate::policy::{Condition, Policy, PolicyHit, PolicyId, PolicyRule};
use crate::rules::{
    parse_list, parse_toml, DetectorFile, ExampleDef, FilterAction, FilterKind, PolicyFile,
};
use crate::validators::{repeated_digits, Normalize, Validator};
use crate::{Confidence, DetectorId};
use regex_automata::meta::{self, Regex};
use regex_automata::{Anchored, Input, MatchKind, PatternSet};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Descriptive fields of a detector, for listings and the CLI.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorInfo {
    /// Detector id.
    pub id: DetectorId,
    /// Human-readable name.
    pub name: String,
    /// Rule version, bumped on every change.
    pub version: u32,
    /// What the detector finds and why its levels are set as they are.
    pub description: String,
}

/// One accepted match: byte span and confidence. For tests and the CLI only; never log
/// the text under a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MatchSpan {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// Confidence of this single match.
    pub confidence: Confidence,
}

/// What one detector found in one text.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorFinding {
    /// Which detector.
    pub detector: DetectorId,
    /// Highest confidence among its matches.
    pub confidence: Confidence,
    /// Distinct normalised values (any confidence).
    pub unique_count: usize,
    /// All accepted matches, repeats included.
    pub total_count: usize,
    /// Distinct values whose best match is at least low / medium / high.
    pub unique_by_confidence: [usize; 3],
    /// The accepted matches, in text order.
    pub matches: Vec<MatchSpan>,
    #[serde(skip)]
    index: usize,
}

impl DetectorFinding {
    /// Distinct values with confidence at least `c` (what policies count).
    pub fn unique_at_least(&self, c: Confidence) -> usize {
        self.unique_by_confidence[c.index()]
    }
}

/// Everything a scan found, one entry per detector that matched.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Findings {
    /// Per-detector results, in rule-set order.
    pub detectors: Vec<DetectorFinding>,
}

impl Findings {
    /// The finding of a detector by id, if it matched.
    pub fn get(&self, id: &str) -> Option<&DetectorFinding> {
        self.detectors.iter().find(|d| d.detector.as_str() == id)
    }

    /// True when no detector matched.
    pub fn is_empty(&self) -> bool {
        self.detectors.is_empty()
    }

    pub(crate) fn by_index(&self, i: usize) -> Option<&DetectorFinding> {
        self.detectors.iter().find(|d| d.index == i)
    }
}

/// An embedded `[[example]]` whose result differs from what the rule file says.
#[derive(Debug, Clone)]
pub struct ExampleFailure {
    /// Rule file of the example.
    pub file: PathBuf,
    /// Detector of the example.
    pub detector: DetectorId,
    /// 0-based position among the file's examples.
    pub index: usize,
    /// The example text (synthetic test data written into the rule file).
    pub text: String,
    /// Expected confidence (`None` = no match).
    pub expected: Option<Confidence>,
    /// What the scan gave.
    pub got: Option<Confidence>,
    /// Expected unique count, when the example states one.
    pub expected_unique: Option<usize>,
    /// Unique count the scan gave.
    pub got_unique: usize,
}

impl fmt::Display for ExampleFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |c: Option<Confidence>| c.map_or("none", Confidence::as_str);
        write!(
            f,
            "{}: example {} ({}): expected {}{}, got {} (unique {}) for {:?}",
            self.file.display(),
            self.index,
            self.detector,
            show(self.expected),
            self.expected_unique
                .map(|u| format!(" (unique {u})"))
                .unwrap_or_default(),
            show(self.got),
            self.got_unique,
            self.text
        )
    }
}

#[derive(Debug)]
struct Level {
    confidence: Confidence,
    /// Global pattern indices this level applies to; empty = all of the detector's.
    patterns: Vec<usize>,
    keyword: bool,
}

#[derive(Debug)]
struct Filter {
    kind: FilterKind,
    action: FilterAction,
    values: HashSet<String>,
}

#[derive(Debug)]
struct Detector {
    id: DetectorId,
    info: DetectorInfo,
    file: PathBuf,
    proximity: usize,
    normalize: Normalize,
    validators: Vec<Validator>,
    keyword_lists: Vec<usize>,
    boost_lists: Vec<usize>,
    dictionary_lists: Vec<usize>,
    levels: Vec<Level>,
    filters: Vec<Filter>,
    examples: Vec<ExampleDef>,
}

#[derive(Debug)]
struct Pattern {
    detector: usize,
    source: String,
    regex: Regex,
    validators: Vec<Validator>,
}

/// A loaded, compiled rule set: detectors, keyword lists and policies.
#[derive(Debug)]
pub struct RuleSet {
    detectors: Vec<Detector>,
    patterns: Vec<Pattern>,
    combined: Option<Regex>,
    combined_all: Option<Regex>,
    keywords: Option<KeywordIndex>,
    has_dictionary: bool,
    policies: Vec<Policy>,
    max_year: i32,
}

/// A match glued to another digit group by `-`, `.` or `/` (e.g. inside
/// `123-45-6789-1234`) is part of a longer identifier, not a value of its own.
fn glued(text: &[u8], start: usize, end: usize) -> bool {
    let sep = |b: u8| b == b'-' || b == b'.' || b == b'/';
    let before = start >= 2 && sep(text[start - 1]) && text[start - 2].is_ascii_digit();
    let after = end + 1 < text.len() && sep(text[end]) && text[end + 1].is_ascii_digit();
    before || after
}

/// Byte offset in `raw` just after the `n`-th ASCII alphanumeric (for IBAN trimming).
fn end_after_alnums(raw: &str, n: usize) -> usize {
    let mut seen = 0;
    for (i, b) in raw.bytes().enumerate() {
        if b.is_ascii_alphanumeric() {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    raw.len()
}

/// Current calendar year from the system clock (Howard Hinnant's civil-from-days).
fn current_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2)) as i32
}

/// Where rule files come from: a directory, or the set built into the binary.
#[derive(Debug, Clone, Copy)]
pub enum RuleSource<'a> {
    /// A rules directory on disk (`detectors/`, `keywords/`, `filters/`, `policies/`).
    Dir(&'a Path),
    /// Files compiled in, as (path relative to the rules root, content).
    Embedded(&'static [(&'static str, &'static str)]),
}

/// The name errors use for the root of the built-in rules.
const EMBEDDED_ROOT: &str = "(built-in)";

impl RuleSource<'_> {
    fn root(&self) -> PathBuf {
        match self {
            RuleSource::Dir(d) => d.to_path_buf(),
            RuleSource::Embedded(_) => PathBuf::from(EMBEDDED_ROOT),
        }
    }

    fn embedded_name(path: &Path) -> Option<String> {
        let rel = path.strip_prefix(EMBEDDED_ROOT).ok()?;
        Some(rel.to_string_lossy().replace('\\', "/"))
    }

    fn read_raw(&self, path: &Path) -> std::io::Result<String> {
        match self {
            RuleSource::Dir(_) => std::fs::read_to_string(path),
            RuleSource::Embedded(files) => {
                let name = Self::embedded_name(path);
                files
                    .iter()
                    .find(|(n, _)| Some(*n) == name.as_deref())
                    .map(|(_, c)| c.to_string())
                    .ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "not in the built-in rules",
                        )
                    })
            }
        }
    }

    fn read(&self, path: &Path) -> Result<String, RuleError> {
        self.read_raw(path)
            .map_err(|e| RuleError::new(path, None, RuleErrorKind::Io(e)))
    }

    fn is_dir(&self, dir: &Path) -> bool {
        match self {
            RuleSource::Dir(_) => dir.is_dir(),
            RuleSource::Embedded(files) => {
                let prefix = Self::embedded_name(dir).map(|d| format!("{d}/"));
                files
                    .iter()
                    .any(|(n, _)| prefix.as_deref().is_some_and(|p| n.starts_with(p)))
            }
        }
    }

    fn toml_files(&self, dir: &Path) -> Result<Vec<PathBuf>, RuleError> {
        let mut files = Vec::new();
        match self {
            RuleSource::Dir(_) => {
                let rd = std::fs::read_dir(dir)
                    .map_err(|e| RuleError::new(dir, None, RuleErrorKind::Io(e)))?;
                for entry in rd {
                    let p = entry
                        .map_err(|e| RuleError::new(dir, None, RuleErrorKind::Io(e)))?
                        .path();
                    if p.extension().is_some_and(|x| x == "toml") {
                        files.push(p);
                    }
                }
            }
            RuleSource::Embedded(all) => {
                let prefix = Self::embedded_name(dir)
                    .map(|d| format!("{d}/"))
                    .unwrap_or_default();
                for (n, _) in all.iter() {
                    if let Some(rest) = n.strip_prefix(&prefix) {
                        if !rest.contains('/') && rest.ends_with(".toml") {
                            files.push(PathBuf::from(EMBEDDED_ROOT).join(n));
                        }
                    }
                }
            }
        }
        files.sort();
        Ok(files)
    }
}

/// Collects term lists while detectors load, so each file is read once.
struct ListLoader<'a> {
    source: RuleSource<'a>,
    root: PathBuf,
    names: Vec<String>,
    terms: Vec<Vec<String>>,
}

impl ListLoader<'_> {
    fn get(
        &mut self,
        name: &toml::Spanned<String>,
        file: &Path,
        src: &str,
    ) -> Result<usize, RuleError> {
        if let Some(i) = self.names.iter().position(|n| n == name.get_ref()) {
            return Ok(i);
        }
        let line = Some(line_of(src, name.span().start));
        let n = name.get_ref();
        if n.is_empty()
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(RuleError::invalid(
                file,
                line,
                format!("bad keyword list name `{n}`"),
            ));
        }
        let path = self.root.join("keywords").join(format!("{n}.txt"));
        let src = self.source.read_raw(&path).map_err(|_| {
            RuleError::new(file, line, RuleErrorKind::MissingKeywordList(n.clone()))
        })?;
        let terms: Vec<String> = parse_list(&src)
            .into_iter()
            .map(|t| t.to_ascii_lowercase())
            .collect();
        if terms.is_empty() {
            return Err(RuleError::invalid(&path, None, "keyword list is empty"));
        }
        self.names.push(n.clone());
        self.terms.push(terms);
        Ok(self.names.len() - 1)
    }
}

impl RuleSet {
    /// Loads and compiles `detectors/*.toml`, the keyword lists and filter files they
    /// name, and `policies/*.toml` under `root`. Any error fails the whole load.
    pub fn load_dir(root: impl AsRef<Path>) -> Result<RuleSet, RuleError> {
        Self::load(RuleSource::Dir(root.as_ref()))
    }

    /// Loads the rules built into this crate from the repository's `dlp-rules/`.
    pub fn load_builtin() -> Result<RuleSet, RuleError> {
        Self::load(RuleSource::Embedded(crate::BUILTIN_RULES))
    }

    /// Loads and compiles a rule set from `source`. Any error fails the whole load.
    pub fn load(source: RuleSource<'_>) -> Result<RuleSet, RuleError> {
        let root_buf = source.root();
        let root = root_buf.as_path();
        let mut lists = ListLoader {
            source,
            root: root_buf.clone(),
            names: Vec::new(),
            terms: Vec::new(),
        };
        let mut detectors: Vec<Detector> = Vec::new();
        let mut patterns: Vec<Pattern> = Vec::new();
        for path in source.toml_files(&root.join("detectors"))? {
            let src = source.read(&path)?;
            let def: DetectorFile = parse_toml(&path, &src)?;
            let d = compile_detector(
                def,
                &path,
                &src,
                root,
                detectors.len(),
                &mut patterns,
                &mut lists,
            )?;
            if detectors.iter().any(|o| o.id == d.id) {
                return Err(RuleError::invalid(
                    &path,
                    None,
                    format!("duplicate detector id `{}`", d.id),
                ));
            }
            detectors.push(d);
        }
        if detectors.is_empty() {
            return Err(RuleError::invalid(
                root.join("detectors"),
                None,
                "no detector files (*.toml)",
            ));
        }

        let build = |kind: MatchKind| -> Result<Option<Regex>, RuleError> {
            if patterns.is_empty() {
                return Ok(None);
            }
            let srcs: Vec<&str> = patterns.iter().map(|p| p.source.as_str()).collect();
            Regex::builder()
                .configure(pattern_config().match_kind(kind))
                .build_many(&srcs)
                .map(Some)
                .map_err(|e| {
                    RuleError::invalid(
                        root.join("detectors"),
                        None,
                        format!("combined pattern set does not compile: {e}"),
                    )
                })
        };
        let combined = build(MatchKind::LeftmostFirst)?;
        let combined_all = build(MatchKind::All)?;

        let keywords = if lists.names.is_empty() {
            None
        } else {
            Some(
                KeywordIndex::new(&lists.terms)
                    .map_err(|e| RuleError::invalid(root.join("keywords"), None, e))?,
            )
        };

        let mut policies = Vec::new();
        let pdir = root.join("policies");
        if source.is_dir(&pdir) {
            for path in source.toml_files(&pdir)? {
                let src = source.read(&path)?;
                let def: PolicyFile = parse_toml(&path, &src)?;
                let p = compile_policy(def, &path, &src, &detectors)?;
                if policies.iter().any(|o: &Policy| o.id == p.id) {
                    return Err(RuleError::invalid(
                        &path,
                        None,
                        format!("duplicate policy id `{}`", p.id),
                    ));
                }
                policies.push(p);
            }
        }

        Ok(RuleSet {
            has_dictionary: detectors.iter().any(|d| !d.dictionary_lists.is_empty()),
            detectors,
            patterns,
            combined,
            combined_all,
            keywords,
            policies,
            max_year: current_year(),
        })
    }

    /// Name, version and description of every detector, in load order.
    pub fn detector_info(&self) -> Vec<DetectorInfo> {
        self.detectors.iter().map(|d| d.info.clone()).collect()
    }

    /// Detector ids in load order.
    pub fn detector_ids(&self) -> Vec<DetectorId> {
        self.detectors.iter().map(|d| d.id.clone()).collect()
    }

    /// Every pattern's regex source with its detector (for the ripgrep comparison).
    pub fn pattern_sources(&self) -> Vec<(DetectorId, String)> {
        self.patterns
            .iter()
            .map(|p| (self.detectors[p.detector].id.clone(), p.source.clone()))
            .collect()
    }

    /// Runs the combined regex alone and counts raw hits: the regex pass of the
    /// benchmark, without validators or keywords.
    pub fn candidate_pass(&self, text: &str) -> usize {
        self.combined
            .as_ref()
            .map_or(0, |re| re.find_iter(text).count())
    }

    /// Finds every whole-word keyword occurrence and counts them: the keyword pass of
    /// the benchmark, without patterns or validators.
    pub fn keyword_pass(&self, text: &str) -> usize {
        self.keywords
            .as_ref()
            .map_or(0, |k| k.scan(text).iter().map(Vec::len).sum())
    }

    /// Scans one text (a body or one attachment's text: proximity never crosses texts).
    pub fn scan(&self, text: &str) -> Findings {
        let mut st = ScanState {
            text,
            kw: None,
            per: (0..self.detectors.len())
                .map(|_| DetState::default())
                .collect(),
        };
        if self.has_dictionary {
            self.dictionary_candidates(&mut st);
        }
        if let (Some(re), Some(all)) = (&self.combined, &self.combined_all) {
            let bytes = text.as_bytes();
            let mut set = PatternSet::new(self.patterns.len());
            let mut at = 0;
            while at < text.len() {
                let Some(m) = re.search(&Input::new(text).range(at..)) else {
                    break;
                };
                let s = m.start();
                let mut next = m.end().max(s + 1);
                set.clear();
                all.which_overlapping_matches(
                    &Input::new(text).range(s..).anchored(Anchored::Yes),
                    &mut set,
                );
                for pid in set.iter() {
                    let p = &self.patterns[pid.as_usize()];
                    let anchored = Input::new(text).range(s..).anchored(Anchored::Yes);
                    let Some(pm) = p.regex.search(&anchored) else {
                        continue;
                    };
                    next = next.max(pm.end());
                    if !glued(bytes, s, pm.end()) {
                        self.consider(&mut st, p.detector, Some(pid.as_usize()), s, pm.end());
                    }
                }
                // Resume after everything that matched here, on a char boundary.
                while next < text.len() && !text.is_char_boundary(next) {
                    next += 1;
                }
                at = next;
            }
        }
        self.finish(st)
    }

    /// Policy rules that fire for these findings, in policy and rule order.
    pub fn evaluate(&self, findings: &Findings) -> Vec<PolicyHit> {
        let mut hits = Vec::new();
        for p in &self.policies {
            for r in &p.rules {
                if r.fires(findings) {
                    hits.push(PolicyHit {
                        policy: p.id.clone(),
                        rule: r.id.clone(),
                        action: r.action,
                    });
                }
            }
        }
        hits
    }

    /// Runs every embedded `[[example]]` of every detector; empty means all pass.
    pub fn check_examples(&self) -> Vec<ExampleFailure> {
        let mut fails = Vec::new();
        let mut total = 0;
        for d in &self.detectors {
            for (i, ex) in d.examples.iter().enumerate() {
                total += 1;
                let f = self.scan(&ex.text);
                let got = f.get(d.id.as_str());
                let got_conf = got.map(|g| g.confidence);
                let got_unique = got.map_or(0, |g| g.unique_count);
                if got_conf != ex.expect.confidence() || ex.unique.is_some_and(|u| u != got_unique)
                {
                    fails.push(ExampleFailure {
                        file: d.file.clone(),
                        detector: d.id.clone(),
                        index: i,
                        text: ex.text.clone(),
                        expected: ex.expect.confidence(),
                        got: got_conf,
                        expected_unique: ex.unique,
                        got_unique,
                    });
                }
            }
        }
        debug_assert!(total > 0 || self.detectors.is_empty());
        fails
    }

    /// Number of embedded examples across all rule files.
    pub fn example_count(&self) -> usize {
        self.detectors.iter().map(|d| d.examples.len()).sum()
    }

    fn dictionary_candidates(&self, st: &mut ScanState<'_>) {
        let occ = self.keyword_occurrences(st);
        let mut cands: Vec<(usize, usize, usize)> = Vec::new();
        for (di, d) in self.detectors.iter().enumerate() {
            for &l in &d.dictionary_lists {
                cands.extend(occ[l].iter().map(|&(s, e)| (di, s, e)));
            }
        }
        cands.sort_unstable_by_key(|&(d, s, _)| (d, s));
        for (d, s, e) in cands {
            self.consider(st, d, None, s, e);
        }
    }

    fn keyword_occurrences<'s>(&self, st: &'s mut ScanState<'_>) -> &'s Occurrences {
        let text = st.text;
        st.kw.get_or_insert_with(|| match &self.keywords {
            Some(k) => k.scan(text),
            None => Vec::new(),
        })
    }

    fn near(
        &self,
        st: &mut ScanState<'_>,
        lists: &[usize],
        s: usize,
        e: usize,
        window: usize,
    ) -> bool {
        if lists.is_empty() {
            return false;
        }
        let text = st.text;
        let occ = self.keyword_occurrences(st);
        lists.iter().any(|&l| near_in(text, &occ[l], s, e, window))
    }

    fn consider(
        &self,
        st: &mut ScanState<'_>,
        di: usize,
        pid: Option<usize>,
        s: usize,
        mut e: usize,
    ) -> bool {
        let d = &self.detectors[di];
        if s < st.per[di].last_end {
            return false;
        }
        let raw = &st.text[s..e];
        let value = d.normalize.apply(raw);
        if value.is_empty() {
            return false;
        }
        if d.normalize == Normalize::Iban {
            e = s + end_after_alnums(raw, value.len());
        }
        let pat_validators = pid.map_or(&[][..], |p| &self.patterns[p].validators[..]);
        if !d
            .validators
            .iter()
            .chain(pat_validators)
            .all(|v| v.check(&value, self.max_year))
        {
            return false;
        }
        let mut downgrade = false;
        for f in &d.filters {
            let hit = match f.kind {
                FilterKind::Values => f.values.contains(&value),
                FilterKind::RepeatedDigits => repeated_digits(&value),
            };
            match (f.action, hit) {
                (FilterAction::Exclude, true) | (FilterAction::Require, false) => return false,
                (FilterAction::Downgrade, true) => downgrade = true,
                _ => {}
            }
        }
        let mut conf = None;
        for lv in &d.levels {
            if !lv.patterns.is_empty() && !pid.is_some_and(|p| lv.patterns.contains(&p)) {
                continue;
            }
            if lv.keyword && !self.near(st, &d.keyword_lists, s, e, d.proximity) {
                continue;
            }
            conf = Some(lv.confidence);
            break;
        }
        let Some(mut conf) = conf else {
            return false;
        };
        if self.near(st, &d.boost_lists, s, e, d.proximity) {
            conf = conf.raised();
        }
        if downgrade {
            conf = Confidence::Low;
        }
        let ds = &mut st.per[di];
        ds.last_end = e;
        ds.matches.push(MatchSpan {
            start: s,
            end: e,
            confidence: conf,
        });
        let best = ds.values.entry(value).or_insert(conf);
        *best = (*best).max(conf);
        true
    }

    fn finish(&self, st: ScanState<'_>) -> Findings {
        let mut out = Findings::default();
        for (i, ds) in st.per.into_iter().enumerate() {
            if ds.matches.is_empty() {
                continue;
            }
            let mut by = [0usize; 3];
            for c in ds.values.values() {
                for (lvl, slot) in by.iter_mut().enumerate() {
                    if c.index() >= lvl {
                        *slot += 1;
                    }
                }
            }
            let mut matches = ds.matches;
            matches.sort_by_key(|m| m.start);
            out.detectors.push(DetectorFinding {
                detector: self.detectors[i].id.clone(),
                confidence: matches
                    .iter()
                    .map(|m| m.confidence)
                    .max()
                    .unwrap_or(Confidence::Low),
                unique_count: ds.values.len(),
                total_count: matches.len(),
                unique_by_confidence: by,
                matches,
                index: i,
            });
        }
        out
    }
}

/// Merges the findings of several texts of one message (subject, body, each attachment)
/// so that a value seen in several of them counts once, as it does within one text.
///
/// Values live only inside the accumulator; the merged [`Findings`] carry counts and
/// confidences, and no spans (a span only means something inside its own text).
#[derive(Debug)]
pub struct Accumulator<'r> {
    rules: &'r RuleSet,
    per: Vec<AccState>,
}

#[derive(Debug, Default)]
struct AccState {
    total: usize,
    /// Normalised value → best confidence over all texts added so far.
    values: HashMap<String, Confidence>,
}

impl RuleSet {
    /// An empty accumulator for merging per-text findings of one message.
    pub fn accumulator(&self) -> Accumulator<'_> {
        Accumulator {
            rules: self,
            per: (0..self.detectors.len())
                .map(|_| AccState::default())
                .collect(),
        }
    }
}

impl Accumulator<'_> {
    /// Adds the findings of one text; `text` must be the text that `findings` came from
    /// (its spans are re-normalised here to compare values across texts).
    pub fn add(&mut self, text: &str, findings: &Findings) {
        for f in &findings.detectors {
            let (Some(d), Some(acc)) =
                (self.rules.detectors.get(f.index), self.per.get_mut(f.index))
            else {
                continue;
            };
            acc.total += f.matches.len();
            for m in &f.matches {
                let Some(raw) = text.get(m.start..m.end) else {
                    continue;
                };
                let best = acc
                    .values
                    .entry(d.normalize.apply(raw))
                    .or_insert(m.confidence);
                *best = (*best).max(m.confidence);
            }
        }
    }

    /// The merged findings: unique counts over all texts, matches left empty.
    pub fn finish(self) -> Findings {
        let mut out = Findings::default();
        for (i, acc) in self.per.into_iter().enumerate() {
            if acc.values.is_empty() {
                continue;
            }
            let mut by = [0usize; 3];
            for c in acc.values.values() {
                for (lvl, slot) in by.iter_mut().enumerate() {
                    if c.index() >= lvl {
                        *slot += 1;
                    }
                }
            }
            out.detectors.push(DetectorFinding {
                detector: self.rules.detectors[i].id.clone(),
                confidence: acc
                    .values
                    .values()
                    .copied()
                    .max()
                    .unwrap_or(Confidence::Low),
                unique_count: acc.values.len(),
                total_count: acc.total,
                unique_by_confidence: by,
                matches: Vec::new(),
                index: i,
            });
        }
        out
    }
}

#[derive(Default)]
struct DetState {
    last_end: usize,
    matches: Vec<MatchSpan>,
    /// Normalised value → best confidence. Lives only for the scan; never exposed.
    values: HashMap<String, Confidence>,
}

struct ScanState<'t> {
    text: &'t str,
    kw: Option<Occurrences>,
    per: Vec<DetState>,
}

/// Is any occurrence within `window` characters of `[s, e)` (or overlapping it)?
fn near_in(text: &str, occ: &[(usize, usize)], s: usize, e: usize, window: usize) -> bool {
    let within = |a: usize, b: usize| {
        b - a <= window || text[a..b].chars().take(window + 1).count() <= window
    };
    let i = occ.partition_point(|&(os, _)| os < s);
    if let Some(&(os, _)) = occ.get(i) {
        if os <= e || within(e, os) {
            return true;
        }
    }
    // Occurrences starting before the match: take the one reaching furthest right.
    let left = occ[..i].iter().rev().take(4).map(|&(_, oe)| oe).max();
    match left {
        Some(oe) if oe >= s => true,
        Some(oe) => within(oe, s),
        None => false,
    }
}

fn pattern_config() -> meta::Config {
    // A larger lazy-DFA cache keeps the combined set from thrashing on digit-heavy text.
    meta::Config::new().hybrid_cache_capacity(8 * (1 << 20))
}

fn compile_detector(
    def: DetectorFile,
    path: &Path,
    src: &str,
    root: &Path,
    di: usize,
    patterns: &mut Vec<Pattern>,
    lists: &mut ListLoader<'_>,
) -> Result<Detector, RuleError> {
    let line = |span: std::ops::Range<usize>| Some(line_of(src, span.start));
    let id = def.id.get_ref().clone();
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if id != stem {
        return Err(RuleError::invalid(
            path,
            line(def.id.span()),
            format!("detector id `{id}` must match the file name `{stem}.toml`"),
        ));
    }
    if def.patterns.is_empty() == def.dictionary.is_empty() {
        return Err(RuleError::invalid(
            path,
            None,
            "a detector needs either [[pattern]] entries or a `dictionary`, not both",
        ));
    }
    if def.levels.is_empty() {
        return Err(RuleError::invalid(
            path,
            None,
            "a detector needs at least one [[level]]",
        ));
    }
    if def.proximity == 0 || def.proximity > 10_000 {
        return Err(RuleError::invalid(
            path,
            None,
            "proximity must be between 1 and 10000 characters",
        ));
    }
    let first_pattern = patterns.len();
    let mut names: Vec<String> = Vec::new();
    for p in &def.patterns {
        let pname = p.id.get_ref();
        if names.contains(pname) {
            return Err(RuleError::invalid(
                path,
                line(p.id.span()),
                format!("duplicate pattern id `{pname}`"),
            ));
        }
        let bad = |message: String| {
            RuleError::new(
                path,
                line(p.regex.span()),
                RuleErrorKind::BadRegex {
                    pattern: pname.clone(),
                    message,
                },
            )
        };
        let re = Regex::builder()
            .configure(pattern_config())
            .build(p.regex.get_ref())
            .map_err(|e| {
                let msg = e
                    .syntax_error()
                    .map_or_else(|| e.to_string(), |s| s.to_string());
                bad(msg
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string())
            })?;
        // Unbounded repeats let one search run to the end of the text for every hit
        // (quadratic on inputs like `12-12-12-...`), so rules must bound them.
        let bounded = regex_automata::util::syntax::parse(p.regex.get_ref())
            .map(|h| h.properties().maximum_len().is_some())
            .unwrap_or(false);
        if !bounded {
            return Err(bad(
                "unbounded repetition (+, *, {n,}): bound it, e.g. {1,64}, so scans stay linear"
                    .into(),
            ));
        }
        if re.is_match("") {
            return Err(bad("pattern matches the empty string".into()));
        }
        names.push(pname.clone());
        patterns.push(Pattern {
            detector: di,
            source: p.regex.get_ref().clone(),
            regex: re,
            validators: p.validators.clone(),
        });
    }
    let mut levels = Vec::new();
    for lv in &def.levels {
        let lvd = lv.get_ref();
        let mut pids = Vec::new();
        for pn in &lvd.patterns {
            let Some(i) = names.iter().position(|n| n == pn.get_ref()) else {
                return Err(RuleError::invalid(
                    path,
                    line(pn.span()),
                    format!("level names unknown pattern `{}`", pn.get_ref()),
                ));
            };
            pids.push(first_pattern + i);
        }
        if lvd.keyword && def.keywords.is_empty() {
            return Err(RuleError::invalid(
                path,
                line(lv.span()),
                "level requires a keyword but the detector has no `keywords`",
            ));
        }
        levels.push(Level {
            confidence: lvd.confidence,
            patterns: pids,
            keyword: lvd.keyword,
        });
    }
    let load_lists = |names: &[toml::Spanned<String>],
                      lists: &mut ListLoader<'_>|
     -> Result<Vec<usize>, RuleError> {
        names.iter().map(|n| lists.get(n, path, src)).collect()
    };
    let keyword_lists = load_lists(&def.keywords, lists)?;
    let boost_lists = load_lists(&def.boost_keywords, lists)?;
    let dictionary_lists = load_lists(&def.dictionary, lists)?;
    let mut filters = Vec::new();
    for f in &def.filters {
        let mut values: HashSet<String> = def.normalize_all(&f.values);
        if let Some(file) = &f.file {
            let fpath = root.join(file.get_ref());
            let fsrc = lists.source.read_raw(&fpath).map_err(|_| {
                RuleError::new(
                    path,
                    line(file.span()),
                    RuleErrorKind::MissingFilterFile(file.get_ref().clone()),
                )
            })?;
            values.extend(def.normalize_all(&parse_list(&fsrc)));
        }
        if f.kind == FilterKind::Values && values.is_empty() {
            return Err(RuleError::invalid(
                path,
                None,
                "a `values` filter needs `values` or a `file`",
            ));
        }
        filters.push(Filter {
            kind: f.kind,
            action: f.action,
            values,
        });
    }
    Ok(Detector {
        info: DetectorInfo {
            id: DetectorId::new(id.clone()),
            name: def.name,
            version: def.version,
            description: def.description,
        },
        id: DetectorId::new(id),
        file: path.to_path_buf(),
        proximity: def.proximity,
        normalize: def.normalize,
        validators: def.validators,
        keyword_lists,
        boost_lists,
        dictionary_lists,
        levels,
        filters,
        examples: def.examples,
    })
}

impl DetectorFile {
    fn normalize_all(&self, vals: &[String]) -> HashSet<String> {
        vals.iter()
            .map(|v| self.normalize.apply(v))
            .filter(|v| !v.is_empty())
            .collect()
    }
}

fn compile_policy(
    def: PolicyFile,
    path: &Path,
    src: &str,
    detectors: &[Detector],
) -> Result<Policy, RuleError> {
    let mut rules = Vec::new();
    for r in def.rules {
        let rline = Some(line_of(src, r.span().start));
        let r = r.into_inner();
        if r.all.is_empty() && r.any.is_empty() {
            return Err(RuleError::invalid(
                path,
                rline,
                format!("rule `{}` has no conditions (`all` or `any`)", r.id),
            ));
        }
        if rules.iter().any(|o: &PolicyRule| o.id == r.id) {
            return Err(RuleError::invalid(
                path,
                rline,
                format!("duplicate rule id `{}`", r.id),
            ));
        }
        let conv = |cs: Vec<crate::rules::ConditionDef>| -> Result<Vec<Condition>, RuleError> {
            cs.into_iter()
                .map(|c| {
                    let det = detectors
                        .iter()
                        .position(|d| d.id.as_str() == c.detector.get_ref())
                        .ok_or_else(|| {
                            RuleError::invalid(
                                path,
                                Some(line_of(src, c.detector.span().start)),
                                format!("unknown detector `{}`", c.detector.get_ref()),
                            )
                        })?;
                    Ok(Condition {
                        detector: det,
                        min_confidence: c.min_confidence,
                        min_unique: c.min_unique,
                        max_unique: c.max_unique,
                    })
                })
                .collect()
        };
        rules.push(PolicyRule {
            id: r.id,
            action: r.action,
            all: conv(r.all)?,
            any: conv(r.any)?,
        });
    }
    let _ = (&def.name, &def.description);
    Ok(Policy {
        id: PolicyId(def.id),
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static N: AtomicUsize = AtomicUsize::new(0);

    /// A throwaway rules directory with one detector file, one keyword list and
    /// optionally a policy.
    fn rules(detector: &str, policy: Option<&str>) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sealgate-dlp-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("detectors")).unwrap();
        std::fs::create_dir_all(dir.join("keywords")).unwrap();
        std::fs::write(
            dir.join("keywords/ssn.txt"),
            "# comment\nssn\nsocial security\n",
        )
        .unwrap();
        std::fs::write(dir.join("keywords/health.txt"), "diabetes\n").unwrap();
        std::fs::write(dir.join("detectors/t.toml"), detector).unwrap();
        if let Some(p) = policy {
            std::fs::create_dir_all(dir.join("policies")).unwrap();
            std::fs::write(dir.join("policies/p.toml"), p).unwrap();
        }
        dir
    }

    const GOOD: &str = r#"id = "t"
name = "test"
version = 1
description = "test detector"
proximity = 20
validators = ["ssn_structure"]
keywords = ["ssn"]
boost_keywords = ["health"]

[[pattern]]
id = "f"
regex = '(?-u:\b)[0-9]{3}-[0-9]{2}-[0-9]{4}(?-u:\b)'

[[level]]
confidence = "medium"
keyword = true

[[level]]
confidence = "low"
"#;

    fn err(detector: &str) -> RuleError {
        RuleSet::load_dir(rules(detector, None)).expect_err("load must fail")
    }

    #[test]
    fn bad_regex_names_file_line_and_pattern() {
        let e = err(&GOOD.replace("[0-9]{4}(?-u:\\b)'", "[0-9{4}'"));
        assert!(e.path.ends_with("detectors/t.toml"), "{e}");
        assert_eq!(e.line, Some(12), "{e}");
        assert!(
            matches!(e.kind, RuleErrorKind::BadRegex { ref pattern, .. } if pattern == "f"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("t.toml:12: bad regex in pattern `f`"),
            "{e}"
        );
    }

    #[test]
    fn unbounded_repetition_is_refused() {
        let e = err(&GOOD.replace("[0-9]{4}(?-u:\\b)'", "[0-9]+'"));
        assert_eq!(e.line, Some(12), "{e}");
        assert!(e.to_string().contains("unbounded repetition"), "{e}");
    }

    #[test]
    fn unknown_validator_is_an_error_with_line() {
        let e = err(&GOOD.replace("ssn_structure", "sn_structure"));
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.to_string().contains("sn_structure"), "{e}");
        assert!(e.to_string().contains("unknown variant"), "{e}");
    }

    #[test]
    fn unknown_field_is_an_error_with_line() {
        let e = err(&GOOD.replace("proximity = 20", "proximity = 20\nproximty = 30"));
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.to_string().contains("unknown field `proximty`"), "{e}");
    }

    #[test]
    fn missing_keyword_file_is_an_error_with_line() {
        let e = err(&GOOD.replace("keywords = [\"ssn\"]", "keywords = [\"nope\"]"));
        assert_eq!(e.line, Some(7), "{e}");
        assert!(
            matches!(e.kind, RuleErrorKind::MissingKeywordList(ref n) if n == "nope"),
            "{e}"
        );
        assert!(
            e.to_string().contains("keyword list `nope` not found"),
            "{e}"
        );
    }

    const ALLOW: &str = r#"id = "t"
name = "test"
version = 1
description = "allow-list test detector"
normalize = "alnum_upper"

[[pattern]]
id = "c"
regex = '(?-u:\b)[A-Z][0-9]{2}(?:\.?[0-9A-Z]{1,4})?(?-u:\b)'

[[level]]
confidence = "medium"

[[filter]]
kind = "values"
file = "filters/codes.txt"
action = "require"
"#;

    fn allow_rules(detector: &str) -> PathBuf {
        let dir = rules(detector, None);
        std::fs::create_dir_all(dir.join("filters")).unwrap();
        std::fs::write(
            dir.join("filters/codes.txt"),
            "# codes\nE119\nz79.4\n\nU071\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn require_filter_loads_list_once_normalised() {
        let rs = RuleSet::load_dir(allow_rules(ALLOW)).unwrap();
        let f = &rs.detectors[0].filters[0];
        assert_eq!(f.action, FilterAction::Require);
        let mut v: Vec<&str> = f.values.iter().map(String::as_str).collect();
        v.sort_unstable();
        // Comments and blanks skipped, entries normalised like matches (`z79.4` -> `Z794`).
        assert_eq!(v, ["E119", "U071", "Z794"]);
    }

    #[test]
    fn require_filter_keeps_only_listed_values() {
        let rs = RuleSet::load_dir(allow_rules(ALLOW)).unwrap();
        let f = rs.scan("E11.9 Z79.4 U07.1 E11.8 Q99.9X A10 E119");
        let d = f.get("t").expect("listed codes found");
        assert_eq!((d.total_count, d.unique_count), (4, 3), "{f:?}");
        assert!(rs.scan("E11.8 Q99.9 A10").is_empty());
    }

    #[test]
    fn require_filter_with_inline_values() {
        let det = ALLOW.replace("file = \"filters/codes.txt\"", "values = [\"A15\"]");
        let rs = RuleSet::load_dir(allow_rules(&det)).unwrap();
        assert!(rs.scan("A15").get("t").is_some());
        assert!(rs.scan("E11.9").is_empty());
    }

    #[test]
    fn missing_allow_list_file_is_an_error_with_line() {
        let e = RuleSet::load_dir(allow_rules(&ALLOW.replace("codes.txt", "nope.txt")))
            .expect_err("load must fail");
        assert!(e.path.ends_with("detectors/t.toml"), "{e}");
        assert_eq!(e.line, Some(16), "{e}");
        assert!(
            matches!(e.kind, RuleErrorKind::MissingFilterFile(ref n) if n == "filters/nope.txt"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("t.toml:16: filter file `filters/nope.txt` not found"),
            "{e}"
        );
    }

    #[test]
    fn unknown_filter_action_is_an_error_with_line() {
        let e = err(&ALLOW.replace("action = \"require\"", "action = \"allow\""));
        assert!(e.path.ends_with("detectors/t.toml"), "{e}");
        assert_eq!(e.line, Some(17), "{e}");
        assert!(e.to_string().contains("unknown variant `allow`"), "{e}");
        let e = err(&ALLOW.replace("action = \"require\"", "action = \"require\"\nfiel = 1"));
        assert_eq!(e.line, Some(18), "{e}");
        assert!(e.to_string().contains("unknown field `fiel`"), "{e}");
    }

    #[test]
    fn shipped_icd10_list_is_loaded_from_the_builtin_set() {
        let rs = RuleSet::load_builtin().unwrap();
        let d = rs
            .detectors
            .iter()
            .find(|d| d.id.as_str() == "icd10_cm")
            .expect("icd10_cm built in");
        let list = &d.filters[0].values;
        assert!(list.len() > 90_000, "{}", list.len());
        for c in ["E119", "Z794", "S72001A", "U071", "C4A9", "I10"] {
            assert!(list.contains(c), "{c}");
        }
        for c in ["E1199999", "Q999X", "A10", "E11"] {
            assert_eq!(list.contains(c), c == "E11", "{c}");
        }
    }

    #[test]
    fn policy_with_unknown_detector_fails() {
        let p = "id = \"p\"\nname = \"p\"\ndescription = \"d\"\n\n[[rule]]\nid = \"r\"\naction = \"encrypt\"\nany = [{ detector = \"nope\" }]\n";
        let e = RuleSet::load_dir(rules(GOOD, Some(p))).expect_err("must fail");
        assert!(e.path.ends_with("policies/p.toml"));
        assert_eq!(e.line, Some(8), "{e}");
        assert!(e.to_string().contains("unknown detector `nope`"), "{e}");
    }

    #[test]
    fn unique_counting_normalises_values() {
        let rs = RuleSet::load_dir(rules(GOOD, None)).unwrap();
        let f = rs.scan("536-90-4399 x 536-90-4399 y 536-90-4399 z 536-90-4398");
        let d = f.get("t").unwrap();
        assert_eq!(d.total_count, 4);
        assert_eq!(d.unique_count, 2);
        assert_eq!(
            d.matches[0],
            MatchSpan {
                start: 0,
                end: 11,
                confidence: Confidence::Low
            }
        );
    }

    #[test]
    fn accumulator_counts_values_once_across_texts_and_keeps_best_confidence() {
        let rs = RuleSet::load_dir(rules(GOOD, None)).unwrap();
        let texts = [
            "ref 536-90-4399",
            "ssn 536-90-4399 and 536-90-4398",
            "nothing",
        ];
        let mut acc = rs.accumulator();
        for t in texts {
            acc.add(t, &rs.scan(t));
        }
        let merged = acc.finish();
        let d = merged.get("t").unwrap();
        assert_eq!((d.unique_count, d.total_count), (2, 3));
        // 536-90-4399 is low alone in the first text but medium (keyword) in the second.
        assert_eq!(d.confidence, Confidence::Medium);
        assert_eq!(d.unique_at_least(Confidence::Medium), 2);
        assert!(d.matches.is_empty());
    }

    #[test]
    fn keyword_proximity_sets_confidence() {
        let rs = RuleSet::load_dir(rules(GOOD, None)).unwrap();
        let conf = |t: &str| rs.scan(t).get("t").map(|d| d.confidence);
        assert_eq!(conf("SSN: 536-90-4399"), Some(Confidence::Medium));
        assert_eq!(conf("536-90-4399 (ssn)"), Some(Confidence::Medium));
        // 20-character window: a keyword further away does not count.
        assert_eq!(
            conf("ssn ........................ 536-90-4399"),
            Some(Confidence::Low)
        );
        // Whole words only.
        assert_eq!(conf("lessnss 536-90-4399"), Some(Confidence::Low));
        // Window counts characters, not bytes.
        assert_eq!(
            conf("ssn ééééééééééééé 536-90-4399"),
            Some(Confidence::Medium)
        );
        // Boost list raises one level.
        assert_eq!(conf("ssn 536-90-4399 diabetes"), Some(Confidence::High));
        assert_eq!(conf("536-90-4399 diabetes"), Some(Confidence::Medium));
        // Unique counts per level: one value at medium, one only at low.
        let f = rs.scan("ssn 536-90-4399 .................................... 536-90-4398");
        let d = f.get("t").unwrap();
        assert_eq!(d.unique_at_least(Confidence::Low), 2);
        assert_eq!(d.unique_at_least(Confidence::Medium), 1);
        assert_eq!(d.unique_at_least(Confidence::High), 0);
    }

    #[test]
    fn policy_counts_and_actions() {
        let p = "id = \"p\"\nname = \"p\"\ndescription = \"d\"\n\n[[rule]]\nid = \"one\"\naction = \"encrypt\"\nany = [{ detector = \"t\", min_confidence = \"medium\" }]\n\n[[rule]]\nid = \"bulk\"\naction = \"quarantine\"\nall = [{ detector = \"t\", min_confidence = \"low\", min_unique = 3 }]\n";
        let rs = RuleSet::load_dir(rules(GOOD, Some(p))).unwrap();
        let hits = rs.evaluate(&rs.scan("ssn 536-90-4399"));
        assert_eq!(hits.len(), 1);
        assert_eq!(
            (
                hits[0].policy.as_str(),
                hits[0].rule.as_str(),
                hits[0].action
            ),
            ("p", "one", crate::Action::Encrypt)
        );
        let hits = rs.evaluate(&rs.scan("536-90-4391 536-90-4392 536-90-4393"));
        assert_eq!(
            hits.iter().map(|h| h.rule.as_str()).collect::<Vec<_>>(),
            ["bulk"]
        );
        assert_eq!(
            crate::strongest_action(&hits),
            Some(crate::Action::Quarantine)
        );
    }

    #[test]
    fn pathological_input_is_linear_and_empty() {
        let rs = RuleSet::load_dir(rules(GOOD, None)).unwrap();
        let digits = "1".repeat(1 << 20);
        assert!(rs.scan(&digits).is_empty());
        assert!(rs.scan("").is_empty());
    }
}
