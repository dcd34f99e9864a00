//! `sealgate serve`: run the gateway.

use super::{load, Outcome};
use anyhow::Context;
use std::path::PathBuf;

/// Run the gateway until it is stopped; `None` runs on the embedded defaults.
pub async fn run(config: Option<&PathBuf>) -> super::Result {
    let config = load(config)?;
    sealgate::telemetry::logging::init(&config.log);
    sealgate::serve::serve(config)
        .await
        .context("sealgate serve")?;
    Ok(Outcome::Done)
}
