//! `clusterd run`: the daemon's main loop. It waits for the leader lease
//! (standby until then), loads the stored state, then repeatedly reads a
//! batch from the input stream's consumer group, merges the evidence into
//! the store, commits the observation writes, dead-letters and acks in one
//! fenced script, and — after a short debounce, or on the slow tick — runs
//! the identity and campaign clusterers on a blocking thread (where a panic
//! becomes an error value) and commits their journal, events included, in
//! one fenced script. SIGTERM/SIGINT finish the batch in hand, commit, ack,
//! release the lease and exit 0.
//!
//! Not yet here (see CHANGELOG): the per-worker actors with supervision and
//! restart budgets, the control channel, XAUTOCLAIM of other consumers'
//! pending entries and per-worker heartbeats; this loop plays all the
//! workers' parts in one task and writes the process heartbeat.

use crate::control::{self, Action, Command, Rejected};
use crate::keys::{Keys, CONSUMER_GROUP};
use crate::lease::{CommitError, Lease};
use crate::repository::{self, journal_ops, observation_op, Op};
use crate::settings::Settings;
use decnet_clusterd::campaign::clusterer::{campaign_clusterer, CampaignClusterer};
use decnet_clusterd::evidence::event::parse_entry;
use decnet_clusterd::identity::clusterer::{identity_clusterer, Clusterer, TickContext};
use decnet_clusterd::identity::{Decision, DecisionKind};
use decnet_clusterd::store::Store;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// How long connecting to Redis may take before it counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Response timeout of the command connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the daemon stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("loading the repository: {0}")]
    Load(#[from] repository::LoadError),
    #[error("lost the leader lease; another instance took over")]
    LostLease,
    #[error("clustering failed: {0}")]
    Cluster(String),
    #[error("clustering failed {0} times within the restart window; giving up so the service manager restarts the daemon")]
    RestartBudget(usize),
}

impl From<CommitError> for DaemonError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Fenced => DaemonError::LostLease,
            CommitError::Redis(r) => DaemonError::Redis(r),
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn connect(
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

/// Counters for the heartbeat.
#[derive(Default, Debug)]
struct Counters {
    ingested: u64,
    dead_lettered: u64,
    unknown_topics: u64,
    ticks: u64,
    last_tick_ms: u64,
    restarts: u64,
}

struct Daemon {
    settings: Settings,
    keys: Keys,
    lease: Lease,
    conn: MultiplexedConnection,
    reader: MultiplexedConnection,
    consumer: String,
    store: Option<Box<Store>>,
    identities: Option<Box<dyn Clusterer>>,
    campaigns: Option<Box<dyn CampaignClusterer>>,
    counters: Counters,
    started: Instant,
    state: &'static str,
    client: redis::Client,
    commands: Option<mpsc::Receiver<Result<Command, Rejected>>>,
    /// Set by a command that wants a clustering pass soon.
    tick_requested: bool,
    /// When clustering was restarted, within the supervision window.
    restart_times: std::collections::VecDeque<Instant>,
    /// Test-only: passes still to panic.
    fault_panics: u32,
    /// Entries in the input stream not yet delivered to the group (XINFO lag).
    lag: i64,
    /// The task that renews the lease, and what it reports.
    lease_keeper: Option<tokio::task::JoinHandle<()>>,
    lease_lost: Arc<AtomicBool>,
}

/// Renews the lease every third of its period; flags a lost lease.
async fn keep_lease(lease: Lease, mut conn: MultiplexedConnection, lost: Arc<AtomicBool>) {
    let every = Duration::from_millis(lease.period_ms / 3);
    loop {
        tokio::time::sleep(every).await;
        match lease.renew(&mut conn).await {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // Redis trouble: the main loop notices and reconnects; keep trying.
            Err(e) => warn!(error = %e, "could not renew the leader lease"),
        }
    }
}

/// What the main loop should do after a command.
enum Next {
    Continue,
    Stop,
}

/// Runs the daemon until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DaemonError> {
    let client = redis::Client::open(settings.redis.url.as_str())?;
    let conn = connect(&client, RESPONSE_TIMEOUT).await?;
    // Blocking reads get their own connection with a timeout past the block.
    let reader = connect(
        &client,
        Duration::from_millis(settings.ingest.block_ms) + RESPONSE_TIMEOUT,
    )
    .await?;
    let instance = if settings.instance.id.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        settings.instance.id.clone()
    };
    let keys = Keys::new(&settings.redis.key_prefix);
    let lease = Lease {
        key: keys.leader(),
        instance: instance.clone(),
        period_ms: settings.lease.period_ms,
    };
    let identities = identity_clusterer(&settings.clustering.clusterer, settings.identity.clone())
        .map_err(|e| DaemonError::Cluster(e.to_string()))?;
    let campaigns = campaign_clusterer(
        &settings.clustering.campaign_clusterer,
        settings.campaign.clone(),
    )
    .map_err(|e| DaemonError::Cluster(e.to_string()))?;
    let mut d = Daemon {
        consumer: format!("clusterd-{instance}"),
        settings,
        keys,
        lease,
        conn,
        reader,
        store: None,
        identities: Some(identities),
        campaigns: Some(campaigns),
        counters: Counters::default(),
        started: Instant::now(),
        state: "standby",
        client,
        commands: None,
        tick_requested: false,
        restart_times: Default::default(),
        fault_panics: 0,
        lag: 0,
        lease_keeper: None,
        lease_lost: Arc::new(AtomicBool::new(false)),
    };
    d.fault_panics = d.settings.faults.clustering_panics;
    if d.fault_panics > 0 {
        warn!(
            passes = d.fault_panics,
            "fault injection is on: clustering passes will panic"
        );
    }
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::select! {
            r = d.main() => match r {
                Ok(()) => {
                    info!("stop command received; finishing the work in hand");
                    return d.finish().await;
                }
                Err(DaemonError::Redis(e) | DaemonError::Load(repository::LoadError::Redis(e))) if is_connection_error(&e) => {
                    // Redis went away: nothing unacked is lost (entries stay
                    // pending), so wait, reconnect, reload and carry on.
                    warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "lost Redis; reconnecting");
                    d.state = "degraded";
                }
                Err(e) => return Err(e),
            },
            _ = &mut shutdown => {
                info!("stop requested; finishing the work in hand");
                return d.finish().await;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = &mut shutdown => return Ok(()),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        match reconnect(&d.client, &d.settings).await {
            Ok((conn, reader)) => {
                d.conn = conn;
                d.reader = reader;
                d.store = None;
                d.rebuild_clusterers()?;
                backoff = Duration::from_millis(100);
            }
            Err(e) => warn!(error = %e, "Redis still unreachable"),
        }
    }
}

/// The worker roles of SPEC §6, each with a heartbeat key.
const WORKERS: &[&str] = &[
    "clusterd",
    "bus-ingest",
    "clusterer",
    "campaign-clusterer",
    "publisher",
    "control",
];

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

async fn reconnect(
    client: &redis::Client,
    settings: &Settings,
) -> Result<(MultiplexedConnection, MultiplexedConnection), redis::RedisError> {
    let conn = connect(client, RESPONSE_TIMEOUT).await?;
    let reader = connect(
        client,
        Duration::from_millis(settings.ingest.block_ms) + RESPONSE_TIMEOUT,
    )
    .await?;
    Ok((conn, reader))
}

impl Daemon {
    async fn main(&mut self) -> Result<(), DaemonError> {
        self.wait_for_lease().await?;
        self.state = "running";
        // The lease is renewed by its own task, so a long load or rebuild
        // (minutes for millions of observations) never lets it lapse.
        if let Some(k) = self.lease_keeper.take() {
            k.abort();
        }
        self.lease_lost.store(false, Ordering::SeqCst);
        self.lease_keeper = Some(tokio::spawn(keep_lease(
            self.lease.clone(),
            self.conn.clone(),
            self.lease_lost.clone(),
        )));
        // Only the leader listens, so every request gets exactly one reply;
        // the listener re-subscribes by itself, so it is started once.
        if self.commands.is_none() {
            let (tx, rx) = mpsc::channel(64);
            tokio::spawn(control::listen(
                self.client.clone(),
                self.keys.control(),
                tx,
            ));
            self.commands = Some(rx);
        }
        self.ensure_group().await?;
        self.load().await?;
        self.tick().await?;
        let mut last_beat = Instant::now() - Duration::from_secs(3600);
        let mut last_tick = Instant::now();
        // When the oldest not-yet-clustered change arrived: under continuous
        // load a pass still runs every debounce period (batching), and a
        // quiet stream is clustered as soon as a read comes back empty.
        let mut first_change: Option<Instant> = None;
        let mut pending_first = true;
        let mut last_claim = Instant::now();
        self.claim_stale().await?;
        loop {
            if self.lease_lost.load(Ordering::SeqCst) {
                return Err(DaemonError::LostLease);
            }
            if last_claim.elapsed() >= Duration::from_millis(self.settings.ingest.claim_idle_ms) {
                if self.claim_stale().await? > 0 {
                    pending_first = true;
                }
                last_claim = Instant::now();
            }
            if last_beat.elapsed() >= Duration::from_millis(self.settings.heartbeat.interval_ms) {
                self.heartbeat().await?;
                last_beat = Instant::now();
            }
            if let Next::Stop = self.drain_commands().await? {
                return Ok(());
            }
            if self.state == "paused" {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            // Our own pending entries (a crash between read and ack) first.
            let read = self
                .read_batch(if pending_first { "0" } else { ">" })
                .await?;
            if pending_first && read == 0 {
                pending_first = false;
            }
            if read > 0 && first_change.is_none() {
                first_change = Some(Instant::now());
            }
            let debounced = first_change.is_some_and(|t| {
                t.elapsed() >= Duration::from_millis(self.settings.clustering.debounce_ms)
                    || read == 0
            });
            let slow =
                last_tick.elapsed() >= Duration::from_millis(self.settings.clustering.slow_tick_ms);
            if debounced || slow || std::mem::take(&mut self.tick_requested) {
                self.tick().await?;
                last_tick = Instant::now();
                first_change = None;
            }
        }
    }

    async fn wait_for_lease(&mut self) -> Result<(), DaemonError> {
        let mut announced = false;
        loop {
            if self.lease.acquire(&mut self.conn).await? {
                info!(instance = %self.lease.instance, "holding the leader lease");
                return Ok(());
            }
            if !announced {
                info!("another instance holds the leader lease; waiting as standby");
                announced = true;
            }
            self.heartbeat().await?;
            tokio::time::sleep(Duration::from_millis(
                (self.settings.lease.period_ms / 5).max(50),
            ))
            .await;
        }
    }

    /// Takes over entries another consumer (a crashed instance) read but
    /// never acked, once they have been idle for `claim_idle_ms`.
    async fn claim_stale(&mut self) -> Result<usize, DaemonError> {
        let mut cursor = "0-0".to_string();
        let mut claimed = 0;
        for _ in 0..1000 {
            let reply: redis::Value = redis::cmd("XAUTOCLAIM")
                .arg(self.keys.input())
                .arg(CONSUMER_GROUP)
                .arg(&self.consumer)
                .arg(self.settings.ingest.claim_idle_ms)
                .arg(&cursor)
                .arg("COUNT")
                .arg(self.settings.ingest.batch)
                .arg("JUSTID")
                .query_async(&mut self.conn)
                .await?;
            let redis::Value::Array(parts) = reply else {
                break;
            };
            let next = parts
                .first()
                .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
                .unwrap_or_else(|| "0-0".into());
            claimed += parts.get(1).map_or(0, |v| match v {
                redis::Value::Array(ids) => ids.len(),
                _ => 0,
            });
            if next == "0-0" {
                break;
            }
            cursor = next;
        }
        if claimed > 0 {
            info!(claimed, "took over pending entries of a dead consumer");
        }
        Ok(claimed)
    }

    /// Delivery counts of this consumer's pending entries.
    async fn delivery_counts(
        &mut self,
    ) -> Result<std::collections::HashMap<String, u64>, DaemonError> {
        let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(self.keys.input())
            .arg(CONSUMER_GROUP)
            .arg("-")
            .arg("+")
            .arg(self.settings.ingest.batch)
            .arg(&self.consumer)
            .query_async(&mut self.conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, _, _, count)| (id, count))
            .collect())
    }

    async fn ensure_group(&mut self) -> Result<(), DaemonError> {
        let r: Result<String, _> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.keys.input())
            .arg(CONSUMER_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn load(&mut self) -> Result<(), DaemonError> {
        let t = Instant::now();
        let store = repository::load(&mut self.conn, &self.keys, |what, n| {
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
        self.store = Some(Box::new(store));
        Ok(())
    }

    /// Reads, merges, commits and acks one batch; returns entries read.
    async fn read_batch(&mut self, from: &str) -> Result<usize, DaemonError> {
        // A read that times out replies nil.
        let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(CONSUMER_GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(self.settings.ingest.batch)
            .arg("BLOCK")
            .arg(self.settings.ingest.block_ms)
            .arg("STREAMS")
            .arg(self.keys.input())
            .arg(from)
            .query_async(&mut self.reader)
            .await?;
        let reply = reply.unwrap_or_default();
        let deliveries = if from == "0" {
            self.delivery_counts().await?
        } else {
            Default::default()
        };
        let max_deliveries = self.settings.ingest.max_deliveries;
        let Some(store) = self.store.as_mut() else {
            return Ok(0);
        };
        let mut ops: Vec<Op> = Vec::new();
        let mut acks = Vec::new();
        let mut changed = BTreeSet::new();
        let mut n = 0;
        for key in reply.keys {
            for entry in key.ids {
                n += 1;
                let fields: Vec<(String, Vec<u8>)> = entry
                    .map
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            redis::from_redis_value::<Vec<u8>>(v.clone()).unwrap_or_default(),
                        )
                    })
                    .collect();
                let delivered = deliveries.get(&entry.id).copied().unwrap_or(1);
                let parsed = if delivered > max_deliveries {
                    Err(format!("delivered {delivered} times without being acked (max_deliveries {max_deliveries})"))
                } else {
                    match parse_entry(&fields, &self.settings.limits) {
                        Ok(p) => Ok(Ok(p)),
                        Err(e) if e.is_unknown_topic() => Ok(Err(())),
                        Err(e) => Err(e.reason()),
                    }
                };
                match parsed {
                    Ok(Ok(parsed)) => {
                        if store.merge_observation(&parsed.observation) {
                            changed.insert(parsed.observation.uuid.clone());
                        }
                        self.counters.ingested += 1;
                    }
                    Ok(Err(())) => self.counters.unknown_topics += 1,
                    Err(reason) => {
                        self.counters.dead_lettered += 1;
                        let mut args = vec![
                            self.keys.deadletter(),
                            "MAXLEN".into(),
                            "~".into(),
                            self.settings.output.stream_maxlen.to_string(),
                            "*".into(),
                        ];
                        for (k, v) in &fields {
                            args.push(format!("orig_{k}"));
                            args.push(String::from_utf8_lossy(v).into_owned());
                        }
                        args.extend([
                            "entry_id".to_string(),
                            entry.id.clone(),
                            "reason".to_string(),
                            reason,
                        ]);
                        ops.push(Op { cmd: "XADD", args });
                    }
                }
                acks.push(entry.id);
            }
        }
        if n == 0 {
            return Ok(0);
        }
        for uuid in &changed {
            if let Some(o) = store.observations.get(uuid) {
                let identity = store.identity_groups.direct.get(uuid).map(String::as_str);
                ops.extend(observation_op(&self.keys, o, identity));
            }
        }
        let mut ack = vec![self.keys.input(), CONSUMER_GROUP.to_string()];
        ack.extend(acks);
        ops.push(Op {
            cmd: "XACK",
            args: ack,
        });
        self.lease.commit(&mut self.conn, &ops).await?;
        Ok(n)
    }

    /// Runs both clusterers on a blocking thread and commits their journal.
    async fn tick(&mut self) -> Result<(), DaemonError> {
        let (Some(mut store), Some(mut ids), Some(mut camps)) = (
            self.store.take(),
            self.identities.take(),
            self.campaigns.take(),
        ) else {
            return Ok(());
        };
        let t = Instant::now();
        let now = now_ms();
        let inject = self.fault_panics > 0;
        self.fault_panics = self.fault_panics.saturating_sub(1);
        let joined = tokio::task::spawn_blocking(move || {
            if inject {
                panic!("injected clustering fault (faults.clustering_panics)");
            }
            let mut new_id = || uuid::Uuid::new_v4().to_string();
            let mut ctx = TickContext {
                now,
                new_id: &mut new_id,
            };
            let r = ids
                .tick(&mut store, &mut ctx)
                .map_err(|e| e.to_string())
                .and_then(|_| camps.tick(&mut store, &mut ctx).map_err(|e| e.to_string()));
            (store, ids, camps, r)
        })
        .await;
        let (mut store, ids, camps, r) = match joined {
            Ok(v) => v,
            Err(e) => {
                // A panic inside clustering: the in-memory state is suspect,
                // the stored state untouched. Rebuild both from Redis.
                error!(
                    panic = e.is_panic(),
                    "clustering crashed; reloading the repository"
                );
                return self.restart_clustering().await;
            }
        };
        self.identities = Some(ids);
        self.campaigns = Some(camps);
        if let Err(e) = r {
            error!(error = %e, "clustering failed; reloading the repository");
            return self.restart_clustering().await;
        }
        let journal = store.take_journal();
        self.counters.ticks += 1;
        self.counters.last_tick_ms = t.elapsed().as_millis() as u64;
        if journal.is_empty() {
            self.store = Some(store);
            return Ok(());
        }
        let ops = journal_ops(
            &self.keys,
            &journal,
            self.settings.output.stream_maxlen,
            now,
        );
        match self.lease.commit(&mut self.conn, &ops).await {
            Ok(_) => {
                info!(
                    events = journal.events.len(),
                    identities = journal.identities.len(),
                    campaigns = journal.campaigns.len(),
                    "committed a clustering pass"
                );
                self.store = Some(store);
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, "commit failed; reloading the stored state");
                self.rebuild_clusterers()?;
                if matches!(e, CommitError::Fenced) {
                    return Err(DaemonError::LostLease);
                }
                self.load().await?;
                Err(e.into())
            }
        }
    }

    /// Restarts clustering from the stored state, within the restart budget.
    async fn restart_clustering(&mut self) -> Result<(), DaemonError> {
        let window = Duration::from_millis(self.settings.supervision.window_ms);
        let now = Instant::now();
        self.restart_times
            .retain(|t| now.duration_since(*t) < window);
        self.restart_times.push_back(now);
        if self.restart_times.len() > self.settings.supervision.max_restarts as usize {
            return Err(DaemonError::RestartBudget(self.restart_times.len()));
        }
        self.state = "restarting";
        self.counters.restarts += 1;
        self.heartbeat().await?;
        self.rebuild_clusterers()?;
        self.load().await?;
        self.state = "running";
        self.heartbeat().await?;
        // The reloaded store has evidence that was never clustered: cluster
        // it (the rebuilt clusterers start with a full pass) right away.
        self.tick_requested = true;
        Ok(())
    }

    fn rebuild_clusterers(&mut self) -> Result<(), DaemonError> {
        self.identities = Some(
            identity_clusterer(
                &self.settings.clustering.clusterer,
                self.settings.identity.clone(),
            )
            .map_err(|e| DaemonError::Cluster(e.to_string()))?,
        );
        self.campaigns = Some(
            campaign_clusterer(
                &self.settings.clustering.campaign_clusterer,
                self.settings.campaign.clone(),
            )
            .map_err(|e| DaemonError::Cluster(e.to_string()))?,
        );
        Ok(())
    }

    /// Writes `{p}:health:clusterd` and one key per worker role (SPEC §6).
    /// The roles share this task, so their keys live and expire together:
    /// a wedged loop lets every key expire.
    async fn heartbeat(&mut self) -> Result<(), DaemonError> {
        let interval = self.settings.heartbeat.interval_ms;
        if self.state != "standby" {
            self.lag = self.group_lag().await.unwrap_or(0);
        }
        let base = self.health();
        let mut pipe = redis::pipe();
        for worker in WORKERS {
            let mut payload = base.clone();
            payload["worker"] = Value::from(*worker);
            // Per-role counters: drop the ones that belong to other roles.
            const INGEST: &[&str] = &["ingested", "dead_lettered", "unknown_topics"];
            const CLUSTER: &[&str] = &["ticks", "last_tick_ms", "dirty"];
            let keep = |k: &str| match *worker {
                "bus-ingest" => INGEST.contains(&k),
                "clusterer" | "campaign-clusterer" => CLUSTER.contains(&k),
                "clusterd" => true,
                _ => false,
            };
            if let Some(obj) = payload.as_object_mut() {
                for k in INGEST.iter().chain(CLUSTER) {
                    if !keep(k) {
                        obj.remove(*k);
                    }
                }
                if *worker == "bus-ingest" {
                    obj.insert("lag".into(), Value::from(self.lag));
                }
            }
            pipe.cmd("SET")
                .arg(self.keys.health(worker))
                .arg(payload.to_string())
                .arg("PX")
                .arg(interval * 3);
            if self.state == "standby" {
                // Two instances share the keys: the leader's heartbeat wins, a
                // standby's shows only while no leader reports.
                pipe.arg("NX");
            }
            pipe.ignore();
        }
        let _: () = pipe.query_async(&mut self.conn).await?;
        Ok(())
    }

    /// The heartbeat payload (SPEC §6).
    fn health(&self) -> Value {
        let dirty = self.store.as_ref().map_or(0, |s| {
            s.changed_observations.len() + s.changed_identities.len()
        });
        serde_json::json!({
            "worker": "clusterd",
            "instance_id": self.lease.instance,
            "pid": std::process::id(),
            "host": std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default(),
            "version": env!("CARGO_PKG_VERSION"),
            "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "uptime_s": self.started.elapsed().as_secs(),
            "state": self.state,
            "restarts": self.counters.restarts,
            "ticks": self.counters.ticks,
            "last_tick_ms": self.counters.last_tick_ms,
            "dirty": dirty,
            "ingested": self.counters.ingested,
            "dead_lettered": self.counters.dead_lettered,
            "unknown_topics": self.counters.unknown_topics,
        })
    }

    /// Runs every command waiting on the control channel.
    async fn drain_commands(&mut self) -> Result<Next, DaemonError> {
        loop {
            let Some(msg) = self.commands.as_mut().and_then(|rx| rx.try_recv().ok()) else {
                return Ok(Next::Continue);
            };
            let (request_id, result, next) = match msg {
                Err(rejected) => (rejected.request_id, Err(rejected.error), Next::Continue),
                Ok(cmd) => {
                    let id = cmd.request_id.clone();
                    let (result, next) = self.handle(cmd).await?;
                    (id, result, next)
                }
            };
            if let Some(id) = request_id {
                let body = control::reply(&id, result).to_string();
                let _: i64 = redis::cmd("PUBLISH")
                    .arg(self.keys.control_reply())
                    .arg(body)
                    .query_async(&mut self.conn)
                    .await?;
            }
            if let Next::Stop = next {
                return Ok(Next::Stop);
            }
        }
    }

    async fn handle(&mut self, cmd: Command) -> Result<(Result<Value, String>, Next), DaemonError> {
        let worker_scope = |t: &str| {
            [
                "all",
                "clusterd",
                "bus-ingest",
                "clusterer",
                "campaign-clusterer",
            ]
            .contains(&t)
        };
        let r = match cmd.action {
            Action::Status => Ok(self.status().await?),
            Action::Pause | Action::Resume if !worker_scope(&cmd.target) => {
                Err(format!("`{}` cannot be paused; this daemon pauses ingest and clustering together (target all)", cmd.target))
            }
            Action::Pause => {
                self.state = "paused";
                Ok(serde_json::json!({"state": "paused"}))
            }
            Action::Resume => {
                self.state = "running";
                Ok(serde_json::json!({"state": "running"}))
            }
            Action::Tick => {
                self.tick().await?;
                Ok(serde_json::json!({"ticks": self.counters.ticks, "last_tick_ms": self.counters.last_tick_ms}))
            }
            Action::Recluster | Action::Restart => {
                if matches!(cmd.action, Action::Restart) && !["clusterer", "campaign-clusterer", "all"].contains(&cmd.target.as_str()) {
                    return Ok((Err(format!("`{}` cannot be restarted on its own yet; restart `clusterer` or `all`", cmd.target)), Next::Continue));
                }
                self.rebuild_clusterers()?;
                self.load().await?;
                self.counters.restarts += u64::from(matches!(cmd.action, Action::Restart));
                self.tick().await?;
                Ok(serde_json::json!({"reloaded": true, "observations": self.store.as_ref().map_or(0, |s| s.observations.len())}))
            }
            Action::Stop => return Ok((Ok(serde_json::json!({"stopping": true})), Next::Stop)),
            Action::Link(a, b) => self.decide(&a, &b, Some(DecisionKind::Link), &cmd.requested_by).await?,
            Action::Separate(a, b) => self.decide(&a, &b, Some(DecisionKind::Separate), &cmd.requested_by).await?,
            Action::Forget(a, b) => self.decide(&a, &b, None, &cmd.requested_by).await?,
        };
        Ok((r, Next::Continue))
    }

    /// Persists (or forgets) an operator decision and schedules a pass.
    async fn decide(
        &mut self,
        a: &str,
        b: &str,
        kind: Option<DecisionKind>,
        by: &str,
    ) -> Result<Result<Value, String>, DaemonError> {
        let Some(store) = self.store.as_mut() else {
            return Ok(Err("the repository is not loaded yet".into()));
        };
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let field = format!("{lo}|{hi}");
        let mut decisions = store.decisions.clone();
        let op = match kind {
            Some(kind) => {
                let d = Decision {
                    kind,
                    requested_by: by.to_string(),
                    at: now_ms(),
                };
                let json = serde_json::to_string(&d).unwrap_or_default();
                decisions.set(lo, hi, d);
                Op {
                    cmd: "HSET",
                    args: vec![self.keys.decisions(), field, json],
                }
            }
            None => {
                if decisions.forget(lo, hi).is_none() {
                    return Ok(Err(format!("no decision on {lo} and {hi} to forget")));
                }
                Op {
                    cmd: "HDEL",
                    args: vec![self.keys.decisions(), field],
                }
            }
        };
        self.lease.commit(&mut self.conn, &[op]).await?;
        if let Some(store) = self.store.as_mut() {
            store.set_decisions(decisions);
        }
        self.tick_requested = true;
        Ok(Ok(serde_json::json!({
            "observation_uuids": [lo, hi],
            "decision": kind.map(|k| k.as_str()),
            "requested_by": by,
            "applied": "at the next clustering pass",
        })))
    }

    async fn status(&mut self) -> Result<Value, DaemonError> {
        let leader: Option<String> = redis::cmd("GET")
            .arg(self.keys.leader())
            .query_async(&mut self.conn)
            .await?;
        let input: u64 = redis::cmd("XLEN")
            .arg(self.keys.input())
            .query_async(&mut self.conn)
            .await?;
        let deadletter: u64 = redis::cmd("XLEN")
            .arg(self.keys.deadletter())
            .query_async(&mut self.conn)
            .await?;
        let pending: redis::Value = redis::cmd("XPENDING")
            .arg(self.keys.input())
            .arg(CONSUMER_GROUP)
            .query_async(&mut self.conn)
            .await?;
        let pending = match pending {
            redis::Value::Array(v) => match v.first() {
                Some(redis::Value::Int(n)) => *n,
                _ => 0,
            },
            _ => 0,
        };
        let lag = self.group_lag().await;
        // Fresh heartbeats first, so the reply shows the state as of now.
        self.heartbeat().await?;
        let mut workers = serde_json::Map::new();
        for w in WORKERS {
            let raw: Option<String> = redis::cmd("GET")
                .arg(self.keys.health(w))
                .query_async(&mut self.conn)
                .await?;
            if let Some(v) = raw.and_then(|r| serde_json::from_str::<Value>(&r).ok()) {
                workers.insert(w.to_string(), v);
            }
        }
        Ok(serde_json::json!({
            "workers": workers,
            "leader": leader,
            "queues": {"input": input, "pending": pending, "lag": lag, "deadletter": deadletter},
        }))
    }

    /// Entries not yet delivered to the consumer group (XINFO GROUPS lag).
    async fn group_lag(&mut self) -> Option<i64> {
        let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(self.keys.input())
            .query_async(&mut self.conn)
            .await
            .ok()?;
        groups
            .into_iter()
            .find_map(|g| match (g.get("name"), g.get("lag")) {
                (Some(redis::Value::BulkString(n)), Some(redis::Value::Int(l)))
                    if n.as_slice() == CONSUMER_GROUP.as_bytes() =>
                {
                    Some(*l)
                }
                _ => None,
            })
    }

    /// Graceful stop: cluster what was read, commit, release the lease.
    async fn finish(&mut self) -> Result<(), DaemonError> {
        if self.state == "running" && self.store.is_some() {
            self.tick().await?;
        }
        if let Some(k) = self.lease_keeper.take() {
            k.abort();
        }
        self.lease.release(&mut self.conn).await?;
        let keys: Vec<String> = WORKERS.iter().map(|w| self.keys.health(w)).collect();
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut self.conn)
            .await?;
        info!("stopped cleanly");
        Ok(())
    }
}
