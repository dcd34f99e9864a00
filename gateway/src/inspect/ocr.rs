//! Text in images (scanned insurance cards, photographed lab reports) by
//! OCR: each image is handed to `tesseract` in a process of its own (an
//! image decoder crash cannot take the gateway with it), single-threaded,
//! within one wall-clock budget per message (`max_ocr_seconds`), at most
//! `max_ocr_images` per message, skipping images under `min_ocr_bytes`. Without
//! tesseract, or with OCR off, images are reported unscannable as before.

use super::{Ctx, PartKind, PartPath, UnscannableReason};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The OCR program (on `PATH`).
const TESSERACT: &str = "tesseract";

/// True when tesseract runs here (asked once per process).
fn available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        Command::new(TESSERACT)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// What one OCR run gave.
enum Ocr {
    Text(String),
    TimedOut,
    Failed(String),
}

/// Runs tesseract on `image` (from stdin to stdout) for at most `limit`.
fn run(image: &[u8], limit: Duration) -> Ocr {
    let child = Command::new(TESSERACT)
        .args(["stdin", "stdout", "-l", "eng", "--psm", "3"])
        // One core per image: the stage already runs one message per core.
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Ocr::Failed(format!("cannot start {TESSERACT}: {e}")),
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let input = image.to_vec();
    // Feed and drain on threads of their own, so a full pipe never blocks the wait.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.take(16 << 20).read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Ocr::Failed(e.to_string()),
        }
    };
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    match status {
        None => Ocr::TimedOut,
        Some(s) if s.success() => Ocr::Text(String::from_utf8_lossy(&out).into_owned()),
        Some(s) => Ocr::Failed(format!("{TESSERACT} exited with {s}")),
    }
}

/// Reads the text of an image, or records why it could not be read.
pub(crate) fn extract(ctx: &mut Ctx<'_>, path: &PartPath, image: &[u8], what: String) {
    let limits = ctx.limits;
    if limits.max_ocr_images == 0 {
        return ctx.unscannable(
            path.clone(),
            UnscannableReason::Image(format!("{what}; OCR is off")),
        );
    }
    if !available() {
        return ctx.unscannable(
            path.clone(),
            UnscannableReason::Image(format!("{what}; {TESSERACT} is not installed")),
        );
    }
    if image.len() < limits.min_ocr_bytes {
        // A logo or an icon: OCR would cost a second of CPU for nothing.
        return ctx.unscannable(
            path.clone(),
            UnscannableReason::Image(format!(
                "{what}; smaller than {} bytes, not read by OCR",
                limits.min_ocr_bytes
            )),
        );
    }
    if ctx.ocr_runs >= limits.max_ocr_images {
        return ctx.unscannable(
            path.clone(),
            UnscannableReason::Image(format!(
                "{what}; more than {} images in the message",
                limits.max_ocr_images
            )),
        );
    }
    // One budget of seconds for all the images of a message, so a message
    // of slow images cannot hold a core for images × the limit.
    let budget = Duration::from_secs(limits.max_ocr_seconds);
    let left = budget.saturating_sub(ctx.ocr_time);
    if left.is_zero() {
        return ctx.unscannable(
            path.clone(),
            UnscannableReason::TimeLimit {
                format: "ocr",
                seconds: limits.max_ocr_seconds,
            },
        );
    }
    ctx.ocr_runs += 1;
    let started = Instant::now();
    let result = run(image, left);
    ctx.ocr_time += started.elapsed();
    match result {
        Ocr::Text(text) => {
            if ctx.charge(path, text.len() as u64) {
                ctx.text(path.clone(), PartKind::ImageText, text);
            }
        }
        Ocr::TimedOut => ctx.unscannable(
            path.clone(),
            UnscannableReason::TimeLimit {
                format: "ocr",
                seconds: limits.max_ocr_seconds,
            },
        ),
        Ocr::Failed(why) => ctx.unscannable(path.clone(), UnscannableReason::corrupt("image", why)),
    }
}
