//! Files sealed at rest under a key that lives only in memory: what the
//! archive API writes for an export between the request and the download.
//! Should the disk be read, or the gateway stop before the download, the
//! files open under no key that exists.
//!
//! Layout: `SGX1`, an 8-byte random nonce prefix, then chunks of
//! `u32 length (big-endian) ‖ AES-256-GCM ciphertext` of at most
//! [`CHUNK`] plaintext octets. Chunk *n*'s nonce is the prefix ‖ *n*
//! (big-endian); its associated data says whether it is the last, so a
//! file cut short or reordered does not open (the STREAM construction).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use std::io::{self, Write};

const MAGIC: &[u8; 4] = b"SGX1";
/// Plaintext octets per chunk.
pub const CHUNK: usize = 64 * 1024;

/// A key for sealed files; never written anywhere.
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl SealKey {
    /// A fresh random key.
    pub fn random() -> Self {
        SealKey(rand::random())
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&self.0).expect("a 32-byte key")
    }
}

fn nonce(prefix: &[u8; 8], n: u32) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(prefix);
    out[8..].copy_from_slice(&n.to_be_bytes());
    out
}

/// Writes a sealed file: plaintext in, chunks out; [`SealWriter::finish`]
/// writes the last chunk (a file never finished does not open).
pub struct SealWriter<W: Write> {
    inner: W,
    cipher: Aes256Gcm,
    prefix: [u8; 8],
    n: u32,
    buf: Vec<u8>,
}

impl<W: Write> SealWriter<W> {
    /// Starts a sealed file on `inner`.
    pub fn new(mut inner: W, key: &SealKey) -> io::Result<Self> {
        let prefix: [u8; 8] = rand::random();
        inner.write_all(MAGIC)?;
        inner.write_all(&prefix)?;
        Ok(SealWriter {
            inner,
            cipher: key.cipher(),
            prefix,
            n: 0,
            buf: Vec::with_capacity(CHUNK),
        })
    }

    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce(&self.prefix, self.n)),
                Payload {
                    msg: &self.buf,
                    aad: &[u8::from(last)],
                },
            )
            .map_err(|_| io::Error::other("AES-GCM refused a chunk"))?;
        self.n = self
            .n
            .checked_add(1)
            .ok_or_else(|| io::Error::other("sealed file too long"))?;
        self.inner.write_all(&(sealed.len() as u32).to_be_bytes())?;
        self.inner.write_all(&sealed)?;
        self.buf.clear();
        Ok(())
    }

    /// Seals what is buffered as the last chunk and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_chunk(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let take = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == CHUNK {
            self.seal_chunk(false)?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunks are sealed whole; a partial one waits for more or `finish`.
        Ok(())
    }
}

/// Why a sealed file did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Not a sealed file.
    #[error("not a sealed file")]
    NotSealed,
    /// A chunk failed authentication, or the file was cut short.
    #[error("sealed file damaged or cut short at chunk {0}")]
    Damaged(u32),
}

/// Opens a whole sealed file.
pub fn open(bytes: &[u8], key: &SealKey) -> Result<Vec<u8>, OpenError> {
    if bytes.len() < 12 || &bytes[..4] != MAGIC {
        return Err(OpenError::NotSealed);
    }
    let prefix: [u8; 8] = bytes[4..12].try_into().expect("8 bytes");
    let cipher = key.cipher();
    let mut rest = &bytes[12..];
    let mut out = Vec::new();
    for n in 0u32.. {
        if rest.len() < 4 {
            return Err(OpenError::Damaged(n));
        }
        let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let chunk = rest.get(4..4 + len).ok_or(OpenError::Damaged(n))?;
        rest = &rest[4 + len..];
        let last = rest.is_empty();
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&nonce(&prefix, n)),
                Payload {
                    msg: chunk,
                    aad: &[u8::from(last)],
                },
            )
            .map_err(|_| OpenError::Damaged(n))?;
        out.extend_from_slice(&plain);
        if last {
            return Ok(out);
        }
    }
    Err(OpenError::Damaged(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(data: &[u8], key: &SealKey) -> Vec<u8> {
        let mut w = SealWriter::new(Vec::new(), key).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn opens_under_its_key_only_and_not_cut_short() {
        let key = SealKey::random();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = seal(&data, &key);
            assert_eq!(open(&sealed, &key).unwrap(), data, "{len}");
            assert!(open(&sealed, &SealKey::random()).is_err());
            if len > CHUNK {
                // Cut after the first chunk: that chunk is not marked last.
                let first = 12 + 4 + CHUNK + 16;
                assert!(matches!(
                    open(&sealed[..first], &key),
                    Err(OpenError::Damaged(0))
                ));
            }
        }
        let sealed = seal(b"Patient: Jane Roe", &key);
        assert!(!sealed.windows(4).any(|w| w == b"Jane"));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(open(&flipped, &key).is_err());
    }
}
