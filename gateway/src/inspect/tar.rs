//! tar archives (POSIX ustar and GNU): each regular file is extracted as a blob
//! of its own. A tar stores its entries uncompressed, so reading one costs no
//! expansion; the entry count is capped like a zip's.

use super::blob;
use super::{Ctx, PartKind, PartPath, UnscannableReason};

const BLOCK: usize = 512;

/// True for a ustar or GNU tar header block (the magic at offset 257).
pub(crate) fn is_tar(bytes: &[u8]) -> bool {
    bytes.len() >= BLOCK && (&bytes[257..262] == b"ustar")
}

/// An octal header field (NUL- or space-terminated), or None if it is not one.
fn octal(field: &[u8]) -> Option<u64> {
    let s: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| b != 0 && b != b' ')
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&s).ok()?, 8).ok()
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// A header's checksum as it should read: the byte sum of the 512-byte block
/// with the checksum field itself counted as spaces.
pub(crate) fn header_sum(h: &[u8]) -> u64 {
    h.iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum()
}

fn checksum_ok(h: &[u8]) -> bool {
    octal(&h[148..156]) == Some(header_sum(h))
}

/// Extracts every regular file of a tar archive.
pub(crate) fn extract(ctx: &mut Ctx<'_>, path: &PartPath, bytes: &[u8], depth: usize) {
    let mut at = 0usize;
    let mut entries = 0usize;
    let mut long_name: Option<String> = None;
    // Reported once: the entries are still read, damaged or not.
    let mut damaged = false;
    while at + BLOCK <= bytes.len() {
        let header_at = at;
        let h = &bytes[at..at + BLOCK];
        if h.iter().all(|&b| b == 0) {
            break; // the end-of-archive blocks
        }
        let Some(size) = octal(&h[124..136]) else {
            return ctx.unscannable(
                path.clone(),
                UnscannableReason::corrupt("tar", format!("bad size field at offset {at}")),
            );
        };
        let start = at + BLOCK;
        let Some(end) = usize::try_from(size)
            .ok()
            .and_then(|s| start.checked_add(s))
            .filter(|&e| e <= bytes.len())
        else {
            return ctx.unscannable(
                path.clone(),
                UnscannableReason::corrupt(
                    "tar",
                    format!("entry at offset {at} runs past the end"),
                ),
            );
        };
        let data = &bytes[start..end];
        at = start + size.div_ceil(BLOCK as u64) as usize * BLOCK;
        let kind = h[156];
        if kind == b'L' {
            // GNU long name: the next header's name.
            long_name = Some(cstr(data));
            continue;
        }
        let name = long_name.take().unwrap_or_else(|| {
            let prefix = cstr(&h[345..500]);
            let base = cstr(&h[..100]);
            if &h[257..263] == b"ustar\0" && !prefix.is_empty() {
                format!("{prefix}/{base}")
            } else {
                base
            }
        });
        // Links, devices, directories, FIFOs, pax and GNU metadata have no content.
        // Anything else is a file: POSIX reads an unknown type flag as a regular
        // file, and so must a scanner, or a flag would hide the content.
        if matches!(kind, b'1'..=b'6' | b'x' | b'g' | b'K' | b'D' | b'V') {
            continue;
        }
        if !checksum_ok(h) && !damaged {
            damaged = true;
            ctx.unscannable(
                path.clone(),
                UnscannableReason::corrupt(
                    "tar",
                    format!("header checksum wrong at offset {header_at}"),
                ),
            );
        }
        entries += 1;
        if entries > ctx.limits.max_archive_entries {
            return ctx.unscannable(
                path.clone(),
                UnscannableReason::TooManyEntries {
                    count: entries,
                    limit: ctx.limits.max_archive_entries,
                },
            );
        }
        let epath = path.entry(&name);
        if size > ctx.limits.max_part_bytes {
            ctx.text(epath.clone(), PartKind::FileName, name.clone());
            ctx.unscannable(
                epath,
                UnscannableReason::TooLarge {
                    size,
                    limit: ctx.limits.max_part_bytes,
                },
            );
            continue;
        }
        blob::extract_entry(ctx, epath, &name, data, depth);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_parse_with_nul_or_space_ends() {
        assert_eq!(octal(b"00000000017\0"), Some(15));
        assert_eq!(octal(b"     17 \0"), Some(15));
        assert_eq!(octal(b"\0\0\0"), Some(0));
        assert_eq!(octal(b"0009x\0"), None);
    }
}
