//! What is this attachment? Classify a decoded blob (by its bytes first, then its
//! declared type and file name) and hand it to the extractor for its format.
//!
//! Magic bytes win over labels because senders (and attackers) mislabel files: a PDF
//! sent as `application/octet-stream` named `notes.txt` is still read as a PDF.

use super::{
    archive, gzip, html, mime, ocr, ole, pdf, rtf, sevenz, tar, tnef, Ctx, PartKind, PartPath,
    UnscannableReason,
};

/// A decoded attachment or archive entry with what is known about it.
pub(crate) struct Blob<'a> {
    /// Where it is.
    pub path: PartPath,
    /// File name, if any.
    pub name: Option<&'a str>,
    /// Declared MIME type (`type/subtype`, lowercase), if any.
    pub mime: Option<String>,
    /// The decoded bytes.
    pub bytes: &'a [u8],
    /// Container depth of this blob (0 = a part of the top-level message).
    pub depth: usize,
}

/// Formats an extractor exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Pdf,
    Zip,
    Message,
    Html,
    Text,
    /// gzip stream (`.gz`, `.tgz`).
    Gzip,
    /// tar archive (ustar or GNU).
    Tar,
    /// Outlook's TNEF wrapper (winmail.dat).
    Tnef,
    /// Rich Text Format, read without its markup.
    Rtf,
    /// 7z archive.
    SevenZ,
    /// OLE2 compound file: legacy .doc/.xls/.ppt, or a password-protected Office file.
    Ole2,
    Image,
    Unknown,
}

fn extension(name: Option<&str>) -> String {
    name.and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

fn classify(b: &Blob<'_>) -> Format {
    let bytes = b.bytes;
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        return Format::Pdf;
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Format::Zip;
    }
    if bytes.starts_with(&sevenz::MAGIC) {
        return Format::SevenZ;
    }
    if bytes.starts_with(&gzip::MAGIC) {
        return Format::Gzip;
    }
    if tar::is_tar(bytes) {
        return Format::Tar;
    }
    if bytes.starts_with(b"{\\rtf") {
        return Format::Rtf;
    }
    if bytes.starts_with(&tnef::MAGIC) {
        return Format::Tnef;
    }
    if bytes.starts_with(&ole::MAGIC) {
        return Format::Ole2;
    }
    if is_image_magic(bytes) {
        return Format::Image;
    }
    let mime = b.mime.as_deref().unwrap_or("");
    let ext = extension(b.name);
    match (mime, ext.as_str()) {
        ("message/rfc822" | "message/global", _) | (_, "eml") => return Format::Message,
        ("text/html" | "application/xhtml+xml", _) | (_, "html" | "htm" | "xhtml") => {
            return Format::Html
        }
        ("application/pdf", _) | (_, "pdf") => return Format::Pdf,
        (m, _) if m.starts_with("image/") => return Format::Image,
        _ => {}
    }
    let texty_mime = mime.starts_with("text/")
        || matches!(
            mime,
            "application/json"
                | "application/xml"
                | "application/csv"
                | "application/x-csv"
                | "application/rtf"
                | "application/x-yaml"
                | "application/yaml"
        )
        || mime.ends_with("+xml")
        || mime.ends_with("+json");
    if texty_mime || looks_textual(bytes) {
        return Format::Text;
    }
    Format::Unknown
}

fn is_image_magic(b: &[u8]) -> bool {
    b.starts_with(b"\x89PNG")
        || b.starts_with(b"\xFF\xD8\xFF")
        || b.starts_with(b"GIF8")
        || (b.len() > 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP")
        || b.starts_with(b"II*\0")
        || b.starts_with(b"MM\0*")
        || b.starts_with(b"BM")
}

/// Text if it decodes as UTF-8/UTF-16 with a BOM, or has no NUL and few control bytes.
fn looks_textual(b: &[u8]) -> bool {
    if b.starts_with(&[0xFF, 0xFE]) || b.starts_with(&[0xFE, 0xFF]) {
        return true;
    }
    let sample = &b[..b.len().min(8192)];
    if sample.contains(&0) {
        return false;
    }
    let ctrl = sample
        .iter()
        .filter(|&&c| c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r' | 0x0C))
        .count();
    ctrl * 100 <= sample.len()
}

/// Decodes text bytes: UTF-16 with a BOM, UTF-8 (BOM stripped), else Windows-1252-ish
/// Latin-1 (every byte maps to a character, so nothing is lost to replacement).
pub(crate) fn decode_text(b: &[u8]) -> String {
    if let Some(rest) = b.strip_prefix(&[0xFF, 0xFE]) {
        return decode_utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = b.strip_prefix(&[0xFE, 0xFF]) {
        return decode_utf16(rest, u16::from_be_bytes);
    }
    let b = b.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(b);
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|&c| c as char).collect(),
    }
}

fn decode_utf16(b: &[u8], f: fn([u8; 2]) -> u16) -> String {
    let units = b.chunks_exact(2).map(|c| f([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or('\u{FFFD}'))
        .collect()
}

/// Extracts an archive or container entry: a blob known by its name only.
pub(crate) fn extract_entry(
    ctx: &mut Ctx<'_>,
    path: PartPath,
    name: &str,
    bytes: &[u8],
    depth: usize,
) {
    extract(
        ctx,
        Blob {
            path,
            name: Some(name),
            mime: None,
            bytes,
            depth,
        },
    );
}

/// Extracts whatever text a blob holds (recursing into containers) and scans its file
/// name; anything unreadable is recorded as unscannable.
pub(crate) fn extract(ctx: &mut Ctx<'_>, b: Blob<'_>) {
    if let Some(n) = b.name {
        ctx.text(b.path.clone(), PartKind::FileName, n.to_string());
    }
    match classify(&b) {
        Format::Pdf => pdf::extract(ctx, &b.path, b.bytes),
        Format::Zip => {
            if ctx.depth_ok(&b.path, b.depth + 1) {
                archive::extract_zip(ctx, &b.path, b.bytes, b.depth + 1);
            }
        }
        Format::Message => {
            if ctx.depth_ok(&b.path, b.depth + 1) {
                mime::walk_message(ctx, b.bytes, &b.path, b.depth + 1);
            }
        }
        Format::Html => ctx.text(
            b.path,
            PartKind::HtmlAttachment,
            html::html_to_text(&decode_text(b.bytes)),
        ),
        Format::Text => ctx.text(b.path, PartKind::TextAttachment, decode_text(b.bytes)),
        Format::Gzip => {
            if ctx.depth_ok(&b.path, b.depth + 1) {
                gzip::extract(ctx, &b.path, b.bytes, b.name, b.depth + 1);
            }
        }
        Format::Tar => {
            if ctx.depth_ok(&b.path, b.depth + 1) {
                tar::extract(ctx, &b.path, b.bytes, b.depth + 1);
            }
        }
        Format::Tnef => {
            if ctx.depth_ok(&b.path, b.depth + 1) {
                tnef::extract(ctx, &b.path, b.bytes, b.depth + 1);
            }
        }
        Format::Rtf => rtf::extract(ctx, b.path, b.bytes),
        Format::SevenZ => {
            if ctx.depth_ok(&b.path, b.depth + 1) {
                sevenz::extract(ctx, &b.path, b.bytes, b.depth + 1);
            }
        }
        Format::Ole2 => ole::extract(ctx, &b.path, b.bytes),
        Format::Image => {
            let what = b.mime.filter(|m| m.starts_with("image/"));
            let what = what.unwrap_or_else(|| format!("{} file", extension(b.name)));
            ocr::extract(ctx, &b.path, b.bytes, what)
        }
        Format::Unknown => {
            let what = b
                .mime
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "application/octet-stream".to_string());
            ctx.unscannable(b.path, UnscannableReason::UnsupportedType(what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_utf16_utf8_and_latin1() {
        assert_eq!(decode_text(b"\xFF\xFEa\0b\0"), "ab");
        assert_eq!(decode_text("é".as_bytes()), "é");
        assert_eq!(decode_text(b"caf\xE9"), "café");
    }
}
