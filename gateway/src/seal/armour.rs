//! ASCII armour (RFC 9580 §6.2) for a PGP/MIME body, written straight into
//! the sealed message: 64-character base64 lines ending in CRLF, as a MIME
//! body needs them, and the CRC-24 line that older readers still expect.
//!
//! Sequoia's own armourer writes LF lines one `write` at a time and sums the
//! CRC a byte at a time; with the CRLF pass after it that was a fifth of a
//! 10 MB seal. This one encodes whole lines in place and sums the CRC with
//! sliced tables.

use std::io;

use super::entity::push_base64_crlf;

/// Input bytes per armour line: 64 characters of base64.
const LINE_INPUT: usize = 48;

static CRC24: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_24_OPENPGP);

/// Writes what it is given as an armoured "PGP MESSAGE" onto the end of a
/// buffer; `finish` adds the checksum and the footer.
pub struct ArmourWriter<'a> {
    out: &'a mut Vec<u8>,
    crc: crc::Digest<'static, u32, crc::Table<16>>,
    stash: [u8; LINE_INPUT],
    stashed: usize,
}

impl<'a> ArmourWriter<'a> {
    /// Starts the armour (header line and blank line) at the end of `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.extend_from_slice(b"-----BEGIN PGP MESSAGE-----\r\n\r\n");
        ArmourWriter {
            out,
            crc: CRC24.digest(),
            stash: [0; LINE_INPUT],
            stashed: 0,
        }
    }

    /// Ends the armour: the last short line, the checksum line and the footer.
    pub fn finish(self) {
        if self.stashed > 0 {
            let stash = self.stash;
            line(self.out, &stash[..self.stashed]);
        }
        let crc = self.crc.finalize().to_be_bytes();
        self.out.push(b'=');
        line(self.out, &crc[1..]);
        self.out.extend_from_slice(b"-----END PGP MESSAGE-----\r\n");
    }
}

/// Appends `input` as base64 lines of 64 characters, each with CRLF.
fn line(out: &mut Vec<u8>, input: &[u8]) {
    push_base64_crlf(out, input, LINE_INPUT);
}

impl io::Write for ArmourWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.crc.update(buf);
        let mut rest = buf;
        if self.stashed > 0 {
            let take = (LINE_INPUT - self.stashed).min(rest.len());
            self.stash[self.stashed..self.stashed + take].copy_from_slice(&rest[..take]);
            self.stashed += take;
            rest = &rest[take..];
            if self.stashed < LINE_INPUT {
                return Ok(buf.len());
            }
            let stash = self.stash;
            line(self.out, &stash);
            self.stashed = 0;
        }
        let whole = rest.len() / LINE_INPUT * LINE_INPUT;
        line(self.out, &rest[..whole]);
        let tail = &rest[whole..];
        self.stash[..tail.len()].copy_from_slice(tail);
        self.stashed = tail.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sequoia_openpgp::armor;
    use sequoia_openpgp::serialize::stream::{Armorer, Message};
    use std::io::Write as _;

    /// Sequoia's armour of `data`, with CRLF line endings.
    fn sequoia(data: &[u8]) -> Vec<u8> {
        let mut lf = Vec::new();
        let m = Armorer::new(Message::new(&mut lf))
            .kind(armor::Kind::Message)
            .build()
            .unwrap();
        let mut m = m;
        m.write_all(data).unwrap();
        m.finalize().unwrap();
        String::from_utf8(lf)
            .unwrap()
            .replace('\n', "\r\n")
            .into_bytes()
    }

    fn ours(data: &[u8], pieces: usize) -> Vec<u8> {
        let mut out = b"before\r\n".to_vec();
        let mut w = ArmourWriter::new(&mut out);
        let step = data.len().div_ceil(pieces.max(1)).max(1);
        for piece in data.chunks(step) {
            w.write_all(piece).unwrap();
        }
        w.finish();
        out
    }

    #[test]
    fn same_armour_as_sequoia_whatever_the_writes() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for len in [1, 2, 3, 47, 48, 49, 95, 96, 97, 1000, 10_000] {
            let want = sequoia(&data[..len]);
            for pieces in [1, 2, 3, 7, 50] {
                let got = ours(&data[..len], pieces);
                assert_eq!(
                    String::from_utf8(got[8..].to_vec()).unwrap(),
                    String::from_utf8(want.clone()).unwrap(),
                    "len {len}, {pieces} writes"
                );
            }
        }
    }

    #[test]
    fn armour_reads_back_with_sequoia() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 256) as u8).collect();
        let out = ours(&data, 9);
        let mut r = armor::Reader::from_bytes(&out[8..], armor::ReaderMode::Tolerant(None));
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut back).unwrap();
        assert_eq!(back, data);
    }
}
