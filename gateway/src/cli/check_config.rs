//! `sealgate check-config`: every error of a configuration file.

use super::Outcome;
use sealgate::config::load_file_checked;
use std::path::Path;

/// Check `file` and its DLP rules; a problem when anything is wrong.
pub fn run(file: &Path) -> super::Result {
    match load_file_checked(file, &sealgate::preflight::files) {
        // The DLP rules are checked here and at start, not on every load,
        // so queue commands still work while someone edits the rules.
        Ok(config) => match config.dlp.load_rules() {
            Ok(set) => println!(
                "{}: ok ({} DLP detectors)",
                file.display(),
                set.detector_ids().len()
            ),
            Err(e) => {
                eprintln!(
                    "{}: dlp.rules_dir: the rule set does not load: {e}",
                    file.display()
                );
                return Ok(Outcome::Problem);
            }
        },
        Err(errors) => {
            eprint!("{errors}");
            eprintln!("{} error(s)", errors.0.len());
            return Ok(Outcome::Problem);
        }
    }
    Ok(Outcome::Done)
}
