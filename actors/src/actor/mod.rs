//! The daemon's actors (SPEC §2), one file each, and what they share.
//!
//! ```text
//!  {p}:stream:attacker ──► BusIngest ──Evidence──► IdentityClusterer ──IdentitiesSettled──► CampaignClusterer
//!                             │ (merge, commit,         │ (pass on a blocking thread)           │
//!                             │  ack)                   └────────Commit──► Publisher ◄──Commit──┘
//!  {p}:control ──► Control ──Pause/Resume/Pass/Reload/Decide/Restart──► the others      (outbox: rows + events,
//!  Heartbeat ──Ping──► every actor; writes {p}:health:* for those that answer            one fenced MULTI/EXEC)
//! ```
//!
//! Every actor runs under an actix `Supervisor` on the system thread. An
//! actor that fails (a Redis error, a lost connection, a clustering pass that
//! panicked on its blocking thread) calls `ctx.stop()`, and the supervisor
//! restarts it in place: `restarting` counts the restart against the actor's
//! budget (`supervision.max_restarts` in `supervision.window_ms`) and, when
//! the budget is spent, asks the process to exit with status 1. Nothing runs
//! on the system thread that could panic: clustering runs in
//! `spawn_blocking`, where a panic comes back as a `JoinError`.
//!
//! The in-memory state (the store with both clusterers' graphs) is one
//! [`Engine`] behind an async mutex. Whoever holds it works on a consistent
//! state; a pass or batch that fails leaves it marked invalid, and the next
//! holder reloads it from Redis before using it, so memory never drifts from
//! what was committed.

pub mod bus_ingest;
pub mod campaign_clusterer;
pub mod control;
pub mod heartbeat;
pub mod identity_clusterer;
pub mod publisher;

use crate::keys::Keys;
use crate::lease::{Lease, Prepared};
use crate::repository::{self, Op};
use crate::settings::Settings;
use actix::prelude::*;
use decnet_clusterd::campaign::clusterer::{campaign_clusterer, CampaignClusterer};
use decnet_clusterd::identity::clusterer::{identity_clusterer, Clusterer, TickContext};
use decnet_clusterd::store::Store;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, error, info};

/// How long connecting to Redis may take before it counts as down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Response timeout of the dedicated (long-running work) connections.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The redis pool for short ordinary commands (heartbeats, replies, status,
/// lease renewal). Its connections keep redis-rs's 500 ms response timeout,
/// so long work (blocking reads, commits, loading) uses dedicated
/// connections made by [`connect`].
pub type Pool = bb8::Pool<bb8_redis::RedisConnectionManager>;

/// A dedicated multiplexed connection with its own response timeout.
pub async fn connect(
    client: &redis::Client,
    response: Duration,
) -> Result<MultiplexedConnection, redis::RedisError> {
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response));
    client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Why an actor's work failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool: {0}")]
    Pool(String),
    #[error("loading the repository: {0}")]
    Load(#[from] repository::LoadError),
    #[error("fenced: this instance no longer holds the leader lease")]
    Fenced,
    #[error("the publisher could not commit: {0}")]
    Commit(String),
    #[error("clustering panicked on its thread: {0}")]
    Panic(String),
    #[error("clustering failed: {0}")]
    Cluster(String),
    #[error("injected fault ({0})")]
    Injected(&'static str),
    #[error("{0} is not running")]
    Mailbox(&'static str),
    /// An earlier commit of the same in-memory state failed, so this one
    /// was refused: the state is reloaded before it is used again.
    #[error(
        "refused: an earlier commit of this state failed; it is reloaded before the next pass"
    )]
    Stale,
}

impl From<bb8::RunError<redis::RedisError>> for WorkError {
    fn from(e: bb8::RunError<redis::RedisError>) -> Self {
        match e {
            bb8::RunError::User(e) => WorkError::Redis(e),
            bb8::RunError::TimedOut => {
                WorkError::Pool("timed out waiting for a connection (is Redis up?)".into())
            }
        }
    }
}

/// Why the process should end.
#[derive(Debug)]
pub enum Exit {
    /// Graceful stop (the `stop` command).
    Stop,
    /// The lease went to another instance.
    LostLease,
    /// An actor spent its restart budget.
    Budget {
        worker: &'static str,
        restarts: usize,
    },
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
                .send(publisher::Barrier)
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

/// The addresses of every actor, set once all are started.
pub struct Addrs {
    pub bus: Addr<bus_ingest::BusIngest>,
    pub identity: Addr<identity_clusterer::IdentityClusterer>,
    pub campaign: Addr<campaign_clusterer::CampaignClusterer>,
    pub publisher: Addr<publisher::Publisher>,
    pub heartbeat: Addr<heartbeat::Heartbeat>,
    pub control: Addr<control::Control>,
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

    /// Ends the process when `e` means the lease is gone.
    pub fn check_fenced(&self, e: &WorkError) {
        if matches!(e, WorkError::Fenced) {
            self.exit(Exit::LostLease);
        }
    }
}

/// The states of SPEC §6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    Paused,
    Degraded,
    Restarting,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Paused => "paused",
            State::Degraded => "degraded",
            State::Restarting => "restarting",
        }
    }
}

/// One actor's answer to a heartbeat ping.
#[derive(Clone, Debug)]
pub struct Health {
    pub state: State,
    pub restarts: u64,
    /// Role-specific fields (SPEC §6: ticks, last_tick_ms, dirty; ingested,
    /// dead_lettered, lag; …).
    pub fields: Map<String, Value>,
}

/// A heartbeat ping. `None` means the actor is wedged (its work in hand has
/// run longer than `supervision.wedged_ms`): no heartbeat is written for it.
#[derive(Message)]
#[rtype(result = "Option<Health>")]
pub struct Ping;

/// Pause (true) or resume (false) the actor's work.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetPaused(pub bool);

/// Restart through the supervisor (the `restart` control action).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Restart;

/// Whether an actor's work in hand has been running too long to answer.
pub fn wedged(busy_since: Option<Instant>, settings: &Settings) -> bool {
    busy_since.is_some_and(|t| t.elapsed() > Duration::from_millis(settings.supervision.wedged_ms))
}

/// One actor's restart budget: at most `max` restarts within `window`.
#[derive(Debug)]
pub struct Budget {
    times: VecDeque<Instant>,
    max: usize,
    window: Duration,
}

impl Budget {
    pub fn new(settings: &Settings) -> Budget {
        Budget {
            times: VecDeque::new(),
            max: settings.supervision.max_restarts as usize,
            window: Duration::from_millis(settings.supervision.window_ms),
        }
    }

    /// Records a restart now; false when that exceeds the budget.
    pub fn spend(&mut self) -> bool {
        let now = Instant::now();
        self.times.retain(|t| now.duration_since(*t) < self.window);
        self.times.push_back(now);
        self.times.len() <= self.max
    }

    pub fn spent(&self) -> usize {
        self.times.len()
    }
}

/// An actor's supervision state: what its heartbeat reports (state,
/// restarts), the operator's pause, and its restart budget. Every actor
/// keeps one and goes through it when it fails, restarts, resumes, pauses
/// or answers a ping.
#[derive(Debug)]
pub struct Lifecycle {
    pub state: State,
    /// Paused by an operator; survives a restart.
    pub paused: bool,
    pub restarts: u64,
    budget: Budget,
    /// The stop in progress is a failure (spends budget), not an
    /// operator's `restart`.
    failed: bool,
}

impl Lifecycle {
    pub fn new(settings: &Settings) -> Lifecycle {
        Lifecycle {
            state: State::Running,
            paused: false,
            restarts: 0,
            budget: Budget::new(settings),
            failed: false,
        }
    }

    /// The work failed: degraded until the restart that follows.
    pub fn fail(&mut self) {
        self.failed = true;
        self.state = State::Degraded;
    }

    /// Called from `Supervised::restarting`: counts the restart, and when it
    /// follows a failure spends budget — past the budget the process exits
    /// so the service manager restarts the daemon.
    pub fn restarting(&mut self, shared: &Shared, worker: &'static str) {
        self.state = State::Restarting;
        self.restarts += 1;
        let budget = &mut self.budget;
        if std::mem::take(&mut self.failed) && !budget.spend() {
            error!(
                worker,
                restarts = budget.spent(),
                "restart budget spent; exiting so the service manager restarts the daemon"
            );
            shared.exit(Exit::Budget {
                worker,
                restarts: budget.spent(),
            });
        } else {
            info!(worker, restarts = self.restarts, "restarting");
        }
    }

    /// Working again after a restart (or a failure): running, or paused if
    /// an operator paused it.
    pub fn resume(&mut self) {
        if matches!(self.state, State::Restarting | State::Degraded) {
            self.state = if self.paused {
                State::Paused
            } else {
                State::Running
            };
        }
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        self.state = if paused {
            State::Paused
        } else {
            State::Running
        };
    }

    /// The heartbeat answer, with role-specific fields.
    pub fn health(&self, fields: &[(&str, Value)]) -> Health {
        Health {
            state: self.state,
            restarts: self.restarts,
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }
}

/// Sends ops to the publisher and waits for the fenced commit.
pub async fn commit(shared: &Shared, ops: Vec<Op>) -> Result<usize, WorkError> {
    enqueue(shared, ops, None).await
}

/// Hands `ops` to the Publisher now — commits land in the order they are
/// enqueued, so a caller enqueues while it still holds the engine and
/// awaits the result after releasing it. Their transaction is built on a
/// blocking thread meanwhile (a batch's takes milliseconds, which neither
/// the engine nor the runtime thread should wait for); the Publisher waits
/// for it in its turn. `generation` is the engine's `loads` when the ops
/// derive from in-memory state (refused once an earlier commit of that
/// generation failed), `None` when they do not.
pub fn enqueue(
    shared: &Shared,
    ops: Vec<Op>,
    generation: Option<u64>,
) -> impl std::future::Future<Output = Result<usize, WorkError>> + use<> {
    let request = (!ops.is_empty()).then(|| {
        let (built, tx) = tokio::sync::oneshot::channel();
        let request = shared
            .addrs()
            .publisher
            .send(publisher::Commit { tx, generation });
        let streams = shared.event_streams();
        tokio::task::spawn_blocking(move || {
            // The Publisher may have stopped meanwhile; then nobody waits.
            let _ = built.send(Prepared::new(&ops, &streams));
            // `ops` is freed here too, off the runtime thread.
        });
        request
    });
    async move {
        match request {
            None => Ok(0),
            Some(r) => r.await.map_err(|_| WorkError::Mailbox("the publisher"))?,
        }
    }
}

/// Text of a panic payload.
pub fn panic_text(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let p = e.into_panic();
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Waits until Redis answers a PING on a fresh connection, retrying with a
/// capped exponential backoff: a restarted actor waits here rather than
/// failing (and spending its budget) over and over while Redis is down.
pub async fn wait_for_redis(shared: &Shared) {
    let mut backoff = Duration::from_millis(100);
    let mut announced = false;
    loop {
        let ok = async {
            let mut c = connect(&shared.client, CONNECT_TIMEOUT).await?;
            redis::cmd("PING").query_async::<String>(&mut c).await
        }
        .await;
        match ok {
            Ok(_) => {
                if announced {
                    info!("Redis answers again");
                }
                return;
            }
            Err(e) => {
                if !announced {
                    tracing::warn!(error = %e, "waiting for Redis");
                    announced = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
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
    .map_err(|e| WorkError::Panic(panic_text(e)))?;
    let (written, ops) = r.map_err(WorkError::Cluster)?;
    let ticked = Instant::now();
    let committed = enqueue(shared, ops, Some(engine.loads));
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
