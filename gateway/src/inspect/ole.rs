//! Legacy Office files (OLE2 compound files: Word 97–2003 `.doc`, Excel
//! `.xls`, PowerPoint `.ppt`). Their text is stored in binary streams, as
//! runs of Windows-1252 or UTF-16LE characters; we read those streams with
//! `cfb` and keep every run of readable characters (what `strings` would
//! show), which is where typed identifiers live. Excel's cells are also
//! read as a sheet: shared strings, labels and numbers (NUMBER, RK, MULRK),
//! row by row, so a number typed into a cell is seen next to its header.
//! A password-protected file is reported as encrypted: an `EncryptionInfo`
//! stream (Office 2007+ protection), the FIB's fEncrypted flag of a Word 97–2003
//! document, or a FILEPASS record in an Excel 97–2003 workbook. A main stream
//! that holds bytes but no readable text is reported too, never passed as empty.

use super::{runs, Ctx, PartKind, PartPath, UnscannableReason};
use std::io::{Cursor, Read};

/// The compound file signature.
pub(crate) const MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// The streams that hold a document's text, and the part kind they give.
const TEXT_STREAMS: [(&str, PartKind); 5] = [
    ("/WordDocument", PartKind::Doc),
    ("/Workbook", PartKind::Xls),
    ("/Book", PartKind::Xls),
    ("/PowerPoint Document", PartKind::Ppt),
    ("/1Table", PartKind::Doc),
];

/// True when a Word or Excel 97–2003 stream says its content is encrypted or
/// obfuscated (a password to open): Word's FIB (wIdent 0xA5EC, fEncrypted 0x0100
/// in the flags at offset 10), Excel's FILEPASS record among the first records.
fn legacy_encrypted(stream: &str, data: &[u8]) -> bool {
    let u16_at = |i: usize| data.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    match stream {
        "/WordDocument" => u16_at(0) == Some(0xA5EC) && u16_at(10).is_some_and(|f| f & 0x0100 != 0),
        "/Workbook" | "/Book" => {
            let mut at = 0;
            for _ in 0..64 {
                let (Some(kind), Some(len)) = (u16_at(at), u16_at(at + 2)) else {
                    return false;
                };
                match kind {
                    0x002F => return true,  // FILEPASS
                    0x000A => return false, // EOF of the globals
                    _ => at += 4 + usize::from(len),
                }
            }
            false
        }
        _ => false,
    }
}

/// An RK number (Excel's compact cell value).
fn rk(v: u32) -> f64 {
    let n = if v & 0x02 != 0 {
        f64::from((v as i32) >> 2)
    } else {
        f64::from_bits(u64::from(v & 0xFFFF_FFFC) << 32)
    };
    if v & 0x01 != 0 {
        n / 100.0
    } else {
        n
    }
}

/// A cell number as typed: integers without a decimal point.
fn number(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Excel's shared string table, read across its CONTINUE records: at a
/// record boundary inside a string's characters, a new flags byte says
/// whether the rest is 8-bit or UTF-16.
struct SstReader<'a> {
    segs: Vec<&'a [u8]>,
    seg: usize,
    at: usize,
}

impl SstReader<'_> {
    fn byte(&mut self) -> Option<u8> {
        while self.at >= self.segs.get(self.seg)?.len() {
            self.seg += 1;
            self.at = 0;
        }
        let b = self.segs[self.seg][self.at];
        self.at += 1;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([
            self.byte()?,
            self.byte()?,
            self.byte()?,
            self.byte()?,
        ]))
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        for _ in 0..n {
            self.byte()?;
        }
        Some(())
    }
    /// One XLUnicodeRichExtendedString.
    fn string(&mut self) -> Option<String> {
        let cch = usize::from(self.u16()?);
        let flags = self.byte()?;
        let runs = if flags & 0x08 != 0 {
            usize::from(self.u16()?)
        } else {
            0
        };
        let ext = if flags & 0x04 != 0 {
            self.u32()? as usize
        } else {
            0
        };
        let mut wide = flags & 0x01 != 0;
        let mut out = String::with_capacity(cch);
        for _ in 0..cch {
            if self.at >= self.segs.get(self.seg)?.len() {
                // The characters continue in the next record, after a new flags byte.
                self.seg += 1;
                self.at = 0;
                wide = self.byte()? & 0x01 != 0;
            }
            let unit = if wide {
                self.u16()?
            } else {
                u16::from(self.byte()?)
            };
            out.push(char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'));
        }
        self.skip(runs * 4 + ext)?;
        Some(out)
    }
}

/// An Excel BIFF stream's cells (shared and inline strings, numbers) as
/// text, one line per row with a tab between cells, sheet after sheet: a
/// header keyword ("SSN") sits on the line above its values, as in the
/// sheet.
fn xls_cells(data: &[u8], out: &mut String) {
    let mut records: Vec<(u16, &[u8])> = Vec::new();
    let mut at = 0usize;
    while at + 4 <= data.len() {
        let kind = u16::from_le_bytes([data[at], data[at + 1]]);
        let len = usize::from(u16::from_le_bytes([data[at + 2], data[at + 3]]));
        let Some(rec) = data.get(at + 4..at + 4 + len) else {
            break;
        };
        records.push((kind, rec));
        at += 4 + len;
    }
    let mut shared = Vec::new();
    let mut cells: std::collections::BTreeMap<(usize, u16, u16), String> = Default::default();
    let mut sheet = 0usize;
    for (n, &(kind, rec)) in records.iter().enumerate() {
        let u16_at = |i: usize| rec.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let u32_at = |i: usize| {
            rec.get(i..i + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let cell = |out: &mut std::collections::BTreeMap<(usize, u16, u16), String>, v: String| {
            if let (Some(r), Some(c)) = (u16_at(0), u16_at(2)) {
                out.insert((sheet, r, c), v);
            }
        };
        match kind {
            0x0809 => sheet += 1, // BOF: the next substream
            0x00FC if rec.len() >= 8 => {
                let mut segs = vec![&rec[8..]];
                segs.extend(
                    records[n + 1..]
                        .iter()
                        .take_while(|r| r.0 == 0x003C)
                        .map(|r| r.1),
                );
                let unique = u32_at(4).unwrap_or(0) as usize;
                let mut r = SstReader {
                    segs,
                    seg: 0,
                    at: 0,
                };
                while shared.len() < unique {
                    match r.string() {
                        Some(s) => shared.push(s),
                        None => break,
                    }
                }
            }
            0x00FD => {
                if let Some(s) = u32_at(6).and_then(|i| shared.get(i as usize)) {
                    cell(&mut cells, s.clone());
                }
            }
            0x0204 if rec.len() >= 9 => {
                let mut r = SstReader {
                    segs: vec![&rec[6..]],
                    seg: 0,
                    at: 0,
                };
                // XLUnicodeString: no rich or extended parts.
                let cch = r.u16().unwrap_or(0);
                let wide = r.byte().unwrap_or(0) & 0x01 != 0;
                let s: String = (0..cch)
                    .map_while(|_| {
                        if wide {
                            r.u16()
                        } else {
                            r.byte().map(u16::from)
                        }
                    })
                    .map(|u| char::from_u32(u32::from(u)).unwrap_or('\u{FFFD}'))
                    .collect();
                cell(&mut cells, s);
            }
            0x0203 if rec.len() >= 14 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&rec[6..14]);
                cell(&mut cells, number(f64::from_le_bytes(b)));
            }
            0x027E if rec.len() >= 10 => {
                if let Some(v) = u32_at(6) {
                    cell(&mut cells, number(rk(v)));
                }
            }
            0x00BD if rec.len() >= 6 => {
                if let (Some(row), Some(first)) = (u16_at(0), u16_at(2)) {
                    for c in 0..(rec.len() - 6) / 6 {
                        if let Some(v) = u32_at(4 + c * 6 + 2) {
                            cells.insert((sheet, row, first + c as u16), number(rk(v)));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut last: Option<(usize, u16)> = None;
    for ((s, r, _), v) in cells {
        match last {
            Some(l) if l == (s, r) => out.push('\t'),
            Some(_) => out.push('\n'),
            None => {}
        }
        last = Some((s, r));
        out.push_str(&v);
    }
    if last.is_some() {
        out.push('\n');
    }
}

/// Extracts the text of a legacy Office file.
pub(crate) fn extract(ctx: &mut Ctx<'_>, path: &PartPath, bytes: &[u8]) {
    let mut file = match cfb::CompoundFile::open(Cursor::new(bytes)) {
        Ok(f) => f,
        Err(e) => {
            // A damaged file that names an EncryptionInfo stream is still a protected one.
            let marker: Vec<u8> = "EncryptionInfo".bytes().flat_map(|c| [c, 0]).collect();
            let reason = if bytes.windows(marker.len()).any(|w| w == marker) {
                UnscannableReason::Encrypted("password-protected Office file")
            } else {
                UnscannableReason::corrupt("ole2", e)
            };
            return ctx.unscannable(path.clone(), reason);
        }
    };
    if file.exists("/EncryptionInfo") || file.exists("/EncryptedPackage") {
        return ctx.unscannable(
            path.clone(),
            UnscannableReason::Encrypted("password-protected Office file"),
        );
    }
    let mut found = false;
    for (stream, kind) in TEXT_STREAMS {
        if !file.is_stream(stream) {
            continue;
        }
        found = true;
        let mut data = Vec::new();
        let limit = ctx.limits.max_part_bytes;
        let read = file
            .open_stream(stream)
            .and_then(|s| s.take(limit.saturating_add(1)).read_to_end(&mut data));
        if let Err(e) = read {
            ctx.unscannable(path.clone(), UnscannableReason::corrupt("ole2", e));
            continue;
        }
        if data.len() as u64 > limit {
            ctx.unscannable(
                path.clone(),
                UnscannableReason::TooLarge {
                    size: data.len() as u64,
                    limit,
                },
            );
            continue;
        }
        if legacy_encrypted(stream, &data) {
            return ctx.unscannable(
                path.clone(),
                UnscannableReason::Encrypted("password-protected Office file"),
            );
        }
        let mut text = runs::text_runs(&data);
        if kind == PartKind::Xls {
            xls_cells(&data, &mut text);
        }
        // A main stream always holds text (Word's FIB alone is 68+ bytes with runs
        // after it): an empty or unreadable one is damage, not an empty document.
        if text.trim().is_empty() && stream != "/1Table" {
            ctx.unscannable(
                path.clone(),
                UnscannableReason::corrupt("ole2", format!("no readable text in {stream}")),
            );
            continue;
        }
        if ctx.charge(path, text.len() as u64) {
            ctx.text(path.clone(), kind, text);
        }
    }
    if !found {
        ctx.unscannable(
            path.clone(),
            UnscannableReason::UnsupportedType(
                "OLE2 file without Word, Excel or PowerPoint text".into(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BIFF record.
    fn rec(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut r = kind.to_le_bytes().to_vec();
        r.extend_from_slice(&(data.len() as u16).to_le_bytes());
        r.extend_from_slice(data);
        r
    }

    #[test]
    fn excel_cells_read_row_by_row_across_continue_records() {
        let mut s = rec(0x0809, &[0; 16]);
        // SST: "SSN" (8-bit), "card number" split into a CONTINUE that switches to UTF-16.
        let mut sst = vec![2, 0, 0, 0, 2, 0, 0, 0];
        sst.extend_from_slice(&[3, 0, 0]);
        sst.extend_from_slice(b"SSN");
        sst.extend_from_slice(&[11, 0, 0]);
        sst.extend_from_slice(b"card ");
        s.extend(rec(0x00FC, &sst));
        let mut cont = vec![1u8];
        for c in "number".encode_utf16() {
            cont.extend_from_slice(&c.to_le_bytes());
        }
        s.extend(rec(0x003C, &cont));
        // Row 0: the two shared strings; row 1: NUMBER, then RK 42 in column 1.
        s.extend(rec(0x00FD, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        s.extend(rec(0x00FD, &[0, 0, 1, 0, 0, 0, 1, 0, 0, 0]));
        let mut num = vec![1, 0, 0, 0, 0, 0];
        num.extend_from_slice(&457_123_456f64.to_le_bytes());
        s.extend(rec(0x0203, &num));
        let mut rk = vec![1, 0, 1, 0, 0, 0];
        rk.extend_from_slice(&((42u32 << 2) | 2).to_le_bytes());
        s.extend(rec(0x027E, &rk));
        // Row 2: a LABEL and a MULRK of 1.5 (150 / 100).
        let mut label = vec![2, 0, 0, 0, 0, 0, 3, 0, 0];
        label.extend_from_slice(b"Pat");
        s.extend(rec(0x0204, &label));
        let mut mulrk = vec![2, 0, 1, 0, 0, 0];
        mulrk.extend_from_slice(&((150u32 << 2) | 3).to_le_bytes());
        mulrk.extend_from_slice(&[1, 0]);
        s.extend(rec(0x00BD, &mulrk));
        let mut out = String::new();
        xls_cells(&s, &mut out);
        assert_eq!(out, "SSN\tcard number\n457123456\t42\nPat\t1.5\n");
    }
}
