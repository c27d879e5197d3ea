//! IdentityClusterer: keeps the observation similarity graph and resolves
//! identities. New evidence is clustered at most `clustering.debounce_ms`
//! after the oldest change not yet clustered, and the wait shrinks under
//! load: evidence from a read that came back full (the group lags) is
//! clustered at once, and evidence that arrived while a pass ran is
//! clustered as soon as that pass is committed if it has waited the
//! debounce already. Passes run one after another, each taking whatever
//! arrived meanwhile, so a trickle is clustered within the debounce and a
//! flood in passes as large as the arrivals during one pass (see
//! [`debounce_wait`]). A slow tick runs every `clustering.slow_tick_ms`
//! regardless. A pass runs the configured
//! `Clusterer` on a blocking thread — a panic there comes back as an error
//! value — then hands the change set to the Publisher and, once committed,
//! tells the CampaignClusterer. A failed pass restarts this actor through its
//! supervisor; the state it may have left half-changed is reloaded from
//! Redis before anyone uses it again.
//!
//! Operator decisions (`link`, `separate`, `forget`) are persisted through
//! the Publisher with who and when, and applied by the next pass.

use super::connection::{wait_for_redis, Backoff};
use super::engine::{now_ms, Shared};
use super::error::WorkError;
use super::outbox::commit;
use super::pass::{cluster_and_commit, ensure_loaded};
use super::supervision::{
    exit_if_fatal, wedged, Disposition, Health, Lifecycle, Ping, Restart, SetPaused,
};
use super::workers;
use crate::repository::codec::decision_pair;
use crate::repository::write::{decision_del_op, decision_set_op};
use actix::prelude::*;
use decnet_clusterd::identity::{Decision, DecisionKind};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

const WORKER: &str = workers::IDENTITY;

/// Passes started and not yet committed, at most: one ticking (or waiting
/// for the engine) while the one before it is applied by Redis.
const MAX_PASSES: usize = 2;

/// This layer committed a pass (its `tick`-th): told to the
/// CampaignClusterer, which follows it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct IdentitiesSettled {
    pub tick: u64,
}

/// BusIngest committed a batch: `changed` observations have new evidence.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Evidence {
    pub changed: usize,
    pub read: usize,
    /// The batch found the state invalid and reloaded it: a full pass is due.
    pub reloaded: bool,
    /// The read came back full: more is waiting, so a pass starts at once.
    pub backlog: bool,
}

/// Run a pass now; answers once its change set is committed.
#[derive(Message)]
#[rtype(result = "Result<PassReport, WorkError>")]
pub struct Pass;

/// Rebuild everything from the repository, then pass (`recluster`).
#[derive(Message)]
#[rtype(result = "Result<PassReport, WorkError>")]
pub struct Reload;

/// Persist (Some) or forget (None) an operator decision on a pair.
#[derive(Message)]
#[rtype(result = "Result<Result<Value, String>, WorkError>")]
pub struct Decide {
    pub a: String,
    pub b: String,
    pub kind: Option<DecisionKind>,
    pub by: String,
}

/// What a pass did.
#[derive(Clone, Debug, Default)]
pub struct PassReport {
    pub ticks: u64,
    pub took_ms: u64,
    pub observations: usize,
    pub events: usize,
}

pub struct IdentityClusterer {
    shared: Arc<Shared>,
    life: Lifecycle,
    faults: u32,
    ticks: u64,
    last_tick_ms: u64,
    dirty: usize,
    /// Changed observations taken by passes not yet committed: still
    /// dirty as far as anyone reading the heartbeat can tell.
    passing: usize,
    debounce: Option<SpawnHandle>,
    /// When the oldest evidence not yet taken by a pass arrived.
    oldest: Option<Instant>,
    /// The latest evidence came from a full read (the group lags).
    backlog: bool,
    running: usize,
    busy_since: Option<Instant>,
    backoff: Backoff,
    /// How long a restart after a failure waits before it reloads.
    restart_wait: Duration,
}

impl IdentityClusterer {
    pub fn new(shared: Arc<Shared>) -> IdentityClusterer {
        let life = Lifecycle::new(&shared.settings);
        let faults = shared.settings.faults.clustering_panics;
        IdentityClusterer {
            shared,
            life,
            faults,
            ticks: 0,
            last_tick_ms: 0,
            dirty: 0,
            passing: 0,
            debounce: None,
            oldest: None,
            backlog: false,
            running: 0,
            busy_since: None,
            backoff: Backoff::default(),
            restart_wait: Duration::ZERO,
        }
    }

    /// Schedules the pass for the evidence waiting: after what is left of
    /// the debounce, or (while a pass runs) once that pass is committed.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if self.debounce.is_some() || self.life.paused || self.running >= MAX_PASSES {
            // A running pass schedules the next one when it is done.
            return;
        }
        let Some(oldest) = self.oldest else { return };
        let cap = Duration::from_millis(self.shared.settings.clustering.debounce_ms);
        let wait = debounce_wait(cap, oldest.elapsed(), self.backlog);
        self.debounce = Some(ctx.run_later(wait, |act, ctx| {
            act.debounce = None;
            ctx.notify(Pass);
        }));
    }

    /// Starts a pass future (after an optional reload); the reply comes
    /// once the pass is committed and the campaign layer told.
    fn pass(
        &mut self,
        reload: bool,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<PassReport, WorkError>> {
        if let Some(h) = self.debounce.take() {
            ctx.cancel_future(h);
        }
        let inject = self.faults > 0;
        self.faults = self.faults.saturating_sub(1);
        self.running += 1;
        self.busy_since.get_or_insert_with(Instant::now);
        let taking = self.dirty.max(1);
        self.passing += taking;
        // Evidence arriving from now on is the next pass's.
        self.oldest = None;
        self.backlog = false;
        let shared = self.shared.clone();
        let fut = async move {
            if reload {
                shared.engine.lock().await.valid = false;
            }
            identity_pass(&shared, inject).await
        };
        Box::pin(fut.into_actor(self).map(move |r, act, ctx| {
            act.running -= 1;
            act.passing = act.passing.saturating_sub(taking);
            if act.running == 0 {
                act.busy_since = None;
            }
            match &r {
                Ok(report) => {
                    act.backoff.reset();
                    act.ticks += 1;
                    act.last_tick_ms = report.took_ms;
                    act.dirty = act.dirty.saturating_sub(taking);
                    act.shared
                        .addrs()
                        .campaign
                        .do_send(IdentitiesSettled { tick: act.ticks });
                    // Evidence that came while this pass ran.
                    act.schedule(ctx);
                }
                Err(e) => match act.life.failed(&act.shared, e) {
                    Disposition::Retry => {
                        // The Publisher failed this commit or an earlier one
                        // (it restarts itself): the next pass reloads first.
                        warn!(error = %e, "pass not committed; passing again after a reload");
                        if !act.life.paused {
                            ctx.notify(Pass);
                        }
                    }
                    Disposition::Restart => {
                        error!(error = %e, "identity clustering failed; restarting the clusterer");
                        // The restarted actor backs off before it reloads,
                        // so a load that keeps failing does not spin
                        // through the budget.
                        act.restart_wait = act.backoff.next_wait();
                        ctx.stop();
                    }
                    Disposition::Exit => {
                        error!(error = %e, "identity clustering failed; the lease is gone");
                    }
                },
            }
            r.map(|mut rep| {
                rep.ticks = act.ticks;
                rep
            })
        }))
    }
}

/// How long evidence that has waited `waited` still waits before a pass:
/// nothing under a backlog (`backlog`: the read it came from was full) or
/// once it has waited `cap` (`clustering.debounce_ms`) — as evidence that
/// arrived during a long pass has — else the rest of `cap`.
pub fn debounce_wait(cap: Duration, waited: Duration, backlog: bool) -> Duration {
    if backlog {
        Duration::ZERO
    } else {
        cap.saturating_sub(waited)
    }
}

/// One identity pass: reload if needed, tick on a blocking thread, commit.
async fn identity_pass(shared: &Arc<Shared>, inject: bool) -> Result<PassReport, WorkError> {
    let mut engine = shared.engine.clone().lock_owned().await;
    let t = Instant::now();
    ensure_loaded(&mut engine, shared).await?;
    let fault = inject.then_some("faults.clustering_panics");
    let w = cluster_and_commit(shared, "identity", engine, fault, |e, ctx| {
        e.identities
            .tick(&mut e.store, ctx)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await?;
    if w.events > 0 || w.identities > 0 {
        info!(
            events = w.events,
            identities = w.identities,
            observations = w.observations,
            "committed an identity pass"
        );
    }
    let took = t.elapsed();
    shared.metrics().identity_pass.observe(took.as_secs_f64());
    Ok(PassReport {
        ticks: 0,
        took_ms: took.as_millis() as u64,
        observations: w.stored,
        events: w.events,
    })
}

impl Actor for IdentityClusterer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let slow = Duration::from_millis(self.shared.settings.clustering.slow_tick_ms);
        ctx.run_interval(slow, |act, ctx| {
            if !act.life.paused {
                ctx.notify(Pass);
            }
        });
        // First start or restart: once Redis answers, (re)load and cluster
        // whatever is stored.
        let shared = self.shared.clone();
        let backoff = std::mem::take(&mut self.restart_wait);
        async move {
            tokio::time::sleep(backoff).await;
            wait_for_redis(&shared.client).await
        }
        .into_actor(self)
        .map(|_, act, ctx| {
            act.life.resume();
            ctx.notify(Pass);
        })
        .wait(ctx);
    }
}

impl Supervised for IdentityClusterer {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.debounce = None;
        self.oldest = None;
        self.backlog = false;
        self.running = 0;
        self.passing = 0;
        self.busy_since = None;
        self.life.restarting(&self.shared, WORKER);
    }
}

impl Handler<Evidence> for IdentityClusterer {
    type Result = ();

    fn handle(&mut self, m: Evidence, ctx: &mut Context<Self>) {
        self.dirty += m.changed;
        if m.reloaded {
            ctx.notify(Pass);
        } else if m.changed > 0 {
            self.oldest.get_or_insert_with(Instant::now);
            self.backlog |= m.backlog;
            if m.backlog && self.debounce.is_some() {
                // The wait shrinks to nothing under a backlog.
                if let Some(h) = self.debounce.take() {
                    ctx.cancel_future(h);
                }
            }
            self.schedule(ctx);
        }
    }
}

impl Handler<Pass> for IdentityClusterer {
    type Result = ResponseActFuture<Self, Result<PassReport, WorkError>>;

    fn handle(&mut self, _: Pass, ctx: &mut Context<Self>) -> Self::Result {
        self.pass(false, ctx)
    }
}

impl Handler<Reload> for IdentityClusterer {
    type Result = ResponseActFuture<Self, Result<PassReport, WorkError>>;

    fn handle(&mut self, _: Reload, ctx: &mut Context<Self>) -> Self::Result {
        self.pass(true, ctx)
    }
}

impl Handler<Decide> for IdentityClusterer {
    type Result = ResponseActFuture<Self, Result<Result<Value, String>, WorkError>>;

    fn handle(&mut self, m: Decide, _: &mut Context<Self>) -> Self::Result {
        let shared = self.shared.clone();
        let fut = async move { decide(&shared, m).await };
        Box::pin(fut.into_actor(self).map(|r, act, ctx| {
            if matches!(r, Ok(Ok(_))) {
                // Applied by the next pass.
                ctx.notify(Pass);
            }
            if let Err(e) = &r {
                // A decision that could not be stored is the operator's to
                // retry; only a lost lease ends anything.
                exit_if_fatal(&act.shared, e);
            }
            r
        }))
    }
}

async fn decide(shared: &Arc<Shared>, m: Decide) -> Result<Result<Value, String>, WorkError> {
    let mut engine = shared.engine.clone().lock_owned().await;
    ensure_loaded(&mut engine, shared).await?;
    if m.kind.is_some() {
        // A decision names two stored observations (the parser already
        // refused a pair of one).
        let missing: Vec<&str> = [m.a.as_str(), m.b.as_str()]
            .into_iter()
            .filter(|o| !engine.store.observations.contains_key(*o))
            .collect();
        if !missing.is_empty() {
            return Ok(Err(format!("no such observation: {}", missing.join(", "))));
        }
    }
    let (lo, hi) = decision_pair(&m.a, &m.b);
    let mut decisions = engine.store.decisions.clone();
    let op = match m.kind {
        Some(kind) => {
            let d = Decision {
                kind,
                requested_by: m.by.clone(),
                at: now_ms(),
            };
            let op = decision_set_op(&shared.keys, lo, hi, &d);
            decisions.set(lo, hi, d);
            op
        }
        None => {
            if decisions.forget(lo, hi).is_none() {
                return Ok(Err(format!("no decision on {lo} and {hi} to forget")));
            }
            decision_del_op(&shared.keys, lo, hi)
        }
    };
    commit(shared, vec![op]).await?;
    engine.store.set_decisions(decisions);
    Ok(Ok(serde_json::json!({
        "observation_uuids": [lo, hi],
        "decision": m.kind.map(|k| k.as_str()),
        "requested_by": m.by,
        "applied": "at the next clustering pass",
    })))
}

impl Handler<SetPaused> for IdentityClusterer {
    type Result = ();

    fn handle(&mut self, m: SetPaused, ctx: &mut Context<Self>) {
        self.life.set_paused(m.0);
        if !m.0 && self.dirty > 0 {
            self.oldest.get_or_insert_with(Instant::now);
            self.schedule(ctx);
        }
    }
}

impl Handler<Restart> for IdentityClusterer {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        // The restarted actor starts from the stored state.
        let shared = self.shared.clone();
        async move { shared.engine.lock().await.valid = false }
            .into_actor(self)
            .map(|_, _, ctx: &mut Context<Self>| ctx.stop())
            .wait(ctx);
    }
}

impl Handler<Ping> for IdentityClusterer {
    type Result = Option<Health>;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Option<Health> {
        if wedged(self.busy_since, &self.shared.settings) {
            return None;
        }
        if let Ok(e) = self.shared.engine.try_lock() {
            self.dirty = e.store.changed_observations.len();
        }
        Some(self.life.health(&[
            ("ticks", self.ticks.into()),
            ("last_tick_ms", self.last_tick_ms.into()),
            ("dirty", (self.dirty + self.passing).into()),
            (
                "quarantined",
                self.shared.quarantined.load(Ordering::SeqCst).into(),
            ),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::debounce_wait;
    use std::time::Duration;

    #[test]
    fn the_debounce_shrinks_with_waiting_and_vanishes_under_a_backlog() {
        let cap = Duration::from_millis(20);
        let ms = Duration::from_millis;
        assert_eq!(debounce_wait(cap, ms(0), false), ms(20));
        assert_eq!(debounce_wait(cap, ms(15), false), ms(5));
        // Evidence that waited through a long pass is clustered at once.
        assert_eq!(debounce_wait(cap, ms(300), false), ms(0));
        assert_eq!(debounce_wait(cap, ms(0), true), ms(0));
    }
}
