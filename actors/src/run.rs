//! The Redis-facing verbs: `run` (the daemon, with logging and signal
//! handling) and `simulate` (publish a scenario).

use crate::cli::CliError;
use crate::keys::Keys;
use crate::settings::Settings;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

fn settings(config: Option<&Path>) -> Result<Settings, CliError> {
    Settings::load(config, std::env::vars())
        .map_err(|e| CliError::Usage(format!("configuration: {e}")))
}

fn init_logging(s: &Settings) -> Result<(), CliError> {
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

/// `clusterd simulate`.
pub fn simulate(name: &str, rate: Option<u32>, config: Option<&Path>) -> Result<i32, CliError> {
    let s = settings(config)?;
    let scenario = crate::offline::load_scenario(name)?;
    let generated = scenario.generate();
    let keys = Keys::new(&s.redis.key_prefix);
    let bar = ProgressBar::new(generated.events.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("publishing {bar:40} {pos}/{len} events ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let system = actix_rt::System::new();
    system
        .block_on(async {
            let client = redis::Client::open(s.redis.url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            crate::bus::publish(&mut conn, &keys, &generated.events, rate, |n| {
                bar.set_position(n as u64)
            })
            .await
        })
        .with_context(|| format!("publishing to {}", keys.input()))?;
    bar.finish_and_clear();
    println!(
        "published {} events of `{}` ({} observations) to {}",
        generated.events.len(),
        generated.name,
        generated.truth.identity.len(),
        keys.input()
    );
    Ok(0)
}
