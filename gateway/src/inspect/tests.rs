//! End-to-end tests of the inspect stage on messages built here, scanned with the real
//! rules from `dlp-rules/`. Identifiers are synthetic (taken from the rule examples).

use super::testdata::{docx, pdf, pdf_of, pdf_stream, pptx, xlsx, xlsx_with, zip_of};
use super::*;
use sealgate_dlp::RuleSet;
use std::io::Write;
use std::sync::OnceLock;

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| {
        RuleSet::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../dlp-rules"))
            .expect("dlp-rules load")
    })
}

// ---- message builders -------------------------------------------------------------

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for (n, c) in data.chunks(3).enumerate() {
        if n > 0 && n % 19 == 0 {
            s.push_str("\r\n");
        }
        let v = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// One MIME part: headers + body bytes.
fn part(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut p = headers.replace('\n', "\r\n").into_bytes();
    p.extend_from_slice(b"\r\n\r\n");
    p.extend_from_slice(body);
    p
}

/// A base64 attachment part.
fn attachment(ctype: &str, name: &str, data: &[u8]) -> Vec<u8> {
    part(
        &format!(
            "Content-Type: {ctype}; name=\"{name}\"\nContent-Transfer-Encoding: base64\n\
             Content-Disposition: attachment; filename=\"{name}\""
        ),
        b64(data).as_bytes(),
    )
}

/// A whole multipart/mixed message.
fn message(subject: &str, parts: &[Vec<u8>]) -> Vec<u8> {
    let mut m = format!(
        "From: \"Alice Example\" <alice@example.com>\r\nTo: bob@example.org\r\n\
         Subject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\npreamble\r\n"
    )
    .into_bytes();
    for p in parts {
        m.extend_from_slice(b"--BOUNDARY\r\n");
        m.extend_from_slice(p);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--BOUNDARY--\r\n");
    m
}

fn finding<'a>(i: &'a Inspection, id: &str) -> &'a MessageFinding {
    i.findings
        .iter()
        .find(|f| f.detector.as_str() == id)
        .unwrap_or_else(|| panic!("no {id} finding; have {:?}", ids(i)))
}

fn ids(i: &Inspection) -> Vec<&str> {
    i.findings.iter().map(|f| f.detector.as_str()).collect()
}

fn paths(f: &MessageFinding) -> Vec<&str> {
    f.parts.iter().map(|p| p.as_str()).collect()
}

fn reason_at<'a>(i: &'a Inspection, path: &str) -> &'a UnscannableReason {
    &i.unscannable
        .iter()
        .find(|u| u.path.as_str() == path)
        .unwrap_or_else(|| panic!("{path} not unscannable; have {:?}", i.unscannable))
        .reason
}

/// Asserts that no part under `prefix` (e.g. `"4:"`) was reported unscannable.
fn assert_none_reported_under(i: &Inspection, prefix: &str) {
    assert!(
        i.unscannable
            .iter()
            .all(|u| !u.path.as_str().starts_with(prefix)),
        "{:?}",
        i.unscannable
    );
}

/// The message of the main test: every kind of part, the same SSN in three of them.
fn rich_message() -> Vec<u8> {
    let qp = part(
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable",
        b"Hi Bob,=0D=0Athe patient's SSN is 536-90-=\r\n4399 as discussed =3D ok.",
    );
    let html = part(
        "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64",
        b64(b"<html><body><script>var x='4111';</script><p>Please charge my Visa&nbsp;4556 7375 8689 9855, exp 04/29.</p></body></html>").as_bytes(),
    );
    let latin1 = part(
        "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit",
        b"Num\xe9ro de s\xe9curit\xe9 sociale am\xe9ricain, SSN: 457-12-3456 (Jos\xe9)",
    );
    let docx = attachment(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "report.docx",
        &docx(&["Quarterly report", "Patient SSN: 536-90-4399"]),
    );
    let xlsx = attachment(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "members.xlsx",
        &xlsx(&["Medicare ID: 3CD5-FG7-HJ89"]),
    );
    let zip = attachment(
        "application/zip",
        "data.zip",
        &zip_of(&[("people.csv", b"name,note\nJane,DOB: 03/14/1972\n")]),
    );
    let nested = part(
        "Content-Type: message/rfc822",
        b"From: carol@example.com\r\nSubject: fwd\r\n\r\nForwarded: SSN 536-90-4399\r\n",
    );
    let pdf = attachment(
        "application/pdf",
        "scan.pdf",
        &pdf("Patient SSN: 457-12-3456"),
    );
    message(
        "Quarterly numbers",
        &[qp, html, latin1, docx, xlsx, zip, nested, pdf],
    )
}

#[test]
fn every_part_is_scanned_with_paths_and_unique_counts() {
    let i = inspect(&rich_message(), rules(), &InspectLimits::default());
    assert!(i.unscannable.is_empty(), "{:?}", i.unscannable);

    let ssn = finding(&i, "us_ssn");
    // 536-90-4399 in body, docx and nested message; 457-12-3456 in latin-1 part and PDF.
    assert_eq!(ssn.count, 2, "{ssn:?}");
    assert_eq!(ssn.total, 5, "{ssn:?}");
    assert_eq!(
        paths(ssn),
        ["1", "3", "4:report.docx", "7/1", "8:scan.pdf"],
        "{ssn:?}"
    );
    assert!(ssn.samples.contains(&"***-**-4399".to_string()), "{ssn:?}");
    assert!(ssn.samples.iter().all(|s| !s.contains("536")));

    assert_eq!(paths(finding(&i, "credit_card")), ["2"]);
    assert_eq!(paths(finding(&i, "us_mbi")), ["5:members.xlsx"]);
    assert_eq!(
        paths(finding(&i, "date_of_birth")),
        ["6:data.zip!people.csv"]
    );
    assert_eq!(i.action, Some(Action::Encrypt));
    assert!(i.policy_hits.iter().any(|h| h.rule == "ssn"));

    // Per-part kinds.
    let kind_of = |p: &str| {
        i.parts
            .iter()
            .find(|x| x.path.as_str() == p)
            .map(|x| x.kind)
    };
    assert_eq!(kind_of("1"), Some(PartKind::TextBody));
    assert_eq!(kind_of("2"), Some(PartKind::HtmlBody));
    assert_eq!(kind_of("4:report.docx"), Some(PartKind::Docx));
    assert_eq!(kind_of("8:scan.pdf"), Some(PartKind::Pdf));
}

/// A message with one PDF attachment.
fn pdf_message(name: &str, doc: &[u8]) -> Vec<u8> {
    message("x", &[attachment("application/pdf", name, doc)])
}

/// The text extracted from the PDF in `m`.
fn pdf_text(m: &[u8], limits: &InspectLimits) -> String {
    let e = extract(m, limits);
    e.texts
        .into_iter()
        .find(|t| t.kind == PartKind::Pdf)
        .expect("a PDF text part")
        .text
}

/// A PDF with text in every place a PDF keeps it: page text, a form XObject the page
/// draws (letterheads and stamped forms put text there), a filled form field, a
/// sticky note, and the document title.
fn forms_pdf() -> Vec<u8> {
    let objs = [
        "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [7 0 R] >> >>".to_string(),
        "<< /Type /Pages /Kids [4 0 R] /Count 1 >>".to_string(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R /Annots [8 0 R] \
         /Resources << /Font << /F1 3 0 R >> /XObject << /Fm0 6 0 R >> >> >>"
            .to_string(),
        pdf_stream("", "BT /F1 10 Tf 50 750 Td (Intake form) Tj ET q /Fm0 Do Q"),
        pdf_stream(
            "/Type /XObject /Subtype /Form /BBox [0 0 300 100] /Resources << /Font << /F2 3 0 R >> >>",
            "BT /F2 9 Tf 0 0 Td (Medicare ID 3CD5-FG7-HJ89) Tj ET",
        ),
        "<< /FT /Tx /T (Patient SSN) /V (536-90-4399) /Kids [10 0 R] >>".to_string(),
        "<< /Type /Annot /Subtype /Text /Rect [0 0 9 9] /Contents (card 4556 7375 8689 9855) >>"
            .to_string(),
        "<< /Title <FEFF0044004F0042003A002000300033002F00310034002F0031003900370032> >>"
            .to_string(),
        "<< /T (Guardian) /V /Yes >>".to_string(),
    ];
    pdf_of(&objs, "/Info 9 0 R")
}

#[test]
fn pdf_text_in_a_two_byte_font_is_read_through_its_tounicode_map() {
    // What Word's "Save as PDF" writes: a Type0 font, Identity-H glyph ids in hex
    // strings, and a ToUnicode CMap that maps them back to characters.
    let line = "Patient SSN: 536-90-4399";
    let glyphs: String = line
        .bytes()
        .map(|b| format!("{:04X}", 0x0100 + u16::from(b)))
        .collect();
    let cmap = "/CIDInit /ProcSet findresource begin 12 dict begin begincmap \
                /CMapName /Adobe-Identity-UCS def 1 begincodespacerange <0000> <FFFF> \
                endcodespacerange 1 beginbfrange <0120> <017E> <0020> endbfrange endcmap \
                CMapName currentdict /CMap defineresource pop end end";
    let objs = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        pdf_stream("", &format!("BT /F1 11 Tf 72 720 Td [<{glyphs}>] TJ ET")),
        "<< /Type /Font /Subtype /Type0 /BaseFont /Calibri /Encoding /Identity-H \
         /DescendantFonts [6 0 R] /ToUnicode 7 0 R >>"
            .to_string(),
        "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Calibri \
         /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> >>"
            .to_string(),
        pdf_stream("", cmap),
    ];
    let m = pdf_message("word.pdf", &pdf_of(&objs, ""));
    let text = pdf_text(&m, &InspectLimits::default());
    assert_eq!(text.trim(), line);
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert!(i.unscannable.is_empty(), "{:?}", i.unscannable);
    assert_eq!(paths(finding(&i, "us_ssn")), ["1:word.pdf"]);
}

#[test]
fn a_pdf_drawing_a_hundred_thousand_names_is_read_in_linear_time() {
    // Every name drawn or selected is distinct, and the resources define each one:
    // lookups by list would be quadratic in them.
    const N: usize = 100_000;
    let mut content = String::new();
    let mut fonts = String::new();
    let mut forms = String::new();
    for i in 0..N {
        content.push_str(&format!("/F{i} 9 Tf (w{i}) Tj /X{i} Do\n"));
        fonts.push_str(&format!("/F{i} 3 0 R "));
        forms.push_str(&format!("/X{i} 5 0 R "));
    }
    let objs = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [4 0 R] /Count 1 >>".to_string(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 6 0 R \
             /Resources << /Font << {fonts} >> /XObject << {forms} >> >> >>"
        ),
        pdf_stream(
            "/Type /XObject /Subtype /Form /BBox [0 0 9 9]",
            "BT /F1 9 Tf (Member ID 3CD5-FG7-HJ89) Tj ET",
        ),
        pdf_stream("", &content),
    ];
    let m = pdf_message("many.pdf", &pdf_of(&objs, ""));
    let t = std::time::Instant::now();
    let text = pdf_text(&m, &InspectLimits::default());
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        t.elapsed()
    );
    assert!(text.starts_with("w0w1"), "{}", &text[..40]);
    assert!(text.contains(&format!("w{}", N - 1)));
    // The one form all the names point at is read once.
    assert_eq!(text.matches("Member ID 3CD5-FG7-HJ89").count(), 1);
}

#[test]
fn pdf_forms_stop_once_the_text_passes_the_part_limit() {
    // Fifty forms of 10 KB of text each, under a 64 KB part limit.
    let line = format!("BT /F1 9 Tf ({}) Tj ET", "w ".repeat(5_000));
    let mut objs = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [4 0 R] /Count 1 >>".to_string(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
    ];
    let names: String = (0..50).map(|i| format!("/X{i} {} 0 R ", 6 + i)).collect();
    let draw: String = (0..50).map(|i| format!("/X{i} Do ")).collect();
    objs.push(format!(
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 9 9] /Contents 5 0 R \
         /Resources << /Font << /F1 3 0 R >> /XObject << {names} >> >> >>"
    ));
    objs.push(pdf_stream("", &draw));
    // Deflated (and hex-wrapped, as pdf_of takes text), so the file stays small.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(line.as_bytes()).unwrap();
    let packed: String = z
        .finish()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for _ in 0..50 {
        objs.push(pdf_stream(
            "/Type /XObject /Subtype /Form /BBox [0 0 9 9] /Filter [/ASCIIHexDecode /FlateDecode]",
            &format!("{packed}>"),
        ));
    }
    let limits = InspectLimits {
        max_part_bytes: 64 << 10,
        ..InspectLimits::default()
    };
    let doc = pdf_of(&objs, "");
    assert!(doc.len() < 16 << 10, "{}", doc.len());
    let m = pdf_message("big.pdf", &doc);
    let i = inspect(&m, rules(), &limits);
    // Reading stopped with the form that passed the limit, not after all fifty.
    match reason_at(&i, "1:big.pdf") {
        UnscannableReason::TooLarge { size, limit } => {
            assert!(*size < limit + (20 << 10), "{size} of {limit}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pdf_xfa_form_data_is_read_with_its_field_names() {
    let datasets = "<xfa:datasets xmlns:xfa=\"http://www.xfa.org/schema/xfa-data/1.0/\">\
        <xfa:data><form1><PatientSSN>536-90-4399</PatientSSN><member_id>3CD5-FG7-HJ89</member_id>\
        <Notes><![CDATA[card 4556 7375 8689 9855]]></Notes><Empty/></form1></xfa:data></xfa:datasets>";
    let objs = [
        "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [] /XFA [(template) 5 0 R (datasets) 4 0 R] >> >>"
            .to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 9 9] >>".to_string(),
        pdf_stream("", datasets),
        pdf_stream("", "<template><field name=\"PatientSSN\"/></template>"),
    ];
    let m = pdf_message("xfa.pdf", &pdf_of(&objs, ""));
    let text = pdf_text(&m, &InspectLimits::default());
    assert_eq!(
        text.trim(),
        "Patient SSN: 536-90-4399\nmember id: 3CD5-FG7-HJ89\nNotes: card 4556 7375 8689 9855"
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    for id in ["us_ssn", "us_mbi", "credit_card"] {
        assert_eq!(paths(finding(&i, id)), ["1:xfa.pdf"], "{id}");
    }
    assert_eq!(
        finding(&i, "us_ssn").confidence,
        sealgate_dlp::Confidence::High
    );
}

#[test]
fn pdf_forms_annotations_field_values_and_info_are_read() {
    let m = pdf_message("intake.pdf", &forms_pdf());
    let text = pdf_text(&m, &InspectLimits::default());
    assert_eq!(
        text,
        "Intake form\nMedicare ID 3CD5-FG7-HJ89\ncard 4556 7375 8689 9855\n\
         Patient SSN: 536-90-4399\nGuardian: Yes\nDOB: 03/14/1972\n"
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert!(i.unscannable.is_empty(), "{:?}", i.unscannable);
    for id in ["us_ssn", "us_mbi", "credit_card", "date_of_birth"] {
        assert_eq!(paths(finding(&i, id)), ["1:intake.pdf"], "{id}");
    }
}

#[test]
fn same_value_in_body_and_attachment_counts_once() {
    let m = message(
        "x",
        &[
            part("Content-Type: text/plain", b"Patient SSN: 536-90-4399"),
            attachment(
                "application/octet-stream",
                "notes.txt",
                b"SSN 536904399 again",
            ),
        ],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    let ssn = finding(&i, "us_ssn");
    assert_eq!((ssn.count, ssn.total), (1, 2), "{ssn:?}");
    assert_eq!(paths(ssn), ["1", "2:notes.txt"]);
}

#[test]
fn subject_display_names_and_file_names_are_scanned() {
    let m = b"From: \"SSN 536-90-4399\" <a@example.com>\r\n\
              Subject: =?utf-8?q?Patient_SSN:_457-12-3456?=\r\n\
              Content-Type: text/plain\r\n\r\nhello\r\n";
    let i = inspect(m, rules(), &InspectLimits::default());
    let ssn = finding(&i, "us_ssn");
    assert_eq!(ssn.count, 2);
    assert_eq!(paths(ssn), ["header:subject", "header:names"]);

    let m = message(
        "x",
        &[attachment(
            "application/octet-stream",
            "SSN 536-90-4399.bin",
            &[0u8, 1, 2, 3],
        )],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    // The file name is scanned, but shown masked in the path.
    assert_eq!(paths(finding(&i, "us_ssn")), ["1:SSN ***-**-****.bin"]);
    assert_eq!(
        reason_at(&i, "1:SSN ***-**-****.bin").code(),
        "unsupported_type"
    );
}

#[test]
fn content_descriptions_of_the_message_and_of_parts_are_scanned() {
    let described = part(
        "Content-Type: application/octet-stream; name=\"scan.bin\"\n\
         Content-Description: =?utf-8?q?card_4556_7375_8689_9855?=",
        b"\x00\x01",
    );
    let mut m = message("x", &[described]);
    m.splice(
        0..0,
        b"Content-Description: Patient SSN 536-90-4399\r\n"
            .iter()
            .copied(),
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(paths(finding(&i, "us_ssn")), ["header:other"]);
    assert_eq!(paths(finding(&i, "credit_card")), ["1:scan.bin"]);
}

#[test]
fn pptx_slide_text_is_scanned() {
    let m = message(
        "x",
        &[attachment(
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "deck.pptx",
            &pptx("Medicare ID: 3CD5-FG7-HJ89"),
        )],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(paths(finding(&i, "us_mbi")), ["1:deck.pptx"]);
}

#[test]
fn a_docx_cut_inside_its_text_keeps_what_came_before_and_is_reported() {
    let doc = "<?xml version=\"1.0\"?><w:document><w:body><w:p><w:r><w:t>Patient SSN: \
               536-90-4399</w:t></w:r></w:p><w:p><w:r><w:t>more &amp; more</w:t></w:r></w:p><w:p><w:r><w:t";
    let m = message(
        "x",
        &[attachment(
            "application/octet-stream",
            "cut.docx",
            &zip_of(&[
                ("[Content_Types].xml", b"<Types/>"),
                ("word/document.xml", doc.as_bytes()),
            ]),
        )],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(paths(finding(&i, "us_ssn")), ["1:cut.docx"]);
    assert_eq!(
        reason_at(&i, "1:cut.docx!word/document.xml").code(),
        "corrupt"
    );
    let e = extract(&m, &InspectLimits::default());
    let text = &e
        .texts
        .iter()
        .find(|t| t.kind == PartKind::Docx)
        .unwrap()
        .text;
    assert_eq!(text, "Patient SSN: 536-90-4399\nmore & more\n\n");
}

#[test]
fn nested_zip_in_zip_is_scanned() {
    let inner = zip_of(&[("deep/ids.txt", b"Patient SSN: 536-90-4399")]);
    let outer = zip_of(&[("inner.zip", &inner)]);
    let m = message("x", &[attachment("application/zip", "outer.zip", &outer)]);
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(
        paths(finding(&i, "us_ssn")),
        ["1:outer.zip!inner.zip!deep/ids.txt"]
    );
}

#[test]
fn zip_bomb_entry_is_unscannable_by_ratio() {
    let zeros = vec![0u8; 4 << 20];
    let z = zip_of(&[("zeros.bin", &zeros), ("ok.txt", b"SSN 536-90-4399")]);
    let m = message("x", &[attachment("application/zip", "bomb.zip", &z)]);
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(
        reason_at(&i, "1:bomb.zip!zeros.bin").code(),
        "compression_ratio"
    );
    // The rest of the archive is still scanned.
    assert_eq!(paths(finding(&i, "us_ssn")), ["1:bomb.zip!ok.txt"]);
}

#[test]
fn budget_and_part_limits_are_reported() {
    // Incompressible text, so only the size limits (not the ratio) apply.
    let mut x: u32 = 12345;
    let mut text = || -> Vec<u8> {
        (0..5000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b'a' + (x >> 16) as u8 % 26
            })
            .collect()
    };
    let (a, b) = (text(), text());
    let z = zip_of(&[("a.txt", &a[..]), ("b.txt", &b[..])]);
    let m = message("x", &[attachment("text/plain", "big.txt", &a)]);
    let limits = InspectLimits {
        max_part_bytes: 4000,
        ..InspectLimits::default()
    };
    let i = inspect(&m, rules(), &limits);
    assert_eq!(reason_at(&i, "1:big.txt").code(), "too_large");
    let m = message("x", &[attachment("application/zip", "two.zip", &z)]);
    let limits = InspectLimits {
        max_expanded_bytes: 12_000,
        ..InspectLimits::default()
    };
    let i = inspect(&m, rules(), &limits);
    assert_eq!(reason_at(&i, "1:two.zip!b.txt").code(), "budget_exhausted");
}

/// Sets the "encrypted" flag of every entry (local and central headers), as a
/// ZipCrypto archive has it.
fn mark_encrypted(mut z: Vec<u8>) -> Vec<u8> {
    for i in 0..z.len().saturating_sub(10) {
        if z[i..].starts_with(b"PK\x03\x04") {
            z[i + 6] |= 1;
        } else if z[i..].starts_with(b"PK\x01\x02") {
            z[i + 8] |= 1;
        }
    }
    z
}

#[test]
fn encrypted_and_corrupt_attachments_are_unscannable_with_reasons() {
    let enc = mark_encrypted(zip_of(&[("secret.csv", b"ssn,536-90-4399")]));
    let m = message(
        "x",
        &[
            attachment("application/zip", "locked.zip", &enc),
            attachment("application/pdf", "broken.pdf", b"%PDF-1.4\n1 0 obj << /Ty"),
            attachment(
                "application/zip",
                "cut.zip",
                &zip_of(&[("a.txt", b"x")])[..20],
            ),
            attachment("image/png", "logo.png", b"\x89PNG\r\n\x1a\n...."),
            attachment(
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "protected.docx",
                &[
                    &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1][..],
                    &"EncryptionInfo"
                        .bytes()
                        .flat_map(|c| [c, 0])
                        .collect::<Vec<_>>(),
                ]
                .concat(),
            ),
        ],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(
        reason_at(&i, "1:locked.zip!secret.csv"),
        &UnscannableReason::Encrypted("zip entry")
    );
    let pdf = reason_at(&i, "2:broken.pdf").code();
    assert!(pdf == "corrupt" || pdf == "no_text", "{pdf}");
    assert_eq!(reason_at(&i, "3:cut.zip").code(), "corrupt");
    assert_eq!(
        reason_at(&i, "4:logo.png").code(),
        "image",
        "too small to OCR"
    );
    assert_eq!(reason_at(&i, "5:protected.docx").code(), "encrypted");
    // Reasons carry words, never content.
    for u in &i.unscannable {
        assert!(!u.detail.contains("536"), "{}", u.detail);
    }
}

#[test]
fn nesting_beyond_max_depth_is_unscannable() {
    let mut m = b"Subject: leaf\r\n\r\nSSN 536-90-4399\r\n".to_vec();
    for _ in 0..12 {
        let mut outer = b"Subject: wrap\r\nMIME-Version: 1.0\r\n\
                          Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n\
                          Content-Type: message/rfc822\r\n\r\n"
            .to_vec();
        outer.extend_from_slice(&m);
        // Nested boundaries must differ; make each level's unique.
        let level = outer.len();
        let b = format!("B{level}");
        let outer = String::from_utf8(outer)
            .unwrap()
            .replace("\"B\"", &format!("\"{b}\""));
        let outer = outer.replacen("--B\r\n", &format!("--{b}\r\n"), 1);
        m = format!("{outer}\r\n--{b}--\r\n").into_bytes();
    }
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert!(
        i.unscannable.iter().any(|u| u.reason.code() == "too_deep"),
        "{:?}",
        i.unscannable
    );
}

#[test]
fn unparseable_input_is_scanned_raw_and_reported() {
    let i = inspect(b"SSN 536-90-4399", rules(), &InspectLimits::default());
    assert!(!i.findings.is_empty() || !i.unscannable.is_empty());
}

#[test]
fn random_bytes_and_truncated_mime_never_panic() {
    let limits = InspectLimits::default();
    let full = rich_message();
    for cut in (0..full.len()).step_by(full.len() / 97 + 1) {
        let _ = inspect(&full[..cut], rules(), &limits);
    }
    // Flip bytes at pseudo-random places (xorshift: deterministic, no extra crates).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..40 {
        let mut m = full.clone();
        for _ in 0..32 {
            let at = (next() as usize) % m.len();
            m[at] = next() as u8;
        }
        let _ = inspect(&m, rules(), &limits);
    }
    for len in [0usize, 1, 7, 100, 5000] {
        let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = inspect(&junk, rules(), &limits);
        let mut with_magic = b"%PDF-1.7\n".to_vec();
        with_magic.extend_from_slice(&junk);
        let _ = inspect(
            &message("x", &[attachment("application/pdf", "j.pdf", &with_magic)]),
            rules(),
            &limits,
        );
        let mut zipish = b"PK\x03\x04".to_vec();
        zipish.extend_from_slice(&junk);
        let _ = inspect(
            &message("x", &[attachment("application/zip", "j.zip", &zipish)]),
            rules(),
            &limits,
        );
        // gzip, OLE2 and tar headers followed by junk.
        let mut tarish = vec![b'a'; 257];
        tarish.extend_from_slice(b"ustar\x0000");
        tarish.extend_from_slice(&junk);
        tarish.resize(tarish.len().max(1024), b'7');
        for prefix in [
            &[0x1F, 0x8B, 8, 0][..],
            &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1][..],
        ] {
            let mut b = prefix.to_vec();
            b.extend_from_slice(&junk);
            let _ = inspect(
                &message("x", &[attachment("application/octet-stream", "j.bin", &b)]),
                rules(),
                &limits,
            );
        }
        let _ = inspect(
            &message("x", &[attachment("application/x-tar", "j.tar", &tarish)]),
            rules(),
            &limits,
        );
    }
}

#[test]
fn inspection_serialises_without_values() {
    let i = inspect(&rich_message(), rules(), &InspectLimits::default());
    let j = serde_json::to_string(&i).unwrap();
    assert!(
        !j.contains("536-90-4399") && !j.contains("536904399"),
        "{j}"
    );
    assert!(j.contains("\"us_ssn\""));
}

#[test]
fn thousands_of_nesting_levels_stay_bounded() {
    let mut m = Vec::new();
    for _ in 0..3000 {
        m.extend_from_slice(b"Subject: n\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    m.extend_from_slice(b"Subject: leaf\r\n\r\nSSN 536-90-4399\r\n");
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert!(i.unscannable.iter().any(|u| u.reason.code() == "too_deep"));

    let mut m = Vec::new();
    for d in 0..3000 {
        m.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{d}\"\r\n\r\n--b{d}\r\n")
                .as_bytes(),
        );
    }
    m.extend_from_slice(b"Content-Type: text/plain\r\n\r\nSSN 536-90-4399\r\n");
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert!(i.unscannable.iter().any(|u| u.reason.code() == "too_deep"));
}

#[test]
fn base64_nested_messages_beyond_the_parser_own_depth_are_still_read() {
    let mut m = b"Subject: leaf\r\n\r\nPatient SSN: 536-90-4399\r\n".to_vec();
    for _ in 0..5 {
        m = part(
            "Subject: wrap\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64",
            b64(&m).as_bytes(),
        );
    }
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert!(i.unscannable.is_empty(), "{:?}", i.unscannable);
    assert_eq!(paths(finding(&i, "us_ssn")), ["1/1/1/1/1/1"]);
}

#[test]
fn xlsx_cells_read_row_by_row_so_header_keywords_count() {
    let sheet = r#"<worksheet><sheetData>
        <row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>
        <row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><v>536904399</v></c></row>
        <row r="3"><c r="A3" t="inlineStr"><is><t>Medicare ID: 3CD5-FG7-HJ89</t></is></c>
        <c r="B3"><f>SUM(B1:B2)</f><v>7</v></c></row>
        </sheetData></worksheet>"#;
    let m = message(
        "x",
        &[attachment(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "staff.xlsx",
            &xlsx_with(&["Name", "SSN", "Jane &amp; Co"], sheet),
        )],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    let ssn = finding(&i, "us_ssn");
    // A bare 9-digit number is only an SSN next to its "SSN" column header.
    assert!(ssn.confidence >= Confidence::Medium, "{ssn:?}");
    assert_eq!((ssn.count, ssn.total), (1, 1));
    assert_eq!(paths(finding(&i, "us_mbi")), ["1:staff.xlsx"]);
    let ex = extract(&m, &InspectLimits::default());
    let t = &ex
        .texts
        .iter()
        .find(|t| t.kind == PartKind::Xlsx)
        .unwrap()
        .text;
    assert!(t.contains("Name\tSSN\t\nJane & Co\t536904399\t\n"), "{t:?}");
    assert!(!t.contains("SUM("), "{t:?}");
}

/// Runs `cmd` in `dir`; panics if it fails.
fn run_in(dir: &std::path::Path, cmd: &[&str]) {
    let st = std::process::Command::new(cmd[0])
        .args(&cmd[1..])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "{cmd:?}");
}

#[test]
fn gzip_and_tar_gz_made_by_gnu_tar_and_gzip_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("records")).unwrap();
    std::fs::write(d.join("records/ssn.txt"), "Patient SSN: 536-90-4399\n").unwrap();
    std::fs::write(d.join("card.csv"), "visa,4556 7375 8689 9855\n").unwrap();
    run_in(d, &["tar", "czf", "records.tgz", "records"]);
    run_in(d, &["gzip", "-k", "card.csv"]);
    let m = message(
        "x",
        &[
            attachment(
                "application/gzip",
                "records.tgz",
                &std::fs::read(d.join("records.tgz")).unwrap(),
            ),
            attachment(
                "application/gzip",
                "card.csv.gz",
                &std::fs::read(d.join("card.csv.gz")).unwrap(),
            ),
        ],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert!(i.unscannable.is_empty(), "{:?}", i.unscannable);
    assert_eq!(
        paths(finding(&i, "us_ssn")),
        ["1:records.tgz!records.tar!records/ssn.txt"]
    );
    assert_eq!(
        paths(finding(&i, "credit_card")),
        ["2:card.csv.gz!card.csv"]
    );
}

#[test]
fn a_gzip_bomb_and_a_broken_gzip_are_unscannable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("zeros"), vec![0u8; 8 << 20]).unwrap();
    run_in(dir.path(), &["gzip", "zeros"]);
    let bomb = std::fs::read(dir.path().join("zeros.gz")).unwrap();
    let words: String = (0..3000u32)
        .map(|i| format!("w{} ", i.wrapping_mul(2654435761)))
        .collect();
    std::fs::write(dir.path().join("notes.txt"), words).unwrap();
    run_in(dir.path(), &["gzip", "notes.txt"]);
    let mut broken = std::fs::read(dir.path().join("notes.txt.gz")).unwrap();
    // flate2 reads a stream cut inside its 10-byte header as empty, without error.
    let header_only = broken[..9].to_vec();
    broken.truncate(broken.len() / 2);
    std::fs::write(dir.path().join("empty"), b"").unwrap();
    run_in(dir.path(), &["gzip", "empty"]);
    let empty = std::fs::read(dir.path().join("empty.gz")).unwrap();
    let m = message(
        "x",
        &[
            attachment("application/gzip", "zeros.gz", &bomb),
            attachment("application/gzip", "cut.gz", &broken),
            attachment("application/gzip", "head.gz", &header_only),
            attachment("application/gzip", "empty.gz", &empty),
        ],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(reason_at(&i, "1:zeros.gz").code(), "compression_ratio");
    assert_eq!(reason_at(&i, "2:cut.gz").code(), "corrupt");
    assert_eq!(reason_at(&i, "3:head.gz").code(), "corrupt");
    // An empty file, compressed, is whole: nothing to read and nothing to report.
    assert_none_reported_under(&i, "4:");
}

/// A compound file with `streams` (name, bytes), as cfb writes it.
fn ole_file(streams: &[(&str, &[u8])]) -> Vec<u8> {
    let mut f = cfb::CompoundFile::create(std::io::Cursor::new(Vec::new())).unwrap();
    for (name, data) in streams {
        f.create_stream(name).unwrap().write_all(data).unwrap();
    }
    f.flush().unwrap();
    f.into_inner().into_inner()
}

#[test]
fn legacy_word_excel_and_protected_office_files() {
    let mut word = b"\x00\x00\xec\xa5Quarterly notes\x00\x00".to_vec();
    for c in "Patient SSN: 457-12-3456".encode_utf16() {
        word.extend_from_slice(&c.to_le_bytes());
    }
    let doc = ole_file(&[("/WordDocument", &word), ("/1Table", b"\x00\x01")]);
    // An Excel sheet: a label cell (as a string run) and the card number typed as a number.
    let mut book = b"\x04\x02\x13\x00card number on file".to_vec();
    book.extend_from_slice(&[0x03, 0x02, 14, 0, 1, 0, 1, 0, 0, 0]);
    book.extend_from_slice(&4_556_737_586_899_855f64.to_le_bytes());
    let xls = ole_file(&[("/Workbook", &book)]);
    let protected = ole_file(&[
        ("/EncryptionInfo", b"\x04\x00"),
        ("/EncryptedPackage", b"x"),
    ]);
    let m = message(
        "x",
        &[
            attachment("application/msword", "letter.doc", &doc),
            attachment("application/vnd.ms-excel", "cards.xls", &xls),
            attachment("application/vnd.ms-excel", "locked.xls", &protected),
        ],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(paths(finding(&i, "us_ssn")), ["1:letter.doc"]);
    assert_eq!(paths(finding(&i, "credit_card")), ["2:cards.xls"]);
    assert_eq!(reason_at(&i, "3:locked.xls").code(), "encrypted");
    let ole = ole_file(&[("/Other", b"nothing")]);
    let m = message(
        "x",
        &[attachment("application/octet-stream", "x.msg", &ole)],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(reason_at(&i, "1:x.msg").code(), "unsupported_type");
}

#[test]
fn a_pdf_past_its_time_limit_is_reported() {
    let m = message(
        "x",
        &[attachment(
            "application/pdf",
            "scan.pdf",
            &pdf("Patient SSN: 457-12-3456"),
        )],
    );
    let limits = InspectLimits {
        max_pdf_seconds: 0,
        ..InspectLimits::default()
    };
    let i = inspect(&m, rules(), &limits);
    assert!(
        i.unscannable
            .iter()
            .any(|u| u.reason.code() == "time_limit"),
        "{:?}",
        i.unscannable
    );
}

#[test]
fn winmail_dat_body_properties_and_attachments_are_scanned() {
    // The subject as a MAPI string property (UTF-16), as Outlook stores it.
    let mut props = vec![1, 0, 0, 0, 0x1F, 0x00, 0x37, 0x00, 1, 0, 0, 0, 40, 0, 0, 0];
    for c in "Member MBI 3CD5-FG7-HJ89".encode_utf16() {
        props.extend_from_slice(&c.to_le_bytes());
    }
    let docx = docx(&["Patient SSN: 536-90-4399"]);
    let dat = tnef::tests::winmail(
        "Please charge my Visa 4556 7375 8689 9855.",
        &props,
        &[
            ("intake.docx", &docx[..]),
            ("../notes.txt", b"DOB: 03/14/1972"),
        ],
    );
    let m = message(
        "x",
        &[attachment("application/ms-tnef", "winmail.dat", &dat)],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert!(i.unscannable.is_empty(), "{:?}", i.unscannable);
    assert_eq!(paths(finding(&i, "credit_card")), ["1:winmail.dat"]);
    assert_eq!(paths(finding(&i, "us_mbi")), ["1:winmail.dat"]);
    assert_eq!(paths(finding(&i, "us_ssn")), ["1:winmail.dat!intake.docx"]);
    assert_eq!(
        paths(finding(&i, "date_of_birth")),
        ["1:winmail.dat!../notes.txt"]
    );
    // Truncated: what came before the damage is still read, and the damage reported.
    let cut = &dat[..dat.len() - 30];
    let m = message(
        "x",
        &[attachment("application/ms-tnef", "winmail.dat", cut)],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(reason_at(&i, "1:winmail.dat").code(), "corrupt");
    assert_eq!(paths(finding(&i, "credit_card")), ["1:winmail.dat"]);
}

#[test]
fn outlook_compressed_rtf_bodies_and_rtf_files_are_read_without_markup() {
    // Outlook's only body is often PR_RTF_COMPRESSED. The SSN is split by RTF
    // markup (`\'2d` is the hyphen), so only a real RTF reading sees it whole.
    let rtf = r"{\rtf1\ansi{\fonttbl{\f0 Calibri;}}\f0 Patient SSN: 536\'2d90\'2d4399\par}";
    let props = tnef::tests::rtf_property(rtf);
    let dat = tnef::tests::winmail("", &props, &[]);
    let m = message(
        "x",
        &[attachment("application/ms-tnef", "winmail.dat", &dat)],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert!(i.unscannable.is_empty(), "{:?}", i.unscannable);
    assert_eq!(paths(finding(&i, "us_ssn")), ["1:winmail.dat!body.rtf"]);

    // A damaged one (a flipped byte fails the CRC) is reported, not skipped.
    let mut bad = props.clone();
    let last = bad.len() - 5;
    bad[last] ^= 0x55;
    let dat = tnef::tests::winmail("", &bad, &[]);
    let m = message(
        "x",
        &[attachment("application/ms-tnef", "winmail.dat", &dat)],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(reason_at(&i, "1:winmail.dat!body.rtf").code(), "corrupt");

    // An .rtf attachment, whatever it is labelled.
    let m = message(
        "x",
        &[attachment(
            "application/octet-stream",
            "letter.bin",
            rtf.as_bytes(),
        )],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(paths(finding(&i, "us_ssn")), ["1:letter.bin"]);
}

#[test]
fn with_ocr_off_or_over_the_cap_images_are_reported() {
    let mut fake = b"\x89PNG\r\n\x1a\n".to_vec();
    fake.resize(5000, b'.');
    let png = attachment("image/png", "a.png", &fake);
    let m = message("x", &[png.clone(), png]);
    let off = InspectLimits {
        max_ocr_images: 0,
        ..InspectLimits::default()
    };
    let i = inspect(&m, rules(), &off);
    assert_eq!(reason_at(&i, "1:a.png").code(), "image");
    assert!(
        i.unscannable[0].detail.contains("OCR is off"),
        "{:?}",
        i.unscannable
    );
    let one = InspectLimits {
        max_ocr_images: 1,
        ..InspectLimits::default()
    };
    let i = inspect(&m, rules(), &one);
    assert_eq!(reason_at(&i, "2:a.png").code(), "image");
    assert!(
        reason_at(&i, "2:a.png")
            .to_string()
            .contains("more than 1 images"),
        "{:?}",
        i.unscannable
    );
    // No time left in the message's OCR budget.
    let no_time = InspectLimits {
        max_ocr_seconds: 0,
        ..InspectLimits::default()
    };
    let i = inspect(&m, rules(), &no_time);
    assert_eq!(reason_at(&i, "1:a.png").code(), "time_limit");
    assert_eq!(reason_at(&i, "2:a.png").code(), "time_limit");
}

#[test]
fn word_and_excel_97_passwords_are_reported_encrypted() {
    // Word: the FIB's fEncrypted flag; Excel: BOF, then a FILEPASS record.
    let mut fib = vec![0u8; 64];
    fib[..2].copy_from_slice(&0xA5ECu16.to_le_bytes());
    fib[10..12].copy_from_slice(&0x0100u16.to_le_bytes());
    fib.extend_from_slice(b"random-looking ciphertext 4556 7375 8689 9855");
    let mut book = vec![0x09, 0x08, 4, 0, 0, 6, 5, 0];
    book.extend_from_slice(&[0x2F, 0x00, 2, 0, 1, 0]);
    let m = message(
        "x",
        &[
            attachment(
                "application/msword",
                "a.doc",
                &ole_file(&[("/WordDocument", &fib)]),
            ),
            attachment(
                "application/vnd.ms-excel",
                "b.xls",
                &ole_file(&[("/Workbook", &book)]),
            ),
        ],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(reason_at(&i, "1:a.doc").code(), "encrypted");
    assert_eq!(reason_at(&i, "2:b.xls").code(), "encrypted");
    assert!(i.findings.is_empty(), "{:?}", ids(&i));
}

#[test]
fn tar_entries_with_unknown_types_or_bad_checksums_are_still_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("n.txt"), "Patient SSN: 536-90-4399\n").unwrap();
    run_in(dir.path(), &["tar", "cf", "a.tar", "n.txt"]);
    let tar = std::fs::read(dir.path().join("a.tar")).unwrap();
    // An unknown type flag (checksum made right again): POSIX reads a regular file.
    let mut odd = tar.clone();
    odd[156] = b'Z';
    let sum = tar::header_sum(&odd[..512]);
    odd[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    // A wrong checksum: reported, and the entry read all the same.
    let mut bad = tar;
    bad[150] ^= 0x01;
    let m = message(
        "x",
        &[
            attachment("application/x-tar", "odd.tar", &odd),
            attachment("application/x-tar", "bad.tar", &bad),
        ],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(
        paths(finding(&i, "us_ssn")),
        ["1:odd.tar!n.txt", "2:bad.tar!n.txt"]
    );
    assert_eq!(reason_at(&i, "2:bad.tar").code(), "corrupt");
    assert!(
        i.unscannable.iter().all(|u| u.path.as_str() != "1:odd.tar"),
        "{:?}",
        i.unscannable
    );
}

/// 7z archives made by 7-Zip itself: plain, content encrypted, names encrypted.
fn seven_zip(dir: &std::path::Path, name: &str, args: &[&str]) -> Vec<u8> {
    let mut cmd = vec!["7zz", "a", "-bd", "-bso0", name];
    cmd.extend_from_slice(args);
    cmd.push("records");
    run_in(dir, &cmd);
    std::fs::read(dir.join(name)).unwrap()
}

#[test]
fn seven_zip_archives_are_read_and_passwords_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("records")).unwrap();
    std::fs::write(d.join("records/ssn.txt"), "Patient SSN: 536-90-4399\n").unwrap();
    let inner = zip_of(&[("card.csv", b"visa,4556 7375 8689 9855\n")]);
    std::fs::write(d.join("records/cards.zip"), inner).unwrap();
    let plain = seven_zip(d, "plain.7z", &[]);
    let locked = seven_zip(d, "locked.7z", &["-pS3cret"]);
    let hidden = seven_zip(d, "hidden.7z", &["-pS3cret", "-mhe=on"]);
    let m = message(
        "x",
        &[
            attachment("application/x-7z-compressed", "plain.7z", &plain),
            attachment("application/x-7z-compressed", "locked.7z", &locked),
            attachment("application/octet-stream", "hidden.bin", &hidden),
        ],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(paths(finding(&i, "us_ssn")), ["1:plain.7z!records/ssn.txt"]);
    assert_eq!(
        paths(finding(&i, "credit_card")),
        ["1:plain.7z!records/cards.zip!card.csv"]
    );
    assert_eq!(reason_at(&i, "2:locked.7z").code(), "encrypted");
    assert_eq!(reason_at(&i, "3:hidden.bin").code(), "encrypted");
    assert_none_reported_under(&i, "1:");
}

#[test]
fn a_7z_bomb_stops_at_the_part_cap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("records")).unwrap();
    std::fs::write(d.join("records/zeros"), vec![0u8; 4 << 20]).unwrap();
    std::fs::write(d.join("records/zz.txt"), "Patient SSN: 536-90-4399\n").unwrap();
    let bomb = seven_zip(d, "bomb.7z", &[]);
    assert!(bomb.len() < 8 << 10, "{}", bomb.len());
    let limits = InspectLimits {
        max_part_bytes: 1 << 20,
        ..InspectLimits::default()
    };
    let m = message(
        "x",
        &[attachment("application/x-7z-compressed", "bomb.7z", &bomb)],
    );
    let i = inspect(&m, rules(), &limits);
    assert_eq!(reason_at(&i, "1:bomb.7z!records/zeros").code(), "too_large");
    // In the solid block `zz.txt` follows the bomb: it is not inflated, and is
    // said so by name.
    assert_eq!(reason_at(&i, "1:bomb.7z!records/zz.txt").code(), "corrupt");
    assert!(i.findings.is_empty(), "{:?}", ids(&i));
}

/// Deterministic damage to real attachments of every format the stage reads: bit
/// flips, truncation, inserted junk, length fields set to 0xFFFFFFFF, duplicated
/// runs. Whatever the damage, extraction returns (no panic, no hang) and the
/// attachment is read or reported, never silently passed over.
#[test]
fn damaged_attachments_of_every_format_are_read_or_reported() {
    let text = "Patient SSN: 536-90-4399, card 4556 7375 8689 9855";
    let rtf = format!(r"{{\rtf1\ansi{{\fonttbl{{\f0 Arial;}}}}\f0 {text}\par}}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    let mut xls_book = b"\x04\x02\x13\x00card number on file".to_vec();
    xls_book.extend_from_slice(&[0x03, 0x02, 14, 0, 1, 0, 1, 0, 0, 0]);
    xls_book.extend_from_slice(&4_556_737_586_899_855f64.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("n.txt"), text).unwrap();
    run_in(dir.path(), &["tar", "cf", "a.tar", "n.txt"]);
    std::fs::create_dir(dir.path().join("records")).unwrap();
    std::fs::write(dir.path().join("records/n.txt"), text).unwrap();
    let tar = std::fs::read(dir.path().join("a.tar")).unwrap();
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("a.docx", docx(&[text])),
        ("a.xlsx", xlsx(&[text])),
        ("a.pptx", pptx(text)),
        ("a.pdf", pdf(text)),
        ("forms.pdf", forms_pdf()),
        ("a.zip", zip_of(&[("n.txt", text.as_bytes())])),
        ("a.gz", gz.finish().unwrap()),
        ("a.rtf", rtf.clone().into_bytes()),
        (
            "winmail.dat",
            tnef::tests::winmail(
                text,
                &tnef::tests::rtf_property(&rtf),
                &[("n.txt", text.as_bytes())],
            ),
        ),
        ("a.doc", ole_file(&[("/WordDocument", text.as_bytes())])),
        ("a.xls", ole_file(&[("/Workbook", &xls_book)])),
        ("a.tar", tar),
        ("a.7z", seven_zip(dir.path(), "a.7z", &[])),
        (
            "a.html",
            format!("<html><body><p>{text}</p></body></html>").into_bytes(),
        ),
        ("a.csv", format!("name,ssn\nJo,{text}\n").into_bytes()),
        (
            "fwd.eml",
            message(
                "fwd",
                &[attachment(
                    "application/zip",
                    "n.zip",
                    &zip_of(&[("n.txt", text.as_bytes())]),
                )],
            ),
        ),
    ];
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut below = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let mut slowest = std::time::Duration::ZERO;
    for (name, seed) in &seeds {
        for round in 0..100 {
            let mut b = seed.clone();
            for _ in 0..=below(3) {
                let at = below(b.len());
                match below(5) {
                    0 => b[at] ^= 1 << below(8),
                    1 => b.truncate(at.max(1)),
                    2 => {
                        let junk: Vec<u8> = (0..below(64)).map(|_| below(256) as u8).collect();
                        b.splice(at..at, junk);
                    }
                    3 => {
                        let at = at.min(b.len().saturating_sub(4));
                        let end = (at + 4).min(b.len());
                        b[at..end].fill(0xFF);
                    }
                    _ => {
                        let run = b[at..(at + below(256)).min(b.len())].to_vec();
                        b.splice(at..at, run);
                    }
                }
            }
            let m = message("x", &[attachment("application/octet-stream", name, &b)]);
            let t = std::time::Instant::now();
            let e = extract(&m, &InspectLimits::default());
            slowest = slowest.max(t.elapsed());
            let read = e
                .texts
                .iter()
                .any(|t| t.kind != PartKind::FileName && t.path.as_str().starts_with("1:"));
            let reported = e
                .unscannable
                .iter()
                .any(|u| u.path.as_str().starts_with("1:"));
            // A plain-text format cut before its identifiers has nothing left.
            // So is a file cut shorter than any identifier (and any container header).
            let nothing_left = b.len() < 9
                || seed.windows(7).any(|w| w == b"Patient")
                    && !b.windows(3).any(|w| w.iter().all(u8::is_ascii_digit));
            // Junk inside an HTML tag can swallow text for a browser too (`<p��ient
            // SSN …</p>` is one long tag): there, not reading it is right.
            let markup = name.ends_with(".html");
            if !(read || reported || nothing_left || markup) {
                eprintln!("DAMAGED {:02x?}", &b[..b.len().min(64)]);
            }
            assert!(
                read || reported || nothing_left || markup,
                "{name} round {round}: neither read nor reported"
            );
            // The detector runs over whatever came out, too.
            let _ = inspect_extraction(&e, rules());
        }
    }
    // Debug build, 1,600 damaged files: each a few milliseconds; the PDF time limit
    // (10 s) is the bound on the worst.
    assert!(
        slowest.as_secs() < 15,
        "slowest extraction took {slowest:?}"
    );
}

#[test]
fn a_zip_whose_directory_hides_its_entries_is_reported() {
    // Local entries intact, end record rewritten to list none: an empty archive to
    // a directory reader, a full one to a streaming unzipper.
    let mut z = zip_of(&[("n.txt", b"Patient SSN: 536-90-4399")]);
    let cd = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    z.truncate(cd);
    z.extend_from_slice(b"PK\x05\x06");
    z.extend_from_slice(&[0; 8]);
    z.extend_from_slice(&0u32.to_le_bytes());
    z.extend_from_slice(&(cd as u32).to_le_bytes());
    z.extend_from_slice(&[0; 2]);
    let m = message("x", &[attachment("application/zip", "a.zip", &z)]);
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert_eq!(reason_at(&i, "1:a.zip").code(), "corrupt");
}

#[test]
fn office_parts_beyond_the_document_body_are_read() {
    // Custom XML data and a pivot cache (a copy of the source rows) hold identifiers
    // that the document body does not show; styles and relationships stay skipped.
    let docx = zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        (
            "word/document.xml",
            b"<w:document><w:p><w:t>Quarterly notes</w:t></w:p></w:document>",
        ),
        ("word/_rels/document.xml.rels", b"<Relationships/>"),
        (
            "customXml/item1.xml",
            b"<patient><name>Jo Doe</name><ssn>536-90-4399</ssn></patient>",
        ),
    ]);
    let xlsx = zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        (
            "xl/workbook.xml",
            b"<workbook><sheets><sheet name=\"Summary\"/></sheets></workbook>",
        ),
        (
            "xl/pivotCache/pivotCacheRecords1.xml",
            b"<pivotCacheRecords><r><s v=\"card 4556 7375 8689 9855\"/></r></pivotCacheRecords>",
        ),
    ]);
    let m = message(
        "x",
        &[
            attachment("application/octet-stream", "notes.docx", &docx),
            attachment("application/octet-stream", "summary.xlsx", &xlsx),
        ],
    );
    let i = inspect(&m, rules(), &InspectLimits::default());
    assert!(i.unscannable.is_empty(), "{:?}", i.unscannable);
    assert_eq!(paths(finding(&i, "us_ssn")), ["1:notes.docx"]);
    assert_eq!(paths(finding(&i, "credit_card")), ["2:summary.xlsx"]);
}
