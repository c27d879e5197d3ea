//! Control: listens on `{p}:control` (a dedicated pub/sub connection that
//! re-subscribes after a lost connection), runs each command (SPEC §7) by
//! sending typed messages to the other actors, and publishes exactly one
//! reply per request on `{p}:control:reply`. Commands run one at a time, in
//! arrival order; a malformed or unknown one is answered `ok: false` and
//! changes nothing.

pub mod command;

use super::campaign_clusterer::Pass as CampaignPass;
use super::engine::Shared;
use super::error::Exit;
use super::error::WorkError;
use super::heartbeat::BeatNow;
use super::identity_clusterer::{Decide, Pass, Reload};
use super::supervision::{wedged, Health, Lifecycle, Ping, Restart, SetPaused};
use super::workers::{self, WORKERS};
use crate::repository::control::{listen, publish_reply};
use crate::repository::health::{leader_and_queues, read_heartbeat};
use crate::repository::stream::{group_lag, pending_count};
use actix::prelude::*;
use command::{Action, Command, Rejected};
use decnet_clusterd::identity::DecisionKind;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::{info, warn};

const WORKER: &str = workers::CONTROL;

pub struct Control {
    shared: Arc<Shared>,
    life: Lifecycle,
    handled: u64,
    refused: u64,
    busy_since: Option<Instant>,
}

impl Control {
    pub fn new(shared: Arc<Shared>) -> Control {
        let life = Lifecycle::new(&shared.settings);
        Control {
            shared,
            life,
            handled: 0,
            refused: 0,
            busy_since: None,
        }
    }
}

type Incoming = Result<Command, Rejected>;

impl Actor for Control {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.life.resume();
        let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
        actix_rt::spawn(listen(
            self.shared.client.clone(),
            self.shared.keys.control(),
            tx,
        ));
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|m| (m, rx)) },
            )
            .map(|raw| command::parse(&raw));
        ctx.add_stream(stream);
    }
}

impl Supervised for Control {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.busy_since = None;
        self.life.restarting(&self.shared, WORKER);
    }
}

/// What to do after the reply is out.
enum After {
    Nothing,
    Stop,
    RestartSelf,
}

impl StreamHandler<Incoming> for Control {
    fn handle(&mut self, msg: Incoming, ctx: &mut Context<Self>) {
        let shared = self.shared.clone();
        self.busy_since = Some(Instant::now());
        // Our own heartbeat for `status` (the heartbeat actor cannot ping us
        // while we run the command).
        let me = self.health();
        let fut = async move {
            let (request_id, result, after) = match msg {
                Err(rejected) => (rejected.request_id, Err(rejected.error), After::Nothing),
                Ok(cmd) => {
                    let id = cmd.request_id.clone();
                    let (result, after) = match run(&shared, cmd, me).await {
                        Ok(r) => r,
                        Err(e) => (Err(e.to_string()), After::Nothing),
                    };
                    (id, result, after)
                }
            };
            let ok = result.is_ok();
            if let Err(error) = &result {
                // Escaped: the text may quote what the sender wrote.
                warn!(
                    request_id = ?request_id,
                    error = %error.escape_debug(),
                    "control command refused"
                );
            }
            if let Some(id) = request_id {
                let body = command::reply(&id, result).to_string();
                let sent: Result<(), WorkError> = async {
                    let mut conn = shared.pool.get().await?;
                    publish_reply(&mut *conn, &shared.keys, body).await?;
                    Ok(())
                }
                .await;
                if let Err(e) = sent {
                    warn!(error = %e, "could not publish a control reply");
                }
            }
            (ok, after)
        };
        fut.into_actor(self)
            .map(|(ok, after), act, ctx| {
                act.busy_since = None;
                if ok {
                    act.handled += 1;
                } else {
                    act.refused += 1;
                }
                match after {
                    After::Nothing => {}
                    After::Stop => act.shared.exit(Exit::Stop),
                    After::RestartSelf => ctx.stop(),
                }
            })
            .wait(ctx);
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The listener task ended: restart, which starts a new one.
        warn!("control listener ended; restarting control");
        ctx.stop();
    }
}

/// Which actors a pause/resume target names.
fn pausable(target: &str) -> Option<(bool, bool, bool)> {
    match target {
        "all" | "clusterd" => Some((true, true, true)),
        workers::BUS_INGEST => Some((true, false, false)),
        workers::IDENTITY => Some((false, true, false)),
        workers::CAMPAIGN => Some((false, false, true)),
        _ => None,
    }
}

type Outcome = (Result<Value, String>, After);

async fn run(shared: &Arc<Shared>, cmd: Command, me: Health) -> Result<Outcome, WorkError> {
    let a = shared.addrs();
    let mailbox = |_| WorkError::Mailbox("an actor");
    info!(action = ?cmd.action, target = %cmd.target, by = %cmd.requested_by, "control command");
    let r = match cmd.action {
        Action::Status => Ok(status(shared, me).await?),
        Action::Pause | Action::Resume => {
            let pause = matches!(cmd.action, Action::Pause);
            match pausable(&cmd.target) {
                None => Err(format!(
                    "`{}` cannot be paused; targets: all, bus-ingest, clusterer, campaign-clusterer",
                    cmd.target
                )),
                Some((bus, ids, camps)) => {
                    if bus {
                        a.bus.send(SetPaused(pause)).await.map_err(mailbox)?;
                    }
                    if ids {
                        a.identity.send(SetPaused(pause)).await.map_err(mailbox)?;
                    }
                    if camps {
                        a.campaign.send(SetPaused(pause)).await.map_err(mailbox)?;
                    }
                    let state = if pause { "paused" } else { "running" };
                    Ok(serde_json::json!({"target": cmd.target, "state": state}))
                }
            }
        }
        Action::Tick => {
            let report = a.identity.send(Pass).await.map_err(mailbox)??;
            let campaign_ticks = a.campaign.send(CampaignPass).await.map_err(mailbox)??;
            Ok(serde_json::json!({
                "ticks": report.ticks,
                "last_tick_ms": report.took_ms,
                "campaign_ticks": campaign_ticks,
            }))
        }
        Action::Recluster => {
            let report = a.identity.send(Reload).await.map_err(mailbox)??;
            a.campaign.send(CampaignPass).await.map_err(mailbox)??;
            Ok(serde_json::json!({"reloaded": true, "observations": report.observations}))
        }
        Action::Restart => {
            let t = cmd.target.as_str();
            let all = t == "all" || t == "clusterd";
            let mut restarted = Vec::new();
            if all || t == workers::BUS_INGEST {
                a.bus.do_send(Restart);
                restarted.push(workers::BUS_INGEST);
            }
            if all || t == workers::IDENTITY {
                a.identity.do_send(Restart);
                restarted.push(workers::IDENTITY);
            }
            if all || t == workers::CAMPAIGN {
                a.campaign.do_send(Restart);
                restarted.push(workers::CAMPAIGN);
            }
            if all || t == workers::PUBLISHER {
                a.publisher.do_send(Restart);
                restarted.push(workers::PUBLISHER);
            }
            if all || t == workers::HEARTBEAT {
                a.heartbeat.do_send(Restart);
                restarted.push(workers::HEARTBEAT);
            }
            let me = all || t == WORKER;
            if me {
                restarted.push(WORKER);
            }
            let result = Ok(serde_json::json!({"restarted": restarted}));
            return Ok((
                result,
                if me {
                    After::RestartSelf
                } else {
                    After::Nothing
                },
            ));
        }
        Action::Stop => {
            return Ok((Ok(serde_json::json!({"stopping": true})), After::Stop));
        }
        Action::Link(x, y) => {
            decide(shared, x, y, Some(DecisionKind::Link), &cmd.requested_by).await?
        }
        Action::Separate(x, y) => {
            decide(
                shared,
                x,
                y,
                Some(DecisionKind::Separate),
                &cmd.requested_by,
            )
            .await?
        }
        Action::Forget(x, y) => decide(shared, x, y, None, &cmd.requested_by).await?,
    };
    Ok((r, After::Nothing))
}

async fn decide(
    shared: &Shared,
    a: String,
    b: String,
    kind: Option<DecisionKind>,
    by: &str,
) -> Result<Result<Value, String>, WorkError> {
    shared
        .addrs()
        .identity
        .send(Decide {
            a,
            b,
            kind,
            by: by.to_string(),
        })
        .await
        .map_err(|_| WorkError::Mailbox("the clusterer"))?
}

async fn status(shared: &Arc<Shared>, me: Health) -> Result<Value, WorkError> {
    // Fresh heartbeats first, so the reply shows the state as of now.
    shared
        .addrs()
        .heartbeat
        .send(BeatNow { control: Some(me) })
        .await
        .map_err(|_| WorkError::Mailbox("the heartbeat"))??;
    let mut conn = shared.pool.get().await?;
    let k = &shared.keys;
    let (leader, input, deadletter) = leader_and_queues(&mut *conn, k).await?;
    let pending = pending_count(&mut conn, k).await?;
    let lag = group_lag(&mut conn, k).await;
    let mut workers = Map::new();
    for w in WORKERS {
        if let Some(v) = read_heartbeat(&mut *conn, k, w).await? {
            workers.insert(w.to_string(), v);
        }
    }
    Ok(serde_json::json!({
        "workers": workers,
        "leader": leader,
        "queues": {"input": input, "pending": pending, "lag": lag, "deadletter": deadletter},
    }))
}

impl Control {
    fn health(&self) -> Health {
        self.life.health(&[
            ("commands", self.handled.into()),
            ("refused", self.refused.into()),
        ])
    }
}

impl Handler<Ping> for Control {
    type Result = Option<Health>;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Option<Health> {
        if wedged(self.busy_since, &self.shared.settings) {
            return None;
        }
        Some(self.health())
    }
}

impl Handler<Restart> for Control {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
