//! The house rule, kept by a test: a top-level module of `gateway/src`
//! imports only modules on a floor below its own. Mail flows one way
//! (smtp → spool → inspect → policy → seal → deliver → archive), the
//! ground floor (model, config, telemetry, net, store) names no stage, and
//! the surfaces (portal, admin, console, the binary) sit on top where nothing
//! imports them. ARCHITECTURE.md draws the same floors.
//!
//! Read from the sources: every `crate::MODULE` path outside comments,
//! string literals and `#[cfg(test)]` items counts (tests may reach
//! anywhere). A failure prints each offending line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Floors, lowest first. A module may import modules of lower floors only.
const FLOORS: &[&[&str]] = &[
    // The lock helper: std only, usable from anywhere.
    &["locks"],
    // Ground: plain types; files written whole and secret files (the
    // store's file helpers); settings; then what every stage stands on.
    &["model"],
    &["durable_file"],
    &["secret_file"],
    &["config"],
    &["telemetry", "net", "store"],
    &["audit"],
    // The stages, in the order mail flows.
    &["spool"],
    &["smtp"],
    &["inspect"],
    &["keys"],
    &["policy"],
    &["seal"],
    &["deliver"],
    &["archive"],
    // Surfaces.
    &["portal"],
    &["admin"],
    &["console"],
    &["preflight", "serve"],
    // The binary's commands (`mod cli` of main.rs): on top of everything,
    // reaching the library as `sealgate::`: its `crate::` paths name only itself.
    &["cli"],
];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

/// The source with comments, string and char literals blanked (so a
/// `crate::` or a brace inside them counts for nothing), lines kept.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        out.extend_from_slice(b"  ");
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        out.extend_from_slice(b"  ");
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        blank(&mut out, b[i]);
                        i += 1;
                    }
                }
            }
            b'r' if matches!(b.get(i + 1), Some(b'"') | Some(b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                // Raw string r#"..."#: find the closing quote and hashes.
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push(b[i]);
                    i += 1;
                    continue;
                }
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                let end = b[j + 1..]
                    .windows(close.len())
                    .position(|w| w == close.as_slice())
                    .map_or(b.len(), |p| j + 1 + p + close.len());
                for &c in &b[i..end] {
                    blank(&mut out, c);
                }
                i = end;
            }
            b'"' => {
                blank(&mut out, b[i]);
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        blank(&mut out, b[i]);
                        i += 1;
                    }
                    if i < b.len() {
                        blank(&mut out, b[i]);
                        i += 1;
                    }
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{7f}'), or a lifetime ('a).
                let lit_end = if b.get(i + 1) == Some(&b'\\') {
                    b[i + 2..]
                        .iter()
                        .position(|&c| c == b'\'')
                        .map(|p| i + 3 + p)
                } else if b.get(i + 2) == Some(&b'\'') {
                    Some(i + 3)
                } else {
                    // Multi-byte UTF-8 char literal.
                    let s = std::str::from_utf8(&b[i + 1..]).ok();
                    s.and_then(|s| s.chars().next())
                        .filter(|c| c.len_utf8() > 1)
                        .map(|c| i + 1 + c.len_utf8())
                        .filter(|&e| b.get(e) == Some(&b'\''))
                        .map(|e| e + 1)
                };
                match lit_end {
                    Some(end) => {
                        for &c in &b[i..end] {
                            blank(&mut out, c);
                        }
                        i = end;
                    }
                    None => {
                        out.push(b[i]);
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `code` with every `#[cfg(test)]` item blanked (lines kept).
fn without_tests(code: &str) -> String {
    let mut out: Vec<u8> = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(k) = code[from..].find("#[cfg(test)]").map(|k| from + k) {
        // The item ends at its `;` or at the brace closing its first `{`.
        let rest = &code.as_bytes()[k..];
        let mut depth = 0usize;
        let mut end = code.len();
        for (n, &c) in rest.iter().enumerate() {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k + n + 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = k + n + 1;
                    break;
                }
                _ => {}
            }
        }
        for c in &mut out[k..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    String::from_utf8(out).expect("ASCII blanks keep UTF-8")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("source directory") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_module_imports_only_floors_below_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let top = |p: &Path| {
        let rel = p.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("non-empty");
        let name = first.as_os_str().to_string_lossy();
        name.trim_end_matches(".rs").to_string()
    };
    let mut unplaced = Vec::new();
    let mut wrong = Vec::new();
    let mut edges: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let from = top(f);
        if from == "lib" || from == "main" {
            continue;
        }
        let Some(from_floor) = floor_of(&from) else {
            unplaced.push(from.clone());
            continue;
        };
        // Test-only files: `tests.rs`, and test data modules.
        let name = f.file_name().unwrap().to_string_lossy();
        if name == "tests.rs" || name == "testdata.rs" {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("readable source");
        let code = without_tests(&code_only(&text));
        for (n, line) in code.lines().enumerate() {
            let mut rest = line;
            while let Some(p) = rest.find("crate::") {
                let after = &rest[p + "crate::".len()..];
                let to: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &after[to.len()..];
                if to == from || to.is_empty() {
                    continue;
                }
                edges.entry(from.clone()).or_default().insert(to.clone());
                match floor_of(&to) {
                    Some(to_floor) if to_floor < from_floor => {}
                    Some(_) => wrong.push(format!(
                        "{}:{}: {from} (floor {from_floor}) imports {to} (floor {}): {}",
                        f.strip_prefix(&src).unwrap().display(),
                        n + 1,
                        floor_of(&to).unwrap(),
                        text.lines().nth(n).unwrap_or("").trim()
                    )),
                    None => unplaced.push(to),
                }
            }
        }
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(
        unplaced.is_empty(),
        "modules on no floor (add them to FLOORS in gateway/tests/layers.rs and ARCHITECTURE.md): {unplaced:?}"
    );
    assert!(
        wrong.is_empty(),
        "imports that go up or sideways:\n{}\n\nthe graph: {edges:#?}",
        wrong.join("\n")
    );
}

#[test]
fn the_reader_sees_through_comments_strings_and_tests() {
    let src = r##"
use crate::model::x; // crate::admin in a comment
const S: &str = "crate::admin in a string";
const R: &str = r#"crate::admin " raw"#;
const C: char = '{';
fn f<'a>(x: &'a str) -> &'a str { crate::config::y(x) }
/* crate::admin /* nested */ still a comment */
#[cfg(test)]
mod tests { use crate::admin::z; fn g() { let _ = '}'; } }
#[cfg(test)]
use crate::serve::w;
fn after() { crate::net::v(); }
"##;
    let code = without_tests(&code_only(src));
    let found: Vec<&str> = code
        .match_indices("crate::")
        .map(|(i, _)| &code[i..i + 12])
        .collect();
    assert_eq!(
        found,
        ["crate::model", "crate::confi", "crate::net::"],
        "{code}"
    );
    assert_eq!(code.lines().count(), src.lines().count(), "lines kept");
}
