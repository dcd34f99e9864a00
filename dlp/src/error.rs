//! Load errors: every one names the file, the line where known, and the reason.

use std::fmt;
use std::path::PathBuf;

/// A rule set failed to load; the whole load fails so callers keep their old set.
#[derive(Debug, thiserror::Error)]
pub struct RuleError {
    /// The file at fault (or the rules directory itself).
    pub path: PathBuf,
    /// 1-based line in that file, where the parser or a span tells us.
    pub line: Option<usize>,
    /// What is wrong.
    #[source]
    pub kind: RuleErrorKind,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.path.display(), l, self.kind),
            None => write!(f, "{}: {}", self.path.display(), self.kind),
        }
    }
}

/// The reason part of a [`RuleError`].
#[derive(Debug, thiserror::Error)]
pub enum RuleErrorKind {
    /// The file or directory could not be read.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// TOML syntax error, unknown field, unknown validator name, wrong type...
    #[error("{0}")]
    Toml(String),
    /// A pattern does not compile as a Rust regex (or could match the empty string).
    #[error("bad regex in pattern `{pattern}`: {message}")]
    BadRegex {
        /// The pattern's `id`.
        pattern: String,
        /// The regex compiler's reason.
        message: String,
    },
    /// A referenced `keywords/<name>.txt` list does not exist.
    #[error("keyword list `{0}` not found (expected keywords/{0}.txt)")]
    MissingKeywordList(String),
    /// A referenced filter value file does not exist.
    #[error("filter file `{0}` not found")]
    MissingFilterFile(String),
    /// Anything else that makes the rules inconsistent (duplicate ids, dangling references).
    #[error("{0}")]
    Invalid(String),
}

impl RuleError {
    pub(crate) fn new(path: impl Into<PathBuf>, line: Option<usize>, kind: RuleErrorKind) -> Self {
        RuleError {
            path: path.into(),
            line,
            kind,
        }
    }

    /// Shorthand for an [`RuleErrorKind::Invalid`] error.
    pub(crate) fn invalid(
        path: impl Into<PathBuf>,
        line: Option<usize>,
        msg: impl Into<String>,
    ) -> Self {
        RuleError::new(path, line, RuleErrorKind::Invalid(msg.into()))
    }
}

/// 1-based line number of a byte offset in `src`.
pub(crate) fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
