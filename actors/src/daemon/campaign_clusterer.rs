//! CampaignClusterer: keeps the identity similarity graph and resolves
//! campaigns. It runs after every committed identity pass (passes that
//! arrive while one is waiting are folded into it) and on the slow tick,
//! on a blocking thread where a panic becomes an error value, and hands its
//! change set to the Publisher. A failed pass restarts this actor; the state
//! it may have left half-changed is reloaded before anyone uses it, and the
//! identity layer is asked for a pass so both layers rebuild from it.

use super::engine::Shared;
use super::error::WorkError;
use super::identity_clusterer::{IdentitiesSettled, Pass as IdentityPass};
use super::pass::{cluster_and_commit, ensure_loaded};
use super::supervision::{wedged, Disposition, Health, Lifecycle, Ping, Restart, SetPaused, State};
use super::workers;
use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

const WORKER: &str = workers::CAMPAIGN;

/// Run a campaign pass now; answers once committed.
#[derive(Message)]
#[rtype(result = "Result<u64, WorkError>")]
pub struct Pass;

pub struct CampaignClusterer {
    shared: Arc<Shared>,
    life: Lifecycle,
    faults: u32,
    ticks: u64,
    last_tick_ms: u64,
    /// Identity passes not yet followed by a committed campaign pass.
    dirty: usize,
    /// The latest identity pass announced, and the latest one a committed
    /// campaign pass has followed (heartbeat field `identity_ticks`): a
    /// reader comparing it with the identity layer's `ticks` knows whether
    /// the campaigns have caught up.
    identity_tick: u64,
    identity_tick_settled: u64,
    /// A pass is queued (waiting for the engine): later requests join it.
    queued: bool,
    running: usize,
    busy_since: Option<Instant>,
}

impl CampaignClusterer {
    pub fn new(shared: Arc<Shared>) -> CampaignClusterer {
        let life = Lifecycle::new(&shared.settings);
        let faults = shared.settings.faults.campaign_panics;
        CampaignClusterer {
            shared,
            life,
            faults,
            ticks: 0,
            last_tick_ms: 0,
            dirty: 0,
            identity_tick: 0,
            identity_tick_settled: 0,
            queued: false,
            running: 0,
            busy_since: None,
        }
    }
}

async fn campaign_pass(shared: &Arc<Shared>, inject: bool) -> Result<u64, WorkError> {
    let mut engine = shared.engine.clone().lock_owned().await;
    let t = Instant::now();
    if ensure_loaded(&mut engine, shared).await? {
        // Both layers were rebuilt: the identity layer passes first and
        // asks for a campaign pass after it.
        shared.addrs().identity.do_send(IdentityPass);
        return Ok(0);
    }
    let fault = inject.then_some("faults.campaign_panics");
    let w = cluster_and_commit(shared, "campaign", engine, fault, |e, ctx| {
        e.campaigns
            .tick(&mut e.store, ctx)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await?;
    if w.events > 0 || w.campaigns > 0 {
        info!(
            events = w.events,
            campaigns = w.campaigns,
            identities = w.identities,
            "committed a campaign pass"
        );
    }
    let took = t.elapsed();
    shared.metrics().campaign_pass.observe(took.as_secs_f64());
    Ok(took.as_millis() as u64)
}

impl Actor for CampaignClusterer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let slow = Duration::from_millis(self.shared.settings.clustering.slow_tick_ms);
        ctx.run_interval(slow, |act, ctx| {
            if !act.life.paused {
                ctx.notify(Pass);
            }
        });
        if self.life.state == State::Restarting {
            self.life.resume();
            // After a failure the state is invalid: the identity layer
            // reloads it, passes, and then asks us for a pass.
            self.shared.addrs().identity.do_send(IdentityPass);
        }
    }
}

impl Supervised for CampaignClusterer {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.queued = false;
        self.running = 0;
        self.busy_since = None;
        self.life.restarting(&self.shared, WORKER);
    }
}

impl Handler<IdentitiesSettled> for CampaignClusterer {
    type Result = ();

    fn handle(&mut self, m: IdentitiesSettled, ctx: &mut Context<Self>) {
        self.dirty += 1;
        self.identity_tick = self.identity_tick.max(m.tick);
        if !self.queued && !self.life.paused {
            self.queued = true;
            ctx.notify(Pass);
        }
    }
}

impl Handler<Pass> for CampaignClusterer {
    type Result = ResponseActFuture<Self, Result<u64, WorkError>>;

    fn handle(&mut self, _: Pass, _: &mut Context<Self>) -> Self::Result {
        let inject = self.faults > 0;
        self.faults = self.faults.saturating_sub(1);
        self.running += 1;
        self.busy_since.get_or_insert_with(Instant::now);
        // Requests from now on need a pass that starts after them.
        self.queued = false;
        let (covers, covers_tick) = (self.dirty, self.identity_tick);
        let shared = self.shared.clone();
        let fut = async move { campaign_pass(&shared, inject).await };
        Box::pin(fut.into_actor(self).map(move |r, act, ctx| {
            act.running -= 1;
            if act.running == 0 {
                act.busy_since = None;
            }
            match &r {
                Ok(took) => {
                    act.ticks += 1;
                    act.last_tick_ms = *took;
                    // Requests that came during the pass are still open.
                    act.dirty = act.dirty.saturating_sub(covers);
                    act.identity_tick_settled = act.identity_tick_settled.max(covers_tick);
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
                        error!(error = %e, "campaign clustering failed; restarting the campaign clusterer");
                        ctx.stop();
                    }
                    Disposition::Exit => {
                        error!(error = %e, "campaign clustering failed; the lease is gone");
                    }
                },
            }
            r.map(|_| act.ticks)
        }))
    }
}

impl Handler<SetPaused> for CampaignClusterer {
    type Result = ();

    fn handle(&mut self, m: SetPaused, ctx: &mut Context<Self>) {
        self.life.set_paused(m.0);
        if !m.0 && self.dirty > 0 && !self.queued {
            self.queued = true;
            ctx.notify(Pass);
        }
    }
}

impl Handler<Restart> for CampaignClusterer {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        let shared = self.shared.clone();
        async move { shared.engine.lock().await.valid = false }
            .into_actor(self)
            .map(|_, act: &mut Self, ctx: &mut Context<Self>| {
                act.life.state = State::Restarting;
                ctx.stop()
            })
            .wait(ctx);
    }
}

impl Handler<Ping> for CampaignClusterer {
    type Result = Option<Health>;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Option<Health> {
        if wedged(self.busy_since, &self.shared.settings) {
            return None;
        }
        Some(self.life.health(&[
            ("ticks", self.ticks.into()),
            ("last_tick_ms", self.last_tick_ms.into()),
            ("dirty", self.dirty.into()),
            ("identity_ticks", self.identity_tick_settled.into()),
        ]))
    }
}
