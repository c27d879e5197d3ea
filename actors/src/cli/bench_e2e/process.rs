//! The benchmarked daemon as a child process: its command line and
//! settings, spawning it (optionally with its log watched for the load and
//! first-pass figures), and stopping it with a guard.

use super::super::error::CliError;
use crate::repository::Keys;
use anyhow::Context;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;

/// The log level of the benchmarked daemon (its log goes to this command's
/// stderr): `warn`, or `CLUSTERD_BENCH_E2E_LOG` (`debug` shows each batch's
/// and each pass's timings).
pub(super) fn daemon_log_level() -> String {
    std::env::var("CLUSTERD_BENCH_E2E_LOG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "warn".into())
}

/// The benchmarked daemon's heartbeat interval. The clock stops at the
/// first heartbeat showing everything settled, so it overshoots by up to one
/// interval: 50 ms is about 1 % of a 100,000-event run (200 ms, before, was
/// up to 5 %), at the cost of six small writes per interval.
pub(super) const HEARTBEAT_MS: &str = "50";

/// `clusterd run` on the benchmark's prefix with the shipped defaults: the
/// only setting changed is the heartbeat interval, the benchmark's clock
/// (it does no work on the data path). Settings inherited from this
/// command's environment (`CLUSTERD_*`) are cleared, so an operator's
/// shell cannot tune the run by accident. With `console`, the daemon also
/// serves the console on that loopback port (`http.listen`).
pub(super) fn daemon_command(
    url: &str,
    keys: &Keys,
    console: Option<u16>,
) -> Result<Command, CliError> {
    let exe = std::env::current_exe().context("locating clusterd")?;
    let mut cmd = Command::new(exe);
    for (k, _) in std::env::vars_os() {
        let name = k.to_string_lossy();
        if name.starts_with("CLUSTERD_") && !name.starts_with("CLUSTERD_BENCH_E2E_") {
            cmd.env_remove(&k);
        }
    }
    cmd.arg("run")
        .env("REDIS_URL", url)
        .env("CLUSTERD_KEY_PREFIX", keys.prefix())
        .env("CLUSTERD_HEARTBEAT__INTERVAL_MS", HEARTBEAT_MS)
        .stdout(Stdio::null());
    if let Some(port) = console {
        cmd.env("CLUSTERD_HTTP__LISTEN", format!("127.0.0.1:{port}"));
    }
    Ok(cmd)
}

/// A benchmarked daemon, killed if the benchmark stops without stopping it
/// (an error, or a panic such as printing to a closed stdout), so it never
/// outlives the benchmark.
pub(super) struct Daemon(std::process::Child);

impl std::ops::Deref for Daemon {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Daemon {
    /// Stops the daemon the way an operator does (SIGTERM: it finishes and
    /// commits the batch in hand) and waits for it to exit.
    pub(super) fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Nothing to do for a daemon already stopped and waited for.
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub(super) fn spawn_daemon(
    url: &str,
    keys: &Keys,
    console: Option<u16>,
) -> Result<Daemon, CliError> {
    Ok(Daemon(
        daemon_command(url, keys, console)?
            .env("CLUSTERD_LOG__LEVEL", daemon_log_level())
            .spawn()
            .context("starting clusterd run")?,
    ))
}

/// Starts a daemon whose load log line is forwarded: the receiver gets the
/// `elapsed_ms` of its "repository loaded" line.
pub(super) fn spawn_logged_daemon(
    url: &str,
    keys: &Keys,
    console: Option<u16>,
) -> Result<(Daemon, mpsc::Receiver<u64>), CliError> {
    let mut child = daemon_command(url, keys, console)?
        .env("CLUSTERD_LOG__LEVEL", "warn,clusterd::daemon=info")
        .env("CLUSTERD_LOG__FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .context("starting clusterd run")?;
    let (tx, rx) = mpsc::channel();
    if let Some(err) = child.stderr.take() {
        // Drained to the end, so the daemon never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let f = &v["fields"];
                if f["message"] == "repository loaded" {
                    if let Some(ms) = f["elapsed_ms"].as_u64() {
                        let _ = tx.send(ms);
                    }
                }
            }
        });
    }
    Ok((Daemon(child), rx))
}

/// An error when the benchmarked daemon has exited (rather than waiting for
/// it until the time limit).
pub(super) fn gone(child: &mut std::process::Child, doing: &str) -> Result<(), CliError> {
    match child.try_wait() {
        Ok(Some(status)) => Err(CliError::Runtime(anyhow::anyhow!(
            "the daemon exited ({status}) while {doing}; rerun with CLUSTERD_BENCH_E2E_LOG=info to see why"
        ))),
        _ => Ok(()),
    }
}
