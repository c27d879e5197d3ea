//! The engine: the in-memory state (the store with both clusterers'
//! graphs) that every actor works on, and what the actors share
//! ([`Shared`]).
//!
//! The engine sits behind an async mutex. Whoever holds it works on a
//! consistent state; a pass or batch that fails leaves it marked invalid,
//! and the next holder reloads it from Redis before using it
//! (`pass.rs`), so memory never drifts from what was
//! committed. Nothing that could panic runs on the system thread:
//! clustering runs in `spawn_blocking`, where a panic comes back as a
//! `JoinError`.

use super::addrs::Addrs;
use super::connection::Pool;
use super::error::Exit;
use super::telemetry::Telemetry;
use crate::repository::{Keys, Lease, Quarantined};
use crate::settings::Settings;
use decnet_clusterd::campaign::clusterer::{campaign_clusterer, CampaignClusterer};
use decnet_clusterd::identity::clusterer::{identity_clusterer, Clusterer};
use decnet_clusterd::store::Store;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::sync::mpsc;

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The in-memory state: the store and both clusterers' graphs.
pub struct Engine {
    pub store: Store,
    pub identities: Box<dyn Clusterer>,
    pub campaigns: Box<dyn CampaignClusterer>,
    /// False until loaded, and while (or after) work that may have left
    /// memory different from Redis: the next holder reloads first.
    pub valid: bool,
    /// How many times the state was (re)loaded.
    pub loads: u64,
    /// Stored rows the last load could not read (left out, kept in Redis).
    pub quarantined: Vec<Quarantined>,
}

pub type SharedEngine = Arc<tokio::sync::Mutex<Engine>>;

/// The leader's engine, offered to an HTTP server in the same process
/// (`clusterd run` with `http.listen`) so the console answers from the live
/// state instead of reloading and re-clustering the repository; empty while
/// this process is standby or stopping.
#[derive(Default)]
pub struct LiveEngine(std::sync::Mutex<Option<SharedEngine>>);

impl LiveEngine {
    pub fn set(&self, engine: Option<SharedEngine>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = engine;
        }
    }

    /// The engine while this process leads.
    pub fn get(&self) -> Option<SharedEngine> {
        self.0.lock().ok().and_then(|slot| slot.clone())
    }
}

impl Engine {
    pub fn new(settings: &Settings) -> Result<Engine, String> {
        Ok(Engine {
            store: Store::default(),
            identities: identity_clusterer(
                &settings.clustering.clusterer,
                settings.identity.clone(),
            )
            .map_err(|e| e.to_string())?,
            campaigns: campaign_clusterer(
                &settings.clustering.campaign_clusterer,
                settings.campaign.clone(),
            )
            .map_err(|e| e.to_string())?,
            valid: false,
            loads: 0,
            quarantined: Vec::new(),
        })
    }
}

/// What every actor shares.
pub struct Shared {
    pub settings: Settings,
    pub keys: Keys,
    pub lease: Lease,
    pub client: redis::Client,
    pub pool: Pool,
    pub engine: SharedEngine,
    pub started: Instant,
    pub host: String,
    pub addrs: OnceLock<Addrs>,
    /// One past the engine generation (`Engine::loads`) whose commit failed,
    /// 0 while none has: the Publisher refuses later commits of that
    /// generation, and the next holder of the engine reloads it.
    pub broken: AtomicU64,
    /// Rows the last load quarantined (shown in the clusterer's heartbeat).
    pub quarantined: AtomicU64,
    /// Metrics and systemd notifications.
    pub telemetry: Arc<Telemetry>,
    exit: mpsc::UnboundedSender<Exit>,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: Settings,
        keys: Keys,
        lease: Lease,
        client: redis::Client,
        pool: Pool,
        engine: Engine,
        exit: mpsc::UnboundedSender<Exit>,
        telemetry: Arc<Telemetry>,
    ) -> Shared {
        Shared {
            settings,
            keys,
            lease,
            client,
            pool,
            engine: Arc::new(tokio::sync::Mutex::new(engine)),
            started: Instant::now(),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            addrs: OnceLock::new(),
            broken: AtomicU64::new(0),
            quarantined: AtomicU64::new(0),
            telemetry,
            exit,
        }
    }

    /// The output streams whose appends are lifecycle events (counted by
    /// the Publisher).
    pub fn event_streams(&self) -> [String; 2] {
        [self.keys.identity_stream(), self.keys.campaign_stream()]
    }

    /// The other actors (set right after start; before that nobody sends).
    pub fn addrs(&self) -> &Addrs {
        self.addrs.get().expect("actors are wired before they run")
    }

    pub fn metrics(&self) -> &super::metrics::Metrics {
        &self.telemetry.metrics
    }

    /// Asks the process to end.
    pub fn exit(&self, why: Exit) {
        let _ = self.exit.send(why);
    }
}
