//! Sealgate's pure parsers: bytes in, typed values out, no I/O. They live in a
//! crate of their own so that the gateway and the fuzz targets (`fuzz/`)
//! compile the same code, without the gateway's heavy dependencies (RocksDB,
//! TLS, DNS) in the fuzz build.

#![warn(missing_docs)]

pub mod ber;
pub mod client_reply;
pub mod office_xml;
pub mod pdf_content;
pub mod smtp;
