//! The archive's search index (tantivy, under `<data_dir>/archive-index`):
//! one document per item, rebuilt from the store at will (`archive
//! reindex`), so it is derived data. Each commit records the last sequence
//! number indexed, so the gateway catches up on what a crash left out.

use super::query::{self, AddressField, Condition, KeywordField, Query, TextField, TextMatch};
use super::{ArchiveError, ArchiveStore, Item};
use crate::inspect::{InspectLimits, PartKind};
use crate::model::verdict::Verdict;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, PhraseQuery, Query as TQuery, RangeQuery, RegexQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Schema, FAST, INDEXED, STORED, STRING, TEXT};
use tantivy::{DateTime, Index, IndexReader, IndexWriter, Order, TantivyDocument, Term};

/// How much extracted text of one message is indexed (as Google Vault
/// indexes the first megabyte); the rest is still archived.
const MAX_TEXT: usize = 2 * 1024 * 1024;
/// Most ids one search returns (an export takes everything, in pages).
pub const MAX_HITS: usize = 100_000;
/// Memory for the index writer.
const WRITER_HEAP: usize = 64 * 1024 * 1024;

/// Errors of the search index.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// tantivy reported an error.
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The query does not parse.
    #[error(transparent)]
    Query(#[from] query::QueryError),
    /// Reading the archive failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The index directory.
    #[error("search index {0}: {1}")]
    Io(String, std::io::Error),
    /// The index is open read-only.
    #[error("the search index is open read-only")]
    ReadOnly,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    from: Field,
    to: Field,
    cc: Field,
    bcc: Field,
    rcpt: Field,
    subject: Field,
    body: Field,
    filename: Field,
    attachment: Field,
    direction: Field,
    dlp: Field,
    seal: Field,
    message_id: Field,
    received: Field,
    size: Field,
    has_attachment: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        id: b.add_u64_field("id", INDEXED | STORED | FAST),
        from: b.add_text_field("from", STRING),
        to: b.add_text_field("to", STRING),
        cc: b.add_text_field("cc", STRING),
        bcc: b.add_text_field("bcc", STRING),
        rcpt: b.add_text_field("rcpt", STRING),
        subject: b.add_text_field("subject", TEXT),
        body: b.add_text_field("body", TEXT),
        filename: b.add_text_field("filename", TEXT),
        attachment: b.add_text_field("attachment", TEXT),
        direction: b.add_text_field("direction", STRING),
        dlp: b.add_text_field("dlp", STRING),
        seal: b.add_text_field("seal", STRING),
        message_id: b.add_text_field("message_id", STRING),
        received: b.add_date_field("received", INDEXED | FAST),
        size: b.add_u64_field("size", INDEXED | FAST),
        has_attachment: b.add_u64_field("has_attachment", INDEXED),
    };
    (b.build(), f)
}

/// The search index.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Option<Mutex<IndexWriter>>,
    fields: Fields,
    limits: InspectLimits,
}

/// One page of results: how many match in all, and the item ids shown
/// (newest first).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hits {
    /// Items matching.
    pub total: usize,
    /// Their ids, newest first, at most the limit asked for.
    pub ids: Vec<u64>,
}

impl SearchIndex {
    /// Opens the index at `dir` for writing, creating it (or re-creating
    /// it, if its schema is not this version's) as needed.
    pub fn open(dir: &Path, limits: InspectLimits) -> Result<Self, SearchError> {
        let (schema, fields) = schema();
        // It holds message text in the clear: for Sealgate's user only.
        crate::secret_file::private_dir(dir)
            .map_err(|e| SearchError::Io(dir.display().to_string(), e))?;
        let index = match Index::open_in_dir(dir) {
            Ok(i) if i.schema() == schema => i,
            Ok(_) => {
                // Derived data: an index of another shape is rebuilt.
                tracing::warn!("search index schema changed; rebuilding it");
                std::fs::remove_dir_all(dir)
                    .map_err(|e| SearchError::Io(dir.display().to_string(), e))?;
                std::fs::create_dir_all(dir)
                    .map_err(|e| SearchError::Io(dir.display().to_string(), e))?;
                Index::create_in_dir(dir, schema)?
            }
            Err(_) => Index::create_in_dir(dir, schema)?,
        };
        let writer = index.writer(WRITER_HEAP)?;
        let reader = index.reader()?;
        Ok(SearchIndex {
            index,
            reader,
            writer: Some(Mutex::new(writer)),
            fields,
            limits,
        })
    }

    /// Opens the index at `dir` for searching only (works while the gateway writes it).
    pub fn open_read_only(dir: &Path) -> Result<Self, SearchError> {
        let (_, fields) = schema();
        let index = Index::open_in_dir(dir)?;
        let reader = index.reader()?;
        Ok(SearchIndex {
            index,
            reader,
            writer: None,
            fields,
            limits: InspectLimits::default(),
        })
    }

    /// The last sequence number the committed index covers.
    pub fn indexed_through(&self) -> u64 {
        self.index
            .load_metas()
            .ok()
            .and_then(|m| m.payload)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// (Re-)indexes `item` whose message bytes are `raw`.
    pub fn add(&self, item: &Item, raw: &[u8]) -> Result<(), SearchError> {
        let doc = self.document(item, raw);
        let writer = self.writer.as_ref().ok_or(SearchError::ReadOnly)?;
        let w = crate::locks::lock(writer);
        w.delete_term(Term::from_field_u64(self.fields.id, item.id));
        w.add_document(doc)?;
        Ok(())
    }

    /// Drops item `id` from the index (it was purged).
    pub fn remove(&self, id: u64) -> Result<(), SearchError> {
        let writer = self.writer.as_ref().ok_or(SearchError::ReadOnly)?;
        let w = crate::locks::lock(writer);
        w.delete_term(Term::from_field_u64(self.fields.id, id));
        Ok(())
    }

    /// Makes what was added visible and durable, recording `through` as
    /// the last sequence number covered.
    pub fn commit(&self, through: u64) -> Result<(), SearchError> {
        let writer = self.writer.as_ref().ok_or(SearchError::ReadOnly)?;
        let mut w = crate::locks::lock(writer);
        let mut prepared = w.prepare_commit()?;
        prepared.set_payload(&through.to_string());
        prepared.commit()?;
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    /// Indexes every event after [`Self::indexed_through`] up to the
    /// archive's head, then commits; returns how many items were indexed.
    /// Blocks its thread while it indexes (for the command line and the
    /// gateway's start; the running gateway follows the archive with
    /// [`Changes`] instead).
    pub async fn catch_up(&self, archive: &dyn ArchiveStore) -> Result<u64, SearchError> {
        let from = self.indexed_through() + 1;
        let head = archive.head_seq().await;
        if head < from {
            return Ok(0);
        }
        let changes = Changes::read(archive, from, head).await;
        let n = self.apply(changes)?;
        self.commit(head)?;
        Ok(n)
    }

    /// Makes `changes` in the index (not committed); returns how many
    /// items were (re-)indexed. Blocking: this is where text is extracted.
    pub fn apply(&self, changes: Changes) -> Result<u64, SearchError> {
        let mut n = 0;
        for change in changes.0 {
            match change {
                Change::Add(item, raw) => {
                    self.add(&item, &raw)?;
                    n += 1;
                }
                Change::Remove(id) => self.remove(id)?,
            }
        }
        Ok(n)
    }

    fn document(&self, item: &Item, raw: &[u8]) -> TantivyDocument {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_u64(f.id, item.id);
        let first = &item.captures[0].1;
        let h = &first.headers;
        let mut from: BTreeSet<String> = h.from.iter().cloned().collect();
        let mut rcpts: BTreeSet<String> = BTreeSet::new();
        let mut dlp: BTreeSet<String> = BTreeSet::new();
        let mut seals: BTreeSet<&'static str> = BTreeSet::new();
        let mut directions: BTreeSet<&'static str> = BTreeSet::new();
        for (_, c) in &item.captures {
            if !c.mail_from.is_empty() {
                from.insert(c.mail_from.to_ascii_lowercase());
            }
            directions.insert(c.direction.as_str());
            for r in &c.recipients {
                rcpts.insert(r.address.to_ascii_lowercase());
                if let Some(Verdict::Deliver { seal, .. }) = &r.verdict {
                    seals.insert(seal.as_str());
                }
            }
            if let Some(d) = &c.dlp {
                dlp.extend(d.findings.iter().map(|x| x.detector.to_ascii_lowercase()));
            }
        }
        for a in &from {
            doc.add_text(f.from, a);
        }
        for a in &h.to {
            doc.add_text(f.to, a);
        }
        for a in &h.cc {
            doc.add_text(f.cc, a);
        }
        for a in &rcpts {
            doc.add_text(f.rcpt, a);
            // Bcc: in the envelope, in no header.
            if !h.to.contains(a) && !h.cc.contains(a) {
                doc.add_text(f.bcc, a);
            }
        }
        for d in &directions {
            doc.add_text(f.direction, d);
        }
        for d in &dlp {
            doc.add_text(f.dlp, d);
        }
        for s in &seals {
            doc.add_text(f.seal, s);
        }
        if let Some(id) = &h.message_id {
            doc.add_text(f.message_id, id);
        }
        if let Some(s) = &h.subject {
            doc.add_text(f.subject, s);
        }
        doc.add_date(
            f.received,
            DateTime::from_timestamp_secs(first.received_at.timestamp()),
        );
        doc.add_u64(f.size, first.size);
        // The same text extraction DLP uses: bodies, attachment names and text.
        let extraction = crate::inspect::extract(raw, &self.limits);
        let mut budget = MAX_TEXT;
        let mut has_attachment = false;
        for part in &extraction.texts {
            let field = match part.kind {
                PartKind::Header => continue,
                PartKind::FileName => {
                    has_attachment = true;
                    f.filename
                }
                PartKind::TextBody | PartKind::HtmlBody => f.body,
                _ => {
                    has_attachment = true;
                    f.attachment
                }
            };
            if budget == 0 {
                break;
            }
            let mut end = part.text.len().min(budget);
            while !part.text.is_char_boundary(end) {
                end -= 1;
            }
            budget -= end;
            doc.add_text(field, &part.text[..end]);
        }
        doc.add_u64(f.has_attachment, u64::from(has_attachment));
        doc
    }

    /// Runs an archivist's query; at most `limit` ids, newest first.
    pub fn search(&self, q: &str, limit: usize) -> Result<Hits, SearchError> {
        // tantivy reserves room for twice the limit up front.
        let limit = limit.clamp(1, MAX_HITS);
        let parsed = query::parse(q)?;
        let query = self.compile(&parsed)?;
        let searcher = self.reader.searcher();
        let (top, total) = searcher.search(
            &query,
            &(
                TopDocs::with_limit(limit.max(1)).order_by_u64_field("id", Order::Desc),
                Count,
            ),
        )?;
        Ok(Hits {
            total,
            ids: top.into_iter().map(|(id, _)| id).take(limit).collect(),
        })
    }

    /// Every item `q` matches, newest first (for exports and holds), read
    /// in pages of [`MAX_HITS`] below the last id seen.
    pub fn search_all(&self, q: &str) -> Result<Vec<u64>, SearchError> {
        let parsed = query::parse(q)?;
        let base = self.compile(&parsed)?;
        let searcher = self.reader.searcher();
        let mut out: Vec<u64> = Vec::new();
        loop {
            let page: Box<dyn TQuery> = match out.last() {
                None => base.box_clone(),
                Some(&last) => Box::new(BooleanQuery::new(vec![
                    (Occur::Must, base.box_clone()),
                    (
                        Occur::Must,
                        Box::new(RangeQuery::new(
                            Bound::Unbounded,
                            Bound::Excluded(Term::from_field_u64(self.fields.id, last)),
                        )),
                    ),
                ])),
            };
            let top = searcher.search(
                &page,
                &TopDocs::with_limit(MAX_HITS).order_by_u64_field("id", Order::Desc),
            )?;
            let n = top.len();
            out.extend(top.into_iter().map(|(id, _)| id));
            if n < MAX_HITS {
                return Ok(out);
            }
        }
    }

    fn compile(&self, q: &Query) -> Result<Box<dyn TQuery>, SearchError> {
        Ok(match q {
            Query::All => Box::new(AllQuery),
            Query::Cond(c) => self.condition(c)?,
            Query::And(v) => Box::new(BooleanQuery::new(
                v.iter()
                    .map(|q| Ok((Occur::Must, self.compile(q)?)))
                    .collect::<Result<_, SearchError>>()?,
            )),
            Query::Or(v) => Box::new(BooleanQuery::new(
                v.iter()
                    .map(|q| Ok((Occur::Should, self.compile(q)?)))
                    .collect::<Result<_, SearchError>>()?,
            )),
            Query::Not(q) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery) as Box<dyn TQuery>),
                (Occur::MustNot, self.compile(q)?),
            ])),
        })
    }

    fn condition(&self, c: &Condition) -> Result<Box<dyn TQuery>, SearchError> {
        let f = self.fields;
        let day = |d: &chrono::NaiveDate| {
            // tantivy keeps dates as i64 nanoseconds (years 1677..2262):
            // clamp, so `before:2999-01-01` means "any time", not a panic.
            const LIMIT: i64 = i64::MAX / 1_000_000_000 - 1;
            let secs = d
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp()
                .clamp(-LIMIT, LIMIT);
            Term::from_field_date_for_search(f.received, DateTime::from_timestamp_secs(secs))
        };
        Ok(match c {
            Condition::Address(field, pattern) => {
                let field = match field {
                    AddressField::From => f.from,
                    AddressField::To => f.to,
                    AddressField::Cc => f.cc,
                    AddressField::Bcc => f.bcc,
                    AddressField::Rcpt => f.rcpt,
                };
                address_query(field, pattern)?
            }
            Condition::Text(TextField::Any, m) => {
                let mut any: Vec<(Occur, Box<dyn TQuery>)> = Vec::new();
                for field in [f.subject, f.body, f.filename, f.attachment] {
                    if let Some(q) = self.text_query(field, m)? {
                        any.push((Occur::Should, q));
                    }
                }
                if let TextMatch::Word(w) = m {
                    if w.contains('@') {
                        for field in [f.from, f.rcpt] {
                            any.push((Occur::Should, address_query(field, w)?));
                        }
                    }
                }
                Box::new(BooleanQuery::new(any))
            }
            Condition::Text(field, m) => {
                let field = match field {
                    TextField::Subject => f.subject,
                    TextField::Body => f.body,
                    TextField::Filename => f.filename,
                    TextField::Attachment | TextField::Any => f.attachment,
                };
                self.text_query(field, m)?
                    .unwrap_or_else(|| Box::new(BooleanQuery::new(vec![])))
            }
            Condition::Keyword(field, v) => {
                let field = match field {
                    KeywordField::Direction => f.direction,
                    KeywordField::Dlp => f.dlp,
                    KeywordField::Seal => f.seal,
                    KeywordField::MessageId => f.message_id,
                };
                term(field, v)
            }
            Condition::After(d) => {
                Box::new(RangeQuery::new(Bound::Included(day(d)), Bound::Unbounded))
            }
            Condition::Before(d) => {
                Box::new(RangeQuery::new(Bound::Unbounded, Bound::Excluded(day(d))))
            }
            Condition::HasAttachment => Box::new(TermQuery::new(
                Term::from_field_u64(f.has_attachment, 1),
                IndexRecordOption::Basic,
            )),
            Condition::Larger(n) => Box::new(RangeQuery::new(
                Bound::Excluded(Term::from_field_u64(f.size, *n)),
                Bound::Unbounded,
            )),
            Condition::Smaller(n) => Box::new(RangeQuery::new(
                Bound::Unbounded,
                Bound::Excluded(Term::from_field_u64(f.size, *n)),
            )),
        })
    }

    /// A word, prefix or phrase in a tokenized field; `None` when the
    /// text has no indexable word.
    fn text_query(
        &self,
        field: Field,
        m: &TextMatch,
    ) -> Result<Option<Box<dyn TQuery>>, SearchError> {
        let mut tokenizer = self.index.tokenizer_for_field(field)?;
        let mut words = |s: &str| -> Vec<String> {
            let mut out = Vec::new();
            let mut stream = tokenizer.token_stream(s);
            while let Some(t) = stream.next() {
                out.push(t.text.clone());
            }
            out
        };
        Ok(match m {
            TextMatch::Prefix(p) => {
                let w = words(p);
                match w.as_slice() {
                    [] => None,
                    [one] => Some(Box::new(RegexQuery::from_pattern(
                        &format!("{}.*", regex_syntax_escape(one)),
                        field,
                    )?)),
                    // "report.do*": the words before, then a prefix: a phrase
                    // of the whole words is the closest the index can answer.
                    many => Some(phrase(field, &many[..many.len() - 1])),
                }
            }
            TextMatch::Word(s) | TextMatch::Phrase(s) => {
                let w = words(s);
                match w.len() {
                    0 => None,
                    _ => Some(phrase(field, &w)),
                }
            }
        })
    }
}

/// What archive events ask of the index, read from the archive (async)
/// so that [`SearchIndex::apply`] does only the blocking part.
#[derive(Default)]
pub struct Changes(Vec<Change>);

/// One change to the index.
enum Change {
    /// (Re-)index an item, with its message bytes.
    Add(Item, Vec<u8>),
    /// Drop a purged item.
    Remove(u64),
}

impl Changes {
    /// What events `from..=to` ask: an ingest or a merge (re-)indexes its
    /// item, a purge removes its items.
    pub async fn read(archive: &dyn ArchiveStore, from: u64, to: u64) -> Changes {
        let mut out = Vec::new();
        for seq in from..=to {
            // One damaged record (which `verify` names) must not keep the
            // rest of the archive out of the index.
            let event = match archive.event(seq).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(seq, error = %e, "archive event unreadable; not indexed");
                    continue;
                }
            };
            let item = match event {
                Some(super::Event::Ingest(_)) => seq,
                Some(super::Event::Merge { item, .. }) => item,
                Some(super::Event::Purge { items, .. }) => {
                    out.extend(items.into_iter().map(Change::Remove));
                    continue;
                }
                None => continue,
            };
            let read = async {
                let Some(it) = archive.item(item).await? else {
                    return Ok(None);
                };
                let Some(raw) = archive.raw(&it.captures[0].1.sha256).await? else {
                    return Ok(None);
                };
                Ok::<_, ArchiveError>(Some((it, raw)))
            }
            .await;
            match read {
                Ok(Some((it, raw))) => out.push(Change::Add(it, raw)),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(item, error = %e, "archived item unreadable; not indexed")
                }
            }
        }
        Changes(out)
    }

    /// As [`Changes::read`], the range split in `parts` read at once: each
    /// read waits its turn on the store's blocking pool, and under load the
    /// one-at-a-time walk fell behind the journal (the index covered 33,000
    /// of 50,000 messages when a benchmark's load ended, where `archive
    /// reindex` reads 3,400 a second).
    pub async fn read_parallel(
        archive: std::sync::Arc<dyn ArchiveStore>,
        from: u64,
        to: u64,
        parts: u64,
    ) -> Changes {
        let span = (to.saturating_sub(from) + 1).div_ceil(parts.max(1));
        let mut ranges = Vec::new();
        let mut a = from;
        while a <= to {
            let b = (a + span - 1).min(to);
            let store = archive.clone();
            let task = tokio::spawn(async move { Changes::read(store.as_ref(), a, b).await });
            ranges.push((a, b, task));
            a = b + 1;
        }
        let mut out = Vec::new();
        for (a, b, task) in ranges {
            match task.await {
                Ok(c) => out.extend(c.0),
                // Never a gap in the index: that range is read again here.
                Err(e) => {
                    tracing::error!(from = a, to = b, error = %e, "index read task failed; reading again");
                    out.extend(Changes::read(archive.as_ref(), a, b).await.0);
                }
            }
        }
        Changes(out)
    }
}

fn term(field: Field, v: &str) -> Box<dyn TQuery> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, v),
        IndexRecordOption::Basic,
    ))
}

/// One word as a term, several as a phrase.
fn phrase(field: Field, words: &[String]) -> Box<dyn TQuery> {
    if words.len() == 1 {
        return Box::new(TermQuery::new(
            Term::from_field_text(field, &words[0]),
            IndexRecordOption::WithFreqs,
        ));
    }
    Box::new(PhraseQuery::new(
        words
            .iter()
            .map(|w| Term::from_field_text(field, w))
            .collect(),
    ))
}

/// An address pattern: exact, `*` as a wildcard, or a bare domain meaning
/// any address at it (or its subdomains).
fn address_query(field: Field, pattern: &str) -> Result<Box<dyn TQuery>, SearchError> {
    if pattern.contains('*') {
        let re = pattern
            .split('*')
            .map(regex_syntax_escape)
            .collect::<Vec<_>>()
            .join(".*");
        return Ok(Box::new(RegexQuery::from_pattern(&re, field)?));
    }
    if !pattern.contains('@') {
        let re = format!(".*[@.]{}", regex_syntax_escape(pattern));
        return Ok(Box::new(RegexQuery::from_pattern(&re, field)?));
    }
    Ok(term(field, pattern))
}

/// `s` with the regex metacharacters escaped.
fn regex_syntax_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Journaled;
    use super::*;
    use crate::store::archive::testing::{capture, dlp_found};
    use crate::store::rocksdb::archive::testing::open;

    /// A multipart message with a text body and a CSV attachment.
    fn message(subject: &str, to: &str, body: &str, attachment: Option<(&str, &str)>) -> Vec<u8> {
        let mut m = format!(
            "From: Nurse <nurse@hospital.test>\r\nTo: {to}\r\nSubject: {subject}\r\n\
             Message-ID: <{}@hospital.test>\r\nMIME-Version: 1.0\r\n",
            subject.replace(' ', "-")
        );
        match attachment {
            None => m.push_str(&format!("Content-Type: text/plain\r\n\r\n{body}\r\n")),
            Some((name, text)) => m.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n\
                 --b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n{text}\r\n--b--\r\n"
            )),
        }
        m.into_bytes()
    }

    #[tokio::test]
    async fn malformed_mail_is_archived_byte_exact_and_indexed_as_far_as_it_goes() {
        let dir = tempfile::tempdir().unwrap();
        let archive = open(dir.path(), 100);
        let index = SearchIndex::open(&dir.path().join("index"), InspectLimits::default()).unwrap();
        let bad: Vec<Vec<u8>> = vec![
            b"\x00\xff\xfe binary with no header at all \x00".to_vec(),
            b"Subject: truncated\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDB!!!not base64".to_vec(),
            b"Subject: =?utf-8?B?broken?=\r\nFrom: <<<@@@>>>\r\n\r\nstrawberry\r\n".to_vec(),
        ];
        for (i, raw) in bad.iter().enumerate() {
            let j = archive
                .journal(capture(&format!("q{i}"), raw, &["a@b.test"]), raw)
                .await
                .unwrap();
            let Journaled::New(id) = j else {
                panic!("{j:?}")
            };
            let item = archive.item(id).await.unwrap().unwrap();
            index.add(&item, raw).unwrap();
            assert_eq!(
                archive
                    .raw(&item.captures[0].1.sha256)
                    .await
                    .unwrap()
                    .as_ref(),
                Some(raw)
            );
        }
        index.commit(archive.head_seq().await).unwrap();
        assert_eq!(index.search("", 10).unwrap().total, 3);
        assert_eq!(index.search("strawberry", 10).unwrap().ids, vec![3]);
        assert_eq!(index.search("subject:truncated", 10).unwrap().ids, vec![2]);
        assert!(archive.verify(1).await.unwrap().damaged.is_empty());
    }

    #[tokio::test]
    async fn every_field_finds_its_item_and_only_it() {
        let dir = tempfile::tempdir().unwrap();
        let archive = open(dir.path(), 100);
        let index = SearchIndex::open(&dir.path().join("index"), InspectLimits::default()).unwrap();
        let m1 = message(
            "Lab results",
            "pat@partner.com",
            "Your potassium is fine.",
            Some(("labs.csv", "test,value\nsodium,140")),
        );
        let m2 = message(
            "Invoice March",
            "billing@other.org",
            "Please pay the invoice.",
            None,
        );
        let mut c1 = capture("q1", &m1, &["pat@partner.com", "audit@hospital.test"]);
        c1.dlp = Some(dlp_found("us_ssn"));
        c1.received_at = "2026-01-15T10:00:00Z".parse().unwrap();
        let mut c2 = capture("q2", &m2, &["billing@other.org"]);
        c2.received_at = "2026-03-02T10:00:00Z".parse().unwrap();
        c2.direction = crate::spool::Direction::Inbound;
        archive.journal(c1, &m1).await.unwrap();
        archive.journal(c2, &m2).await.unwrap();
        assert_eq!(index.catch_up(&archive).await.unwrap(), 2);
        assert_eq!(index.indexed_through(), 2);
        let ids = |q: &str| {
            index
                .search(q, 10)
                .unwrap_or_else(|e| panic!("{q}: {e}"))
                .ids
        };
        for (q, want) in [
            ("from:nurse@hospital.test", vec![2, 1]),
            ("from:a@hospital.test", vec![2, 1]),
            ("to:pat@partner.com", vec![1]),
            ("to:*@partner.com", vec![1]),
            ("to:partner.com", vec![1]),
            ("bcc:audit@hospital.test", vec![1]),
            ("to:audit@hospital.test", vec![]),
            ("rcpt:billing@other.org", vec![2]),
            ("subject:\"lab results\"", vec![1]),
            ("subject:invoice", vec![2]),
            ("potassium", vec![1]),
            ("body:pay", vec![2]),
            ("filename:labs.csv", vec![1]),
            ("attachment:sodium", vec![1]),
            ("has:attachment", vec![1]),
            ("-has:attachment", vec![2]),
            ("after:2026-02-01", vec![2]),
            ("before:2026-02-01", vec![1]),
            ("after:2026-01-15 before:2026-01-16", vec![1]),
            ("after:0001-01-01 before:9999-12-31", vec![2, 1]),
            ("after:9999-12-31", vec![]),
            ("dlp:us_ssn", vec![1]),
            ("direction:inbound", vec![2]),
            ("direction:outbound", vec![1]),
            ("message-id:<Lab-results@hospital.test>", vec![1]),
            ("invoic*", vec![2]),
            ("potassium OR invoice", vec![2, 1]),
            ("potassium invoice", vec![]),
            ("larger:1", vec![2, 1]),
            ("smaller:1", vec![]),
            ("", vec![2, 1]),
        ] {
            assert_eq!(ids(q), want, "query {q:?}");
        }
        // A merge adds its recipients to the item's document.
        let again = capture("q3", &m2, &["late@other.org"]);
        archive.journal(again, &m2).await.unwrap();
        index.catch_up(&archive).await.unwrap();
        assert_eq!(ids("rcpt:late@other.org"), vec![2]);
        assert_eq!(
            index.search("", 10).unwrap().total,
            2,
            "one document per item"
        );
        let e = index.search("subject:(lab", 10).unwrap_err();
        assert!(e.to_string().contains("character"), "{e}");
    }
}
