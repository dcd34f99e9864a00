//! Resource limits for extraction, and the per-message byte budget that enforces them.
//!
//! Every decoder (MIME transfer encodings, zip inflate, PDF streams) can turn a small
//! input into a large output; the limits keep one message's work bounded in memory and
//! time whatever it contains, and whatever they stop is reported as unscannable.

use serde::{Deserialize, Serialize};

/// Bounds on what one message may expand to while it is inspected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InspectLimits {
    /// Containers (nested messages, archives, Office files) inside containers, beyond the
    /// message itself.
    pub max_depth: usize,
    /// Nested `multipart/*` levels inside one message (real mail stays under 10).
    pub max_multipart_nesting: usize,
    /// Decoded bytes of all parts and archive entries of one message together.
    pub max_expanded_bytes: u64,
    /// Decoded bytes of one part or one archive entry.
    pub max_part_bytes: u64,
    /// Uncompressed / compressed size of one archive entry (zip bombs reach 1000+).
    pub max_compression_ratio: u64,
    /// Entries read from one archive (more are reported, not read).
    pub max_archive_entries: usize,
    /// Pages of one PDF whose text is extracted.
    pub max_pdf_pages: usize,
    /// Seconds one PDF's text extraction may take; the pages read by then are scanned.
    pub max_pdf_seconds: u64,
    /// Images of one message read by OCR (tesseract); 0 turns OCR off.
    pub max_ocr_images: usize,
    /// Seconds OCR may take on all the images of one message together.
    pub max_ocr_seconds: u64,
    /// Images smaller than this many bytes (logos, icons, signature art) are
    /// not read by OCR; they are reported.
    pub min_ocr_bytes: usize,
}

impl Default for InspectLimits {
    fn default() -> Self {
        InspectLimits {
            max_depth: 8,
            max_multipart_nesting: 32,
            max_expanded_bytes: 128 << 20,
            max_part_bytes: 32 << 20,
            max_compression_ratio: 100,
            max_archive_entries: 4096,
            max_pdf_pages: 2000,
            max_pdf_seconds: 10,
            max_ocr_images: 20,
            max_ocr_seconds: 30,
            min_ocr_bytes: 4096,
        }
    }
}

/// What is left of a message's expansion budget.
#[derive(Debug)]
pub(crate) struct Budget {
    remaining: u64,
}

impl Budget {
    pub(crate) fn new(limits: &InspectLimits) -> Self {
        Budget {
            remaining: limits.max_expanded_bytes,
        }
    }

    /// Bytes still allowed.
    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Takes `n` bytes from the budget; false (and nothing taken) when they do not fit.
    pub(crate) fn take(&mut self, n: u64) -> bool {
        if n > self.remaining {
            return false;
        }
        self.remaining -= n;
        true
    }
}
