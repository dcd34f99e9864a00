//! Text in images is read by OCR: a scanned-looking card (rendered to PNG by
//! headless Chromium) attached to a message carries an SSN, and
//! `sealgate dlp scan` finds it in the image, as tesseract reads it.

use sealgate_e2e::{base64_lines, sealgate_bin};
use std::process::Command;

/// `html` rendered to a PNG by headless Chromium.
fn render(dir: &std::path::Path, html: &str) -> Vec<u8> {
    let page = dir.join("card.html");
    std::fs::write(&page, html).unwrap();
    let png = dir.join("card.png");
    let o = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=900,300",
            &format!("--user-data-dir={}", dir.join("profile").display()),
            &format!("--screenshot={}", png.display()),
            &format!("file://{}", page.display()),
        ])
        .output()
        .expect("chromium is not installed (scripts/install-deps test)");
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(png).unwrap()
}

#[test]
fn an_ssn_in_an_attached_image_is_found_by_ocr() {
    let dir = tempfile::tempdir().unwrap();
    let png = render(
        dir.path(),
        "<html><body style=\"background:#fff;color:#000;font:40px 'DejaVu Sans',sans-serif;margin:30px\">\
         <p>Member ID card</p><p>SSN: 536-90-4399</p></body></html>",
    );
    let eml = format!(
        "From: clerk@hospital.test\r\nTo: billing@partner.test\r\nSubject: card\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee the scan.\r\n\
         --b\r\nContent-Type: image/png; name=card.png\r\nContent-Disposition: attachment; filename=card.png\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}--b--\r\n",
        base64_lines(&png)
    );
    let file = dir.path().join("card.eml");
    std::fs::write(&file, eml).unwrap();
    let o = Command::new(sealgate_bin())
        .args(["dlp", "scan", "--json", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ssn = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["detector"] == "us_ssn")
        .unwrap_or_else(|| panic!("no SSN found in the image: {v:#}"));
    assert_eq!(ssn["parts"], serde_json::json!(["2:card.png"]), "{v:#}");
    assert_eq!(ssn["samples"], serde_json::json!(["***-**-4399"]), "{v:#}");
    assert_eq!(v["unscannable"], serde_json::json!([]), "{v:#}");
    // The raw value never reaches the output.
    assert!(!String::from_utf8_lossy(&o.stdout).contains("536-90"));
}
