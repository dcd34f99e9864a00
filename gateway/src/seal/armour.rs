//! ASCII armour (RFC 9580 §6.2) for a PGP/MIME body, written straight into
//! the sealed message: 64-character base64 lines ending in CRLF, as a MIME
//! body needs them, and the CRC-24 line that older readers still expect.
//!
//! Sequoia's own armourer writes LF lines one `write` at a time and sums the
//! CRC a byte at a time; with the CRLF pass after it that was a fifth of a
//! 10 MB seal. This one encodes whole lines in place and sums the CRC with
//! sliced tables, and for a big message it runs on a second thread beside
//! the encryption ([`armoured`]), so it adds CPU time but no wall time.

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
            push_base64_crlf(self.out, &stash[..self.stashed], LINE_INPUT);
        }
        let crc = self.crc.finalize().to_be_bytes();
        self.out.push(b'=');
        push_base64_crlf(self.out, &crc[1..], LINE_INPUT);
        self.out.extend_from_slice(b"-----END PGP MESSAGE-----\r\n");
    }
}

/// Messages at least this big are armoured on a second thread: below it the
/// thread costs more than the base64 it takes off the encryption's path.
pub const ARMOUR_BESIDE_FROM: usize = 1 << 20;

/// How much encrypted output the encrypting thread hands over at a time.
const HANDOFF: usize = 256 * 1024;

/// Runs `write` with a sink whose bytes end up as an armoured "PGP MESSAGE"
/// at the end of `out`: armoured as they come on this thread when `size` is
/// small, else on a scoped second thread fed through a bounded channel.
pub fn armoured<T, E>(
    out: &mut Vec<u8>,
    size: usize,
    write: impl FnOnce(&mut (dyn io::Write + Send + Sync)) -> Result<T, E>,
) -> Result<T, E> {
    if size < ARMOUR_BESIDE_FROM {
        let mut armour = ArmourWriter::new(out);
        let r = write(&mut armour);
        armour.finish();
        return r;
    }
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let armourer = scope.spawn(move || {
            let mut armour = ArmourWriter::new(out);
            for chunk in rx {
                // Writing into memory cannot fail.
                let _ = io::Write::write_all(&mut armour, &chunk);
            }
            armour.finish();
        });
        let mut sink = Handoff {
            tx: Some(tx),
            buf: Vec::with_capacity(HANDOFF),
        };
        let r = write(&mut sink);
        sink.close();
        if let Err(panic) = armourer.join() {
            std::panic::resume_unwind(panic);
        }
        r
    })
}

/// The encrypting thread's end of [`armoured`]'s channel.
struct Handoff {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
}

impl Handoff {
    /// Sends what is buffered and closes the channel, ending the armour.
    fn close(&mut self) {
        let _ = self.send();
        self.tx = None;
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(HANDOFF));
        match &self.tx {
            Some(tx) => tx
                .send(chunk)
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "armour thread ended")),
            None => Err(io::Error::new(io::ErrorKind::BrokenPipe, "armour closed")),
        }
    }
}

impl io::Write for Handoff {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= HANDOFF {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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
            push_base64_crlf(self.out, &stash, LINE_INPUT);
            self.stashed = 0;
        }
        let whole = rest.len() / LINE_INPUT * LINE_INPUT;
        push_base64_crlf(self.out, &rest[..whole], LINE_INPUT);
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
    fn armour_beside_is_the_same_as_armour_in_line() {
        let data: Vec<u8> = (0..(ARMOUR_BESIDE_FROM as u64 + 300_001))
            .map(|i| (i * 7919 % 251) as u8)
            .collect();
        let run = |size: usize| {
            let mut out = b"x".to_vec();
            armoured(&mut out, size, |w| -> std::io::Result<()> {
                for piece in data.chunks(10_007) {
                    w.write_all(piece)?;
                }
                Ok(())
            })
            .unwrap();
            out
        };
        let beside = run(data.len());
        assert_eq!(beside, run(0));
        assert_eq!(beside[1..], ours(&data, 1)[8..]);
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
