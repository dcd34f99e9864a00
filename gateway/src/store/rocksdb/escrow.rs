//! The escrow store behind the portal seal.
//!
//! Each deposited message is encrypted with a key of its own (AES-256-GCM),
//! and that key is kept only wrapped by the store's shredding key
//! (`shred.rs`, a file beside the database). The recipient's link carries a
//! random token of 256 bits, and the sender's withdraw link another; the
//! store keeps only their SHA-256. Erasing an expired or revoked message
//! deletes its content and wrapped key and rotates the shredding key, so
//! what RocksDB's log and tables still hold of it opens under no key that
//! exists; the affected tables are then rewritten. The entry stays as a
//! tombstone with its state and times.
//!
//! Column families (RocksDB under `<data_dir>/escrow`): `entries` (id →
//! the entry, encrypted), `content` (id → the message under its own key),
//! `tokens` (token SHA-256 → id; `r:` + SHA-256 for withdraw links), and
//! the portal's sign-in state, encrypted: `accounts` (address → account)
//! and `sessions` (session SHA-256 → session).

use crate::model::escrow::{Deposit, EscrowEntry, EscrowState, NewDeposit, SignInRecord};
use crate::store::escrow::{
    token_hash, AccountGuard, EscrowError, EscrowStore, PortalStores, SignInRecords,
};
use crate::store::keyring::Keyring;
use crate::store::shred::ShredKeys;
use crate::store::BackendError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rocksdb::{IteratorMode, WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

const CF_ENTRIES: &str = "entries";
const CF_CONTENT: &str = "content";
const CF_TOKENS: &str = "tokens";
const CF_ACCOUNTS: &str = "accounts";
const CF_SESSIONS: &str = "sessions";
/// `sha256(recipient) ":" id` for each entry: a recipient's inbox reads
/// their entries only.
const CF_RECIPIENTS: &str = "recipients";
const ALL_CFS: [&str; 6] = [
    CF_ENTRIES,
    CF_CONTENT,
    CF_TOKENS,
    CF_ACCOUNTS,
    CF_SESSIONS,
    CF_RECIPIENTS,
];

/// The index key prefix of `recipient`'s entries.
fn recipient_prefix(recipient: &str) -> String {
    format!("{}:", token_hash(&recipient.to_ascii_lowercase()))
}

fn record_cf(kind: SignInRecord) -> &'static str {
    match kind {
        SignInRecord::Account => CF_ACCOUNTS,
        SignInRecord::Session => CF_SESSIONS,
    }
}

/// An entry as stored: the entry and its wrapped message key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    entry: EscrowEntry,
    /// The message key, wrapped by a shredding key (gone once erased).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "hex_bytes")]
    wrapped_key: Vec<u8>,
    /// Which shredding key wraps it; 0: the store's key file (entries made
    /// before shredding keys, re-wrapped at the next open).
    #[serde(default)]
    wrap_key: u64,
}

/// What a message key is bound to when wrapped.
fn key_label(id: &str) -> String {
    format!("key:{id}")
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

fn backend(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> EscrowError {
    EscrowError::Backend(BackendError::new("escrow", e))
}

impl From<rocksdb::Error> for EscrowError {
    fn from(e: rocksdb::Error) -> Self {
        backend(e)
    }
}

/// The escrow store.
struct Escrow {
    db: DB,
    keys: Keyring,
    /// Writers of wrapped keys hold it shared; a rotation holds it alone,
    /// so no key is wrapped under one that is about to be destroyed.
    shred: RwLock<ShredKeys>,
}

/// The shredding key file of the store at `dir`.
fn shred_path(dir: &Path) -> PathBuf {
    dir.join("shred.keys")
}

impl Escrow {
    /// Opens (creating if needed) the store at `dir`.
    pub fn open(dir: &Path, keys: Keyring) -> Result<Self, EscrowError> {
        std::fs::create_dir_all(dir).map_err(|e| backend(format!("{}: {e}", dir.display())))?;
        let db = super::open_writable(dir, &ALL_CFS)?;
        let shred = RwLock::new(ShredKeys::load_or_create(&shred_path(dir))?);
        let escrow = Escrow { db, keys, shred };
        escrow.index_recipients()?;
        escrow.finish_rotation()?;
        Ok(escrow)
    }

    /// Finishes a rotation a crash cut short, and moves keys wrapped by
    /// the key file (stores made before shredding keys) under one.
    fn finish_rotation(&self) -> Result<(), EscrowError> {
        let cut_short = crate::locks::read(&self.shred).mid_rotation();
        let legacy = || -> Result<bool, EscrowError> {
            Ok(self
                .list_stored()?
                .iter()
                .any(|e| e.wrap_key == 0 && !e.wrapped_key.is_empty()))
        };
        if cut_short || legacy()? {
            self.erase_all(&[], EscrowState::Revoked)?;
        }
        Ok(())
    }

    /// Builds the recipient index of a store made before it existed.
    fn index_recipients(&self) -> Result<(), EscrowError> {
        let indexed = self
            .db
            .iterator_cf(self.cf(CF_RECIPIENTS), IteratorMode::Start)
            .next()
            .is_some();
        if indexed {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        for e in self.list()? {
            batch.put_cf(
                self.cf(CF_RECIPIENTS),
                recipient_prefix(&e.recipient) + &e.id,
                b"",
            );
        }
        if !batch.is_empty() {
            self.write(batch)?;
        }
        Ok(())
    }

    /// `recipient`'s entries (erased ones included), read through the index.
    pub fn entries_for(&self, recipient: &str) -> Result<Vec<EscrowEntry>, EscrowError> {
        let prefix = recipient_prefix(recipient);
        let mut out = Vec::new();
        let from = IteratorMode::From(prefix.as_bytes(), rocksdb::Direction::Forward);
        for kv in self.db.iterator_cf(self.cf(CF_RECIPIENTS), from) {
            let (k, _) = kv?;
            let Some(id) = k.strip_prefix(prefix.as_bytes()) else {
                break;
            };
            if let Some(e) = self.entry(&String::from_utf8_lossy(id))? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Opens the store read-only (works while the gateway has it open).
    pub fn open_read_only(dir: &Path, keys: Keyring) -> Result<Self, EscrowError> {
        let db = super::open_existing_read_only(dir, &ALL_CFS)?;
        let shred = RwLock::new(ShredKeys::load_read_only(&shred_path(dir))?);
        Ok(Escrow { db, keys, shred })
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column family created on open")
    }

    fn write(&self, batch: WriteBatch) -> Result<(), EscrowError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    fn put_entry(&self, batch: &mut WriteBatch, e: &Stored) {
        let json = serde_json::to_vec(e).expect("an entry serialises");
        batch.put_cf(
            self.cf(CF_ENTRIES),
            e.entry.id.as_bytes(),
            self.keys.seal(e.entry.id.as_bytes(), &json),
        );
    }

    /// Deposits `message` from `sender` for `recipient` until `expires_at`.
    pub fn deposit(
        &self,
        queue_id: &str,
        sender: &str,
        recipient: &str,
        message: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<Deposit, EscrowError> {
        let id = hex::encode(rand::random::<[u8; 16]>());
        let token = hex::encode(rand::random::<[u8; 32]>());
        let revoke_token = hex::encode(rand::random::<[u8; 32]>());
        let key: [u8; 32] = rand::random();
        let shred = crate::locks::read(&self.shred);
        let (wrap_key, wrapped_key) = shred.wrap(&key_label(&id), &key)?;
        let nonce: [u8; 12] = rand::random();
        let cipher = Aes256Gcm::new_from_slice(&key).expect("a 32-byte key");
        let mut content = nonce.to_vec();
        content.extend(
            cipher
                .encrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: message,
                        aad: id.as_bytes(),
                    },
                )
                .map_err(|e| EscrowError::Corrupt(id.clone(), e.to_string()))?,
        );
        let message_id = mail_parser::MessageParser::new()
            .parse_headers(message)
            .and_then(|m| m.message_id().map(str::to_string))
            .unwrap_or_default();
        let entry = EscrowEntry {
            id: id.clone(),
            queue_id: queue_id.to_string(),
            sender: sender.to_string(),
            message_id,
            recipient: recipient.to_string(),
            created_at: Utc::now(),
            expires_at,
            state: EscrowState::Unread,
            read_at: None,
            replied_at: None,
            erased_at: None,
        };
        let mut batch = WriteBatch::default();
        self.put_entry(
            &mut batch,
            &Stored {
                entry: entry.clone(),
                wrapped_key,
                wrap_key,
            },
        );
        batch.put_cf(self.cf(CF_CONTENT), id.as_bytes(), content);
        batch.put_cf(
            self.cf(CF_RECIPIENTS),
            recipient_prefix(recipient) + &id,
            b"",
        );
        batch.put_cf(self.cf(CF_TOKENS), token_hash(&token), id.as_bytes());
        batch.put_cf(
            self.cf(CF_TOKENS),
            format!("r:{}", token_hash(&revoke_token)),
            id.as_bytes(),
        );
        self.write(batch)?;
        Ok(Deposit {
            entry,
            token,
            revoke_token,
        })
    }

    /// The entry a withdraw link's token names, if any.
    pub fn by_revoke_token(&self, token: &str) -> Result<Option<EscrowEntry>, EscrowError> {
        let key = format!("r:{}", token_hash(token));
        match self.db.get_cf(self.cf(CF_TOKENS), key)? {
            Some(id) => self.entry(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// Records a reply from the recipient.
    pub fn mark_replied(&self, id: &str) -> Result<(), EscrowError> {
        // Held while the entry, wrapped key included, is written back.
        let _shred = crate::locks::read(&self.shred);
        if let Some(mut e) = self.stored(id)? {
            if e.entry.erased_at.is_none() {
                e.entry.state = EscrowState::Replied;
                e.entry.replied_at = Some(Utc::now());
                let mut batch = WriteBatch::default();
                self.put_entry(&mut batch, &e);
                self.write(batch)?;
            }
        }
        Ok(())
    }

    /// A sign-in record, decrypted.
    pub fn get_record(
        &self,
        kind: SignInRecord,
        key: &str,
    ) -> Result<Option<Vec<u8>>, EscrowError> {
        let Some(sealed) = self.db.get_cf(self.cf(record_cf(kind)), key.as_bytes())? else {
            return Ok(None);
        };
        let aad = format!("{}:{key}", record_cf(kind));
        self.keys
            .open(aad.as_bytes(), &sealed)
            .map(Some)
            .map_err(|source| EscrowError::Key {
                what: format!("{} record", record_cf(kind)),
                source,
            })
    }

    /// Stores a sign-in record, encrypted, with fsync.
    pub fn put_record(
        &self,
        kind: SignInRecord,
        key: &str,
        value: &[u8],
    ) -> Result<(), EscrowError> {
        let aad = format!("{}:{key}", record_cf(kind));
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(record_cf(kind)),
            key.as_bytes(),
            self.keys.seal(aad.as_bytes(), value),
        );
        self.write(batch)
    }

    /// Removes a sign-in record.
    pub fn delete_record(&self, kind: SignInRecord, key: &str) -> Result<(), EscrowError> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(record_cf(kind)), key.as_bytes());
        self.write(batch)
    }

    /// Every key of one kind of sign-in record (for the sweeper).
    pub fn record_keys(&self, kind: SignInRecord) -> Result<Vec<String>, EscrowError> {
        let mut out = Vec::new();
        for kv in self
            .db
            .iterator_cf(self.cf(record_cf(kind)), IteratorMode::Start)
        {
            let (k, _) = kv?;
            out.push(String::from_utf8_lossy(&k).into_owned());
        }
        Ok(out)
    }

    /// The entry `id`.
    pub fn entry(&self, id: &str) -> Result<Option<EscrowEntry>, EscrowError> {
        Ok(self.stored(id)?.map(|s| s.entry))
    }

    /// The entry `id` with its wrapped key.
    fn stored(&self, id: &str) -> Result<Option<Stored>, EscrowError> {
        let Some(sealed) = self.db.get_cf(self.cf(CF_ENTRIES), id.as_bytes())? else {
            return Ok(None);
        };
        let json = self
            .keys
            .open(id.as_bytes(), &sealed)
            .map_err(|source| EscrowError::Key {
                what: format!("entry {id}"),
                source,
            })?;
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|e| EscrowError::Corrupt(id.to_string(), e.to_string()))
    }

    /// The entry a link token opens, if any (erased ones included, so the
    /// portal can say "expired" rather than "unknown").
    pub fn by_token(&self, token: &str) -> Result<Option<EscrowEntry>, EscrowError> {
        match self.db.get_cf(self.cf(CF_TOKENS), token_hash(token))? {
            Some(id) => self.entry(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// The message `id`, decrypted; the first read marks it read.
    pub fn read(&self, id: &str) -> Result<Vec<u8>, EscrowError> {
        self.decrypt(id, true)
    }

    /// The message `id`, decrypted, without marking it read.
    pub fn peek(&self, id: &str) -> Result<Vec<u8>, EscrowError> {
        self.decrypt(id, false)
    }

    fn decrypt(&self, id: &str, mark_read: bool) -> Result<Vec<u8>, EscrowError> {
        let shred = crate::locks::read(&self.shred);
        let mut stored = self
            .stored(id)?
            .ok_or_else(|| EscrowError::Corrupt(id.to_string(), "no such entry".into()))?;
        if matches!(
            stored.entry.state,
            EscrowState::Revoked | EscrowState::Expired
        ) {
            return Err(EscrowError::Gone(id.to_string(), stored.entry.state));
        }
        let key = self.message_key(&shred, &stored)?;
        let content = self
            .db
            .get_cf(self.cf(CF_CONTENT), id.as_bytes())?
            .ok_or_else(|| EscrowError::Corrupt(id.to_string(), "content missing".into()))?;
        if content.len() < 12 {
            return Err(EscrowError::Corrupt(
                id.to_string(),
                "content truncated".into(),
            ));
        }
        let cipher = Aes256Gcm::new_from_slice(&key)
            .map_err(|e| EscrowError::Corrupt(id.to_string(), e.to_string()))?;
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&content[..12]),
                Payload {
                    msg: &content[12..],
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| {
                EscrowError::Corrupt(id.to_string(), "content failed authentication".into())
            })?;
        if mark_read && stored.entry.state == EscrowState::Unread {
            stored.entry.state = EscrowState::Read;
            stored.entry.read_at = Some(Utc::now());
            let mut batch = WriteBatch::default();
            self.put_entry(&mut batch, &stored);
            self.write(batch)?;
        }
        Ok(plain)
    }

    /// The message key of `entry`, unwrapped.
    fn message_key(&self, shred: &ShredKeys, stored: &Stored) -> Result<[u8; 32], EscrowError> {
        let id = &stored.entry.id;
        let label = key_label(id);
        if stored.wrap_key != 0 {
            return Ok(shred.unwrap(stored.wrap_key, &label, &stored.wrapped_key)?);
        }
        let key = self
            .keys
            .open(label.as_bytes(), &stored.wrapped_key)
            .map_err(|source| EscrowError::Key {
                what: format!("key {id}"),
                source,
            })?;
        key.try_into()
            .map_err(|_| EscrowError::Corrupt(id.clone(), "key of the wrong size".into()))
    }

    /// Erases the entries `ids` (content and key, leaving tombstones in
    /// `state`) and rotates the shredding key: every other kept key is
    /// re-wrapped under a new one before the old one is destroyed, so
    /// nothing left of the erased ones in any file opens again. Returns
    /// the entries erased.
    fn erase_all(
        &self,
        ids: &[String],
        state: EscrowState,
    ) -> Result<Vec<EscrowEntry>, EscrowError> {
        let mut shred = crate::locks::write(&self.shred);
        shred.begin_rotation()?;
        let mut batch = WriteBatch::default();
        let mut erased = Vec::new();
        for mut e in self.list_stored()? {
            if e.entry.erased_at.is_none() && ids.contains(&e.entry.id) {
                e.entry.state = state;
                e.entry.erased_at = Some(Utc::now());
                e.wrapped_key.clear();
                e.wrap_key = 0;
                batch.delete_cf(self.cf(CF_CONTENT), e.entry.id.as_bytes());
                self.put_entry(&mut batch, &e);
                erased.push(e.entry);
            } else if !e.wrapped_key.is_empty() {
                match self.message_key(&shred, &e) {
                    Ok(key) => {
                        (e.wrap_key, e.wrapped_key) = shred.wrap(&key_label(&e.entry.id), &key)?;
                        self.put_entry(&mut batch, &e);
                    }
                    // Already unreadable; left as it is rather than block
                    // every later erasure.
                    Err(err) => {
                        tracing::warn!(entry = %e.entry.id, error = %err, "escrow entry's key does not open")
                    }
                }
            }
        }
        self.write(batch)?;
        shred.finish_rotation()?;
        drop(shred);
        self.rewrite_tables();
        Ok(erased)
    }

    /// Flushes every table and compacts content and entries, so erased
    /// values leave the log and table files now rather than at some later
    /// compaction.
    fn rewrite_tables(&self) {
        for name in ALL_CFS {
            if let Err(e) = self.db.flush_cf(self.cf(name)) {
                tracing::warn!(table = name, error = %e, "escrow flush after an erasure failed");
            }
        }
        for name in [CF_CONTENT, CF_ENTRIES] {
            self.db
                .compact_range_cf(self.cf(name), None::<&[u8]>, None::<&[u8]>);
        }
    }

    /// Withdraws `id` now: content and key erased.
    pub fn revoke(&self, id: &str) -> Result<Option<EscrowEntry>, EscrowError> {
        match self.entry(id)? {
            Some(e) if e.erased_at.is_none() => {
                match self
                    .erase_all(std::slice::from_ref(&e.id), EscrowState::Revoked)?
                    .pop()
                {
                    Some(erased) => Ok(Some(erased)),
                    // Erased meanwhile by another caller: as it stands now.
                    None => self.entry(id),
                }
            }
            other => Ok(other),
        }
    }

    /// Erases every message past its expiry at `now`; returns them.
    pub fn sweep(&self, now: DateTime<Utc>) -> Result<Vec<EscrowEntry>, EscrowError> {
        let due: Vec<String> = self
            .list()?
            .into_iter()
            .filter(|e| e.erased_at.is_none() && e.expires_at <= now)
            .map(|e| e.id)
            .collect();
        if due.is_empty() {
            return Ok(Vec::new());
        }
        self.erase_all(&due, EscrowState::Expired)
    }

    /// Every entry.
    pub fn list(&self) -> Result<Vec<EscrowEntry>, EscrowError> {
        Ok(self.list_stored()?.into_iter().map(|s| s.entry).collect())
    }

    /// Every entry with its wrapped key.
    fn list_stored(&self) -> Result<Vec<Stored>, EscrowError> {
        let mut out = Vec::new();
        for kv in self
            .db
            .iterator_cf(self.cf(CF_ENTRIES), IteratorMode::Start)
        {
            let (k, _) = kv?;
            if let Some(e) = self.stored(&String::from_utf8_lossy(&k))? {
                out.push(e);
            }
        }
        Ok(out)
    }
}

/// The escrow store of one node, as the traits see it: RocksDB work runs
/// on the blocking pool, and an address's sign-in lock is held in this
/// process (one node writes this store).
#[derive(Clone)]
pub struct EscrowDb {
    db: std::sync::Arc<Escrow>,
    locks: std::sync::Arc<AccountLocks>,
}

impl EscrowDb {
    /// Opens (creating if needed) the store at `dir`, for the gateway.
    pub fn open(dir: &Path, keys: Keyring) -> Result<Self, EscrowError> {
        Ok(Self::over(Escrow::open(dir, keys)?))
    }

    /// Opens the store read-only (works while the gateway has it open).
    pub fn open_read_only(dir: &Path, keys: Keyring) -> Result<Self, EscrowError> {
        Ok(Self::over(Escrow::open_read_only(dir, keys)?))
    }

    /// Both traits over this one store.
    pub fn stores(self) -> PortalStores {
        let both = std::sync::Arc::new(self);
        PortalStores {
            messages: both.clone(),
            sign_in: both,
        }
    }

    /// How many addresses have a lock entry now (held or waited for).
    #[cfg(test)]
    pub fn account_locks(&self) -> usize {
        crate::locks::lock(&self.locks.0).len()
    }

    fn over(escrow: Escrow) -> Self {
        EscrowDb {
            db: std::sync::Arc::new(escrow),
            locks: std::sync::Arc::default(),
        }
    }

    /// Runs `f` on the database off the async workers.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Escrow) -> Result<T, EscrowError> + Send + 'static,
    ) -> Result<T, EscrowError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(backend)?
    }
}

#[async_trait]
impl EscrowStore for EscrowDb {
    async fn deposit(&self, new: NewDeposit<'_>) -> Result<Deposit, EscrowError> {
        let (queue_id, sender, recipient) = (
            new.queue_id.to_string(),
            new.sender.to_string(),
            new.recipient.to_string(),
        );
        let (message, expires_at) = (new.message.to_vec(), new.expires_at);
        self.run(move |db| db.deposit(&queue_id, &sender, &recipient, &message, expires_at))
            .await
    }

    async fn entry(&self, id: &str) -> Result<Option<EscrowEntry>, EscrowError> {
        let id = id.to_string();
        self.run(move |db| db.entry(&id)).await
    }

    async fn by_token(&self, token: &str) -> Result<Option<EscrowEntry>, EscrowError> {
        let token = token.to_string();
        self.run(move |db| db.by_token(&token)).await
    }

    async fn by_revoke_token(&self, token: &str) -> Result<Option<EscrowEntry>, EscrowError> {
        let token = token.to_string();
        self.run(move |db| db.by_revoke_token(&token)).await
    }

    async fn entries_for(&self, recipient: &str) -> Result<Vec<EscrowEntry>, EscrowError> {
        let recipient = recipient.to_string();
        self.run(move |db| db.entries_for(&recipient)).await
    }

    async fn list(&self) -> Result<Vec<EscrowEntry>, EscrowError> {
        self.run(|db| db.list()).await
    }

    async fn read(&self, id: &str) -> Result<Vec<u8>, EscrowError> {
        let id = id.to_string();
        self.run(move |db| db.read(&id)).await
    }

    async fn peek(&self, id: &str) -> Result<Vec<u8>, EscrowError> {
        let id = id.to_string();
        self.run(move |db| db.peek(&id)).await
    }

    async fn mark_replied(&self, id: &str) -> Result<(), EscrowError> {
        let id = id.to_string();
        self.run(move |db| db.mark_replied(&id)).await
    }

    async fn revoke(&self, id: &str) -> Result<Option<EscrowEntry>, EscrowError> {
        let id = id.to_string();
        self.run(move |db| db.revoke(&id)).await
    }

    async fn sweep(&self, now: DateTime<Utc>) -> Result<Vec<EscrowEntry>, EscrowError> {
        self.run(move |db| db.sweep(now)).await
    }
}

#[async_trait]
impl SignInRecords for EscrowDb {
    async fn get(&self, kind: SignInRecord, key: &str) -> Result<Option<Vec<u8>>, EscrowError> {
        let key = key.to_string();
        self.run(move |db| db.get_record(kind, &key)).await
    }

    async fn put(&self, kind: SignInRecord, key: &str, value: Vec<u8>) -> Result<(), EscrowError> {
        let key = key.to_string();
        self.run(move |db| db.put_record(kind, &key, &value)).await
    }

    async fn delete(&self, kind: SignInRecord, key: &str) -> Result<(), EscrowError> {
        let key = key.to_string();
        self.run(move |db| db.delete_record(kind, &key)).await
    }

    async fn keys(&self, kind: SignInRecord) -> Result<Vec<String>, EscrowError> {
        self.run(move |db| db.record_keys(kind)).await
    }

    async fn lock(&self, address: &str) -> Result<AccountGuard, EscrowError> {
        Ok(Box::new(self.locks.hold(address).await))
    }
}

/// One lock per address whose account is being read and written; an
/// address's entry goes when no one holds or waits for it.
#[derive(Debug, Default)]
struct AccountLocks(std::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>);

/// `address`'s lock, held; gives its map entry back when dropped last.
struct HeldAccount {
    locks: std::sync::Arc<AccountLocks>,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl AccountLocks {
    async fn hold(self: &std::sync::Arc<Self>, address: &str) -> HeldAccount {
        let key = address.to_ascii_lowercase();
        let lock = crate::locks::lock(&self.0)
            .entry(key.clone())
            .or_default()
            .clone();
        HeldAccount {
            locks: self.clone(),
            key,
            guard: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for HeldAccount {
    fn drop(&mut self) {
        let guard = self.guard.take();
        let mut map = crate::locks::lock(&self.locks.0);
        drop(guard);
        // The map's is the only handle left: no one holds or waits for it.
        if map
            .get(&self.key)
            .is_some_and(|l| std::sync::Arc::strong_count(l) == 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_escrow_database_keeps_the_store_promises() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("escrow.keys");
        Keyring::load_or_create(&key_file).unwrap();
        let path = dir.path().join("escrow");
        let open = || {
            let keys = Keyring::load(&key_file).unwrap();
            EscrowDb::open(&path, keys).unwrap().stores()
        };
        crate::store::conformance::escrow_store(&open).await;
        crate::store::conformance::sign_in_records(&open).await;
    }

    fn open(dir: &Path) -> Escrow {
        let keys = Keyring::load_or_create(&dir.join("escrow.keys")).unwrap();
        Escrow::open(&dir.join("escrow"), keys).unwrap()
    }

    #[test]
    fn a_recipients_entries_are_found_through_the_index_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = open(dir.path());
        let later = Utc::now() + chrono::Duration::days(1);
        let a = e
            .deposit("q1", "s@h.test", "pat@x.test", b"a", later)
            .unwrap();
        e.deposit("q2", "s@h.test", "other@x.test", b"b", later)
            .unwrap();
        let b = e
            .deposit("q3", "s@h.test", "Pat@X.test", b"c", later)
            .unwrap();
        let mut mine: Vec<String> = e
            .entries_for("PAT@x.test")
            .unwrap()
            .into_iter()
            .map(|x| x.id)
            .collect();
        mine.sort();
        let mut want = vec![a.entry.id.clone(), b.entry.id.clone()];
        want.sort();
        assert_eq!(mine, want);
        // A store made before the index gets one when opened.
        e.db.drop_cf(CF_RECIPIENTS).unwrap();
        drop(e);
        let e = open(dir.path());
        assert_eq!(e.entries_for("pat@x.test").unwrap().len(), 2);
    }

    #[test]
    fn a_deposit_opens_by_its_token_only_and_is_erased_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path());
        let msg = b"Subject: results\r\n\r\npotassium 4.1\r\n";
        let later = Utc::now() + chrono::Duration::days(30);
        let Deposit {
            entry,
            token,
            revoke_token,
        } = e
            .deposit("q1", "nurse@h.test", "pat@x.test", msg, later)
            .unwrap();
        assert_eq!(token.len(), 64, "256 bits");
        assert_eq!(entry.state, EscrowState::Unread);
        // Nothing readable at rest: neither the content nor the token.
        drop(e);
        for f in std::fs::read_dir(dir.path().join("escrow")).unwrap() {
            let b = std::fs::read(f.unwrap().path()).unwrap_or_default();
            assert!(
                !b.windows(9).any(|w| w == b"potassium"),
                "content in the clear"
            );
            assert!(
                !b.windows(token.len()).any(|w| w == token.as_bytes()),
                "token in the clear"
            );
        }
        let e = open(dir.path());
        assert!(e.by_token("0".repeat(64).as_str()).unwrap().is_none());
        let found = e.by_token(&token).unwrap().unwrap();
        assert_eq!(found.id, entry.id);
        assert!(e.by_token(&revoke_token).unwrap().is_none(), "links differ");
        assert_eq!(
            e.by_revoke_token(&revoke_token).unwrap().unwrap().id,
            entry.id
        );
        assert!(e.by_revoke_token(&token).unwrap().is_none());
        assert_eq!(e.read(&entry.id).unwrap(), msg);
        let read = e.entry(&entry.id).unwrap().unwrap();
        assert_eq!(read.state, EscrowState::Read);
        assert!(read.read_at.is_some());
        // Revoked: erased, and says so.
        let gone = e.revoke(&entry.id).unwrap().unwrap();
        assert_eq!(gone.state, EscrowState::Revoked);
        assert!(matches!(
            e.read(&entry.id),
            Err(EscrowError::Gone(_, EscrowState::Revoked))
        ));
        assert_eq!(
            e.by_token(&token).unwrap().unwrap().state,
            EscrowState::Revoked
        );
    }

    /// Every file under `dir`, read whole.
    fn raw_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for f in std::fs::read_dir(dir).unwrap() {
            let p = f.unwrap().path();
            if p.is_dir() {
                out.extend(raw_files(&p));
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
        out
    }

    fn holds(files: &[(PathBuf, Vec<u8>)], needle: &[u8]) -> Option<PathBuf> {
        files
            .iter()
            .find(|(_, b)| b.windows(needle.len()).any(|w| w == needle))
            .map(|(p, _)| p.clone())
    }

    #[test]
    fn a_withdrawn_message_leaves_nothing_in_the_files_that_opens() {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path());
        let later = Utc::now() + chrono::Duration::days(30);
        let gone = e
            .deposit("q1", "n@h.test", "pat@x.test", &[b'x'; 4000], later)
            .unwrap()
            .entry;
        let kept = e
            .deposit("q2", "n@h.test", "pat@x.test", b"kept", later)
            .unwrap()
            .entry;
        let sealed =
            e.db.get_cf(e.cf(CF_CONTENT), gone.id.as_bytes())
                .unwrap()
                .unwrap();
        let window = &sealed[100..164];
        let shred_keys = e.shred.read().unwrap().raw_keys();
        assert_eq!(shred_keys.len(), 1);
        let files = raw_files(dir.path());
        // Before: the sealed content sits in RocksDB's log, the shredding
        // key in its file, so the checks below could fail.
        assert!(holds(&files, window).is_some(), "content in the log");
        assert!(holds(&files, hex::encode(shred_keys[0]).as_bytes()).is_some());

        e.revoke(&gone.id).unwrap().unwrap();
        let files = raw_files(dir.path());
        assert_eq!(holds(&files, window), None, "sealed content still on disk");
        for k in &shred_keys {
            assert_eq!(holds(&files, k), None, "old shredding key on disk");
            assert_eq!(holds(&files, hex::encode(k).as_bytes()), None);
        }
        assert_eq!(e.read(&kept.id).unwrap(), b"kept", "the others re-wrapped");
        drop(e);
        let e = open(dir.path());
        assert_eq!(e.read(&kept.id).unwrap(), b"kept", "and so after a restart");
        assert!(matches!(
            e.read(&gone.id),
            Err(EscrowError::Gone(_, EscrowState::Revoked))
        ));
    }

    #[test]
    fn a_rotation_cut_short_is_finished_and_old_wraps_move_over() {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path());
        let later = Utc::now() + chrono::Duration::days(30);
        let a = e
            .deposit("q1", "n@h.test", "p@x.test", b"a", later)
            .unwrap()
            .entry;
        // A key wrapped by the key file, as stores before shredding keys did.
        let mut legacy = e.stored(&a.id).unwrap().unwrap();
        let key = e.message_key(&e.shred.read().unwrap(), &legacy).unwrap();
        legacy.wrapped_key = e.keys.seal(key_label(&a.id).as_bytes(), &key);
        legacy.wrap_key = 0;
        let mut batch = WriteBatch::default();
        e.put_entry(&mut batch, &legacy);
        e.write(batch).unwrap();
        // And a crash after the first step of a rotation.
        e.shred.write().unwrap().begin_rotation().unwrap();
        drop(e);
        let e = open(dir.path());
        assert!(!e.shred.read().unwrap().mid_rotation());
        assert_ne!(e.stored(&a.id).unwrap().unwrap().wrap_key, 0);
        assert_eq!(e.read(&a.id).unwrap(), b"a");
    }

    #[test]
    fn the_sweeper_erases_only_what_expired() {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path());
        let now = Utc::now();
        let old = e
            .deposit(
                "q1",
                "a@h.test",
                "b@x.test",
                b"old",
                now - chrono::Duration::seconds(1),
            )
            .unwrap()
            .entry;
        let new = e
            .deposit(
                "q2",
                "a@h.test",
                "c@x.test",
                b"new",
                now + chrono::Duration::days(1),
            )
            .unwrap()
            .entry;
        let erased = e.sweep(now).unwrap();
        assert_eq!(
            erased.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
            vec![old.id.clone()]
        );
        assert!(matches!(
            e.read(&old.id),
            Err(EscrowError::Gone(_, EscrowState::Expired))
        ));
        assert_eq!(e.read(&new.id).unwrap(), b"new");
        assert!(e.sweep(now).unwrap().is_empty(), "erased once");
        assert_eq!(e.list().unwrap().len(), 2, "tombstones stay");
    }
}
