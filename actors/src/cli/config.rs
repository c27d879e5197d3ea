//! What the Redis-facing verbs share: their settings (defaults, `--config`,
//! environment), and the repository they read: the rows alone, or a
//! snapshot with the graphs rebuilt.

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

/// Loads the stored rows only (no graphs: `list` and the argument
/// resolver need nothing more) and runs `f` on them.
pub fn with_store<T>(
    config: Option<&Path>,
    f: impl FnOnce(&decnet_clusterd::store::Store) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let s = settings(config)?;
    let system = actix_rt::System::new();
    let store = system
        .block_on(async {
            let client = redis::Client::open(s.redis.url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            let keys = crate::repository::Keys::new(&s.redis.key_prefix);
            Ok::<_, anyhow::Error>(crate::repository::load(&mut conn, &keys, |_, _| {}).await?)
        })
        .context("reading the repository")?;
    f(&store)
}
