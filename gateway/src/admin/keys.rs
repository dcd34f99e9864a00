//! `sealgate keys ...`: the keystore from the command line. The keystore is
//! a directory the gateway re-reads when it changes, so these work whether
//! or not the gateway runs.

use crate::keys::{KeyStoreError, Keys, Unusable};
use crate::model::key::{KeyEntry, KeyKind, KeySource};
use std::fmt::Write;

/// One line per entry: id, kind, state, source, addresses.
fn line(e: &KeyEntry) -> String {
    let mut s = format!(
        "{}\t{}\t{}\t{}\t{}",
        e.id,
        e.kind.as_str(),
        match e.state {
            crate::model::key::KeyState::Active => "active",
            crate::model::key::KeyState::Pending => "pending",
        },
        e.source.as_str(),
        e.addresses.join(",")
    );
    if let Some(na) = e.not_after {
        let _ = write!(s, "\tuntil {}", na.format("%Y-%m-%d"));
    }
    s
}

/// A JSON view of an entry without the key material.
fn summary(e: &KeyEntry) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("data");
    }
    v
}

/// `keys import FILE.p12 --password-file F`: installs the organisation's
/// S/MIME signing identity (key and certificate) from PKCS#12.
pub fn import_signing(
    config: &crate::config::Config,
    p12: &[u8],
    password: &str,
    json: bool,
) -> Result<String, KeyStoreError> {
    let signer = crate::seal::smime::SmimeSigner::from_pkcs12(p12, password)
        .map_err(|e| KeyStoreError::Unreadable(e.to_string()))?;
    let (cert, key) = signer
        .to_pem()
        .map_err(|e| KeyStoreError::Unreadable(e.to_string()))?;
    let dir = crate::keys::signing::install_smime(&config.keystore_dir(), &cert, &key)?;
    let overridden = config.seal.smime_signing_cert.is_some();
    if json {
        return Ok(serde_json::json!({
            "installed": "smime-signing",
            "signer": signer.describe(),
            "dir": dir.display().to_string(),
            "overridden_by_config": overridden,
        })
        .to_string()
            + "\n");
    }
    let mut out = format!(
        "installed\tsmime-signing\t{}\t{}\n",
        signer.describe(),
        dir.display()
    );
    out.push_str(if overridden {
        "note: [seal] smime_signing_cert is set and wins over the installed identity\n"
    } else {
        "outbound S/MIME is signed with it from the gateway's next start\n"
    });
    Ok(out)
}

/// `keys import FILE`: stores every key or certificate in `bytes`.
pub async fn import(keys: &Keys, bytes: &[u8], json: bool) -> Result<String, KeyStoreError> {
    let reports = keys.store.import(bytes, KeySource::Imported).await?;
    if json {
        let v: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| serde_json::json!({"outcome": r.outcome, "key": summary(&r.entry)}))
            .collect();
        return Ok(format!("{}\n", serde_json::Value::Array(v)));
    }
    let mut out = String::new();
    for r in &reports {
        let _ = writeln!(out, "{}\t{}", r.outcome, line(&r.entry));
    }
    Ok(out)
}

/// `keys ls`: every stored key.
pub fn ls(keys: &Keys, json: bool) -> Result<String, KeyStoreError> {
    let all = keys.store.list()?;
    if json {
        let v: Vec<serde_json::Value> = all.iter().map(summary).collect();
        return Ok(format!("{}\n", serde_json::Value::Array(v)));
    }
    Ok(all.iter().map(|e| line(e) + "\n").collect())
}

/// `keys show ADDRESS`: the keys filed under an address, and which one
/// policy would seal with now (or why none).
pub fn show(keys: &Keys, address: &str, json: bool) -> Result<String, KeyStoreError> {
    let address = address.trim().to_ascii_lowercase();
    let entries = keys.store.for_address(&address)?;
    let verdict = |kind: KeyKind| keys.usable(&address, kind).map(|f| f.entry.label());
    let (pgp, smime) = (verdict(KeyKind::Pgp), verdict(KeyKind::Smime));
    if json {
        let use_of = |r: &Result<String, Unusable>| match r {
            Ok(label) => serde_json::json!({"usable": true, "key": label}),
            Err(why) => serde_json::json!({"usable": false, "reason": why.to_string()}),
        };
        let v = serde_json::json!({
            "address": address,
            "keys": entries.iter().map(|e| {
                let mut s = summary(e);
                s["data"] = serde_json::Value::String(e.data.clone());
                s
            }).collect::<Vec<_>>(),
            "pgp": use_of(&pgp),
            "smime": use_of(&smime),
        });
        return Ok(format!("{v:#}\n"));
    }
    let mut out = format!("{address}\n");
    if entries.is_empty() {
        out.push_str("  no keys stored\n");
    }
    for e in &entries {
        let _ = writeln!(out, "  {}", line(e));
    }
    for (name, r) in [("pgp", &pgp), ("smime", &smime)] {
        let _ = match r {
            Ok(label) => writeln!(out, "  {name}: would seal with {label}"),
            Err(why) => writeln!(out, "  {name}: not usable: {why}"),
        };
    }
    Ok(out)
}

/// `keys rm ID`: removes a key.
pub async fn rm(keys: &Keys, id: &str) -> Result<String, KeyStoreError> {
    let e = keys.store.remove(id).await?;
    Ok(format!("removed\t{}\n", line(&e)))
}

/// `keys approve ID`: lets a pending key be used.
pub async fn approve(keys: &Keys, id: &str) -> Result<String, KeyStoreError> {
    let e = keys.store.approve(id).await?;
    Ok(format!("approved\t{}\n", line(&e)))
}
