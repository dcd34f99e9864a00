//! The embedded backend, for one node with nothing to install: RocksDB
//! databases under `data_dir`, and plain files where a database would add
//! nothing (a handful of API tokens). Files are replaced atomically and
//! synced (`durable_file`), secrets kept 0600.

pub mod archive;
pub mod audit_file;
pub mod escrow;
pub mod holds;
pub mod json_file;
pub mod key_files;
pub mod scan;
pub mod spool;
pub mod tokens;
