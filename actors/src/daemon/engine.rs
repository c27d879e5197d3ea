//! The engine: the in-memory state (the store with both clusterers'
//! graphs) that every actor works on, what the actors share ([`Shared`]),
//! and the body of a clustering pass that both layers run.
//!
//! The engine sits behind an async mutex. Whoever holds it works on a
//! consistent state; a pass or batch that fails leaves it marked invalid,
//! and the next holder reloads it from Redis before using it
//! ([`Engine::ensure_loaded`]), so memory never drifts from what was
//! committed. Nothing that could panic runs on the system thread:
//! clustering runs in `spawn_blocking`, where a panic comes back as a
//! `JoinError`.

use super::addrs::Addrs;
use super::connection::{connect, Pool, RESPONSE_TIMEOUT};
use super::error::{panicked, WorkError};
use super::outbox;
use super::supervision::Exit;
use crate::repository::{self, Keys, Lease};
use crate::settings::Settings;
use decnet_clusterd::campaign::clusterer::{campaign_clusterer, CampaignClusterer};
use decnet_clusterd::identity::clusterer::{identity_clusterer, Clusterer, TickContext};
use decnet_clusterd::store::Store;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::{debug, info};

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
}

pub type SharedEngine = Arc<tokio::sync::Mutex<Engine>>;

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
        })
    }

    /// Reloads the store from Redis and starts both clusterers afresh (their
    /// next passes rebuild from the store and reconcile: nothing is renamed)
    /// when the state is not valid. True when it reloaded.
    pub async fn ensure_loaded(&mut self, shared: &Shared) -> Result<bool, WorkError> {
        if self.valid && self.loads >= shared.broken.load(Ordering::SeqCst) {
            return Ok(false);
        }
        // Commits already handed to the Publisher land (or are refused)
        // before Redis is read, so the reload sees all of them.
        if let Some(addrs) = shared.addrs.get() {
            addrs
                .publisher
                .send(outbox::Barrier)
                .await
                .map_err(|_| WorkError::Mailbox("the publisher"))?;
        }
        let t = Instant::now();
        let mut conn = connect(&shared.client, RESPONSE_TIMEOUT).await?;
        let store = repository::load(&mut conn, &shared.keys, |what, n| {
            if n % 100_000 == 0 {
                info!(what, loaded = n, "loading the repository");
            }
        })
        .await?;
        info!(
            observations = store.observations.len(),
            identities = store.identities.len(),
            campaigns = store.campaigns.len(),
            elapsed_ms = t.elapsed().as_millis() as u64,
            "repository loaded"
        );
        let fresh = Engine::new(&shared.settings).map_err(WorkError::Cluster)?;
        self.store = store;
        self.identities = fresh.identities;
        self.campaigns = fresh.campaigns;
        self.valid = true;
        self.loads = self.loads.max(shared.broken.load(Ordering::SeqCst)) + 1;
        Ok(true)
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
    exit: mpsc::UnboundedSender<Exit>,
}

impl Shared {
    pub fn new(
        settings: Settings,
        keys: Keys,
        lease: Lease,
        client: redis::Client,
        pool: Pool,
        engine: Engine,
        exit: mpsc::UnboundedSender<Exit>,
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

    /// Asks the process to end.
    pub fn exit(&self, why: Exit) {
        let _ = self.exit.send(why);
    }
}

/// What a committed pass wrote.
#[derive(Clone, Copy, Debug, Default)]
pub struct Written {
    pub events: usize,
    pub identities: usize,
    pub campaigns: usize,
    pub observations: usize,
    /// Observations in the store after the pass.
    pub stored: usize,
}

/// The body of a clustering pass, shared by both layers: with the engine
/// held (and marked invalid until the tick is done), runs `tick` on a
/// blocking thread — a panic there comes back as [`WorkError::Panic`] —
/// turns its journal into writes there too, hands them to the Publisher and
/// releases the engine before awaiting the commit, so the next batch or
/// pass works while Redis applies this one. `inject` is the test-only
/// fault: the pass panics with that message.
pub async fn cluster_and_commit(
    shared: &Shared,
    layer: &'static str,
    mut engine: tokio::sync::OwnedMutexGuard<Engine>,
    inject: Option<&'static str>,
    tick: fn(&mut Engine, &mut TickContext) -> Result<(), String>,
) -> Result<Written, WorkError> {
    engine.valid = false;
    let now = now_ms();
    let started = Instant::now();
    let keys = shared.keys.clone();
    let maxlen = shared.settings.output.stream_maxlen;
    let (mut engine, r) = tokio::task::spawn_blocking(move || {
        if let Some(fault) = inject {
            panic!("injected fault ({fault})");
        }
        let mut new_id = || uuid::Uuid::new_v4().to_string();
        let mut ctx = TickContext {
            now,
            new_id: &mut new_id,
        };
        engine.store.timings = Default::default();
        let r = tick(&mut engine, &mut ctx).map(|()| {
            let phases = engine.store.timings.phases().map(|(name, d)| {
                let ms = d.as_secs_f64() * 1000.0;
                (name, (ms * 10.0).round() / 10.0)
            });
            debug!(layer, ?phases, "clustering pass phases (ms)");
            let journal = engine.store.take_journal();
            let written = Written {
                events: journal.events.len(),
                identities: journal.identities.len() + journal.identity_campaigns.len(),
                campaigns: journal.campaigns.len(),
                observations: journal.observation_identity.len(),
                stored: engine.store.observations.len(),
            };
            let ops = if journal.is_empty() {
                Vec::new()
            } else {
                repository::journal_ops(&keys, &journal, maxlen, now)
            };
            (written, ops)
        });
        (engine, r)
    })
    .await
    .map_err(panicked)?;
    let (written, ops) = r.map_err(WorkError::Cluster)?;
    let ticked = Instant::now();
    let committed = outbox::enqueue(shared, ops, Some(engine.loads));
    engine.valid = true;
    drop(engine);
    committed.await?;
    debug!(
        layer,
        events = written.events,
        tick_ms = (ticked - started).as_millis() as u64,
        commit_ms = ticked.elapsed().as_millis() as u64,
        "clustering pass"
    );
    Ok(written)
}
