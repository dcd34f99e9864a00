//! The embedded backend, for one node with nothing to install: RocksDB
//! databases under `data_dir`, and plain files where a database would add
//! nothing (a handful of API tokens). Files are replaced atomically and
//! synced (`durable_file`), secrets kept 0600.

pub mod archive;
pub mod audit_file;
pub mod console;
pub mod escrow;
pub mod holds;
pub mod json_file;
pub mod key_files;
pub mod scan;
pub mod spool;
pub mod tokens;

/// Options of every RocksDB database here: made when missing, with its
/// column families; no compression, since values are encrypted (and the
/// archive compresses before it encrypts).
fn db_options() -> ::rocksdb::Options {
    let mut o = ::rocksdb::Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_compression_type(::rocksdb::DBCompressionType::None);
    o
}

/// Opens (creating if needed) the database at `dir` with column families
/// `cfs`, for writing.
fn open_writable(dir: &std::path::Path, cfs: &[&str]) -> Result<::rocksdb::DB, ::rocksdb::Error> {
    let descriptors = cfs
        .iter()
        .map(|n| ::rocksdb::ColumnFamilyDescriptor::new(*n, db_options()));
    ::rocksdb::DB::open_cf_descriptors(&db_options(), dir, descriptors)
}

/// Opens the database at `dir` read-only (beside a running writer) with
/// those of `cfs` it has: one written before a family existed lacks it,
/// and a read-only open cannot create it.
fn open_existing_read_only(
    dir: &std::path::Path,
    cfs: &[&str],
) -> Result<::rocksdb::DB, ::rocksdb::Error> {
    let existing = ::rocksdb::DB::list_cf(&db_options(), dir)?;
    let cfs = cfs.iter().filter(|c| existing.iter().any(|e| e == *c));
    ::rocksdb::DB::open_cf_for_read_only(&db_options(), dir, cfs, false)
}
