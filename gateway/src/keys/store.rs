//! The keystore: pinning and merging over the stored key records
//! (`store::keys`). Reads are served from the records as last loaded, so
//! policy and the seal stage look keys up without waiting on the store;
//! [`Keystore::refresh`] reloads them when the store has changed (another
//! process imported a key), and every change made here reloads them.

use super::pgp_key::RecipientKey;
use super::smime_cert::RecipientCert;
use super::KeyStoreError;
use crate::model::key::{KeyEntry, KeyKind, KeySource, KeyState};
use crate::store::keys::{KeyRecords, Stamp};
use chrono::{DateTime, Utc};
use std::sync::{Arc, RwLock};

/// The keystore. Cheap to clone; clones share the loaded records.
#[derive(Clone)]
pub struct Keystore {
    records: Arc<dyn KeyRecords>,
    loaded: Arc<RwLock<Loaded>>,
    /// Held while an import reads the entries and writes one: policy
    /// decides (and harvests) messages concurrently, and pinning must see
    /// the key another task has just stored.
    storing: Arc<tokio::sync::Mutex<()>>,
    /// Addresses admin imports bind their key to ([`Keystore::binding`]);
    /// empty in the gateway.
    bind: Arc<[String]>,
}

impl std::fmt::Debug for Keystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keystore")
            .field("bind", &self.bind)
            .finish_non_exhaustive()
    }
}

/// The records as last loaded (sorted by first address then age), and the
/// store's stamp then; `None` before the first load.
type Loaded = Option<(Option<Stamp>, Arc<Vec<KeyEntry>>)>;

/// What an import did, per key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    /// The stored entry.
    pub entry: KeyEntry,
    /// `added`, `updated` (same key, fresher copy) or `pending` (waits for approval).
    pub outcome: &'static str,
}

impl Keystore {
    /// The keystore over `records`; nothing is loaded until [`Keystore::refresh`].
    pub fn new(records: Arc<dyn KeyRecords>) -> Self {
        Keystore {
            records,
            loaded: Default::default(),
            storing: Default::default(),
            bind: Arc::new([]),
        }
    }

    /// This keystore, with admin imports ([`Keystore::import`] of
    /// [`KeySource::Imported`]) binding their one OpenPGP key to `addresses`
    /// (`keys import FILE --address A`): the key is filed under them, pinned
    /// like any admin import, and seals for them though no user ID names them
    /// (RFC 9580's v6 samples have no user ID, some keys a name-only one).
    /// No addresses: imports as usual.
    pub fn binding(&self, addresses: &[String]) -> Result<Keystore, KeyStoreError> {
        let mut bind: Vec<String> = Vec::with_capacity(addresses.len());
        for given in addresses {
            let a = given.trim().trim_start_matches('<').trim_end_matches('>');
            let m = crate::model::address::Mailbox::parse(a).map_err(|reason| {
                KeyStoreError::BadAddress {
                    address: given.clone(),
                    reason,
                }
            })?;
            let filed = super::filed_as(&m);
            if !bind.contains(&filed) {
                bind.push(filed);
            }
        }
        Ok(Keystore {
            bind: bind.into(),
            ..self.clone()
        })
    }

    /// Loads the records when the store changed since they were last
    /// loaded (or never were): the stages call it before they look keys up.
    pub async fn refresh(&self) -> Result<(), KeyStoreError> {
        let stamp = self.records.stamp().await?;
        let fresh = matches!(
            &*crate::locks::read(&self.loaded),
            Some((at, _)) if *at == stamp
        );
        if !fresh {
            self.reload(stamp).await?;
        }
        Ok(())
    }

    /// Loads every record; `stamp` is the store's, read before.
    async fn reload(&self, stamp: Option<Stamp>) -> Result<(), KeyStoreError> {
        let mut entries = self.records.all().await?;
        entries.sort_by(|a, b| {
            (a.addresses.first(), a.added_at).cmp(&(b.addresses.first(), b.added_at))
        });
        *crate::locks::write(&self.loaded) = Some((stamp, Arc::new(entries)));
        Ok(())
    }

    /// Loads the records after a change made here, whatever the stamp says.
    async fn reload_now(&self) -> Result<(), KeyStoreError> {
        let stamp = self.records.stamp().await?;
        self.reload(stamp).await
    }

    /// Every entry as last loaded, sorted by first address then age.
    pub fn list(&self) -> Result<Arc<Vec<KeyEntry>>, KeyStoreError> {
        Ok(crate::locks::read(&self.loaded)
            .as_ref()
            .map(|(_, entries)| entries.clone())
            .unwrap_or_default())
    }

    /// The one entry whose id is `id` or starts with it (at least 8 characters).
    pub fn get(&self, id: &str) -> Result<KeyEntry, KeyStoreError> {
        let want = id.trim().replace(' ', "").to_ascii_lowercase();
        let all = self.list()?;
        let hits: Vec<&KeyEntry> = all
            .iter()
            .filter(|e| {
                let have = e.id.to_ascii_lowercase();
                have == want || (want.len() >= 8 && have.starts_with(&want))
            })
            .collect();
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(KeyStoreError::NotFound(id.into())),
            _ => Err(KeyStoreError::Ambiguous(id.into())),
        }
    }

    /// Entries filed under `address` (any state), newest first.
    pub fn for_address(&self, address: &str) -> Result<Vec<KeyEntry>, KeyStoreError> {
        let mut v: Vec<KeyEntry> = self
            .list()?
            .iter()
            .filter(|e| e.covers(address))
            .cloned()
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.added_at));
        Ok(v)
    }

    /// Imports every OpenPGP certificate or X.509 certificate in `bytes`.
    pub async fn import(
        &self,
        bytes: &[u8],
        source: KeySource,
    ) -> Result<Vec<ImportReport>, KeyStoreError> {
        let now = Utc::now();
        // Only an admin binds addresses; keys from mail or WKD never are.
        let bind = if source == KeySource::Imported {
            &self.bind[..]
        } else {
            &[]
        };
        let mut reports = Vec::new();
        for entry in entries_from(bytes, source, now, bind)? {
            reports.push(self.store(entry, None).await?);
        }
        Ok(reports)
    }

    /// Imports the keys or certificates in `bytes` that name `address`
    /// (lower-case, ASCII domain), each filed under `address` alone whatever
    /// other addresses it names; the others are skipped. How keys taken from
    /// mail are stored: a sender brings keys for its own address only.
    ///
    /// A key already stored is updated (see [`Keystore::import`]); `address`
    /// joins its addresses only if no other active key of its kind is filed
    /// under it, so pinning cannot be bypassed that way (the key then stays
    /// unused for `address`, and no pending entry records it).
    pub async fn import_for(
        &self,
        bytes: &[u8],
        source: KeySource,
        address: &str,
    ) -> Result<Vec<ImportReport>, KeyStoreError> {
        let address = address.to_ascii_lowercase();
        let now = Utc::now();
        let mut reports = Vec::new();
        for mut entry in entries_from(bytes, source, now, &[])? {
            if !entry.covers(&address) {
                continue;
            }
            entry.addresses = vec![address.clone()];
            reports.push(self.store(entry, Some(&address)).await?);
        }
        Ok(reports)
    }

    /// Stores one entry, applying pinning; `only`: filed under that one
    /// address ([`Keystore::import_for`]).
    async fn store(
        &self,
        mut entry: KeyEntry,
        only: Option<&str>,
    ) -> Result<ImportReport, KeyStoreError> {
        let _storing = self.storing.lock().await;
        // Pinning decides on what is stored now, not on what was loaded.
        self.refresh().await?;
        let existing = self.list()?;
        let outcome = if let Some(old) = existing.iter().find(|e| e.id == entry.id) {
            // The same key again (new expiry, new subkeys): keep its standing.
            entry.state = old.state;
            entry.added_at = old.added_at;
            if entry.source != KeySource::Imported {
                // A copy from mail or WKD adds to the stored key, never takes
                // from it: an old copy must not undo a revocation.
                entry.data = merged(old, &entry.data);
            }
            // Nor does it lower the key's trust (a harvested copy of a WKD key).
            entry.source = more_trusted(old.source, entry.source);
            // An admin's bindings stay until the key is removed.
            let mut bound = old.bound.clone();
            for a in std::mem::take(&mut entry.bound) {
                if !bound.contains(&a) {
                    bound.push(a);
                }
            }
            entry.bound = bound;
            if let Some(address) = only {
                let taken = existing.iter().any(|e| {
                    e.id != old.id
                        && e.kind == old.kind
                        && e.state == KeyState::Active
                        && e.covers(address)
                });
                let mut addresses = old.addresses.clone();
                if !taken && !old.covers(address) {
                    addresses.push(address.to_string());
                }
                entry.addresses = addresses;
            }
            "updated"
        } else if entry.source != KeySource::Imported
            && existing.iter().any(|e| {
                e.kind == entry.kind
                    && e.state == KeyState::Active
                    && entry.addresses.iter().any(|a| e.covers(a))
            })
        {
            entry.state = KeyState::Pending;
            "pending"
        } else {
            "added"
        };
        // A bound address is always one the key is filed under: after those
        // its user IDs name, in the order bound.
        entry.addresses.retain(|a| !entry.bound.contains(a));
        entry.addresses.extend(entry.bound.iter().cloned());
        self.write(&entry).await?;
        Ok(ImportReport { entry, outcome })
    }

    /// Removes the entry `id` (or unique prefix); returns it.
    pub async fn remove(&self, id: &str) -> Result<KeyEntry, KeyStoreError> {
        self.refresh().await?;
        let entry = self.get(id)?;
        self.records.delete(entry.kind, &entry.id).await?;
        self.reload_now().await?;
        Ok(entry)
    }

    /// Makes a pending entry active.
    pub async fn approve(&self, id: &str) -> Result<KeyEntry, KeyStoreError> {
        self.refresh().await?;
        let mut entry = self.get(id)?;
        entry.state = KeyState::Active;
        self.write(&entry).await?;
        Ok(entry)
    }

    /// Stores `entry` and reloads: the stamp may not move between two
    /// writes close together (coarse clocks), so a writer never trusts it
    /// for its own change.
    async fn write(&self, entry: &KeyEntry) -> Result<(), KeyStoreError> {
        let written = self.records.put(entry).await;
        self.reload_now().await?;
        Ok(written?)
    }
}

/// The more trusted of two sources: imported, then WKD, then harvested.
fn more_trusted(a: KeySource, b: KeySource) -> KeySource {
    let rank = |s: KeySource| match s {
        KeySource::Imported => 2,
        KeySource::Wkd => 1,
        KeySource::Harvested => 0,
    };
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

/// The stored key `old` with what the armoured copy `new` of the same key
/// adds (new subkeys, signatures, revocations); the stored data if they do
/// not merge. Certificates with the same id are the same bytes.
fn merged(old: &KeyEntry, new: &str) -> String {
    use sequoia_openpgp::parse::Parse;
    use sequoia_openpgp::serialize::SerializeInto;
    use sequoia_openpgp::Cert;
    if old.kind != KeyKind::Pgp {
        return old.data.clone();
    }
    let merge = || -> Option<String> {
        let stored = Cert::from_bytes(old.data.as_bytes()).ok()?;
        let copy = Cert::from_bytes(new.as_bytes()).ok()?;
        let both = stored.merge_public(copy).ok()?;
        let armored = both.armored().to_vec().ok()?;
        String::from_utf8(armored).ok()
    };
    // Both parsed before (under catch_unwind); this is for a parser bug.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(merge))
        .ok()
        .flatten()
        .unwrap_or_else(|| old.data.clone())
}

/// Reads the keys or certificates in `bytes` into entries; `bind`: the
/// addresses an admin binds the one OpenPGP key to ([`Keystore::binding`]).
fn entries_from(
    bytes: &[u8],
    source: KeySource,
    now: DateTime<Utc>,
    bind: &[String],
) -> Result<Vec<KeyEntry>, KeyStoreError> {
    let looks_x509 = bytes
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----");
    if !looks_x509 {
        if let Ok(keys) = RecipientKey::parse_all(bytes) {
            // Which of several keys should seal for the address is the
            // admin's choice, not ours.
            if !bind.is_empty() && keys.len() != 1 {
                return Err(KeyStoreError::BindMany(keys.len()));
            }
            return keys
                .into_iter()
                .map(|k| pgp_entry(&k, source, now, bind))
                .collect();
        }
    }
    let certs = RecipientCert::parse_all(bytes).map_err(|e| {
        KeyStoreError::Unreadable(format!(
            "neither OpenPGP keys nor X.509 certificates (PEM or DER): {e}"
        ))
    })?;
    if !bind.is_empty() {
        return Err(KeyStoreError::BindNotPgp);
    }
    certs.iter().map(|c| cert_entry(c, source, now)).collect()
}

fn pgp_entry(
    k: &RecipientKey,
    source: KeySource,
    now: DateTime<Utc>,
    bind: &[String],
) -> Result<KeyEntry, KeyStoreError> {
    let id = k.fingerprint();
    let mut addresses = k.email_addresses();
    for a in bind {
        if !addresses.contains(a) {
            addresses.push(a.clone());
        }
    }
    if addresses.is_empty() {
        return Err(if source == KeySource::Imported {
            KeyStoreError::Unbound(id)
        } else {
            KeyStoreError::NoAddress(format!("OpenPGP key {id}"))
        });
    }
    Ok(KeyEntry {
        data: k
            .armored()
            .map_err(|e| KeyStoreError::Unreadable(e.to_string()))?,
        id,
        kind: KeyKind::Pgp,
        addresses,
        bound: bind.to_vec(),
        source,
        state: KeyState::Active,
        added_at: now,
        serial: None,
        issuer: None,
        not_after: None,
    })
}

fn cert_entry(
    c: &RecipientCert,
    source: KeySource,
    now: DateTime<Utc>,
) -> Result<KeyEntry, KeyStoreError> {
    let addresses: Vec<String> = c
        .email_addresses()
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    if addresses.is_empty() {
        return Err(KeyStoreError::NoAddress(format!(
            "certificate {}",
            c.subject()
        )));
    }
    Ok(KeyEntry {
        id: c.sha256_hex(),
        kind: KeyKind::Smime,
        addresses,
        bound: Vec::new(),
        source,
        state: KeyState::Active,
        added_at: now,
        serial: Some(c.serial_hex()),
        issuer: Some(c.issuer()),
        not_after: Some(DateTime::<Utc>::from(c.not_after())),
        data: c.to_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;
    use std::time::SystemTime;

    /// A keystore over key files in `dir`.
    fn store_at(dir: &std::path::Path) -> Keystore {
        Keystore::new(Arc::new(crate::store::rocksdb::key_files::KeyFiles::new(
            dir,
        )))
    }
    use crate::keys::KeyStoreError;
    use openpgp::cert::CertBuilder;
    use openpgp::serialize::SerializeInto;
    use sequoia_openpgp as openpgp;

    fn pgp_key(uid: &str) -> Vec<u8> {
        let (cert, _) = CertBuilder::general_purpose(Some(uid)).generate().unwrap();
        let armored = cert.armored().to_vec().unwrap();
        armored
    }

    fn smime_cert(email: &str) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("test {email}"));
        p.subject_alt_names = vec![rcgen::SanType::Rfc822Name(email.try_into().unwrap())];
        p.key_usages = vec![rcgen::KeyUsagePurpose::KeyAgreement];
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::EmailProtection];
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        p.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().pem().into_bytes()
    }

    fn trust() -> super::super::lookup::Trust<'static> {
        super::super::lookup::Trust {
            roots: &[],
            allow_harvested: false,
        }
    }

    #[tokio::test]
    async fn import_list_find_update_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let ks = store_at(&dir.path().join("ks"));
        assert!(
            ks.list().unwrap().is_empty(),
            "a missing directory is an empty store"
        );
        let key = pgp_key("Alice <Alice@Example.TEST>");
        let r = ks.import(&key, KeySource::Imported).await.unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].outcome, "added");
        assert_eq!(r[0].entry.addresses, ["alice@example.test"]);
        let id = r[0].entry.id.clone();
        // Found under any case of the address, and usable.
        let now = SystemTime::now();
        let f = ks
            .usable("ALICE@example.test", KeyKind::Pgp, now, trust())
            .unwrap();
        assert_eq!(f.entry.id, id);
        // No S/MIME certificate: the reason says so.
        let e = ks
            .usable("alice@example.test", KeyKind::Smime, now, trust())
            .unwrap_err();
        assert!(e.contains("no S/MIME certificate is known"), "{e}");
        // The same key again is an update, not a second entry.
        assert_eq!(
            ks.import(&key, KeySource::Imported).await.unwrap()[0].outcome,
            "updated"
        );
        assert_eq!(ks.list().unwrap().len(), 1);
        // A short prefix is refused, a long one works.
        assert!(matches!(ks.get(&id[..4]), Err(KeyStoreError::NotFound(_))));
        assert_eq!(ks.get(&id[..10].to_lowercase()).unwrap().id, id);
        ks.remove(&id).await.unwrap();
        assert!(ks.list().unwrap().is_empty());
        assert!(matches!(
            ks.remove(&id).await,
            Err(KeyStoreError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_changed_key_from_mail_waits_for_approval() {
        let dir = tempfile::tempdir().unwrap();
        let ks = store_at(dir.path());
        let first = ks
            .import(&pgp_key("<bob@example.test>"), KeySource::Imported)
            .await
            .unwrap()[0]
            .entry
            .id
            .clone();
        let second = ks
            .import(&pgp_key("<bob@example.test>"), KeySource::Wkd)
            .await
            .unwrap();
        assert_eq!(second[0].outcome, "pending");
        let second = second[0].entry.id.clone();
        let now = SystemTime::now();
        // The pinned key is still the one used.
        let f = ks
            .usable("bob@example.test", KeyKind::Pgp, now, trust())
            .unwrap();
        assert_eq!(f.entry.id, first);
        ks.remove(&first).await.unwrap();
        let e = ks
            .usable("bob@example.test", KeyKind::Pgp, now, trust())
            .unwrap_err();
        assert!(e.contains("waits for approval"), "{e}");
        ks.approve(&second).await.unwrap();
        let f = ks
            .usable("bob@example.test", KeyKind::Pgp, now, trust())
            .unwrap();
        assert_eq!(f.entry.id, second);
        // Harvested keys are not used unless allowed.
        let h = ks
            .import(&pgp_key("<carol@example.test>"), KeySource::Harvested)
            .await
            .unwrap();
        assert_eq!(h[0].outcome, "added");
        let e = ks
            .usable("carol@example.test", KeyKind::Pgp, now, trust())
            .unwrap_err();
        assert!(e.contains("harvested"), "{e}");
    }

    #[tokio::test]
    async fn certificates_are_filed_by_address_with_serial_and_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let ks = store_at(dir.path());
        let mut bundle = smime_cert("dana@example.test");
        bundle.extend(smime_cert("erin@example.test"));
        let r = ks.import(&bundle, KeySource::Imported).await.unwrap();
        assert_eq!(r.len(), 2, "both certificates of a PEM bundle");
        let e = &r[0].entry;
        assert_eq!(e.kind, KeyKind::Smime);
        assert!(e.serial.is_some() && e.issuer.as_deref().unwrap().contains("test dana"));
        assert!(
            e.label().starts_with("certificate serial "),
            "{}",
            e.label()
        );
        let f = ks
            .usable(
                "erin@example.test",
                KeyKind::Smime,
                SystemTime::now(),
                trust(),
            )
            .unwrap();
        assert!(matches!(f.key, super::super::Parsed::Smime(_)));
        // Expired by the time given: the reason names the certificate problem.
        let later = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(4_200_000_000);
        let why = ks
            .usable("erin@example.test", KeyKind::Smime, later, trust())
            .unwrap_err();
        assert!(why.contains("expired"), "{why}");
    }

    #[tokio::test]
    async fn keys_from_mail_are_filed_under_one_address_and_never_weaken_a_stored_one() {
        let dir = tempfile::tempdir().unwrap();
        let ks = store_at(dir.path());
        let now = SystemTime::now();
        let allow = super::super::lookup::Trust {
            roots: &[],
            allow_harvested: true,
        };
        // A key naming two addresses, seen in mail from one: filed under that one.
        let (two, _) = CertBuilder::general_purpose(Some("<fay@example.test>"))
            .add_userid("<gus@example.test>")
            .generate()
            .unwrap();
        let two = two.armored().to_vec().unwrap();
        let r = ks
            .import_for(&two, KeySource::Harvested, "FAY@example.test")
            .await
            .unwrap();
        assert_eq!(r[0].outcome, "added");
        assert_eq!(r[0].entry.addresses, ["fay@example.test"]);
        assert!(ks
            .import_for(&two, KeySource::Harvested, "hal@example.test")
            .await
            .unwrap()
            .is_empty());
        // Seen from the other address too, with no key there yet: added to it.
        let r = ks
            .import_for(&two, KeySource::Harvested, "gus@example.test")
            .await
            .unwrap();
        assert_eq!(r[0].outcome, "updated");
        assert_eq!(
            r[0].entry.addresses,
            ["fay@example.test", "gus@example.test"]
        );
        // But not where another active key is pinned: no bypass through an update.
        let ivy = ks
            .import(&pgp_key("<ivy@example.test>"), KeySource::Imported)
            .await
            .unwrap()[0]
            .entry
            .id
            .clone();
        let (jo, _) = CertBuilder::general_purpose(Some("<jo@example.test>"))
            .add_userid("<ivy@example.test>")
            .generate()
            .unwrap();
        let jo = jo.armored().to_vec().unwrap();
        ks.import_for(&jo, KeySource::Harvested, "jo@example.test")
            .await
            .unwrap();
        let r = ks
            .import_for(&jo, KeySource::Harvested, "ivy@example.test")
            .await
            .unwrap();
        assert_eq!(r[0].entry.addresses, ["jo@example.test"]);
        let f = ks
            .usable("ivy@example.test", KeyKind::Pgp, now, allow)
            .unwrap();
        assert_eq!(f.entry.id, ivy);

        // A stale copy from mail does not undo a revocation, nor lower trust.
        let (kim, revocation) = CertBuilder::general_purpose(Some("<kim@example.test>"))
            .generate()
            .unwrap();
        let stale = kim.armored().to_vec().unwrap();
        let revoked = kim.insert_packets(revocation).unwrap().0;
        ks.import(&revoked.armored().to_vec().unwrap(), KeySource::Imported)
            .await
            .unwrap();
        let r = ks
            .import_for(&stale, KeySource::Harvested, "kim@example.test")
            .await
            .unwrap();
        assert_eq!(r[0].outcome, "updated");
        assert_eq!(r[0].entry.source, KeySource::Imported);
        let e = ks
            .usable("kim@example.test", KeyKind::Pgp, now, allow)
            .unwrap_err();
        assert!(e.contains("revoked"), "{e}");
        let lee = pgp_key("<lee@example.test>");
        ks.import(&lee, KeySource::Wkd).await.unwrap();
        let r = ks
            .import_for(&lee, KeySource::Harvested, "lee@example.test")
            .await
            .unwrap();
        assert_eq!(r[0].entry.source, KeySource::Wkd);
    }

    #[tokio::test]
    async fn unreadable_input_and_keys_without_address_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ks = store_at(dir.path());
        let e = ks
            .import(b"not a key at all", KeySource::Imported)
            .await
            .unwrap_err();
        assert!(matches!(e, KeyStoreError::Unreadable(_)), "{e}");
        assert!(
            e.to_string().contains("neither OpenPGP keys nor X.509"),
            "{e}"
        );
        let e = ks
            .import(&pgp_key("Just A Name"), KeySource::Imported)
            .await
            .unwrap_err();
        assert!(matches!(e, KeyStoreError::Unbound(_)), "{e}");
        assert!(e.to_string().contains("--address"), "{e}");
        let e = ks
            .import(&pgp_key("Just A Name"), KeySource::Wkd)
            .await
            .unwrap_err();
        assert!(matches!(e, KeyStoreError::NoAddress(_)), "{e}");
        assert!(ks.list().unwrap().is_empty());
    }

    // RFC 9580 Appendix A.3: the v6 sample certificate (a public test
    // fixture), which has no user ID at all.
    const RFC9580_V6_CERT: &[u8] = include_bytes!("../seal/testdata/rfc9580-a3-v6-cert.asc");

    #[tokio::test]
    async fn an_admin_binds_a_key_without_an_email_user_id_to_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let ks = store_at(dir.path());
        let now = SystemTime::now();
        let e = ks
            .import(RFC9580_V6_CERT, KeySource::Imported)
            .await
            .unwrap_err();
        assert!(matches!(e, KeyStoreError::Unbound(_)), "{e}");

        let bound = ks.binding(&["<V6@Example.TEST>".to_string()]).unwrap();
        let r = bound
            .import(RFC9580_V6_CERT, KeySource::Imported)
            .await
            .unwrap();
        assert_eq!(r[0].outcome, "added");
        let id = r[0].entry.id.clone();
        assert!(id.starts_with("CB186C4F0609A697"), "{id}");
        assert_eq!(r[0].entry.addresses, ["v6@example.test"]);
        assert_eq!(r[0].entry.bound, ["v6@example.test"]);
        assert_eq!(r[0].entry.state, KeyState::Active);
        // The plain store (the gateway's) finds it for the bound address only.
        let f = ks
            .usable("v6@example.test", KeyKind::Pgp, now, trust())
            .unwrap();
        assert_eq!(f.entry.id, id);
        assert!(matches!(f.key, super::super::Parsed::Pgp(_)));
        assert!(ks
            .usable("other@example.test", KeyKind::Pgp, now, trust())
            .is_err());

        // Pinned like any admin import: a different key from WKD waits.
        let r = ks
            .import(&pgp_key("<v6@example.test>"), KeySource::Wkd)
            .await
            .unwrap();
        assert_eq!(r[0].outcome, "pending");
        let f = ks
            .usable("v6@example.test", KeyKind::Pgp, now, trust())
            .unwrap();
        assert_eq!(f.entry.id, id);

        // Mail and WKD cannot bring it: it names no address of its own.
        let e = ks
            .import_for(RFC9580_V6_CERT, KeySource::Harvested, "v6@example.test")
            .await
            .unwrap_err();
        assert!(matches!(e, KeyStoreError::NoAddress(_)), "{e}");
        // Bound again to another address: an update that keeps the first binding.
        let again = ks.binding(&["w6@example.test".to_string()]).unwrap();
        let r = again
            .import(RFC9580_V6_CERT, KeySource::Imported)
            .await
            .unwrap();
        assert_eq!(r[0].outcome, "updated");
        assert_eq!(r[0].entry.bound, ["v6@example.test", "w6@example.test"]);
        assert_eq!(r[0].entry.addresses, ["v6@example.test", "w6@example.test"]);
        // The binding stands in for a user ID, not for validity.
        let later = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        assert!(ks
            .usable("w6@example.test", KeyKind::Pgp, later, trust())
            .unwrap_err()
            .contains("not valid"));

        // A key with e-mail user IDs is filed under those and the bound one.
        let r = bound
            .import(&pgp_key("Zed <zed@example.test>"), KeySource::Imported)
            .await
            .unwrap();
        assert_eq!(
            r[0].entry.addresses,
            ["zed@example.test", "v6@example.test"]
        );
        assert_eq!(r[0].entry.bound, ["v6@example.test"]);
    }

    #[tokio::test]
    async fn binding_is_refused_for_bad_addresses_certificates_and_several_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ks = store_at(dir.path());
        for bad in ["not an address", "a@", "@b.test", ""] {
            let e = ks.binding(&[bad.to_string()]).unwrap_err();
            assert!(matches!(e, KeyStoreError::BadAddress { .. }), "{bad}: {e}");
        }
        let bound = ks.binding(&["a@example.test".to_string()]).unwrap();
        let e = bound
            .import(&smime_cert("a@example.test"), KeySource::Imported)
            .await
            .unwrap_err();
        assert!(matches!(e, KeyStoreError::BindNotPgp), "{e}");
        let mut two = pgp_key("<b@example.test>");
        two.extend(pgp_key("<c@example.test>"));
        let e = bound.import(&two, KeySource::Imported).await.unwrap_err();
        assert!(matches!(e, KeyStoreError::BindMany(2)), "{e}");
        assert!(ks.list().unwrap().is_empty());
        // No addresses: an ordinary import.
        let plain = ks.binding(&[]).unwrap();
        let r = plain.import(&two, KeySource::Imported).await.unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|r| r.entry.bound.is_empty()));
    }
}
