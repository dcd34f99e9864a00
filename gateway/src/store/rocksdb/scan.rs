//! Reads every record of a RocksDB store with checksums verified, so that
//! damage anywhere in its table files is found and named, not only in the
//! records a walk happens to read.

use rocksdb::{IteratorMode, ReadOptions, DB};

/// A column family that could not be read whole: its name and RocksDB's
/// reason (which names the damaged table file).
pub type DamagedTable = (String, String);

/// Reads every record of each of `families` in `db`; returns the ones that
/// failed. Blocks are not kept in the cache: a verify of a large store must
/// not push out what the running gateway uses.
pub fn scan(db: &DB, families: &[&str]) -> Vec<DamagedTable> {
    let mut damaged = Vec::new();
    for name in families {
        let Some(cf) = db.cf_handle(name) else {
            continue;
        };
        let mut opts = ReadOptions::default();
        opts.set_verify_checksums(true);
        opts.fill_cache(false);
        for kv in db.iterator_cf_opt(cf, opts, IteratorMode::Start) {
            if let Err(e) = kv {
                damaged.push((name.to_string(), e.to_string()));
                break;
            }
        }
    }
    damaged
}

/// The first table file of `family` in `db` (flushed first): for tests of
/// damage detection.
#[cfg(test)]
pub fn table_file(db: &DB, family: &str) -> std::path::PathBuf {
    db.flush_cf(db.cf_handle(family).unwrap()).unwrap();
    let file = db
        .live_files()
        .unwrap()
        .into_iter()
        .find(|f| f.column_family_name == family)
        .unwrap_or_else(|| panic!("no table file for {family}"));
    db.path().join(file.name.trim_start_matches('/'))
}

/// Flips the byte at a quarter of `path` (inside its first data block).
#[cfg(test)]
pub fn flip_byte(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = (bytes.len() / 4).min(100);
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}
