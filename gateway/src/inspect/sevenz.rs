//! 7z archives (`sevenz-rust2`): each file is extracted as a blob of its own,
//! under the same caps as a zip entry. A 7z is often how a user sends data "safely"
//! with a password; one encrypted (content or names) is reported as such.
//!
//! 7z compresses files together in solid blocks, so an entry's compressed size is
//! not known on its own: the ratio cap cannot apply, and the part size and the
//! message budget bound what is inflated instead. The decoders' dictionaries are
//! bounded by a memory limit, and decoding runs on the inspecting thread only.

use super::blob;
use super::{Ctx, PartKind, PartPath, UnscannableReason};
use sevenz_rust2::{ArchiveReader, EntryDecision, Error, Password};
use std::io::{Cursor, Read};

/// The 7z signature.
pub(crate) const MAGIC: [u8; 6] = [b'7', b'z', 0xBC, 0xAF, 0x27, 0x1C];

/// Largest decoder dictionary or model allowed, in KiB (7-Zip's "ultra" LZMA2
/// uses 64 MiB; a bigger one is refused rather than allocated).
const MEMORY_LIMIT_KB: usize = 256 * 1024;

/// Why a 7z cannot be read.
fn reason(e: &Error) -> UnscannableReason {
    match e {
        Error::PasswordRequired | Error::MaybeBadPassword(_) => {
            UnscannableReason::Encrypted("7z archive")
        }
        Error::UnsupportedCompressionMethod(m) if m.to_ascii_uppercase().contains("AES") => {
            UnscannableReason::Encrypted("7z archive")
        }
        Error::UnsupportedCompressionMethod(m) => {
            UnscannableReason::UnsupportedCompression(format!("7z {m}"))
        }
        other => UnscannableReason::corrupt("7z", other),
    }
}

/// Extracts every file of a 7z archive. The decoders are a large third-party
/// parser fed hostile input: a panic in them is contained and reported, so the
/// rest of the message keeps its findings.
pub(crate) fn extract(ctx: &mut Ctx<'_>, path: &PartPath, bytes: &[u8], depth: usize) {
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read(ctx, path, bytes, depth)
    }));
    if run.is_err() {
        ctx.unscannable(path.clone(), UnscannableReason::ExtractorPanic("7z"));
    }
}

fn read(ctx: &mut Ctx<'_>, path: &PartPath, bytes: &[u8], depth: usize) {
    let mut reader = match ArchiveReader::new_with_memory_limit(
        Cursor::new(bytes),
        Password::from_raw(&[]),
        MEMORY_LIMIT_KB,
    ) {
        Ok(r) => r,
        Err(e) => return ctx.unscannable(path.clone(), reason(&e)),
    };
    // One core per message, like every other extractor.
    reader.set_thread_count(1);
    let limits = ctx.limits;
    let mut entries = 0usize;
    let mut skipped_block = false;
    let mut seen = std::collections::HashSet::new();
    let result = reader.for_each_entries_with_decision(|entry, data| {
        if entry.is_directory() || !entry.has_stream {
            return Ok(EntryDecision::Continue);
        }
        entries += 1;
        if entries > limits.max_archive_entries {
            ctx.unscannable(
                path.clone(),
                UnscannableReason::TooManyEntries {
                    count: entries,
                    limit: limits.max_archive_entries,
                },
            );
            return Ok(EntryDecision::Stop);
        }
        let name = entry.name().to_string();
        seen.insert(name.clone());
        let epath = path.entry(&name);
        // The declared size is the sender's word: read through a cap one byte over.
        let cap = limits.max_part_bytes.min(ctx.budget.remaining());
        let mut buf = Vec::new();
        data.take(cap.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| Error::Io(e, "reading a 7z entry".into()))?;
        if buf.len() as u64 > cap || !ctx.charge(&epath, buf.len() as u64) {
            ctx.text(epath.clone(), PartKind::FileName, name.clone());
            if buf.len() as u64 > cap {
                ctx.unscannable(
                    epath,
                    UnscannableReason::TooLarge {
                        size: entry.size().max(buf.len() as u64),
                        limit: cap,
                    },
                );
            }
            // The rest of this solid block is not inflated (a bomb stops here); the
            // entries it held are reported below.
            skipped_block = true;
            return Ok(EntryDecision::SkipBlock);
        }
        blob::extract_entry(ctx, epath, &name, &buf, depth);
        Ok(EntryDecision::Continue)
    });
    if let Err(e) = result {
        ctx.unscannable(path.clone(), reason(&e));
    }
    if skipped_block {
        let names: Vec<String> = reader
            .archive()
            .files
            .iter()
            .filter(|f| f.has_stream && !f.is_directory() && !seen.contains(f.name()))
            .map(|f| f.name().to_string())
            .collect();
        for name in names {
            let epath = path.entry(&name);
            ctx.text(epath.clone(), PartKind::FileName, name);
            ctx.unscannable(
                epath,
                UnscannableReason::corrupt(
                    "7z",
                    "not read: its solid block holds an entry over the size limits",
                ),
            );
        }
    }
}
