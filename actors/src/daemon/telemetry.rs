//! What the daemon tells the outside about itself, apart from heartbeats:
//! its Prometheus metrics ([`Metrics`]) and systemd's notify protocol
//! ([`Notifier`]: READY once loaded with every actor answering, a watchdog
//! ping on each heartbeat at which every actor answered, STOPPING at
//! shutdown). Without `NOTIFY_SOCKET` (not under systemd) the notifier
//! does nothing.

use super::metrics::Metrics;
use sd_notify::NotifyState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tracing::{debug, info, warn};

/// Shared by the wiring and every actor.
pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    pub notifier: Notifier,
    /// The repository has been loaded into memory at least once.
    pub loaded: AtomicBool,
}

impl Telemetry {
    pub fn new(metrics: Arc<Metrics>) -> Telemetry {
        Telemetry {
            metrics,
            notifier: Notifier::from_env(),
            loaded: AtomicBool::new(false),
        }
    }

    /// A heartbeat: `answered` when every actor answered its ping. Sends
    /// READY the first time that holds once the state is loaded, and a
    /// watchdog ping each time it holds.
    pub fn beat(&self, answered: bool) {
        if !answered {
            debug!("an actor did not answer its ping; no watchdog ping");
            return;
        }
        if self.loaded.load(Ordering::Relaxed) {
            self.notifier.ready("leader: running");
        }
        self.notifier.watchdog();
    }
}

/// systemd's notify socket, if there is one.
pub struct Notifier {
    enabled: bool,
    ready: AtomicBool,
    failed: AtomicBool,
}

impl Notifier {
    /// Enabled when `NOTIFY_SOCKET` is set. Warns when systemd's watchdog
    /// period is too short for the heartbeat to ping it in time.
    pub fn from_env() -> Notifier {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        if enabled {
            info!(
                watchdog_ms = sd_notify::watchdog_enabled().map(|d| d.as_millis() as u64),
                "notifying systemd"
            );
        }
        Notifier {
            enabled,
            ready: AtomicBool::new(false),
            failed: AtomicBool::new(false),
        }
    }

    /// Warns when `WatchdogSec` is under two heartbeat intervals.
    pub fn check_watchdog(&self, heartbeat_ms: u64) {
        if let Some(d) = sd_notify::watchdog_enabled().filter(|_| self.enabled) {
            if (d.as_millis() as u64) < heartbeat_ms * 2 {
                warn!(
                    watchdog_ms = d.as_millis() as u64,
                    heartbeat_ms,
                    "WatchdogSec is under two heartbeat intervals; the daemon may be restarted while healthy"
                );
            }
        }
    }

    fn send(&self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            // Said once: a missing socket would otherwise warn every beat.
            if !self.failed.swap(true, Ordering::Relaxed) {
                warn!(error = %e, "could not notify systemd");
            }
        }
    }

    /// READY=1 with a status line, the first time only.
    pub fn ready(&self, status: &str) {
        if self.enabled && !self.ready.swap(true, Ordering::Relaxed) {
            self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
            info!(status, "told systemd the daemon is ready");
        }
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// A new status line (after READY).
    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }
}
