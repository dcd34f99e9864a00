//! The on-disk rule format (TOML), parsed strictly: unknown fields are errors.

use crate::error::{line_of, RuleError, RuleErrorKind};
use crate::validators::{Normalize, Validator};
use crate::{Action, Confidence};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

/// One detector file, `detectors/<id>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DetectorFile {
    pub id: Spanned<String>,
    pub name: String,
    pub version: u32,
    pub description: String,
    #[serde(default = "default_proximity")]
    pub proximity: usize,
    #[serde(default)]
    pub normalize: Normalize,
    #[serde(default)]
    pub validators: Vec<Validator>,
    #[serde(default)]
    pub keywords: Vec<Spanned<String>>,
    #[serde(default)]
    pub boost_keywords: Vec<Spanned<String>>,
    #[serde(default)]
    pub dictionary: Vec<Spanned<String>>,
    #[serde(default, rename = "pattern")]
    pub patterns: Vec<PatternDef>,
    #[serde(default, rename = "level")]
    pub levels: Vec<Spanned<LevelDef>>,
    #[serde(default, rename = "filter")]
    pub filters: Vec<FilterDef>,
    #[serde(default, rename = "example")]
    pub examples: Vec<ExampleDef>,
}

fn default_proximity() -> usize {
    300
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatternDef {
    pub id: Spanned<String>,
    pub regex: Spanned<String>,
    #[serde(default)]
    pub validators: Vec<Validator>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LevelDef {
    pub confidence: Confidence,
    #[serde(default)]
    pub patterns: Vec<Spanned<String>>,
    #[serde(default)]
    pub keyword: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FilterKind {
    Values,
    RepeatedDigits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FilterAction {
    /// Drop a match the filter hits (known test values).
    Exclude,
    /// Cap a match the filter hits at low.
    Downgrade,
    /// Allow-list: drop a match the filter does NOT hit (e.g. a code list).
    Require,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterDef {
    pub kind: FilterKind,
    pub action: FilterAction,
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    #[serde(default)]
    pub values: Vec<String>,
}

/// What an embedded example expects from its own detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Expect {
    None,
    Low,
    Medium,
    High,
}

impl Expect {
    pub fn confidence(self) -> Option<Confidence> {
        match self {
            Expect::None => None,
            Expect::Low => Some(Confidence::Low),
            Expect::Medium => Some(Confidence::Medium),
            Expect::High => Some(Confidence::High),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExampleDef {
    pub text: String,
    pub expect: Expect,
    #[serde(default)]
    pub unique: Option<usize>,
}

/// One policy file, `policies/<id>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyFile {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "rule")]
    pub rules: Vec<Spanned<PolicyRuleDef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyRuleDef {
    pub id: String,
    /// For humans reading the policy; the engine does not use it.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: String,
    pub action: Action,
    #[serde(default)]
    pub all: Vec<ConditionDef>,
    #[serde(default)]
    pub any: Vec<ConditionDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConditionDef {
    pub detector: Spanned<String>,
    #[serde(default = "default_min_confidence")]
    pub min_confidence: Confidence,
    #[serde(default = "default_min_unique")]
    pub min_unique: usize,
    #[serde(default)]
    pub max_unique: Option<usize>,
}

fn default_min_confidence() -> Confidence {
    Confidence::Medium
}

fn default_min_unique() -> usize {
    1
}

/// Parses a TOML document, turning the parser's span into a line number.
pub(crate) fn parse_toml<T: DeserializeOwned>(path: &Path, src: &str) -> Result<T, RuleError> {
    toml::from_str(src).map_err(|e| {
        let line = e.span().map(|s| line_of(src, s.start));
        RuleError::new(
            path,
            line,
            RuleErrorKind::Toml(e.message().trim().to_string()),
        )
    })
}

/// Reads a term list: one entry per line, full-line `#` comments and blanks skipped.
/// Entries may contain `#` (e.g. `ssn#`), so only whole-line comments are recognised.
pub(crate) fn parse_list(src: &str) -> Vec<String> {
    src.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}
