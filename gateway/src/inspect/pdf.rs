//! PDF text via `lopdf`. A hostile PDF must cost bounded memory and never take the
//! gateway down: the input is already bounded by the part limit, lopdf's own
//! decompression limit is set to the part limit, pages are capped, and the whole
//! extraction runs under `catch_unwind` because a parser of this size can panic on
//! inputs nobody tested. A wall-clock limit (`max_pdf_seconds`) stops at the
//! next page, keeping the text read so far.

use super::{Ctx, PartKind, PartPath, UnscannableReason};
use lopdf::{Document, LoadOptions};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// What extraction produced before the budget is charged.
enum PdfText {
    /// Text of the pages read, how many pages the document has, and why some pages
    /// could not be read (if any could not).
    Text {
        text: String,
        pages: usize,
        page_errors: Option<String>,
        timed_out: bool,
    },
    /// Why nothing could be read.
    Failed(UnscannableReason),
}

/// Extracts the text of a PDF's pages as one text part.
pub(crate) fn extract(ctx: &mut Ctx<'_>, path: &PartPath, bytes: &[u8]) {
    let max_pages = ctx.limits.max_pdf_pages;
    let limit = usize::try_from(ctx.limits.max_part_bytes).unwrap_or(usize::MAX);
    let seconds = ctx.limits.max_pdf_seconds;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let run = catch_unwind(AssertUnwindSafe(|| read(bytes, max_pages, limit, deadline)));
    let (text, pages) = match run {
        Ok(PdfText::Text {
            text,
            pages,
            page_errors,
            timed_out,
        }) => {
            if let Some(detail) = page_errors {
                ctx.unscannable(path.clone(), UnscannableReason::corrupt("pdf", detail));
            }
            if timed_out {
                ctx.unscannable(
                    path.clone(),
                    UnscannableReason::TimeLimit {
                        format: "pdf",
                        seconds,
                    },
                );
            }
            (text, pages)
        }
        Ok(PdfText::Failed(r)) => return ctx.unscannable(path.clone(), r),
        Err(_) => return ctx.unscannable(path.clone(), UnscannableReason::ExtractorPanic("pdf")),
    };
    if pages > max_pages {
        ctx.unscannable(
            path.clone(),
            UnscannableReason::TooManyPages {
                count: pages,
                limit: max_pages,
            },
        );
    }
    if text.trim().is_empty() {
        return ctx.unscannable(path.clone(), UnscannableReason::NoText("pdf"));
    }
    if ctx.charge(path, text.len() as u64) {
        ctx.text(path.clone(), PartKind::Pdf, text);
    }
}

fn read(bytes: &[u8], max_pages: usize, limit: usize, deadline: Instant) -> PdfText {
    let opts = LoadOptions {
        max_decompressed_size: Some(limit),
        ..LoadOptions::default()
    };
    let doc = match Document::load_mem_with_options(bytes, opts) {
        Ok(d) => d,
        Err(e) => return PdfText::Failed(load_error(&e)),
    };
    // lopdf opens documents encrypted with an empty user password itself; one that is
    // still encrypted after loading needs a password we do not have.
    if doc.is_encrypted() {
        return PdfText::Failed(UnscannableReason::Encrypted("pdf"));
    }
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let mut text = String::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut timed_out = false;
    // Checked between pages: one page's content stream is bounded by the part
    // limit, so the overrun past the deadline is one page's worth.
    for &p in pages.iter().take(max_pages) {
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
        for chunk in doc.extract_text_chunks_with_limit(&[p], limit) {
            match chunk {
                Ok(t) => {
                    text.push_str(&t);
                    if text.len() > limit {
                        return PdfText::Failed(UnscannableReason::TooLarge {
                            size: text.len() as u64,
                            limit: limit as u64,
                        });
                    }
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        text.push('\n');
    }
    if text.trim().is_empty() && errors > 0 {
        return PdfText::Failed(UnscannableReason::corrupt(
            "pdf",
            first_error.unwrap_or_default(),
        ));
    }
    PdfText::Text {
        text,
        pages: pages.len(),
        page_errors: first_error.map(|e| format!("{errors} page part(s) unreadable: {e}")),
        timed_out,
    }
}

fn load_error(e: &lopdf::Error) -> UnscannableReason {
    match e {
        lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword => {
            UnscannableReason::Encrypted("pdf")
        }
        other => UnscannableReason::corrupt("pdf", other),
    }
}
