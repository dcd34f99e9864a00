#![no_main]
//! Any bytes as a PDF content stream: the text tokenizer must end, never panic,
//! name each drawn XObject once, and write no more text than the input can hold
//! (a byte decodes to at most one character, and each operator adds one separator).
use libfuzzer_sys::fuzz_target;
use sealgate_parse::pdf_content;

fuzz_target!(|input: &[u8]| {
    let win = lopdf::Encoding::SimpleEncoding(b"WinAnsiEncoding");
    let lookup = |n: &[u8]| (n != b"None").then_some(&win);
    let mut out = String::new();
    let shown = pdf_content::show_text(input, &lookup, &mut out);
    assert!(out.chars().count() <= 2 * input.len() + 1);
    for (i, x) in shown.xobjects.iter().enumerate() {
        assert!(!shown.xobjects[..i].contains(x), "XObject named twice");
    }
});
