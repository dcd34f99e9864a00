//! Builds the table of rule files compiled into the crate: every file under
//! the repository's `dlp-rules/` (detectors, keywords, filters, policies), so
//! the gateway runs with its rules wherever it is started.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let p = entry.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml" || x == "txt") {
            out.push(p);
        }
    }
}

fn main() {
    // The directory cargo runs this script for, read at run time: the
    // compiled script may be shared (one target directory, several
    // checkouts), and `env!` would pin the checkout it was compiled in.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("../dlp-rules");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    // An empty built-in rule set would only show up when the gateway refuses to start.
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().contains("detectors")),
        "no DLP detector files under {}",
        root.display()
    );
    let mut code = String::from("/// Rule files built in from `dlp-rules/`: (relative path, content).\npub static BUILTIN_RULES: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f
            .strip_prefix(&root)
            .expect("under root")
            .to_string_lossy()
            .replace('\\', "/");
        let abs = f.canonicalize().expect("readable rule file");
        writeln!(
            code,
            "    ({rel:?}, include_str!({:?})),",
            abs.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_rules.rs");
    std::fs::write(out, code).expect("write builtin_rules.rs");
}
