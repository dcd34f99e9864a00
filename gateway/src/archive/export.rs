//! Exports for eDiscovery: the items a query finds, as one mbox file
//! (mboxrd quoting) or one `.eml` file per item, with a `manifest.json`
//! listing each item's id, SHA-256 and envelope, and a detached Ed25519
//! signature over the manifest by the archive's key, checkable by anyone
//! with `openssl pkeyutl -verify -pubin -inkey signing-key.pem -rawin -in
//! manifest.json -sigfile manifest.json.sig`.

use super::sealed_file::{SealKey, SealWriter};
use super::{ArchiveError, ArchiveStore, Item};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where an export's files go. Either way the directory is 0700 and its
/// files 0600, whatever the umask.
#[derive(Clone, Copy)]
pub enum Destination<'a> {
    /// Plain files in a directory the operator chose (`archive export --out`).
    Plain(&'a Path),
    /// Files sealed under a key held only in memory (the API's exports,
    /// kept until downloaded or expired): see `sealed_file.rs`.
    Sealed(&'a Path, &'a SealKey),
}

impl Destination<'_> {
    fn dir(&self) -> &Path {
        match self {
            Destination::Plain(d) | Destination::Sealed(d, _) => d,
        }
    }

    /// A new file `name` in the directory, open for writing.
    fn create(&self, name: &str) -> std::io::Result<Box<dyn OutFile>> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(self.dir().join(name))?;
        let file = std::io::BufWriter::new(file);
        Ok(match self {
            Destination::Plain(_) => Box::new(file),
            Destination::Sealed(_, key) => Box::new(SealWriter::new(file, key)?),
        })
    }

    /// Writes the file `name` whole.
    fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut f = self.create(name)?;
        f.write_all(bytes)?;
        f.finish()
    }
}

/// One file of an export being written; `finish` makes it durable (and,
/// sealed, writes its last chunk).
trait OutFile: Write {
    fn finish(self: Box<Self>) -> std::io::Result<()>;
}

impl OutFile for std::io::BufWriter<std::fs::File> {
    fn finish(self: Box<Self>) -> std::io::Result<()> {
        self.into_inner().map_err(|e| e.into_error())?.sync_all()
    }
}

impl OutFile for SealWriter<std::io::BufWriter<std::fs::File>> {
    fn finish(self: Box<Self>) -> std::io::Result<()> {
        Box::new(SealWriter::finish(*self)?).finish()
    }
}

/// The export's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One `messages.mbox` (mboxrd).
    Mbox,
    /// One `<id>.eml` per item.
    Eml,
}

/// Errors of an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the archive.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Writing the export.
    #[error("export {0}: {1}")]
    Io(String, std::io::Error),
    /// The output directory exists and is not empty.
    #[error("export {0}: the directory exists and is not empty")]
    NotEmpty(String),
    /// An item's content is missing.
    #[error("item {0}: its content is missing from the archive")]
    Missing(u64),
}

/// One exported item in the manifest.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    id: u64,
    sha256: &'a str,
    size: u64,
    file: String,
    received_at: chrono::DateTime<chrono::Utc>,
    message_id: Option<&'a str>,
    /// Every relay's envelope: sender, recipients and their final state.
    relays: Vec<Relay<'a>>,
}

#[derive(Debug, Serialize)]
struct Relay<'a> {
    seq: u64,
    queue_id: &'a str,
    direction: crate::spool::Direction,
    mail_from: &'a str,
    recipients: Vec<(&'a str, &'static str)>,
}

/// What an export wrote.
#[derive(Debug, Serialize)]
pub struct Exported {
    /// Items written.
    pub items: usize,
    /// Octets of message content written.
    pub bytes: u64,
    /// The manifest's path.
    pub manifest: PathBuf,
}

/// Writes `ids` from `archive` to `dest` in `format`, signs the manifest
/// with `key`; `progress` is called after each item. The files are written
/// in the calling thread (the API runs it off the async workers).
pub async fn export(
    archive: &dyn ArchiveStore,
    ids: &[u64],
    query: &str,
    format: Format,
    dest: Destination<'_>,
    key: &Ed25519KeyPair,
    mut progress: impl FnMut(usize, usize),
) -> Result<Exported, ExportError> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |e| ExportError::Io(p, e)
    };
    let out = dest.dir();
    if out.exists() && std::fs::read_dir(out).map_err(io(out))?.next().is_some() {
        return Err(ExportError::NotEmpty(out.display().to_string()));
    }
    crate::secret_file::private_dir(out).map_err(io(out))?;
    let mbox_path = out.join("messages.mbox");
    let mut mbox = match format {
        Format::Mbox => Some(dest.create("messages.mbox").map_err(io(&mbox_path))?),
        Format::Eml => None,
    };
    let mut items: Vec<Item> = Vec::with_capacity(ids.len());
    let mut bytes = 0u64;
    for (n, &id) in ids.iter().enumerate() {
        let item = archive.item(id).await?.ok_or(ExportError::Missing(id))?;
        let raw = archive
            .raw(&item.captures[0].1.sha256)
            .await?
            .ok_or(ExportError::Missing(id))?;
        bytes += raw.len() as u64;
        match &mut mbox {
            Some(w) => write_mbox_entry(w, &item, &raw).map_err(io(&mbox_path))?,
            None => {
                let name = format!("{id}.eml");
                dest.write(&name, &raw).map_err(io(&out.join(&name)))?;
            }
        }
        items.push(item);
        progress(n + 1, ids.len());
    }
    if let Some(w) = mbox {
        w.finish().map_err(io(&mbox_path))?;
    }
    let entries: Vec<Entry> = items
        .iter()
        .map(|item| {
            let first = &item.captures[0].1;
            Entry {
                id: item.id,
                sha256: &first.sha256,
                size: first.size,
                file: match format {
                    Format::Mbox => "messages.mbox".into(),
                    Format::Eml => format!("{}.eml", item.id),
                },
                received_at: first.received_at,
                message_id: first.headers.message_id.as_deref(),
                relays: item
                    .captures
                    .iter()
                    .map(|(seq, c)| Relay {
                        seq: *seq,
                        queue_id: &c.queue_id,
                        direction: c.direction,
                        mail_from: &c.mail_from,
                        recipients: c
                            .recipients
                            .iter()
                            .map(|r| (r.address.as_str(), r.state.as_str()))
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    let manifest = serde_json::json!({
        "format": format,
        "query": query,
        "exported_at": chrono::Utc::now(),
        "archive_head": archive.head_seq().await,
        "count": entries.len(),
        "signing_key": hex::encode(key.public_key().as_ref()),
        "items": entries,
    });
    let text = serde_json::to_vec_pretty(&manifest).expect("the manifest serialises");
    let manifest_path = out.join("manifest.json");
    dest.write("manifest.json", &text)
        .map_err(io(&manifest_path))?;
    let sig_path = out.join("manifest.json.sig");
    dest.write("manifest.json.sig", key.sign(&text).as_ref())
        .map_err(io(&sig_path))?;
    let pem_path = out.join("signing-key.pem");
    dest.write(
        "signing-key.pem",
        public_key_pem(key.public_key().as_ref()).as_bytes(),
    )
    .map_err(io(&pem_path))?;
    crate::durable_file::sync_dir(out).map_err(io(out))?;
    Ok(Exported {
        items: items.len(),
        bytes,
        manifest: manifest_path,
    })
}

/// One mboxrd entry: the `From ` line, the message with every line that
/// matches `>*From ` quoted with one more `>`, and a blank line.
fn write_mbox_entry(w: &mut impl Write, item: &Item, raw: &[u8]) -> std::io::Result<()> {
    let first = &item.captures[0].1;
    let sender = if first.mail_from.is_empty() {
        "MAILER-DAEMON"
    } else {
        &first.mail_from
    };
    writeln!(
        w,
        "From {} {}",
        sender.replace(char::is_whitespace, "_"),
        first.received_at.format("%a %b %e %H:%M:%S %Y")
    )?;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let quoted = line
            .iter()
            .position(|&b| b != b'>')
            .is_some_and(|i| line[i..].starts_with(b"From "));
        if quoted {
            w.write_all(b">")?;
        }
        w.write_all(line)?;
    }
    if !raw.ends_with(b"\n") {
        w.write_all(b"\n")?;
    }
    w.write_all(b"\n")
}

/// An Ed25519 public key as a PEM SubjectPublicKeyInfo (RFC 8410), for openssl.
fn public_key_pem(key: &[u8]) -> String {
    use base64::Engine as _;
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(key);
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::archive::testing::capture;
    use crate::store::rocksdb::archive::testing::open;

    /// `openssl pkeyutl -verify` of the export's manifest signature.
    fn openssl_verifies(out: &Path) -> bool {
        std::process::Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
            .arg(out.join("signing-key.pem"))
            .args(["-rawin", "-in"])
            .arg(out.join("manifest.json"))
            .arg("-sigfile")
            .arg(out.join("manifest.json.sig"))
            .output()
            .unwrap()
            .status
            .success()
    }

    #[tokio::test]
    async fn mbox_quotes_from_lines_and_the_manifest_signature_verifies_with_openssl() {
        let dir = tempfile::tempdir().unwrap();
        let archive = open(dir.path(), 100);
        let m1 = b"Subject: a\r\n\r\nFrom here on\r\n>From quoted\r\nend\r\n".to_vec();
        let m2 = b"Subject: b\r\n\r\nsecond\r\n".to_vec();
        archive
            .journal(capture("q1", &m1, &["x@y.test"]), &m1)
            .await
            .unwrap();
        archive
            .journal(capture("q2", &m2, &["x@y.test"]), &m2)
            .await
            .unwrap();
        let key =
            crate::store::archive::chain::load_or_create_signer(&dir.path().join("archive.pk8"))
                .unwrap();
        let out = dir.path().join("export");
        let mut seen = 0;
        let done = export(
            &archive,
            &[1, 2],
            "x",
            Format::Mbox,
            Destination::Plain(&out),
            &key,
            |n, _| seen = n,
        )
        .await
        .unwrap();
        assert_eq!((done.items, seen), (2, 2));
        let mbox = std::fs::read(out.join("messages.mbox")).unwrap();
        let text = String::from_utf8(mbox).unwrap();
        assert!(text.starts_with("From a@hospital.test "), "{text}");
        assert!(
            text.contains("\r\n>From here on\r\n>>From quoted\r\n"),
            "{text}"
        );
        assert!(
            openssl_verifies(&out),
            "the manifest signature does not verify"
        );
        // A changed manifest no longer verifies.
        let mut m = std::fs::read(out.join("manifest.json")).unwrap();
        m[10] ^= 1;
        std::fs::write(out.join("manifest.json"), m).unwrap();
        assert!(!openssl_verifies(&out));
        // EML into a non-empty directory is refused; into a new one, exact bytes.
        assert!(matches!(
            export(
                &archive,
                &[1],
                "x",
                Format::Eml,
                Destination::Plain(&out),
                &key,
                |_, _| {}
            )
            .await,
            Err(ExportError::NotEmpty(_))
        ));
        let eml = dir.path().join("eml");
        export(
            &archive,
            &[1, 2],
            "x",
            Format::Eml,
            Destination::Plain(&eml),
            &key,
            |_, _| {},
        )
        .await
        .unwrap();
        assert_eq!(std::fs::read(eml.join("1.eml")).unwrap(), m1);
    }
}
