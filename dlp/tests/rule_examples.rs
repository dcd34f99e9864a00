//! Runs every `[[example]]` in every shipped rule file, and checks the default policy.

use sealgate_dlp::{strongest_action, Action, RuleSet};
use std::path::PathBuf;

fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dlp-rules")
}

fn load() -> RuleSet {
    RuleSet::load_dir(rules_dir()).unwrap_or_else(|e| panic!("shipped rules must load: {e}"))
}

#[test]
fn every_embedded_example_passes() {
    let rs = load();
    assert!(
        rs.example_count() >= 40,
        "too few examples: {}",
        rs.example_count()
    );
    let fails = rs.check_examples();
    let msg: Vec<String> = fails.iter().map(|f| f.to_string()).collect();
    assert!(
        fails.is_empty(),
        "{} example(s) failed:\n{}",
        fails.len(),
        msg.join("\n")
    );
}

#[test]
fn every_detector_has_positive_and_negative_examples() {
    let dir = rules_dir().join("detectors");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let src = std::fs::read_to_string(&p).unwrap();
        assert!(
            src.contains("expect = \"none\""),
            "{} has no negative example",
            p.display()
        );
        assert!(
            src.contains("expect = \"low\"")
                || src.contains("expect = \"medium\"")
                || src.contains("expect = \"high\""),
            "{} has no positive example",
            p.display()
        );
    }
}

#[test]
fn default_policy_actions() {
    let rs = load();
    let act = |t: &str| strongest_action(&rs.evaluate(&rs.scan(t)));
    assert_eq!(act("Hello, lunch at noon?"), None);
    assert_eq!(act("Patient SSN: 536-90-4399"), Some(Action::Encrypt));
    assert_eq!(
        act("Visa 4556 7375 8689 9855 exp 04/29"),
        Some(Action::Encrypt)
    );
    assert_eq!(act("Sandbox card 4111 1111 1111 1111"), None);
    let many: String = (0..12)
        .map(|i| format!("SSN 536-90-{:04} \n", 4300 + i))
        .collect();
    assert_eq!(act(&many), Some(Action::Quarantine));
    assert_eq!(act("DOB 03/14/1972"), Some(Action::Encrypt));
    assert_eq!(act("DEA AB1234563"), Some(Action::Notify));
    assert_eq!(act("Diagnosis: E11.9"), Some(Action::Encrypt));
    assert_eq!(act("Room E11.9 is on the left"), None);
}

#[test]
fn pathological_inputs_finish() {
    // Bounded, linear work: no assertion on time, only that these complete.
    let rs = load();
    // Each of these was quadratic or worse with an unbounded pattern; the loader now
    // refuses unbounded repeats.
    let digits = "7".repeat(1 << 20);
    assert!(rs.scan(&digits).is_empty());
    for unit in [
        "4111 ",
        "12-",
        "a@",
        "a@b.",
        "+44 1",
        "a.",
        "ssn ",
        "E11.",
        "dx E11.9 ",
        // The word-by-word keyword search: one endless word, dense multi-word terms.
        "a",
        "social security ",
        "d.o.b. ",
        "covid-19 ",
    ] {
        let text = unit.repeat(100_000);
        let _ = rs.scan(&text);
    }
}

#[test]
fn unique_count_over_a_thread() {
    // The same SSN quoted in five replies, with and without dashes, counts once.
    let rs = load();
    let thread = "> SSN 536-90-4399\n>> SSN 536904399\n> > ssn 536-90-4399\nSSN: 536 90 4399\n SSN 536.90.4399";
    let f = rs.scan(thread);
    let d = f.get("us_ssn").expect("ssn found");
    assert_eq!((d.total_count, d.unique_count), (5, 1));
}
