//! PDF text via `lopdf`. A hostile PDF must cost bounded memory and never take the
//! gateway down: the input is already bounded by the part limit, lopdf's own
//! decompression limit is set to the part limit, pages are capped, and the whole
//! extraction runs under `catch_unwind` because a parser of this size can panic on
//! inputs nobody tested. A wall-clock limit (`max_pdf_seconds`) stops at the
//! next page, keeping the text read so far.

use super::pdf_content::{self, newline};
use super::xml::{self, Token, Tokens};
use super::{Ctx, PartKind, PartPath, UnscannableReason};
use lopdf::{Dictionary, Document, Encoding, LoadOptions, Object, ObjectId};
use std::collections::{HashMap, HashSet};
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
    let pages = doc.get_pages();
    let mut r = DocReader {
        doc: &doc,
        limit,
        deadline,
        encodings: HashMap::new(),
        forms_read: HashSet::new(),
        errors: 0,
        first_error: None,
        timed_out: false,
    };
    let mut text = String::new();
    // Checked between pages and forms: one content stream is bounded by the part
    // limit, so the overrun past the deadline is one stream's worth.
    for &page in pages.values().take(max_pages) {
        if r.out_of_time() {
            break;
        }
        r.page(page, &mut text);
        if text.len() > limit {
            return PdfText::Failed(UnscannableReason::TooLarge {
                size: text.len() as u64,
                limit: limit as u64,
            });
        }
    }
    r.form_fields(&mut text);
    r.info(&mut text);
    if text.trim().is_empty() && r.errors > 0 {
        return PdfText::Failed(UnscannableReason::corrupt(
            "pdf",
            r.first_error.unwrap_or_default(),
        ));
    }
    PdfText::Text {
        text,
        pages: pages.len(),
        page_errors: r
            .first_error
            .map(|e| format!("{} page part(s) unreadable: {e}", r.errors)),
        timed_out: r.timed_out,
    }
}

/// Form XObjects nest (a form drawing a form); deeper than this is not followed.
const MAX_FORM_DEPTH: usize = 8;
/// Form fields nest through `/Kids`; deeper than this is not followed.
const MAX_FIELD_DEPTH: usize = 16;

/// Reads the text of one loaded document: page content, the forms it draws,
/// annotations, form-field values and the document information.
struct DocReader<'a> {
    doc: &'a Document,
    limit: usize,
    deadline: Instant,
    /// Font encodings by font dictionary (its address in `doc`), built once for the
    /// document: pages share fonts, and a ToUnicode map is costly to parse.
    encodings: HashMap<usize, Option<Encoding<'a>>>,
    /// Form XObjects already read: a form drawn on every page is read once.
    forms_read: HashSet<ObjectId>,
    errors: usize,
    first_error: Option<String>,
    timed_out: bool,
}

impl<'a> DocReader<'a> {
    fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| e.to_string());
    }

    fn out_of_time(&mut self) -> bool {
        self.timed_out |= Instant::now() >= self.deadline;
        self.timed_out
    }

    /// A page: its content stream, the forms it draws, and its annotations' text.
    fn page(&mut self, page: ObjectId, out: &mut String) {
        let resources = match self.doc.get_page_resources(page) {
            Ok((direct, ids)) => direct
                .into_iter()
                .chain(
                    ids.iter()
                        .filter_map(|&id| self.doc.get_dictionary(id).ok()),
                )
                .collect(),
            Err(e) => {
                self.error(e);
                Vec::new()
            }
        };
        match self.doc.get_page_content_with_limit(page, self.limit) {
            Ok(content) => self.stream(&content, &resources, out, 0),
            Err(e) => self.error(e),
        }
        newline(out);
        // Comments, sticky notes and free-text boxes a person typed on the page.
        if let Ok(annots) = self.doc.get_page_annotations(page) {
            for a in annots {
                if let Some(t) = self.text_string(a, b"Contents") {
                    push_line(out, &t);
                }
            }
        }
    }

    /// One content stream's text, then the text of the form XObjects it draws.
    fn stream(
        &mut self,
        content: &[u8],
        resources: &[&'a Dictionary],
        out: &mut String,
        depth: usize,
    ) {
        // Each font name → its dictionary's address, the key of its cached encoding.
        let mut font_keys: HashMap<&[u8], usize> = HashMap::new();
        for (name, font) in self.entries(resources, b"Font") {
            let Ok((_, Object::Dictionary(dict))) = self.doc.dereference(font) else {
                continue;
            };
            let key = dict as *const Dictionary as usize;
            if !self.encodings.contains_key(&key) {
                let enc = match dict.get_font_encoding_with_limit(self.doc, self.limit) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        self.error(e);
                        None
                    }
                };
                self.encodings.insert(key, enc);
            }
            font_keys.insert(name, key);
        }
        let shown = {
            let encodings = &self.encodings;
            let lookup = |name: &[u8]| encodings.get(font_keys.get(name)?)?.as_ref();
            pdf_content::show_text(content, &lookup, out)
        };
        if let Some(e) = shown.first_error {
            self.errors += shown.undecodable;
            self.first_error.get_or_insert(e);
        }
        if depth >= MAX_FORM_DEPTH || shown.xobjects.is_empty() {
            return;
        }
        let xobjects = self.entries(resources, b"XObject");
        for name in shown.xobjects {
            let Some(&obj) = xobjects.get(name.as_slice()) else {
                continue;
            };
            let Ok(id) = obj.as_reference() else { continue };
            let Ok(form) = self.doc.get_object(id).and_then(Object::as_stream) else {
                continue;
            };
            let is_form = form.dict.get(b"Subtype").and_then(Object::as_name).ok() == Some(b"Form");
            if !is_form || !self.forms_read.insert(id) || self.out_of_time() {
                continue;
            }
            // Each form may inflate to the part limit: stop once the text is past it
            // (the caller reports the document too large), not after a thousand forms.
            if out.len() > self.limit {
                return;
            }
            let content = match form.decompressed_content_with_limit(self.limit) {
                Ok(c) => c,
                Err(e) => {
                    self.error(e);
                    continue;
                }
            };
            // A form without resources of its own uses its page's (PDF 1.1 files).
            let own = form
                .dict
                .get_deref(b"Resources", self.doc)
                .and_then(Object::as_dict);
            let form_resources = own.map_or_else(|_| resources.to_vec(), |d| vec![d]);
            newline(out);
            self.stream(&content, &form_resources, out, depth + 1);
        }
    }

    /// The entries of one resource category (`/Font`, `/XObject`) as written (often
    /// references); a name defined twice keeps its nearest definition.
    fn entries(
        &self,
        resources: &[&'a Dictionary],
        category: &[u8],
    ) -> HashMap<&'a [u8], &'a Object> {
        let mut found = HashMap::new();
        for res in resources {
            let Ok(dict) = res.get_deref(category, self.doc).and_then(Object::as_dict) else {
                continue;
            };
            for (name, value) in dict.iter() {
                found.entry(name.as_slice()).or_insert(value);
            }
        }
        found
    }

    /// Values typed into the document's form fields, each after its field name
    /// ("Patient SSN: 536-90-4399"), so a field's label is context for its value.
    fn form_fields(&mut self, out: &mut String) {
        let Ok(form) = self
            .doc
            .catalog()
            .and_then(|c| c.get_deref(b"AcroForm", self.doc))
            .and_then(Object::as_dict)
        else {
            return;
        };
        if let Ok(fields) = form
            .get_deref(b"Fields", self.doc)
            .and_then(Object::as_array)
        {
            let mut seen = HashSet::new();
            for f in fields {
                self.field(f, out, &mut seen, 0);
            }
        }
        self.xfa_data(form, out);
    }

    /// An XFA form's filled-in data (the `datasets` packet), each value after its
    /// element's name (`PatientSSN` → "Patient SSN: …"). XFA forms (LiveCycle, many
    /// government and insurer forms) may keep values only there, not in `/Fields`.
    fn xfa_data(&mut self, form: &Dictionary, out: &mut String) {
        let streams: Vec<&Object> = match form.get_deref(b"XFA", self.doc) {
            // [(name) stream (name) stream …]: only the data packet.
            Ok(Object::Array(packets)) => packets
                .chunks_exact(2)
                .filter(|p| matches!(&p[0], Object::String(n, _) if n == b"datasets"))
                .map(|p| &p[1])
                .collect(),
            // One stream holding the whole XDP document.
            Ok(_) => form.get(b"XFA").into_iter().collect(),
            Err(_) => return,
        };
        for s in streams {
            let Ok((_, Object::Stream(stream))) = self.doc.dereference(s) else {
                continue;
            };
            match stream.decompressed_content_with_limit(self.limit) {
                Ok(data) => {
                    if let Err(e) = xfa_values(&data, out) {
                        self.error(format!("XFA data: {e}"));
                    }
                }
                Err(e) => self.error(e),
            }
        }
    }

    fn field(
        &mut self,
        obj: &'a Object,
        out: &mut String,
        seen: &mut HashSet<ObjectId>,
        depth: usize,
    ) {
        if let Object::Reference(id) = obj {
            if !seen.insert(*id) {
                return;
            }
        }
        let Ok((_, Object::Dictionary(f))) = self.doc.dereference(obj) else {
            return;
        };
        let value = match f.get_deref(b"V", self.doc) {
            Ok(Object::Name(n)) => Some(String::from_utf8_lossy(n).into_owned()),
            Ok(Object::Array(a)) => Some(
                a.iter()
                    .filter_map(|v| lopdf::decode_text_string(v).ok())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Ok(v) => lopdf::decode_text_string(v).ok(),
            Err(_) => None,
        };
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            if let Some(t) = self.text_string(f, b"T") {
                out.push_str(&t);
                out.push_str(": ");
            }
            push_line(out, &v);
        }
        if depth < MAX_FIELD_DEPTH {
            if let Ok(kids) = f.get_deref(b"Kids", self.doc).and_then(Object::as_array) {
                for k in kids {
                    self.field(k, out, seen, depth + 1);
                }
            }
        }
    }

    /// The document information's free text (title, author, subject, keywords).
    fn info(&mut self, out: &mut String) {
        let Ok(info) = self
            .doc
            .trailer
            .get_deref(b"Info", self.doc)
            .and_then(Object::as_dict)
        else {
            return;
        };
        for key in [&b"Title"[..], b"Author", b"Subject", b"Keywords"] {
            if let Some(t) = self.text_string(info, key) {
                push_line(out, &t);
            }
        }
    }

    /// A text-string entry of a dictionary (PDFDocEncoding or UTF-16), if non-empty.
    fn text_string(&self, dict: &Dictionary, key: &[u8]) -> Option<String> {
        let v = dict.get_deref(key, self.doc).ok()?;
        lopdf::decode_text_string(v)
            .ok()
            .filter(|t| !t.trim().is_empty())
    }
}

/// The text values of an XFA data document, one per line after their element's
/// name split into words. Markup (tags, namespaces) is not text.
fn xfa_values(data: &[u8], out: &mut String) -> Result<(), xml::XmlError> {
    let mut element: &[u8] = b"";
    for tok in Tokens::new(data) {
        let tok = tok?;
        match tok {
            Token::Start { local, .. } => element = local,
            Token::Text(t) | Token::CData(t) if !t.trim_ascii().is_empty() => {
                let mut value = String::new();
                match tok {
                    Token::Text(_) => xml::push_text(t.trim_ascii(), &mut value)?,
                    _ => value.push_str(&String::from_utf8_lossy(t.trim_ascii())),
                }
                // One value, one line: a line break inside would join the next name.
                out.push_str(&words_of(element));
                out.push_str(": ");
                push_line(out, &value.replace(['\r', '\n'], " "));
            }
            _ => {}
        }
    }
    Ok(())
}

/// An element name as words: `PatientSSN` → `Patient SSN`, `dob_field` → `dob field`.
fn words_of(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    let mut w = String::with_capacity(name.len() + 4);
    let mut prev: Option<char> = None;
    for c in name.chars() {
        match c {
            '_' | '-' | '.' => w.push(' '),
            c if c.is_uppercase() && prev.is_some_and(char::is_lowercase) => {
                w.push(' ');
                w.push(c);
            }
            c => w.push(c),
        }
        prev = Some(c);
    }
    w
}

/// Appends `text` as a line of its own.
fn push_line(out: &mut String, text: &str) {
    out.push_str(text);
    newline(out);
}

fn load_error(e: &lopdf::Error) -> UnscannableReason {
    match e {
        lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword => {
            UnscannableReason::Encrypted("pdf")
        }
        other => UnscannableReason::corrupt("pdf", other),
    }
}
