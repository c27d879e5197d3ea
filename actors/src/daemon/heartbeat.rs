//! Heartbeat: every `heartbeat.interval_ms` it pings each actor and writes
//! `{p}:health:{worker}` (SPEC §6, TTL three intervals) for each one that
//! answers within the interval — a dead, restarting-forever or wedged actor
//! does not answer, so its key expires — plus `{p}:health:clusterd` for the
//! process, which sums the workers' restarts and carries their counters,
//! and `{p}:health:heartbeat` for itself (a beat written is its own proof
//! of life).
//! Each beat also sets the gauges that come from the actors' answers
//! (states, dirty, lag), pings systemd's watchdog when every actor
//! answered, and writes the rendered metrics beside the heartbeats.

use super::engine::Shared;
use super::error::WorkError;
use super::metrics::{Layer, Metrics};
use super::supervision::{Health, Lifecycle, Ping, Restart, State};
use super::workers;
use crate::repository::health::{write_heartbeats, write_metrics};
use actix::dev::ToEnvelope;
use actix::prelude::*;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::warn;

const WORKER: &str = workers::HEARTBEAT;

/// Write the heartbeats now; answers once written (for `status`).
#[derive(Message)]
#[rtype(result = "Result<(), WorkError>")]
pub struct BeatNow {
    /// The control actor's own health, when it asks (it cannot be pinged
    /// while it waits for this).
    pub control: Option<Health>,
}

/// Stop writing heartbeats (the process is stopping).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Halt;

pub struct Heartbeat {
    shared: Arc<Shared>,
    life: Lifecycle,
    halted: bool,
    /// The last restart count each actor reported.
    known: Arc<Mutex<HashMap<&'static str, u64>>>,
}

impl Heartbeat {
    pub fn new(shared: Arc<Shared>) -> Heartbeat {
        let life = Lifecycle::new(&shared.settings);
        Heartbeat {
            shared,
            life,
            halted: false,
            known: Arc::default(),
        }
    }
}

/// The fields every heartbeat payload carries (SPEC §6).
pub fn base(shared: &Shared, worker: &str, state: &str, restarts: u64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("worker".into(), Value::from(worker));
    m.insert(
        "instance_id".into(),
        Value::from(shared.lease.instance.clone()),
    );
    m.insert("pid".into(), Value::from(std::process::id()));
    m.insert("host".into(), Value::from(shared.host.clone()));
    m.insert("version".into(), Value::from(env!("CARGO_PKG_VERSION")));
    m.insert(
        "ts".into(),
        Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    m.insert(
        "uptime_s".into(),
        Value::from(shared.started.elapsed().as_secs()),
    );
    m.insert("state".into(), Value::from(state));
    m.insert("restarts".into(), Value::from(restarts));
    m
}

async fn ping<A>(addr: Addr<A>, within: Duration) -> Option<Health>
where
    A: Actor + Handler<Ping>,
    A::Context: ToEnvelope<A, Ping>,
{
    addr.send(Ping).timeout(within).await.ok().flatten()
}

/// Pings every actor and writes the keys of those that answered.
async fn beat(
    shared: Arc<Shared>,
    own: Health,
    control_health: Option<Health>,
    known: Arc<Mutex<HashMap<&'static str, u64>>>,
) -> Result<(), WorkError> {
    let interval = shared.settings.heartbeat.interval_ms;
    let within = Duration::from_millis(interval);
    let a = shared.addrs();
    let (bus, ids, camps, publisher, control) = futures_util::future::join5(
        ping(a.bus.clone(), within),
        ping(a.identity.clone(), within),
        ping(a.campaign.clone(), within),
        ping(a.publisher.clone(), within),
        async {
            match control_health {
                Some(h) => Some(h),
                None => ping(a.control.clone(), within).await,
            }
        },
    )
    .await;
    let answers = [
        (workers::BUS_INGEST, bus),
        (workers::IDENTITY, ids),
        (workers::CAMPAIGN, camps),
        (workers::PUBLISHER, publisher),
        (workers::CONTROL, control),
    ];
    observe(shared.metrics(), &answers);
    shared
        .telemetry
        .beat(answers.iter().all(|(_, h)| h.is_some()));
    // The process: its counters are its workers'; it is degraded while one
    // is restarting or silent, paused when every consumer is paused.
    let mut process = Map::new();
    let mut silent = false;
    let mut restarting = false;
    let mut paused = 0;
    for (worker, h) in &answers {
        match h {
            Some(h) => {
                known
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(worker, h.restarts);
                restarting |= h.state == State::Restarting || h.state == State::Degraded;
                paused += usize::from(h.state == State::Paused);
                for (k, v) in &h.fields {
                    process.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            None => silent = true,
        }
    }
    // Restarts of an actor that is silent right now still count.
    let restarts: u64 = known
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .sum();
    let state = if restarting || silent {
        "degraded"
    } else if paused >= 3 {
        "paused"
    } else {
        "running"
    };
    let mut payload = base(&shared, workers::PROCESS, state, restarts);
    payload.extend(process);
    let mut beats = vec![(workers::PROCESS, Value::Object(payload))];
    for (worker, h) in answers {
        let Some(h) = h else { continue };
        let mut payload = base(&shared, worker, h.state.as_str(), h.restarts);
        payload.extend(h.fields);
        beats.push((worker, Value::Object(payload)));
    }
    let payload = base(&shared, WORKER, own.state.as_str(), own.restarts);
    beats.push((WORKER, Value::Object(payload)));
    let mut conn = shared.pool.get().await?;
    write_heartbeats(&mut *conn, &shared.keys, beats, interval * 3, false).await?;
    let text = shared.metrics().render();
    write_metrics(&mut *conn, &shared.keys, &text, interval * 3).await?;
    Ok(())
}

/// Sets the gauges that come from the actors' answers: each one's state
/// (`silent` when it did not answer), the layers' dirty counts, the lag.
fn observe(m: &Metrics, answers: &[(&'static str, Option<Health>)]) {
    m.actor_state(WORKER, State::Running.as_str());
    let field = |h: &Health, k: &str| h.fields.get(k).and_then(Value::as_i64);
    for (worker, h) in answers {
        let Some(h) = h else {
            m.actor_state(worker, "silent");
            continue;
        };
        m.actor_state(worker, h.state.as_str());
        let dirty = field(h, "dirty").map(|d| d.max(0) as u64);
        match *worker {
            workers::IDENTITY => dirty.into_iter().for_each(|d| m.dirty(Layer::Identity, d)),
            workers::CAMPAIGN => dirty.into_iter().for_each(|d| m.dirty(Layer::Campaign, d)),
            workers::BUS_INGEST => {
                if let Some(l) = field(h, "lag") {
                    m.lag.set(l);
                }
            }
            _ => {}
        }
    }
}

impl Actor for Heartbeat {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = Duration::from_millis(self.shared.settings.heartbeat.interval_ms);
        ctx.notify(BeatNow { control: None });
        ctx.run_interval(every, |act, ctx| {
            if !act.halted {
                ctx.notify(BeatNow { control: None });
            }
        });
    }
}

impl Supervised for Heartbeat {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // Only an operator's `restart` stops this actor (a failed beat is
        // retried at the next interval), so no budget is spent.
        self.life.restarting(&self.shared, WORKER);
    }
}

impl Handler<BeatNow> for Heartbeat {
    type Result = AtomicResponse<Self, Result<(), WorkError>>;

    fn handle(&mut self, m: BeatNow, _: &mut Context<Self>) -> Self::Result {
        let shared = self.shared.clone();
        let halted = self.halted;
        let known = self.known.clone();
        let own = self.life.health(&[]);
        AtomicResponse::new(Box::pin(
            async move {
                if halted {
                    return Ok(());
                }
                beat(shared, own, m.control, known).await
            }
            .into_actor(self)
            .map(|r, _, _| {
                // Redis trouble: the pool reconnects by itself; the next beat
                // tries again (the keys expire meanwhile, as they should).
                if let Err(e) = &r {
                    warn!(error = %e, "could not write heartbeats");
                }
                r
            }),
        ))
    }
}

impl Handler<Halt> for Heartbeat {
    type Result = ();

    fn handle(&mut self, _: Halt, _: &mut Context<Self>) {
        self.halted = true;
    }
}

impl Handler<Restart> for Heartbeat {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
