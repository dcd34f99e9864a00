//! gzip (`.gz`, `.tgz`): the stream is inflated through the same caps as a zip
//! entry (part size, compression ratio, the message budget) and what comes out
//! is classified again, so a `.tar.gz` is read as the tar it holds.

use super::blob;
use super::{Ctx, PartPath, UnscannableReason};
use flate2::read::MultiGzDecoder;
use std::io::Read;

/// The gzip header's magic bytes.
pub(crate) const MAGIC: [u8; 2] = [0x1F, 0x8B];

/// The name of what a gzip file holds: the header's FNAME, else the outer
/// name without `.gz` (`.tgz` → `.tar`).
fn inner_name(bytes: &[u8], outer: Option<&str>) -> String {
    // FLG bit 3 (FNAME) with no FEXTRA: the NUL-terminated name follows the 10-byte header.
    if bytes.len() > 10 && bytes[3] & 0x08 != 0 && bytes[3] & 0x04 == 0 {
        if let Some(end) = bytes[10..].iter().position(|&b| b == 0) {
            let name = String::from_utf8_lossy(&bytes[10..10 + end]).into_owned();
            if !name.is_empty() {
                return name;
            }
        }
    }
    let outer = outer.unwrap_or("data.gz");
    let lower = outer.to_ascii_lowercase();
    if lower.ends_with(".tgz") {
        format!("{}.tar", &outer[..outer.len() - 4])
    } else if lower.ends_with(".gz") {
        outer[..outer.len() - 3].to_string()
    } else {
        format!("{outer}.out")
    }
}

/// Inflates a gzip blob within the limits and extracts what it holds.
pub(crate) fn extract(
    ctx: &mut Ctx<'_>,
    path: &PartPath,
    bytes: &[u8],
    name: Option<&str>,
    depth: usize,
) {
    let limits = ctx.limits;
    let packed = (bytes.len() as u64).max(1);
    let by_ratio = packed.saturating_mul(limits.max_compression_ratio);
    let cap = limits
        .max_part_bytes
        .min(by_ratio)
        .min(ctx.budget.remaining());
    // The trailer's ISIZE (the last member's size, mod 2^32) sizes the buffer, within
    // the cap, so it is not regrown and copied as it fills.
    let declared = bytes
        .last_chunk::<4>()
        .map_or(0, |t| u64::from(u32::from_le_bytes(*t)));
    let mut out = Vec::with_capacity(usize::try_from(declared.min(cap)).unwrap_or(0) + 1);
    let mut gz = MultiGzDecoder::new(bytes);
    let mut read = (&mut gz).take(cap.saturating_add(1)).read_to_end(&mut out);
    // flate2 reads a stream cut inside its header as empty, not as an error; the
    // smallest whole member (an empty file) is 18 bytes.
    if read.is_ok() && out.is_empty() && (gz.header().is_none() || bytes.len() < 18) {
        read = Err(std::io::Error::other("truncated gzip header"));
    }
    if let Err(e) = read {
        // What inflated before the damage is still scanned.
        ctx.unscannable(path.clone(), UnscannableReason::corrupt("gzip", e));
        if out.is_empty() {
            return;
        }
    }
    let got = out.len() as u64;
    if got > cap {
        let reason = if got > limits.max_part_bytes {
            UnscannableReason::TooLarge {
                size: got,
                limit: limits.max_part_bytes,
            }
        } else if cap == by_ratio {
            // Reading stopped at the ratio's cap: the true ratio is at least this.
            UnscannableReason::CompressionRatio {
                ratio: got.div_ceil(packed),
                limit: limits.max_compression_ratio,
            }
        } else {
            UnscannableReason::BudgetExhausted {
                limit: limits.max_expanded_bytes,
            }
        };
        return ctx.unscannable(path.clone(), reason);
    }
    ctx.budget.take(got);
    let inner = inner_name(bytes, name);
    blob::extract_entry(ctx, path.entry(&inner), &inner, &out, depth);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inner_name_comes_from_the_header_or_the_outer_name() {
        assert_eq!(inner_name(b"\x1f\x8b\x08\x00", Some("a.csv.gz")), "a.csv");
        assert_eq!(inner_name(b"\x1f\x8b\x08\x00", Some("b.TGZ")), "b.tar");
        let mut named = vec![0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 3];
        named.extend_from_slice(b"ssn.txt\0rest");
        assert_eq!(inner_name(&named, Some("x.gz")), "ssn.txt");
    }
}
