//! `clusterd run`: wiring only. It connects, waits for the leader lease
//! (writing `standby` heartbeats until then), keeps the lease renewed from
//! its own task, starts the six supervised actors of [`crate::actor`] and
//! waits for the first of: SIGTERM/SIGINT or the `stop` command (graceful:
//! stop reading, finish and commit the batch in hand, run a last pass,
//! release the lease, exit 0), a lost lease, or an actor that spent its
//! restart budget (exit 1).

use crate::actor::bus_ingest::{BusIngest, Drain};
use crate::actor::campaign_clusterer::{self, CampaignClusterer};
use crate::actor::control::Control;
use crate::actor::heartbeat::{Halt, Heartbeat, WORKERS};
use crate::actor::identity_clusterer::{self, IdentityClusterer};
use crate::actor::publisher::Publisher;
use crate::actor::{Addrs, Engine, Exit, Pool, Shared, WorkError, CONNECT_TIMEOUT, MAX_BACKOFF};
use crate::keys::Keys;
use crate::lease::Lease;
use crate::settings::Settings;
use actix::Supervisor;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

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
    let mut pipe = redis::pipe();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
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
        pipe.cmd("SET")
            .arg(keys.health(w))
            .arg(payload.to_string())
            .arg("PX")
            .arg(settings.heartbeat.interval_ms * 3)
            .arg("NX")
            .ignore();
    }
    let mut conn = pool.get().await?;
    let _: () = pipe.query_async(&mut *conn).await?;
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
) {
    let mut announced = false;
    let mut backoff = Duration::from_millis(100);
    loop {
        let r = async {
            let mut conn = pool.get().await?;
            Ok::<_, WorkError>(lease.acquire(&mut conn).await?)
        }
        .await;
        match r {
            Ok(true) => {
                info!(instance = %lease.instance, "holding the leader lease");
                return;
            }
            Ok(false) => {
                backoff = Duration::from_millis(100);
                if !announced {
                    info!("another instance holds the leader lease; waiting as standby");
                    announced = true;
                }
                if let Err(e) =
                    standby_heartbeat(pool, keys, settings, &lease.instance, started).await
                {
                    warn!(error = %e, "could not write standby heartbeats");
                }
            }
            Err(e) => {
                warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "Redis unreachable; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        }
        tokio::time::sleep(Duration::from_millis(
            (settings.lease.period_ms / 5).max(50),
        ))
        .await;
    }
}

/// Runs the daemon until `shutdown` resolves, the `stop` command arrives,
/// the lease is lost or an actor spends its restart budget. Must run inside
/// an actix system.
pub async fn run(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()>,
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
    tokio::pin!(shutdown);
    tokio::select! {
        _ = wait_for_lease(&pool, &lease, &keys, &settings, started) => {}
        _ = &mut shutdown => {
            info!("stopped while standby");
            return Ok(());
        }
    }
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel();
    let keeper = actix_rt::spawn(keep_lease(lease.clone(), pool.clone(), exit_tx.clone()));
    let shared = Arc::new(Shared::new(
        settings, keys, lease, client, pool, engine, exit_tx,
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
    let why = tokio::select! {
        why = exit_rx.recv() => why.unwrap_or(Exit::Stop),
        _ = &mut shutdown => Exit::Stop,
    };
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
    let a = shared.addrs();
    a.heartbeat.do_send(Halt);
    if !matches!(result, Err(DaemonError::LostLease)) {
        // Hand over at once rather than after the lease period.
        if let Ok(mut conn) = shared.pool.get().await {
            if let Err(e) = shared.lease.release(&mut conn).await {
                warn!(error = %e, "could not release the lease");
            }
            let keys: Vec<String> = WORKERS.iter().map(|w| shared.keys.health(w)).collect();
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut *conn).await;
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
