//! `clusterd run`: the daemon, with its logging and signal handling.

use super::config::settings;
use super::error::CliError;
use crate::settings::Settings;
use anyhow::Context;
use std::path::Path;

pub(super) fn init_logging(s: &Settings) -> Result<(), CliError> {
    let filter = tracing_subscriber::EnvFilter::try_new(&s.log.level)
        .map_err(|e| CliError::Usage(format!("configuration: log.level: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let r = if s.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    r.map_err(|e| CliError::Runtime(anyhow::anyhow!("logging: {e}")))
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}

/// `clusterd run`.
pub fn run(config: Option<&Path>) -> Result<i32, CliError> {
    let s = settings(config)?;
    init_logging(&s)?;
    tracing::info!(prefix = %s.redis.key_prefix, "starting clusterd");
    let system = actix_rt::System::new();
    system
        .block_on(crate::daemon::run(s, shutdown_signal()))
        .context("the daemon failed")?;
    Ok(0)
}
