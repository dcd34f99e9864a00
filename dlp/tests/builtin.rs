//! The rule set compiled into the crate is the one in `dlp-rules/`.

use sealgate_dlp::RuleSet;

#[test]
fn builtin_rules_match_the_rules_directory() {
    let builtin = RuleSet::load_builtin().expect("built-in rules load");
    let dir = RuleSet::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../dlp-rules")).unwrap();
    assert_eq!(builtin.detector_ids(), dir.detector_ids());
    assert!(builtin.detector_ids().len() >= 10);
    let found = builtin.scan("Patient SSN: 536-90-4399");
    let again = dir.scan("Patient SSN: 536-90-4399");
    assert_eq!(format!("{found:?}"), format!("{again:?}"));
    assert!(format!("{found:?}").contains("us_ssn"));
}
