#![no_main]
//! Any bytes as an Office XML part: the tokenizer must end, never panic, make
//! progress on every token, and stop at its first error.
use libfuzzer_sys::fuzz_target;
use sealgate_parse::office_xml as xml;

fuzz_target!(|input: &[u8]| {
    let mut out = String::new();
    let mut tokens = 0usize;
    for tok in xml::Tokens::new(input) {
        tokens += 1;
        assert!(tokens <= input.len(), "more tokens than bytes");
        match tok {
            Ok(xml::Token::Text(t)) => {
                let _ = xml::push_text(t, &mut out);
            }
            Ok(xml::Token::Start { attrs, .. }) | Ok(xml::Token::Empty { attrs, .. }) => {
                let _ = xml::attr(attrs, b"t");
            }
            Ok(_) => {}
            Err(_) => {}
        }
    }
    assert!(out.len() <= input.len() * 4);
});
