//! One test per store trait, checking the promises its doc makes against
//! any implementation. A backend's own tests call these with a function
//! that opens the store afresh (over the same data), so durability at
//! return is checked by reading through a second handle.

use super::cache::Cache;
use super::tls_memory::TlsMemory;
use super::tokens::{ApiTokens, Role, TokenEntry, TokenError};

fn entry(name: &str, role: Role, sha: &str) -> TokenEntry {
    TokenEntry {
        name: name.into(),
        role,
        sha256: sha.into(),
        created_at: chrono::Utc::now(),
    }
}

/// [`ApiTokens`]: unique names, changes seen at once by a fresh handle,
/// removal by name, lookup by hash only.
pub async fn api_tokens(open: &dyn Fn() -> Box<dyn ApiTokens>) {
    let a = open();
    assert!(a.list().await.unwrap().is_empty(), "a new store is empty");
    a.insert(entry("alice", Role::Archivist, "aa"))
        .await
        .unwrap();
    a.insert(entry("bob", Role::Auditor, "bb")).await.unwrap();
    assert!(matches!(
        a.insert(entry("alice", Role::Admin, "cc")).await,
        Err(TokenError::Exists(n)) if n == "alice"
    ));
    let b = open();
    let names: Vec<String> = b
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["alice", "bob"], "durable and in the order made");
    assert_eq!(
        b.find_hash("bb").await.unwrap().map(|e| e.role),
        Some(Role::Auditor)
    );
    assert!(
        b.find_hash("alice").await.unwrap().is_none(),
        "by hash only"
    );
    assert_eq!(a.remove("alice").await.unwrap().sha256, "aa");
    assert!(
        b.find_hash("aa").await.unwrap().is_none(),
        "revoked at once"
    );
    assert!(matches!(
        b.remove("alice").await,
        Err(TokenError::Missing(n)) if n == "alice"
    ));
    assert_eq!(open().list().await.unwrap().len(), 1);
}

/// [`TlsMemory`]: the first time is kept, reads see writes at once through
/// a fresh handle, forgetting says whether there was anything, the list
/// is ordered by domain and names domains case-insensitively.
pub async fn tls_memory(open: &dyn Fn() -> Box<dyn TlsMemory>) {
    let a = open();
    assert!(a.list().await.unwrap().is_empty(), "a new store is empty");
    assert!(a.remembered("b.test").await.unwrap().is_none());
    a.remember("b.test").await.unwrap();
    let first = a.remembered("b.test").await.unwrap().expect("remembered");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    a.remember("B.Test").await.unwrap();
    a.remember("a.test").await.unwrap();
    let b = open();
    assert_eq!(
        b.remembered("b.test").await.unwrap(),
        Some(first),
        "the first time is kept, whatever the case"
    );
    let domains: Vec<String> = b
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.domain)
        .collect();
    assert_eq!(domains, ["a.test", "b.test"]);
    assert!(a.forget("b.test").await.unwrap());
    assert!(!b.forget("b.test").await.unwrap(), "nothing left to forget");
    assert!(open().remembered("b.test").await.unwrap().is_none());
    assert_eq!(open().list().await.unwrap().len(), 1);
}

/// [`Cache`]: a get sees the last put, values are replaced whole, keys
/// are distinct.
pub async fn cache(open: &dyn Fn() -> Box<dyn Cache>) {
    let a = open();
    assert!(a.get("mta-sts/a.test").await.unwrap().is_none());
    a.put("mta-sts/a.test", b"one").await.unwrap();
    a.put("mta-sts/b.test", b"").await.unwrap();
    assert_eq!(
        open().get("mta-sts/a.test").await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    a.put("mta-sts/a.test", b"two, longer").await.unwrap();
    assert_eq!(
        open().get("mta-sts/a.test").await.unwrap().as_deref(),
        Some(&b"two, longer"[..])
    );
    assert_eq!(
        open().get("mta-sts/b.test").await.unwrap().as_deref(),
        Some(&b""[..])
    );
}
