//! `sealgate dlp`: scan messages with the DLP rules, check the rules.

use super::{read_input, Outcome};
use clap::{Args, Subcommand};
use sealgate::inspect::{self, report, InspectLimits};
use std::io::Write;
use std::path::PathBuf;

/// The DLP subcommands.
#[derive(Subcommand)]
pub enum DlpCmd {
    /// Scan message files (.eml) and print, per file, the detectors that matched (with
    /// confidence, unique/total counts, part paths and masked samples), parts that could
    /// not be scanned and why, and the policy action. Matched values are never printed.
    /// Exits 0 with or without findings, non-zero on an unreadable file or rule set.
    Scan {
        /// Message files (RFC 5322, as .eml); `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        rules: RulesDir,
        /// One JSON object per file (JSON lines), each naming its `file`.
        #[arg(long)]
        json: bool,
        /// The files are plain text, not messages.
        #[arg(long)]
        text: bool,
    },
    /// Load the rule set and run every rule file's embedded examples; prints pass/fail
    /// per detector, and exits non-zero on a failure or a load error (file:line: reason).
    Check {
        #[command(flatten)]
        rules: RulesDir,
    },
}

/// Where the DLP rules are.
#[derive(Args)]
pub struct RulesDir {
    /// Rules directory (detectors/, keywords/, filters/, policies/); default:
    /// the rules built into this binary (the repository's dlp-rules/).
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
}

impl RulesDir {
    /// The rule set from the directory, or the built-in one.
    fn load(&self) -> anyhow::Result<sealgate_dlp::RuleSet> {
        // RuleError's Display is already `file:line: reason`.
        match &self.rules {
            Some(dir) => sealgate_dlp::RuleSet::load_dir(dir),
            None => sealgate_dlp::RuleSet::load_builtin(),
        }
        .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// Run a DLP subcommand: a problem when an example fails or a file is unreadable.
pub fn run(action: DlpCmd) -> super::Result {
    match action {
        DlpCmd::Check { rules } => {
            let set = rules.load()?;
            let (text, ok) = report::check_examples(&set);
            print!("{text}");
            Ok(Outcome::problem_unless(ok))
        }
        DlpCmd::Scan {
            files,
            rules,
            json,
            text,
        } => {
            let set = rules.load()?;
            let limits = InspectLimits::default();
            let mut out = std::io::stdout().lock();
            let mut failed = false;
            for file in &files {
                let name = file.display().to_string();
                let bytes = match read_input(file) {
                    Ok(b) => b,
                    Err(e) => {
                        // One unreadable file must not hide the others' findings.
                        eprintln!("sealgate: {name}: {e:#}");
                        failed = true;
                        continue;
                    }
                };
                let found = if text {
                    inspect::inspect_text(&String::from_utf8_lossy(&bytes), &set)
                } else {
                    inspect::inspect(&bytes, &set, &limits)
                };
                if json {
                    writeln!(out, "{}", report::to_json(&name, &found))?;
                } else {
                    out.write_all(report::to_text(&name, &found).as_bytes())?;
                }
            }
            Ok(Outcome::problem_unless(!failed))
        }
    }
}
