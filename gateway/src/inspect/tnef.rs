//! TNEF (`winmail.dat`, `application/ms-tnef`): Outlook's wrapper around a
//! message's body and attachments. Each attachment (attAttachData, named by
//! attAttachTitle) is extracted as a blob of its own; the plain body
//! (attBody) is text; MAPI property blocks (the message's and each
//! attachment's: subject, body, long file names) are read for readable runs;
//! and the compressed RTF body (PR_RTF_COMPRESSED, often the only body Outlook
//! sends) is decompressed and read as RTF.

use super::blob;
use super::{rtf, runs, Ctx, PartKind, PartPath, UnscannableReason};

/// The TNEF signature, little-endian 0x223E9F78.
pub(crate) const MAGIC: [u8; 4] = [0x78, 0x9F, 0x3E, 0x22];

const ATT_BODY: u32 = 0x0001_800C;
const ATT_ATTACH_TITLE: u32 = 0x0001_8010;
const ATT_ATTACH_DATA: u32 = 0x0006_800F;
const ATT_ATTACH_REND_DATA: u32 = 0x0006_9002;
const ATT_MAPI_PROPS: u32 = 0x0006_9003;
const ATT_ATTACHMENT: u32 = 0x0006_9005;

/// One attachment being collected.
#[derive(Default)]
struct Attachment<'a> {
    name: Option<String>,
    data: Option<&'a [u8]>,
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b[..end].iter().map(|&c| c as char).collect()
}

/// Extracts a TNEF blob's body, properties and attachments.
pub(crate) fn extract(ctx: &mut Ctx<'_>, path: &PartPath, bytes: &[u8], depth: usize) {
    // Signature (4) and key (2), then attributes: level (1), id (4), length (4), data, checksum (2).
    let mut at = 6usize;
    let mut attachments: Vec<Attachment> = Vec::new();
    let mut props = Vec::new();
    while at < bytes.len() {
        let Some(head) = bytes.get(at..at + 9) else {
            ctx.unscannable(
                path.clone(),
                UnscannableReason::corrupt("tnef", format!("truncated attribute at offset {at}")),
            );
            break;
        };
        let id = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        let len = u32::from_le_bytes([head[5], head[6], head[7], head[8]]) as usize;
        let Some(data) = at
            .checked_add(9)
            .and_then(|s| bytes.get(s..s.checked_add(len)?))
        else {
            ctx.unscannable(
                path.clone(),
                UnscannableReason::corrupt(
                    "tnef",
                    format!("attribute at offset {at} runs past the end"),
                ),
            );
            break;
        };
        at += 9 + len + 2;
        match id {
            ATT_BODY => ctx.text(
                path.clone(),
                PartKind::Tnef,
                data.iter().map(|&c| c as char).collect(),
            ),
            ATT_ATTACH_REND_DATA => attachments.push(Attachment::default()),
            ATT_ATTACH_TITLE => {
                if let Some(a) = attachments.last_mut() {
                    a.name = Some(cstr(data));
                }
            }
            ATT_ATTACH_DATA => {
                if let Some(a) = attachments.last_mut() {
                    a.data = Some(data);
                }
            }
            ATT_MAPI_PROPS | ATT_ATTACHMENT => props.push(data),
            _ => {}
        }
    }
    let text: String = props.iter().map(|p| runs::text_runs(p)).collect();
    if ctx.charge(path, text.len() as u64) {
        ctx.text(path.clone(), PartKind::Tnef, text);
    }
    for value in props.iter().flat_map(|p| compressed_rtf_values(p)) {
        let rpath = path.entry("body.rtf");
        // The header's raw size is the sender's word, and the crate allocates it up
        // front: charge it before decompressing.
        if !ctx.charge(&rpath, raw_size(value) as u64) {
            continue;
        }
        match decompress_rtf(value) {
            Ok(body) => rtf::extract(ctx, rpath, &body),
            Err(e) => ctx.unscannable(rpath, UnscannableReason::corrupt("compressed RTF", e)),
        }
    }
    for (i, a) in attachments.into_iter().enumerate() {
        let name = a.name.unwrap_or_else(|| format!("attachment-{}", i + 1));
        let Some(data) = a.data else { continue };
        blob::extract_entry(ctx, path.entry(&name), &name, data, depth);
    }
}

/// PR_RTF_COMPRESSED as it appears in a MAPI property block: type PT_BINARY
/// (0x0102) then id 0x1009, little-endian.
const RTF_COMPRESSED_TAG: [u8; 4] = [0x02, 0x01, 0x09, 0x10];

/// The compressed RTF values of a MAPI property block. Rather than walk every
/// property (named properties, multi-valued types), look for the tag followed by a
/// well-formed binary value: count 1, a length that fits, and a compressed-RTF
/// header whose size field agrees, so a chance byte pattern is not taken for one.
fn compressed_rtf_values(props: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(k) = props[from..]
        .windows(4)
        .position(|w| w == RTF_COMPRESSED_TAG)
    {
        let at = from + k + 4;
        from = from + k + 1;
        let u32_at = |i: usize| {
            props
                .get(i..i + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let (Some(1), Some(len)) = (u32_at(at), u32_at(at + 4)) else {
            continue;
        };
        let Some(value) = props.get(at + 8..(at + 8).saturating_add(len)) else {
            continue;
        };
        let magic = value.get(8..12);
        if len >= 16
            && u32_at(at + 8) == Some(len - 4)
            && (magic == Some(b"LZFu") || magic == Some(b"MELA"))
        {
            out.push(value);
        }
    }
    out
}

/// The uncompressed size a compressed-RTF header declares (the sender's word).
fn raw_size(value: &[u8]) -> usize {
    u32::from_le_bytes([value[4], value[5], value[6], value[7]]) as usize
}

/// Why a compressed-RTF body could not be read.
#[derive(Debug, thiserror::Error)]
enum RtfError {
    /// An uncompressed ("MELA") value smaller than its declared size.
    #[error("uncompressed RTF shorter than its header says")]
    Short,
    /// The decoder panicked (contained).
    #[error("the decoder failed on this input")]
    Panicked,
    /// The decoder refused the value.
    #[error(transparent)]
    Decoder(#[from] compressed_rtf::Error),
}

/// Decompresses a compressed-RTF value (header checked by `compressed_rtf_values`).
fn decompress_rtf(value: &[u8]) -> Result<Vec<u8>, RtfError> {
    if &value[8..12] == b"MELA" && raw_size(value).saturating_add(16) > value.len() {
        return Err(RtfError::Short);
    }
    // Contained like every third-party decoder fed hostile input.
    let text = std::panic::catch_unwind(|| compressed_rtf::decompress_rtf(value))
        .map_err(|_| RtfError::Panicked)??;
    // The crate widens each byte to a char; narrow it back for the RTF reader.
    Ok(text.chars().map(|c| c as u32 as u8).collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One TNEF attribute (checksum: the byte sum, as Outlook writes it).
    fn attr(level: u8, id: u32, data: &[u8]) -> Vec<u8> {
        let mut a = vec![level];
        a.extend_from_slice(&id.to_le_bytes());
        a.extend_from_slice(&(data.len() as u32).to_le_bytes());
        a.extend_from_slice(data);
        let sum: u16 = data.iter().fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
        a.extend_from_slice(&sum.to_le_bytes());
        a
    }

    /// A MAPI property block holding `rtf` as PR_RTF_COMPRESSED, as Outlook writes it.
    pub(crate) fn rtf_property(rtf: &str) -> Vec<u8> {
        let value = compressed_rtf::compress_rtf(rtf).expect("ASCII RTF compresses");
        let mut p = 1u32.to_le_bytes().to_vec();
        p.extend_from_slice(&RTF_COMPRESSED_TAG);
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&(value.len() as u32).to_le_bytes());
        p.extend_from_slice(&value);
        p.resize(p.len().next_multiple_of(4), 0);
        p
    }

    /// A winmail.dat with a body, MAPI properties and the attachments given.
    pub(crate) fn winmail(body: &str, props: &[u8], files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut t = MAGIC.to_vec();
        t.extend_from_slice(&[0x01, 0x00]);
        t.extend(attr(1, ATT_BODY, body.as_bytes()));
        t.extend(attr(1, ATT_MAPI_PROPS, props));
        for (name, data) in files {
            t.extend(attr(2, ATT_ATTACH_REND_DATA, &[0; 14]));
            t.extend(attr(2, ATT_ATTACH_TITLE, format!("{name}\0").as_bytes()));
            t.extend(attr(2, ATT_ATTACH_DATA, data));
        }
        t
    }
}
