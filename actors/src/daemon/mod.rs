//! The daemon (SPEC §2): six supervised actix actors around one in-memory
//! engine, and `run`, which wires them.
//!
//! ```text
//!  {p}:stream:attacker ──► BusIngest ──Evidence──► IdentityClusterer ──IdentitiesSettled──► CampaignClusterer
//!                             │ (merge, commit,         │ (pass on a blocking thread)           │
//!                             │  ack)                   └────────Commit──► Publisher ◄──Commit──┘
//!  {p}:control ──► Control ──Pause/Resume/Pass/Reload/Decide/Restart──► the others      (outbox: rows + events,
//!  Heartbeat ──Ping──► every actor; writes {p}:health:* for those that answer            one fenced MULTI/EXEC)
//! ```
//!
//! ```text
//! mod.rs                 wiring: lease, the six actors, graceful stop
//! engine.rs              the in-memory state, what actors share
//! pass.rs                the reload before use, the body of a clustering pass
//! addrs.rs               the actors' addresses
//! supervision.rs         states, health, restart budget, Lifecycle: the one
//!                        place that decides retry, restart or exit
//! error.rs               WorkError and its severity; Exit
//! connection.rs          connections, backoff, waiting for Redis
//! outbox.rs              the Publisher: every write, one fenced commit
//! workers.rs             the worker names (heartbeat keys, control targets)
//! bus_ingest/            BusIngest: the actor (mod.rs) and one batch (batch.rs)
//! identity_clusterer.rs  IdentityClusterer, operator decisions
//! campaign_clusterer.rs  CampaignClusterer
//! heartbeat.rs           Heartbeat: `{p}:health:*`
//! control/               Control: the actor (mod.rs), command parsing (command.rs)
//! ```
//!
//! `run` is wiring only. It connects, waits for the leader lease
//! (writing `standby` heartbeats until then), keeps the lease renewed from
//! its own task, starts the six supervised actors and
//! waits for the first of: SIGTERM/SIGINT or the `stop` command (graceful:
//! stop reading, finish and commit the batch in hand, run a last pass,
//! release the lease, exit 0), a lost lease, or an actor that spent its
//! restart budget (exit 1).

pub mod addrs;
pub mod bus_ingest;
pub mod campaign_clusterer;
pub mod connection;
pub mod control;
pub mod engine;
pub mod error;
pub mod heartbeat;
pub mod identity_clusterer;
pub mod metrics;
pub mod outbox;
pub mod pass;
pub mod supervision;
pub mod telemetry;
pub mod workers;

use crate::repository::health::{delete_heartbeats, delete_metrics, write_heartbeats};
use crate::repository::{Keys, Lease};
use crate::settings::Settings;
use actix::Supervisor;
use addrs::Addrs;
use bus_ingest::{BusIngest, Drain};
use campaign_clusterer::CampaignClusterer;
use connection::{cluster_misfit, Backoff, Pool, CONNECT_TIMEOUT};
use control::Control;
use engine::{Engine, LiveEngine, Shared};
use error::Exit;
use error::WorkError;
use heartbeat::{Halt, Heartbeat};
use identity_clusterer::IdentityClusterer;
use metrics::Metrics;
use outbox::Publisher;
use std::sync::Arc;
use std::time::Duration;
use telemetry::Telemetry;
use tokio::sync::mpsc;
use tracing::{info, warn};
use workers::WORKERS;

/// Why the daemon stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("lost the leader lease; another instance took over")]
    LostLease,
    #[error("{0}")]
    Config(String),
    #[error("the {worker} actor was restarted {restarts} times within the restart window; giving up so the service manager restarts the daemon")]
    RestartBudget {
        worker: &'static str,
        restarts: usize,
    },
}

/// Renews the lease every third of its period; reports a lost lease.
async fn keep_lease(lease: Lease, pool: Pool, exit: mpsc::UnboundedSender<Exit>) {
    let every = Duration::from_millis(lease.period_ms / 3);
    loop {
        tokio::time::sleep(every).await;
        let renewed = match pool.get().await {
            Ok(mut conn) => lease.renew(&mut conn).await.map_err(WorkError::from),
            Err(e) => Err(WorkError::from(e)),
        };
        match renewed {
            Ok(true) => {}
            Ok(false) => {
                let _ = exit.send(Exit::LostLease);
                return;
            }
            // Redis trouble: the lease may still be ours; keep trying.
            Err(e) => warn!(error = %e, "could not renew the leader lease"),
        }
    }
}

/// Writes every worker's heartbeat as `standby` — only where no leader's
/// heartbeat is present (two instances share the keys).
async fn standby_heartbeat(
    pool: &Pool,
    keys: &Keys,
    settings: &Settings,
    instance: &str,
    started: std::time::Instant,
) -> Result<(), WorkError> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mut beats = Vec::with_capacity(WORKERS.len());
    for w in WORKERS {
        let payload = serde_json::json!({
            "worker": w,
            "instance_id": instance,
            "pid": std::process::id(),
            "host": host,
            "version": env!("CARGO_PKG_VERSION"),
            "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "uptime_s": started.elapsed().as_secs(),
            "state": "standby",
            "restarts": 0,
        });
        beats.push((*w, payload));
    }
    let mut conn = pool.get().await?;
    let ttl = settings.heartbeat.interval_ms * 3;
    write_heartbeats(&mut *conn, keys, beats, ttl, true).await?;
    Ok(())
}

/// Waits until this instance holds the lease. Redis being down is not an
/// error here: it is retried with a capped backoff.
async fn wait_for_lease(
    pool: &Pool,
    lease: &Lease,
    keys: &Keys,
    settings: &Settings,
    started: std::time::Instant,
    telemetry: &Telemetry,
) -> Result<(), DaemonError> {
    let mut announced = false;
    let mut backoff = Backoff::default();
    loop {
        let r = async {
            let mut conn = pool.get().await?;
            Ok::<_, WorkError>(lease.acquire(&mut conn).await?)
        }
        .await;
        match r {
            Ok(true) => {
                info!(instance = %lease.instance, "holding the leader lease");
                return Ok(());
            }
            Ok(false) => {
                backoff.reset();
                if !announced {
                    info!("another instance holds the leader lease; waiting as standby");
                    announced = true;
                }
                if let Err(e) =
                    standby_heartbeat(pool, keys, settings, &lease.instance, started).await
                {
                    warn!(error = %e, "could not write standby heartbeats");
                }
                telemetry
                    .notifier
                    .ready("standby: waiting for the leader lease");
                telemetry.notifier.watchdog();
            }
            Err(e) => {
                if let WorkError::Redis(re) = &e {
                    if let Some(why) = cluster_misfit(
                        re,
                        keys.prefix(),
                        &crate::effective::redact_url(&settings.redis.url),
                    ) {
                        return Err(DaemonError::Config(why));
                    }
                }
                // Alive, only waiting: restarting would not bring Redis back.
                telemetry.notifier.watchdog();
                warn!(error = %e, backoff_ms = backoff.current().as_millis() as u64, "Redis unreachable; retrying");
                tokio::time::sleep(backoff.next_wait()).await;
                continue;
            }
        }
        tokio::time::sleep(Duration::from_millis(
            (settings.lease.period_ms / 5).max(50),
        ))
        .await;
    }
}

/// Writes the effective configuration to `{p}:config` so `explain` and the
/// console judge as this leader does. A failure is logged, not fatal: the
/// readers then say they fell back to their own configuration.
async fn publish_config(pool: &Pool, keys: &Keys, settings: &Settings, instance: &str) {
    let doc = crate::effective::document(settings, instance);
    let r = async {
        let mut conn = pool.get().await?;
        crate::repository::config::write_config(&mut *conn, keys, &doc).await?;
        Ok::<_, WorkError>(())
    }
    .await;
    match r {
        Ok(()) => info!(key = %keys.config(), "wrote the effective configuration"),
        Err(e) => warn!(error = %e, "could not write the effective configuration"),
    }
}

/// Runs the daemon until `shutdown` resolves, the `stop` command arrives,
/// the lease is lost or an actor spends its restart budget. Must run inside
/// an actix system.
pub async fn run(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DaemonError> {
    run_with_metrics(
        settings,
        shutdown,
        Arc::new(Metrics::new()),
        Arc::new(LiveEngine::default()),
    )
    .await
}

/// [`run`], updating `metrics` and offering the engine through `live` while
/// leading (an HTTP server in the same process serves both).
pub async fn run_with_metrics(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()>,
    metrics: Arc<Metrics>,
    live: Arc<LiveEngine>,
) -> Result<(), DaemonError> {
    let started = std::time::Instant::now();
    let client = redis::Client::open(settings.redis.url.as_str())?;
    let manager = bb8_redis::RedisConnectionManager::new(settings.redis.url.as_str())?;
    let pool: Pool = bb8::Pool::builder()
        .max_size(8)
        .connection_timeout(CONNECT_TIMEOUT)
        .build_unchecked(manager);
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
    let engine = Engine::new(&settings).map_err(DaemonError::Config)?;
    for (what, n) in [
        (
            "identity clustering passes",
            settings.faults.clustering_panics,
        ),
        (
            "campaign clustering passes",
            settings.faults.campaign_panics,
        ),
        ("ingest batches", settings.faults.ingest_failures),
        ("commits", settings.faults.commit_failures),
    ] {
        if n > 0 {
            warn!(what, n, "fault injection is on: this many will fail");
        }
    }
    let telemetry = Arc::new(Telemetry::new(metrics));
    telemetry
        .notifier
        .check_watchdog(settings.heartbeat.interval_ms);
    telemetry.metrics.leader.set(0);
    tokio::pin!(shutdown);
    tokio::select! {
        r = wait_for_lease(&pool, &lease, &keys, &settings, started, &telemetry) => r?,
        _ = &mut shutdown => {
            telemetry.notifier.stopping();
            info!("stopped while standby");
            return Ok(());
        }
    }
    publish_config(&pool, &keys, &settings, &instance).await;
    telemetry.metrics.leader.set(1);
    telemetry.notifier.status("leader: loading");
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel();
    let keeper = actix_rt::spawn(keep_lease(lease.clone(), pool.clone(), exit_tx.clone()));
    let shared = Arc::new(Shared::new(
        settings,
        keys,
        lease,
        client,
        pool,
        engine,
        exit_tx,
        telemetry.clone(),
    ));
    let consumer = format!("clusterd-{instance}");
    let s = shared.clone();
    let publisher = Supervisor::start(move |_| Publisher::new(s));
    let s = shared.clone();
    let identity = Supervisor::start(move |_| IdentityClusterer::new(s));
    let s = shared.clone();
    let campaign = Supervisor::start(move |_| CampaignClusterer::new(s));
    let s = shared.clone();
    let bus = Supervisor::start(move |_| BusIngest::new(s, consumer));
    let s = shared.clone();
    let heartbeat = Supervisor::start(move |_| Heartbeat::new(s));
    let s = shared.clone();
    let control = Supervisor::start(move |_| Control::new(s));
    // Actors start on the next turn of the system's loop, after this.
    let _ = shared.addrs.set(Addrs {
        bus,
        identity,
        campaign,
        publisher,
        heartbeat,
        control,
    });
    live.set(Some(shared.engine.clone()));
    let why = tokio::select! {
        why = exit_rx.recv() => why.unwrap_or(Exit::Stop),
        _ = &mut shutdown => Exit::Stop,
    };
    live.set(None);
    telemetry.notifier.stopping();
    let result = match why {
        Exit::Stop => {
            info!("stopping: finishing the work in hand");
            finish(&shared).await;
            Ok(())
        }
        Exit::LostLease => Err(DaemonError::LostLease),
        Exit::Budget { worker, restarts } => Err(DaemonError::RestartBudget { worker, restarts }),
    };
    keeper.abort();
    telemetry.metrics.leader.set(0);
    let a = shared.addrs();
    a.heartbeat.do_send(Halt);
    if !matches!(result, Err(DaemonError::LostLease)) {
        // Hand over at once rather than after the lease period.
        if let Ok(mut conn) = shared.pool.get().await {
            if let Err(e) = shared.lease.release(&mut conn).await {
                warn!(error = %e, "could not release the lease");
            }
            let _ = delete_heartbeats(&mut *conn, &shared.keys, WORKERS).await;
            let _ = delete_metrics(&mut *conn, &shared.keys).await;
        }
    }
    if result.is_ok() {
        info!("stopped cleanly");
    }
    result
}

/// Graceful stop: no more reads; the batch in hand is committed and acked,
/// then one last identity and campaign pass clusters it.
async fn finish(shared: &Shared) {
    let a = shared.addrs();
    let _ = a.bus.send(Drain).await;
    match a.identity.send(identity_clusterer::Pass).await {
        Ok(Ok(_)) => {
            if let Ok(Err(e)) = a.campaign.send(campaign_clusterer::Pass).await {
                warn!(error = %e, "last campaign pass failed; the next start redoes it");
            }
        }
        Ok(Err(e)) => warn!(error = %e, "last identity pass failed; the next start redoes it"),
        Err(_) => warn!("the clusterer is not running; the next start clusters what was read"),
    }
}
