//! What the Redis-facing verbs share: their settings (defaults, `--config`,
//! environment) and the repository snapshot they read.

use super::error::CliError;
use super::snapshot::{snapshot, Snapshot};
use crate::settings::Settings;
use anyhow::Context;
use std::path::Path;

/// The settings of a verb: a bad configuration is a usage error.
pub fn settings(config: Option<&Path>) -> Result<Settings, CliError> {
    Settings::load(config, std::env::vars())
        .map_err(|e| CliError::Usage(format!("configuration: {e}")))
}

/// Loads the repository (with the graphs rebuilt) and runs `f` on it.
pub fn with_snapshot<T>(
    config: Option<&Path>,
    f: impl FnOnce(&Snapshot) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let s = settings(config)?;
    let system = actix_rt::System::new();
    let snap = system
        .block_on(snapshot(&s))
        .context("reading the repository")?;
    f(&snap)
}
