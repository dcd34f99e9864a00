#![no_main]
//! Any bytes as a command line: must parse or give an error with a valid reply.
use libfuzzer_sys::fuzz_target;
use sealgate_parse::smtp::command::{parse_command, EnvelopeSyntax};

fuzz_target!(|line: &[u8]| {
    for syntax in [EnvelopeSyntax::Lenient, EnvelopeSyntax::Strict] {
        match parse_command(line, syntax) {
            Ok(_) => {}
            Err(e) => {
                let r = e.reply();
                assert!((500..=555).contains(&r.code));
                let wire = r.to_string();
                assert_eq!(wire.matches("\r\n").count(), 1, "one line, no injection");
            }
        }
    }
});
