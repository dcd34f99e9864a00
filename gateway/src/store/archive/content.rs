//! How an archived message is kept at rest, whatever the backend: zstd,
//! then sealed under its own SHA-256 with the archive's keyring; and read
//! back, checked against that SHA-256.

use super::chain::{self, Hash};
use super::ArchiveError;
use crate::store::keyring::Keyring;

/// `raw` compressed with zstd, then sealed under its content key `sha`.
pub fn pack(keys: &Keyring, sha: &Hash, raw: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    thread_local! {
        // A compression context is about a megabyte, zeroed when made:
        // made once per thread, not once per message (the relay
        // benchmark's profile had it at a fifth of journaling).
        static ZSTD: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let packed = ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compressor = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(zstd::bulk::Compressor::new(3)?),
        };
        compressor.compress(raw)
    });
    let packed = packed.map_err(|e| ArchiveError::Io {
        path: "zstd".into(),
        source: e,
    })?;
    Ok(keys.seal(sha, &packed))
}

/// The message `sealed` under `sha` by [`pack`], opened, decompressed and
/// checked against `sha`.
pub fn unpack(keys: &Keyring, sha: &Hash, sealed: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    let what = || format!("content {}", hex::encode(sha));
    let packed = keys.open(sha, sealed).map_err(|source| ArchiveError::Key {
        what: what(),
        source,
    })?;
    let raw = zstd::stream::decode_all(&packed[..])
        .map_err(|e| ArchiveError::Corrupt(what(), format!("does not decompress: {e}")))?;
    if chain::sha256(&raw) != *sha {
        return Err(ArchiveError::Corrupt(
            what(),
            "SHA-256 does not match".into(),
        ));
    }
    Ok(raw)
}
