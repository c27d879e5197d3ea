//! `clusterd run`: the daemon, with its logging and signal handling.

use super::config::settings;
use super::error::CliError;
use crate::settings::Settings;
use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Stderr for the log: a write that fails (the reader of a pipe went away)
/// mutes the log from then on instead of failing or panicking.
struct LogWriter;

static LOG_CLOSED: AtomicBool = AtomicBool::new(false);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !LOG_CLOSED.load(Ordering::Relaxed) && std::io::stderr().write_all(buf).is_err() {
            LOG_CLOSED.store(true, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn init_logging(s: &Settings) -> Result<(), CliError> {
    let filter = tracing_subscriber::EnvFilter::try_new(&s.log.level)
        .map_err(|e| CliError::Usage(format!("configuration: log.level: {e}")))?;
    // Colour only for a terminal (and never under NO_COLOR); a log pipe
    // that closes mutes the log, it does not stop the daemon.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(|| LogWriter);
    let r = if s.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    r.map_err(|e| CliError::Runtime(anyhow::anyhow!("logging: {e}")))
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
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
    if s.http.listen.is_empty() {
        system
            .block_on(crate::daemon::run(s, shutdown_signal()))
            .context("the daemon failed")?;
        return Ok(0);
    }
    let addr = s
        .http
        .address()
        .map_err(|e| CliError::Usage(format!("configuration: {e}")))?;
    system.block_on(async move {
        // One signal stops both: the daemon first, then the server.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut server_rx = stop_rx.clone();
        let metrics = std::sync::Arc::new(crate::daemon::metrics::Metrics::new());
        // While this process leads, the console reads the engine itself.
        let live = std::sync::Arc::new(crate::daemon::engine::LiveEngine::default());
        let server = actix_rt::spawn(crate::http::serve_in_process(
            s.clone(),
            addr,
            async move {
                let _ = server_rx.wait_for(|stop| *stop).await;
            },
            metrics.clone(),
            live.clone(),
        ));
        let mut daemon_rx = stop_rx;
        let signal = async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = daemon_rx.wait_for(|stop| *stop) => {}
            }
        };
        let daemon = crate::daemon::run_with_metrics(s, signal, metrics, live).await;
        let _ = stop_tx.send(true);
        let served = server.await;
        daemon.context("the daemon failed")?;
        match served {
            Ok(r) => r.context("the HTTP server failed"),
            Err(e) => Err(anyhow::anyhow!("the HTTP server stopped: {e}")),
        }
    })?;
    Ok(0)
}
