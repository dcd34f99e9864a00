//! `sealgate cluster`: the nodes sharing this node's PostgreSQL database.

use super::{load, Outcome};
use clap::Subcommand;
use sealgate::config::StoreBackend;
use sealgate::store::postgres::cluster::{nodes, NodeRow};
use sealgate::store::postgres::Database;
use std::collections::HashMap;
use std::path::PathBuf;

/// The cluster's subcommands.
#[derive(Subcommand)]
pub enum ClusterCmd {
    /// List the nodes: last heartbeat, version, configuration hash, leases
    /// held, search index place; a node configured unlike the others is
    /// named.
    Ls {
        /// Configuration file (its [store] section names the database).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// JSON output: an array of objects.
        #[arg(long)]
        json: bool,
    },
}

/// A node as listed, with whether its configuration differs.
#[derive(serde::Serialize)]
struct Listed {
    #[serde(flatten)]
    row: NodeRow,
    /// Its configuration hash differs from the one most nodes have.
    config_differs: bool,
}

/// Run a cluster subcommand.
pub async fn run(action: ClusterCmd) -> super::Result {
    match action {
        ClusterCmd::Ls { config, json } => {
            let config = load(config.as_ref())?;
            if config.store.backend != StoreBackend::Postgres {
                eprintln!(
                    "sealgate: [store] backend is \"rocksdb\": this node is alone, not part of \
                     a cluster (set backend = \"postgres\" and url to share a database)"
                );
                return Ok(Outcome::Problem);
            }
            let db = Database::open(&config.store).await?;
            let listed = differing(nodes(&db).await?);
            if json {
                println!("{}", serde_json::to_string_pretty(&listed)?);
            } else {
                print!("{}", table(&listed));
            }
            Ok(Outcome::Done)
        }
    }
}

/// Marks the nodes whose hash is not the one most nodes share.
fn differing(rows: Vec<NodeRow>) -> Vec<Listed> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for r in &rows {
        *count.entry(r.config_hash.as_str()).or_default() += 1;
    }
    // The most common hash; on a tie, the smaller, so the answer is stable.
    let usual = count
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(h, _)| h.to_string())
        .unwrap_or_default();
    rows.into_iter()
        .map(|row| Listed {
            config_differs: row.config_hash != usual,
            row,
        })
        .collect()
}

fn table(listed: &[Listed]) -> String {
    let mut out = format!(
        "{:<20} {:<25} {:<10} {:<17} {:>7} {:>10}  config\n",
        "node", "last heartbeat", "version", "config hash", "leases", "index seq"
    );
    for l in listed {
        let r = &l.row;
        out.push_str(&format!(
            "{:<20} {:<25} {:<10} {:<17} {:>7} {:>10}  {}\n",
            r.node,
            r.last_heartbeat.format("%Y-%m-%d %H:%M:%S UTC"),
            r.version,
            r.config_hash,
            r.leases,
            r.index_seq,
            if l.config_differs { "DIFFERS" } else { "same" },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(node: &str, hash: &str) -> NodeRow {
        NodeRow {
            node: node.into(),
            number: 1,
            started: chrono::Utc::now(),
            last_heartbeat: chrono::Utc::now(),
            version: "0.1.0".into(),
            config_hash: hash.into(),
            leases: 0,
            index_seq: 0,
        }
    }

    #[test]
    fn the_odd_one_out_is_named() {
        let l = differing(vec![row("a", "x"), row("b", "y"), row("c", "x")]);
        let odd: Vec<&str> = l
            .iter()
            .filter(|l| l.config_differs)
            .map(|l| l.row.node.as_str())
            .collect();
        assert_eq!(odd, ["b"]);
        assert!(table(&l).contains("DIFFERS"));
        let v = serde_json::to_value(&l).unwrap();
        for k in [
            "node",
            "last_heartbeat",
            "version",
            "config_hash",
            "leases",
            "index_seq",
        ] {
            assert!(v[0].get(k).is_some(), "{k} in {v}");
        }
    }
}
