//! Office Open XML (docx, xlsx, pptx): zip containers of XML parts. The text is the
//! character data of the content parts; element boundaries that separate paragraphs,
//! cells and rows become line breaks or tabs so that values in adjacent cells never run
//! together, while runs inside a paragraph (`<w:t>12</w:t><w:t>3</w:t>`) join.

use super::archive::{self, Zip};
use super::blob;
use super::xml::{self, Token, Tokens};
use super::{Ctx, PartKind, PartPath, UnscannableReason};

/// Which Office Open XML format a zip is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OfficeKind {
    Docx,
    Xlsx,
    Pptx,
}

impl OfficeKind {
    /// Detects the format from the main part's name (the content-types part must exist).
    pub(crate) fn detect(zip: &Zip<'_>) -> Option<Self> {
        let has = |n: &str| zip.index_for_name(n).is_some();
        if !has("[Content_Types].xml") {
            return None;
        }
        if has("word/document.xml") {
            Some(OfficeKind::Docx)
        } else if has("xl/workbook.xml") {
            Some(OfficeKind::Xlsx)
        } else if has("ppt/presentation.xml") {
            Some(OfficeKind::Pptx)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            OfficeKind::Docx => "docx",
            OfficeKind::Xlsx => "xlsx",
            OfficeKind::Pptx => "pptx",
        }
    }

    fn part_kind(self) -> PartKind {
        match self {
            OfficeKind::Docx => PartKind::Docx,
            OfficeKind::Xlsx => PartKind::Xlsx,
            OfficeKind::Pptx => PartKind::Pptx,
        }
    }

    /// XML parts that hold text a person wrote (body, headers, notes, comments, cells).
    fn is_text_part(self, n: &str) -> bool {
        let xml = n.ends_with(".xml");
        let under = |dir: &str| n.starts_with(dir) && xml;
        n == "docProps/core.xml"
            || match self {
                OfficeKind::Docx => {
                    xml && (n == "word/document.xml"
                        || n.starts_with("word/header")
                        || n.starts_with("word/footer")
                        || n == "word/footnotes.xml"
                        || n == "word/endnotes.xml"
                        || n == "word/comments.xml")
                }
                OfficeKind::Xlsx => {
                    n == "xl/sharedStrings.xml"
                        || under("xl/worksheets/")
                        || (n.starts_with("xl/comments") && xml)
                }
                OfficeKind::Pptx => {
                    under("ppt/slides/") || under("ppt/notesSlides/") || under("ppt/comments/")
                }
            }
    }
}

/// What one entry of an Office package is to the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// XML whose character data is text: read into the document's text.
    Text,
    /// Any other XML: read as it is, tags and attributes included, because its
    /// element names label the values (`<ssn>…</ssn>`) and attributes hold data
    /// (a pivot cache's `<s v="…"/>`).
    Data,
    /// A file of its own (embedded object, media, unknown binary): a blob.
    Blob,
    /// Layout, styling and package plumbing: skipped.
    Markup,
}

impl OfficeKind {
    fn role(self, n: &str) -> Role {
        if self.is_text_part(n) {
            return Role::Text;
        }
        if is_embedded(n) {
            return Role::Blob;
        }
        if is_markup(n) {
            return Role::Markup;
        }
        // Everything else is read: custom XML data, pivot caches (a copy of a sheet's
        // source rows), charts, drawings' text boxes, custom properties, and any part
        // a tool added or whose name was damaged. Text can hide wherever Office
        // itself does not look.
        if n.ends_with(".xml") {
            Role::Data
        } else {
            Role::Blob
        }
    }
}

/// Parts that hold layout, styling, macros and package plumbing, not anyone's words:
/// matched by their exact place in the package, so a part moved or renamed (by
/// damage or on purpose) is read rather than taken for markup.
fn is_markup(n: &str) -> bool {
    const FILES: &[&str] = &[
        "[Content_Types].xml",
        "docProps/app.xml",
        "word/styles.xml",
        "word/stylesWithEffects.xml",
        "word/settings.xml",
        "word/webSettings.xml",
        "word/fontTable.xml",
        "word/numbering.xml",
        "word/vbaProject.bin",
        "word/vbaData.xml",
        "xl/styles.xml",
        "xl/calcChain.xml",
        "xl/vbaProject.bin",
        "ppt/presentation.xml",
        "ppt/presProps.xml",
        "ppt/viewProps.xml",
        "ppt/tableStyles.xml",
        "ppt/vbaProject.bin",
    ];
    const DIRS: &[&str] = &[
        "word/theme/",
        "word/fonts/",
        "xl/theme/",
        "xl/printerSettings/",
        "ppt/theme/",
        "ppt/fonts/",
        "ppt/slideLayouts/",
        "ppt/slideMasters/",
        "ppt/notesMasters/",
        "ppt/handoutMasters/",
        "ppt/printerSettings/",
    ];
    (n.ends_with(".rels") && n.contains("_rels/"))
        || n.starts_with("docProps/thumbnail")
        || FILES.contains(&n)
        || DIRS
            .iter()
            .any(|d| n.starts_with(d) && !n[d.len()..].contains('/'))
}

/// True for files embedded in a document (OLE objects, nested workbooks) or its media.
fn is_embedded(n: &str) -> bool {
    ["word/", "xl/", "ppt/"].iter().any(|p| {
        n.strip_prefix(p)
            .is_some_and(|r| r.starts_with("embeddings/") || r.starts_with("media/"))
    })
}

/// Extracts an Office file's text as one text part; embedded files and media are
/// extracted (or reported) as blobs of their own.
pub(crate) fn extract(
    ctx: &mut Ctx<'_>,
    path: &PartPath,
    zip: &mut Zip<'_>,
    kind: OfficeKind,
    depth: usize,
) {
    let n = zip.len().min(ctx.limits.max_archive_entries);
    if zip.len() > n {
        ctx.unscannable(
            path.clone(),
            UnscannableReason::TooManyEntries {
                count: zip.len(),
                limit: n,
            },
        );
    }
    let mut text = String::new();
    // Workbook cells refer to shared strings by index: resolve them so that a sheet
    // reads row by row ("SSN\t536904399"), putting header keywords near their values.
    let shared = match kind {
        OfficeKind::Xlsx => shared_strings(ctx, path, zip),
        _ => None,
    };
    let mut sheets = 0;
    for i in 0..n {
        let name = archive::entry_name(zip, i);
        if shared.is_some() && name == SHARED_STRINGS {
            continue; // read above
        }
        let role = kind.role(&name);
        if role == Role::Markup {
            continue;
        }
        let epath = path.entry(&name);
        let data = match archive::read_entry(ctx, zip, i, kind.name()) {
            Ok(d) => d,
            Err(r) => {
                ctx.unscannable(epath, r);
                continue;
            }
        };
        if role == Role::Data {
            text.push_str(&blob::decode_text(&data));
            text.push('\n');
        } else if role == Role::Text {
            // Read straight into the document's text; what a damaged part held
            // before the damage is kept, and the part is reported.
            let parsed = match &shared {
                Some(strings) if name.starts_with("xl/worksheets/") => {
                    sheets += 1;
                    sheet_text(&data, strings, &mut text)
                }
                _ => xml_text(&data, &mut text),
            };
            text.push('\n');
            if let Err(e) = parsed {
                ctx.unscannable(epath, UnscannableReason::corrupt(kind.name(), e));
            }
        } else {
            let short = name.rsplit('/').next().unwrap_or(&name).to_string();
            blob::extract_entry(ctx, epath, &short, &data, depth);
        }
    }
    if let (Some(strings), 0) = (&shared, sheets) {
        // No readable sheet refers to them: scan the strings on their own.
        text.push_str(&strings.join("\n"));
    }
    ctx.text(path.clone(), kind.part_kind(), text);
}

const SHARED_STRINGS: &str = "xl/sharedStrings.xml";

/// The workbook's shared strings, in index order (None when absent or unreadable, in
/// which case the part is reported and read like any other XML part).
fn shared_strings(ctx: &mut Ctx<'_>, path: &PartPath, zip: &mut Zip<'_>) -> Option<Vec<String>> {
    let i = zip.index_for_name(SHARED_STRINGS)?;
    let epath = path.entry(SHARED_STRINGS);
    let data = match archive::read_entry(ctx, zip, i, "xlsx") {
        Ok(d) => d,
        Err(r) => {
            ctx.unscannable(epath, r);
            return Some(Vec::new());
        }
    };
    let mut out = Vec::new();
    if let Err(e) = read_shared_strings(&data, &mut out) {
        // The strings read before the damage still resolve the cells that use them.
        ctx.unscannable(epath, UnscannableReason::corrupt("xlsx", e));
    }
    Some(out)
}

/// The `<si>` items of a shared-strings part, phonetic runs (`<rPh>`) left out.
fn read_shared_strings(data: &[u8], out: &mut Vec<String>) -> Result<(), xml::XmlError> {
    let (mut cur, mut in_t, mut in_phonetic) = (String::new(), false, false);
    for tok in Tokens::new(data) {
        match tok? {
            Token::Start { local, .. } => match local {
                b"t" => in_t = true,
                b"rPh" => in_phonetic = true,
                _ => {}
            },
            Token::End { local } => match local {
                b"t" => in_t = false,
                b"rPh" => in_phonetic = false,
                b"si" => out.push(std::mem::take(&mut cur)),
                _ => {}
            },
            Token::Text(t) if in_t && !in_phonetic => xml::push_text(t, &mut cur)?,
            _ => {}
        }
    }
    Ok(())
}

/// A worksheet's cells row by row (tab between cells), shared strings resolved;
/// formulas are skipped (their cached value is in `<v>`).
fn sheet_text(data: &[u8], shared: &[String], out: &mut String) -> Result<(), xml::XmlError> {
    let (mut shared_cell, mut in_value) = (false, false);
    for tok in Tokens::new(data) {
        match tok? {
            Token::Start { local, attrs } => match local {
                b"c" => shared_cell = xml::attr(attrs, b"t") == Some(b"s"),
                b"v" | b"t" => in_value = true,
                _ => {}
            },
            Token::End { local } => match local {
                b"v" | b"t" => in_value = false,
                b"c" => out.push('\t'),
                b"row" => out.push('\n'),
                _ => {}
            },
            Token::Text(t) if in_value => {
                let index = std::str::from_utf8(t)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok());
                match (shared_cell, index) {
                    (true, Some(i)) => out.push_str(shared.get(i).map_or("", String::as_str)),
                    _ => xml::push_text(t, out)?,
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Local names whose end starts a new line (paragraphs, rows, shared strings, breaks).
const LINE_END: &[&[u8]] = &[
    b"p", b"tr", b"row", b"si", b"br", b"cr", b"title", b"creator",
];
/// Local names whose end separates values on a line (cells, tabs).
const CELL_END: &[&[u8]] = &[b"tc", b"c", b"tab", b"is"];

/// Character data of an XML part, with line breaks and tabs at structural boundaries.
fn xml_text(data: &[u8], out: &mut String) -> Result<(), xml::XmlError> {
    for tok in Tokens::new(data) {
        match tok? {
            Token::Text(t) => xml::push_text(t, out)?,
            Token::CData(t) => out.push_str(&String::from_utf8_lossy(t)),
            Token::End { local } | Token::Empty { local, .. } => sep(out, local),
            Token::Start { .. } => {}
        }
    }
    Ok(())
}

fn sep(out: &mut String, local: &[u8]) {
    if LINE_END.contains(&local) {
        out.push('\n');
    } else if CELL_END.contains(&local) {
        out.push('\t');
    }
}
