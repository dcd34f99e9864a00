//! `sealgate explain`: inspect and policy on a message, without sending it.

use super::{read_input, Outcome, Where};
use anyhow::Context;
use sealgate::admin::explain;
use sealgate::model::address::Mailbox;
use std::path::PathBuf;

/// What to explain: the instance, the envelope and the message.
#[derive(clap::Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    at: Where,
    /// The sender (MAIL FROM).
    #[arg(long)]
    from: String,
    /// Recipients, comma-separated or repeated.
    #[arg(long, required = true, value_delimiter = ',')]
    to: Vec<String>,
    /// Treat the message as inbound (default: outbound, from a connector).
    #[arg(long)]
    inbound: bool,
    /// JSON output.
    #[arg(long)]
    json: bool,
    /// The message (.eml); `-` reads standard input.
    file: PathBuf,
}

/// Print, per recipient, the verdict and why.
pub async fn run(args: ExplainArgs) -> super::Result {
    let ExplainArgs {
        at,
        from,
        to,
        inbound,
        json,
        file,
    } = args;
    let config = at.load()?;
    Mailbox::parse(&from).map_err(|e| anyhow::anyhow!("--from {from}: {e}"))?;
    let rcpts = to
        .iter()
        .map(|t| Mailbox::parse(t.trim()).map_err(|e| anyhow::anyhow!("--to {t}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bytes = read_input(&file).with_context(|| format!("{}", file.display()))?;
    let rules = if config.dlp.enabled {
        Some(
            config
                .dlp
                .load_rules()
                .map_err(|e| anyhow::anyhow!("DLP rules: {e}"))?,
        )
    } else {
        None
    };
    let keys =
        sealgate::keys::Keys::open(&config, sealgate::store::Stores::open(&config).await?.keys)
            .await?;
    let direction = if inbound {
        sealgate::spool::Direction::Inbound
    } else {
        sealgate::spool::Direction::Outbound
    };
    let dlp = explain::inspect_message(&config, rules.as_ref(), &bytes);
    // MTA-STS as delivery would see it (fetched now; not the gateway's cache).
    let sts = if config.tls.mta_sts {
        let dns = sealgate::net::dns::Dns::new(&config.delivery.resolvers)
            .map_err(|e| anyhow::anyhow!("resolver: {e}"))?;
        let roots = sealgate::net::tls::trust_roots(config.tls.extra_roots_file.as_deref())
            .map_err(|e| anyhow::anyhow!("trust roots: {e}"))?;
        Some(sealgate::deliver::mta_sts::MtaSts::new(
            dns,
            roots,
            config.tls.mta_sts_port,
        ))
    } else {
        None
    };
    let raised = explain::raised_for(
        &config,
        &keys,
        sts.as_ref(),
        direction,
        &bytes,
        &rcpts,
        dlp.as_ref(),
    )
    .await;
    let e = explain::explain(&config, &keys, dlp, direction, &bytes, &rcpts, &raised);
    if json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        print!("{}", explain::to_text(&e));
    }
    Ok(Outcome::Done)
}
