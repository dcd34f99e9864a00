#![no_main]
//! Any bytes as a CMS signature from inbound mail: the BER-to-DER
//! normaliser the key harvest runs must return a DER element or nothing;
//! never panic, never claim more input than it was given, and be a fixed
//! point on its own output (DER stays DER).
use libfuzzer_sys::fuzz_target;
use sealgate_parse::ber;

fuzz_target!(|input: &[u8]| {
    if let Some((der, used)) = ber::to_der(input) {
        assert!(used >= 2 && used <= input.len());
        let (again, used_again) = ber::to_der(&der).expect("DER output parses again");
        assert_eq!(used_again, der.len(), "the output is one whole element");
        assert_eq!(again, der, "DER is a fixed point");
    }
});
