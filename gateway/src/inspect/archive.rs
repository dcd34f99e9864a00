//! Zip archives (and the zip containers of Office files): safe entry reads and recursion.
//!
//! Declared sizes in a zip can lie, so every entry is read through a hard cap one byte
//! above what it may expand to; the ratio check uses the bytes actually produced.

use super::blob;
use super::office::{self, OfficeKind};
use super::{Ctx, PartPath, UnscannableReason};
use std::io::{Cursor, Read};
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

/// An open zip over a byte slice.
pub(crate) type Zip<'a> = ZipArchive<Cursor<&'a [u8]>>;

/// Opens a zip, or says why it cannot be read.
pub(crate) fn open<'a>(
    bytes: &'a [u8],
    format: &'static str,
) -> Result<Zip<'a>, UnscannableReason> {
    ZipArchive::new(Cursor::new(bytes)).map_err(|e| corrupt(format, &e))
}

fn corrupt(format: &'static str, e: &ZipError) -> UnscannableReason {
    match e {
        ZipError::UnsupportedArchive(m) if *m == ZipError::PASSWORD_REQUIRED => {
            UnscannableReason::Encrypted("zip entry")
        }
        ZipError::InvalidPassword => UnscannableReason::Encrypted("zip entry"),
        ZipError::CompressionMethodNotSupported(m) => {
            UnscannableReason::UnsupportedCompression(format!("method {m}"))
        }
        _ => UnscannableReason::corrupt(format, e),
    }
}

/// Reads entry `i` within the limits and the message budget.
pub(crate) fn read_entry(
    ctx: &mut Ctx<'_>,
    zip: &mut Zip<'_>,
    i: usize,
    format: &'static str,
) -> Result<Vec<u8>, UnscannableReason> {
    let limits = ctx.limits;
    let meta = zip.by_index_data(i).map_err(|e| corrupt(format, &e))?;
    if meta.encrypted() {
        return Err(UnscannableReason::Encrypted("zip entry"));
    }
    match meta.compression() {
        CompressionMethod::Stored | CompressionMethod::Deflated => {}
        other => {
            return Err(UnscannableReason::UnsupportedCompression(format!(
                "{other:?}"
            )))
        }
    }
    let (declared, packed) = (meta.size(), meta.compressed_size().max(1));
    // Refuse early on what the entry declares; re-check below on what it produces.
    if declared > limits.max_part_bytes {
        return Err(UnscannableReason::TooLarge {
            size: declared,
            limit: limits.max_part_bytes,
        });
    }
    if declared / packed > limits.max_compression_ratio {
        return Err(UnscannableReason::CompressionRatio {
            ratio: declared / packed,
            limit: limits.max_compression_ratio,
        });
    }
    let cap = limits
        .max_part_bytes
        .min(packed.saturating_mul(limits.max_compression_ratio))
        .min(ctx.budget.remaining());
    let f = zip.by_index(i).map_err(|e| corrupt(format, &e))?;
    // Sized from the declared size (within the caps above) so the buffer is not
    // regrown and copied as it fills; a false size only costs a regrowth.
    let mut buf = Vec::with_capacity(usize::try_from(declared.min(cap)).unwrap_or(0) + 1);
    f.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| UnscannableReason::corrupt(format, e))?;
    let got = buf.len() as u64;
    if got > cap {
        return Err(if got > limits.max_part_bytes {
            UnscannableReason::TooLarge {
                size: got,
                limit: limits.max_part_bytes,
            }
        } else if got / packed > limits.max_compression_ratio {
            UnscannableReason::CompressionRatio {
                ratio: got / packed,
                limit: limits.max_compression_ratio,
            }
        } else {
            UnscannableReason::BudgetExhausted {
                limit: limits.max_expanded_bytes,
            }
        });
    }
    ctx.budget.take(got);
    Ok(buf)
}

/// Name of entry `i` (lossy; empty when unreadable).
pub(crate) fn entry_name(zip: &Zip<'_>, i: usize) -> String {
    zip.by_index_data(i)
        .ok()
        .and_then(|m| m.name().ok().map(|n| n.into_owned()))
        .unwrap_or_default()
}

/// Reads a zip at `path`: an Office file is handed to `office`, any other archive has
/// each entry extracted as a blob of its own (so zips in zips recurse).
pub(crate) fn extract_zip(ctx: &mut Ctx<'_>, path: &PartPath, bytes: &[u8], depth: usize) {
    let mut zip = match open(bytes, "zip") {
        Ok(z) => z,
        Err(r) => return ctx.unscannable(path.clone(), r),
    };
    // A central directory listing nothing in a file that starts with a local entry
    // is damaged or doctored: streaming unzippers read local entries and would still
    // find the content, so it must not pass as an empty archive.
    if zip.is_empty() && bytes.starts_with(b"PK\x03\x04") {
        return ctx.unscannable(
            path.clone(),
            UnscannableReason::corrupt(
                "zip",
                "the central directory lists no entries, yet the file holds local entries",
            ),
        );
    }
    if let Some(kind) = OfficeKind::detect(&zip) {
        return office::extract(ctx, path, &mut zip, kind, depth);
    }
    let n = zip.len();
    if n > ctx.limits.max_archive_entries {
        ctx.unscannable(
            path.clone(),
            UnscannableReason::TooManyEntries {
                count: n,
                limit: ctx.limits.max_archive_entries,
            },
        );
    }
    for i in 0..n.min(ctx.limits.max_archive_entries) {
        let name = entry_name(&zip, i);
        if name.ends_with('/') {
            continue; // a directory: no content
        }
        let epath = path.entry(&name);
        match read_entry(ctx, &mut zip, i, "zip") {
            Ok(data) => blob::extract_entry(ctx, epath, &name, &data, depth),
            Err(r) => {
                // The name is still text a sender wrote.
                ctx.text(epath.clone(), super::PartKind::FileName, name.clone());
                ctx.unscannable(epath, r);
            }
        }
    }
}
