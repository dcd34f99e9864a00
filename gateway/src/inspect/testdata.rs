//! Attachments built in memory for the inspect tests and the inspect
//! benchmark (`examples/inspect_bench.rs` includes this file): zip, docx,
//! xlsx, pptx and PDF files with the text asked for. Only `std` and `zip`.

use std::io::Write;

/// A zip (deflated) of `files`.
pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// An empty `[Content_Types].xml`, enough for the Office detection.
pub const CT: &[u8] = br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#;

/// A docx with one paragraph per item (each split into two runs).
pub fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let mut body = String::from(
        r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#,
    );
    for p in paragraphs {
        // Split each paragraph into two runs, as Word does, to check runs join.
        let (a, b) = p.split_at(p.len() / 2);
        body.push_str(&format!(
            "<w:p><w:r><w:t>{a}</w:t></w:r><w:r><w:t xml:space=\"preserve\">{b}</w:t></w:r></w:p>"
        ));
    }
    body.push_str("</w:body></w:document>");
    zip_of(&[
        ("[Content_Types].xml", CT),
        ("word/document.xml", body.as_bytes()),
    ])
}

/// An xlsx whose first cell refers to the first of `shared`.
pub fn xlsx(shared: &[&str]) -> Vec<u8> {
    let sheet = r#"<?xml version="1.0"?><worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"><v>42</v></c></row></sheetData></worksheet>"#;
    xlsx_with(shared, sheet)
}

/// An xlsx with these shared strings and this sheet XML.
pub fn xlsx_with(shared: &[&str], sheet: &str) -> Vec<u8> {
    let mut sst = String::from(r#"<?xml version="1.0"?><sst>"#);
    for s in shared {
        sst.push_str(&format!("<si><t>{s}</t></si>"));
    }
    sst.push_str("</sst>");
    zip_of(&[
        ("[Content_Types].xml", CT),
        ("xl/workbook.xml", b"<workbook/>"),
        ("xl/sharedStrings.xml", sst.as_bytes()),
        ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
    ])
}

/// A pptx with one slide showing `slide_text`.
pub fn pptx(slide_text: &str) -> Vec<u8> {
    let slide = format!(
        r#"<?xml version="1.0"?><p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>{slide_text}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#
    );
    zip_of(&[
        ("[Content_Types].xml", CT),
        ("ppt/presentation.xml", b"<presentation/>"),
        ("ppt/slides/slide1.xml", slide.as_bytes()),
    ])
}

/// A minimal valid PDF showing `text` in Helvetica, 40 lines a page, with a
/// correct xref table.
pub fn pdf(text: &str) -> Vec<u8> {
    let lines: Vec<&str> = text.lines().collect();
    let pages: Vec<String> = lines
        .chunks(40)
        .map(|ls| {
            let mut c = String::from("BT /F1 10 Tf 50 750 Td 12 TL");
            for l in ls {
                c.push_str(&format!(" ({}) '", l.replace(['(', ')', '\\'], " ")));
            }
            c.push_str(" ET");
            c
        })
        .collect();
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", 4 + 2 * i))
        .collect();
    let mut objs = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
    ];
    for (i, c) in pages.iter().enumerate() {
        objs.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R \
             /Resources << /Font << /F1 3 0 R >> >> >>",
            5 + 2 * i
        ));
        objs.push(pdf_stream("", c));
    }
    pdf_of(&objs, "")
}

/// A stream object's text for `pdf_of`: `dict` entries, `/Length` filled in.
pub fn pdf_stream(dict: &str, content: &str) -> String {
    format!(
        "<< {dict} /Length {} >>\nstream\n{content}\nendstream",
        content.len()
    )
}

/// A PDF of the given objects (numbered from 1, the first the catalog), with
/// `trailer` added to the trailer dictionary (e.g. `/Info 9 0 R`).
pub fn pdf_of(objs: &[String], trailer: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objs.len() + 1).as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R {trailer} >>\nstartxref\n{xref}\n%%EOF\n",
            objs.len() + 1
        )
        .as_bytes(),
    );
    out
}
