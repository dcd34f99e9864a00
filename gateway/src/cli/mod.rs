//! The binary's commands, one file per command group: each owns its clap
//! subcommand enum and a `run` that does the work and says how it ended.
//! This is the binary's code, so errors are `anyhow` (the library's are typed).
//!
//! Exit codes, the same for every command:
//! - 0: done, and nothing wrong found (also `--help` and `--version`);
//! - 1: the command ran and found a problem (a verify found damage,
//!   check-config found errors, a DLP example failed, a file was
//!   unreadable), or it failed (the error is printed as `sealgate: …`);
//! - 2: the command line is wrong: clap's usage errors, and an archive
//!   search query that does not parse (a caret points at the fault).

pub mod archive;
pub mod audit;
pub mod check_config;
pub mod cluster;
pub mod dlp;
pub mod explain;
pub mod keys;
pub mod portal;
pub mod quarantine;
pub mod queue;
pub mod serve;
pub mod store;
pub mod tls;
pub mod token;
pub mod user;

use anyhow::Context;
use clap::Args;
use sealgate::config::{load_file_checked, Config};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// How a command ended; [`exit_code`] turns it into the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done, and nothing wrong found: 0.
    Done,
    /// The command ran and found a problem: 1.
    Problem,
    /// The command line is wrong: 2, as for clap's usage errors.
    Usage,
}

impl Outcome {
    /// `Done` when `ok`, else `Problem`: for commands that check something.
    pub fn problem_unless(ok: bool) -> Self {
        if ok {
            Outcome::Done
        } else {
            Outcome::Problem
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Done => ExitCode::SUCCESS,
            Outcome::Problem => ExitCode::FAILURE,
            Outcome::Usage => ExitCode::from(2),
        }
    }
}

/// What a command returns: how it ended, or the error that stopped it.
pub type Result = anyhow::Result<Outcome>;

/// The exit code of a command's result; an error is printed and exits 1.
pub fn exit_code(result: Result) -> ExitCode {
    match result {
        Ok(outcome) => outcome.into(),
        Err(e) => {
            eprintln!("sealgate: {e:#}");
            Outcome::Problem.into()
        }
    }
}

/// Which instance: its config file, or just its data directory.
#[derive(Args)]
pub struct Where {
    /// Configuration file of the instance.
    #[arg(long, short, global = true, conflicts_with = "data")]
    config: Option<PathBuf>,
    /// Data directory of the instance (defaults apply for everything else).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
}

impl Where {
    /// The instance's configuration, with --data applied.
    pub fn load(self) -> anyhow::Result<Config> {
        let mut config = load(self.config.as_ref())?;
        if let Some(d) = self.data {
            config.server.data_dir = d;
        }
        Ok(config)
    }
}

/// The configuration file, checked, or the embedded defaults without one.
pub fn load(config: Option<&PathBuf>) -> anyhow::Result<Config> {
    match config {
        Some(p) => {
            load_file_checked(p, &sealgate::preflight::files).map_err(|e| anyhow::anyhow!("{e}"))
        }
        None => Ok(Config::embedded()),
    }
}

/// A file's bytes, or standard input for `-`.
pub fn read_input(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b)?;
        return Ok(b);
    }
    std::fs::read(file).context("cannot read")
}
