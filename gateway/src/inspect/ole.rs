//! Legacy Office files (OLE2 compound files: Word 97–2003 `.doc`, Excel
//! `.xls`, PowerPoint `.ppt`). Their text is stored in binary streams, as
//! runs of Windows-1252 or UTF-16LE characters; we read those streams with
//! `cfb` and keep every run of readable characters (what `strings` would
//! show), which is where typed identifiers live. Excel keeps numbers as
//! binary cell records (NUMBER, RK, MULRK): those are decoded too, row by
//! row, so a number typed into a cell is seen. A password-protected file
//! (an `EncryptionInfo` stream) is reported as encrypted.

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

/// The numbers in an Excel BIFF stream's cell records, one line per row.
fn xls_numbers(data: &[u8], out: &mut String) {
    let mut at = 0usize;
    let mut row = None;
    let mut push = |r: u16, v: f64, out: &mut String| {
        if row != Some(r) {
            if row.is_some() {
                out.push('\n');
            }
            row = Some(r);
        } else {
            out.push(' ');
        }
        out.push_str(&number(v));
    };
    while at + 4 <= data.len() {
        let kind = u16::from_le_bytes([data[at], data[at + 1]]);
        let len = usize::from(u16::from_le_bytes([data[at + 2], data[at + 3]]));
        let Some(rec) = data.get(at + 4..at + 4 + len) else {
            break;
        };
        at += 4 + len;
        let u16_at = |i: usize| u16::from_le_bytes([rec[i], rec[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([rec[i], rec[i + 1], rec[i + 2], rec[i + 3]]);
        match kind {
            0x0203 if len >= 14 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&rec[6..14]);
                push(u16_at(0), f64::from_le_bytes(b), out);
            }
            0x027E if len >= 10 => push(u16_at(0), rk(u32_at(6)), out),
            0x00BD if len >= 6 => {
                let r = u16_at(0);
                let cells = (len - 6) / 6;
                for c in 0..cells {
                    push(r, rk(u32_at(4 + c * 6 + 2)), out);
                }
            }
            _ => {}
        }
    }
    if row.is_some() {
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
        let mut text = runs::text_runs(&data);
        if kind == PartKind::Xls {
            xls_numbers(&data, &mut text);
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

    #[test]
    fn excel_cell_numbers_are_decoded_by_row() {
        let mut s = Vec::new();
        // NUMBER row 1: 457123456.0
        s.extend_from_slice(&[0x03, 0x02, 14, 0, 1, 0, 0, 0, 0, 0]);
        s.extend_from_slice(&457_123_456f64.to_le_bytes());
        // RK row 1: integer 42 (42 << 2 | 0x02)
        s.extend_from_slice(&[0x7E, 0x02, 10, 0, 1, 0, 1, 0, 0, 0]);
        s.extend_from_slice(&((42u32 << 2) | 2).to_le_bytes());
        // MULRK row 2: 1.5 (150 / 100, integer flag + div100 flag)
        s.extend_from_slice(&[0xBD, 0x00, 12, 0, 2, 0, 0, 0, 0, 0]);
        s.extend_from_slice(&((150u32 << 2) | 3).to_le_bytes());
        s.extend_from_slice(&[0, 0]);
        let mut out = String::new();
        xls_numbers(&s, &mut out);
        assert_eq!(out, "457123456 42\n1.5\n");
    }
}
