//! `[store]` (where durable things are kept: the embedded backend or a
//! PostgreSQL database) and `[cluster]` (this node among others sharing it).

use super::Span;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which backend keeps the stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// RocksDB and plain files under `data_dir`: one node, nothing to install.
    #[default]
    Rocksdb,
    /// A PostgreSQL database shared by every node of a cluster.
    Postgres,
}

/// `[store]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `rocksdb` (default) or `postgres`.
    pub backend: StoreBackend,
    /// The PostgreSQL connection URL (`postgres://user@host:port/db`,
    /// `?sslmode=require` for TLS); required with `backend = "postgres"`.
    pub url: Option<String>,
    /// A file holding the database password (its first line); overrides a
    /// password in `url`.
    pub password_file: Option<PathBuf>,
    /// PEM roots trusted for the database's TLS certificate, beside the system's.
    pub ca_file: Option<PathBuf>,
    /// How long an acceptance waits for its commit before the sender gets 451.
    pub commit_timeout: Span,
    /// Connections to the database this node keeps at most.
    pub pool_size: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::Rocksdb,
            url: None,
            password_file: None,
            ca_file: None,
            commit_timeout: Span::secs(10),
            pool_size: 16,
        }
    }
}

impl StoreConfig {
    /// What is wrong with the settings, as `(field, reason)` pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |f: &str, r: &str| out.push((format!("store.{f}"), r.to_string()));
        match (&self.backend, &self.url) {
            (StoreBackend::Postgres, None) => bad(
                "url",
                "is required with backend = \"postgres\" (postgres://user@host:port/database)",
            ),
            (_, Some(url)) => {
                if let Err(e) = url.parse::<tokio_postgres::Config>() {
                    bad("url", &format!("is not a PostgreSQL URL: {e}"));
                } else if url_has_password(url) && self.password_file.is_some() {
                    bad(
                        "url",
                        "carries a password and password_file is set too: keep one",
                    );
                }
            }
            _ => {}
        }
        if self.commit_timeout.0.is_zero() {
            bad("commit_timeout", "must be longer than zero");
        }
        // The archive stores or removes content on a second connection
        // while its transaction holds the chain's head on the first.
        if self.pool_size < 2 {
            bad("pool_size", "must be at least 2");
        }
        out
    }
}

/// Whether a URL's authority names a password (`user:password@`).
fn url_has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// `[cluster]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's name, unique among the nodes sharing a database.
    pub node: String,
    /// How long a node's claim on a delivery lasts without renewal.
    pub lease: Span,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node: super::system_hostname(),
            lease: Span::secs(60),
        }
    }
}

impl ClusterConfig {
    /// What is wrong with the settings, as `(field, reason)` pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.node.is_empty()
            || self.node.len() > 63
            || !self
                .node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            out.push((
                "cluster.node".into(),
                "must be 1 to 63 letters, digits, `-`, `_` or `.`".into(),
            ));
        }
        if self.lease < Span::secs(5) {
            out.push(("cluster.lease".into(), "must be at least 5s".into()));
        }
        out
    }
}

impl super::Config {
    /// The SHA-256 (first 16 hex digits) of this configuration without
    /// what is each node's own (its listeners, addresses, host name,
    /// data directory and node name): equal on nodes configured alike, so
    /// a node configured otherwise is named (`cluster ls`, a warning at
    /// start).
    pub fn cluster_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(all) = v.as_object_mut() {
            all.remove("listener");
        }
        for (table, field) in [
            ("server", "hostname"),
            ("server", "data_dir"),
            ("admin", "address"),
            ("portal", "address"),
            ("cluster", "node"),
        ] {
            if let Some(t) = v.get_mut(table).and_then(|t| t.as_object_mut()) {
                t.remove(field);
            }
        }
        let digest = Sha256::digest(v.to_string().as_bytes());
        hex::encode(&digest[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_hash_leaves_out_what_is_each_nodes_own() {
        let a = super::super::Config::default();
        let mut b = a.clone();
        b.cluster.node = "other".into();
        b.server.data_dir = "/elsewhere".into();
        b.admin.address = "127.0.0.1:1".parse().unwrap();
        b.listener.clear();
        assert_eq!(a.cluster_hash(), b.cluster_hash());
        assert_eq!(a.cluster_hash().len(), 16);
        b.cluster.lease = Span::secs(30);
        assert_ne!(
            a.cluster_hash(),
            b.cluster_hash(),
            "a shared setting differs"
        );
    }

    #[test]
    fn postgres_needs_a_url_and_one_password() {
        let mut s = StoreConfig {
            backend: StoreBackend::Postgres,
            ..StoreConfig::default()
        };
        assert_eq!(s.problems()[0].0, "store.url");
        s.url = Some("postgres://sealgate@127.0.0.1:5432/sealgate".into());
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        s.url = Some("postgres://sealgate:secret@db.test/sealgate".into());
        s.password_file = Some("/etc/sealgate/db-password".into());
        assert!(s.problems()[0].1.contains("keep one"));
        s.password_file = None;
        assert!(s.problems().is_empty());
        s.url = Some("postgres://h:notaport/db".into());
        assert_eq!(s.problems()[0].0, "store.url");
        s.url = Some("postgres://h/db".into());
        s.pool_size = 0;
        s.commit_timeout = Span::secs(0);
        let fields: Vec<String> = s.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(fields, ["store.commit_timeout", "store.pool_size"]);
    }

    #[test]
    fn node_names_are_checked() {
        let mut c = ClusterConfig {
            node: "mx1.example".into(),
            ..ClusterConfig::default()
        };
        assert!(c.problems().is_empty());
        c.node = "a b".into();
        assert_eq!(c.problems()[0].0, "cluster.node");
        c.node = "mx1".into();
        c.lease = Span::secs(1);
        assert_eq!(c.problems()[0].0, "cluster.lease");
    }
}
