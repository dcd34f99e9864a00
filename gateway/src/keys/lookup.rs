//! Which stored key can seal for a recipient now, and why not.

use super::pgp_key::RecipientKey;
use super::smime_cert::RecipientCert;
use super::store::Keystore;
use crate::model::key::{KeyEntry, KeyKind, KeySource, KeyState};
use std::time::SystemTime;

/// A stored key, parsed.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// An OpenPGP certificate.
    Pgp(Box<RecipientKey>),
    /// An X.509 certificate.
    Smime(Box<RecipientCert>),
}

/// A key that can seal for a recipient.
#[derive(Debug, Clone)]
pub struct Found {
    /// What is stored about it.
    pub entry: KeyEntry,
    /// The key itself.
    pub key: Parsed,
}

/// What a key must satisfy beyond its own validity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trust<'a> {
    /// S/MIME certificates must chain to one of these (none configured: not checked).
    pub(crate) roots: &'a [RecipientCert],
    /// Whether harvested keys (Autocrypt, inbound S/MIME) may be used.
    pub(crate) allow_harvested: bool,
}

fn kind_name(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Pgp => "OpenPGP key",
        KeyKind::Smime => "S/MIME certificate",
    }
}

impl Keystore {
    /// The newest usable key of `kind` for `address` at `now`, or every
    /// reason the known ones cannot be used.
    pub(crate) fn usable(
        &self,
        address: &str,
        kind: KeyKind,
        now: SystemTime,
        trust: Trust<'_>,
    ) -> Result<Found, String> {
        let entries = self
            .for_address(address)
            .map_err(|e| format!("the keystore cannot be read ({e})"))?;
        let mut why = Vec::new();
        for e in entries.into_iter().filter(|e| e.kind == kind) {
            match check(&e, address, now, trust) {
                Ok(key) => return Ok(Found { entry: e, key }),
                Err(reason) => why.push(reason),
            }
        }
        if why.is_empty() {
            Err(format!("no {} is known for {address}", kind_name(kind)))
        } else {
            Err(why.join("; "))
        }
    }

    /// The entry `id`, checked again for `address` at `now`: the seal stage
    /// uses exactly the key policy chose, or none.
    pub(crate) fn load(
        &self,
        id: &str,
        address: &str,
        now: SystemTime,
        trust: Trust<'_>,
    ) -> Result<Found, String> {
        let entry = self
            .get(id)
            .map_err(|e| format!("the chosen key is gone ({e})"))?;
        let key = check(&entry, address, now, trust)?;
        Ok(Found { entry, key })
    }
}

/// Whether `e` can seal for `address` at `now`, and the parsed key if so.
fn check(e: &KeyEntry, address: &str, now: SystemTime, trust: Trust<'_>) -> Result<Parsed, String> {
    let name = format!("{} {}", kind_name(e.kind), short(&e.id));
    if e.state == KeyState::Pending {
        return Err(format!(
            "{name} waits for approval (sealgate keys approve {})",
            short(&e.id)
        ));
    }
    if e.source == KeySource::Harvested && !trust.allow_harvested {
        return Err(format!(
            "{name} was harvested from mail and [seal] use_harvested is off"
        ));
    }
    match e.kind {
        KeyKind::Pgp => {
            let k = RecipientKey::parse(e.data.as_bytes()).map_err(|x| format!("{name}: {x}"))?;
            // An admin's binding stands in for a user ID naming the address.
            let usable = if e.binds(address) {
                k.usable_at(now)
            } else {
                k.usable_for(address, now)
            };
            usable.map_err(|x| format!("{name}: {x}"))?;
            Ok(Parsed::Pgp(Box::new(k)))
        }
        KeyKind::Smime => {
            let c = RecipientCert::parse(e.data.as_bytes()).map_err(|x| format!("{name}: {x}"))?;
            c.usable_for(address, now, trust.roots)
                .map_err(|x| format!("{name}: {x}"))?;
            Ok(Parsed::Smime(Box::new(c)))
        }
    }
}

/// The first 16 characters of an id: enough to name it, short enough to read.
fn short(id: &str) -> &str {
    &id[..id.len().min(16)]
}

/// The keystore with `[seal]`'s trust settings: what policy and the seal
/// stage ask for keys. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The store.
    pub store: Keystore,
    roots: std::sync::Arc<Vec<RecipientCert>>,
    allow_harvested: bool,
}

impl Keys {
    /// The keystore over `records`, with the S/MIME roots and trust
    /// settings `config` names. Load the records with
    /// [`Keystore::refresh`] before the first look-up.
    pub fn from_config(
        config: &crate::config::Config,
        records: std::sync::Arc<dyn crate::store::keys::KeyRecords>,
    ) -> Result<Self, super::KeyStoreError> {
        let roots = match &config.seal.smime_roots_file {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|source| super::KeyStoreError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                RecipientCert::parse_all(&bytes).map_err(|e| {
                    super::KeyStoreError::Unreadable(format!("{}: {e}", path.display()))
                })?
            }
            None => Vec::new(),
        };
        Ok(Keys {
            store: Keystore::new(records),
            roots: std::sync::Arc::new(roots),
            allow_harvested: config.seal.use_harvested,
        })
    }

    /// [`Keys::from_config`] with the records loaded: ready for look-ups.
    pub async fn open(
        config: &crate::config::Config,
        records: std::sync::Arc<dyn crate::store::keys::KeyRecords>,
    ) -> Result<Self, super::KeyStoreError> {
        let keys = Self::from_config(config, records)?;
        keys.store.refresh().await?;
        Ok(keys)
    }

    /// These keys, with admin imports binding their OpenPGP key to
    /// `addresses` (see [`Keystore::binding`]).
    pub fn binding(&self, addresses: &[String]) -> Result<Self, super::KeyStoreError> {
        Ok(Keys {
            store: self.store.binding(addresses)?,
            ..self.clone()
        })
    }

    fn trust(&self) -> Trust<'_> {
        Trust {
            roots: &self.roots,
            allow_harvested: self.allow_harvested,
        }
    }

    /// The newest key of `kind` usable for `address` now, or why there is none.
    pub fn usable(&self, address: &str, kind: KeyKind) -> Result<Found, String> {
        self.store
            .usable(address, kind, SystemTime::now(), self.trust())
    }

    /// The key `id`, if it is still usable for `address` now.
    pub fn load(&self, id: &str, address: &str) -> Result<Found, String> {
        self.store
            .load(id, address, SystemTime::now(), self.trust())
    }
}
