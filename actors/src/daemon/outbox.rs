//! The outbox: the Publisher actor, and how producers hand it their
//! writes ([`commit`], [`enqueue`]). Every change set of the clusterers (rows,
//! assignments, decisions) and the lifecycle events that announce it are
//! written in one fenced MULTI/EXEC transaction, so an event never goes out
//! without its change and a stale leader is refused by Redis itself.
//! Commits are applied one at a time, in the order they arrive, on the
//! publisher's own connection: the fence is a WATCH, which belongs to the
//! connection, and a large commit may take longer than the pool's timeout.
//!
//! Producers enqueue while they hold the engine and await the result after
//! releasing it, so Redis applies one change set while the next is being
//! computed. What lands is always a prefix of what was enqueued: once a
//! commit of an engine generation fails, every later commit of that
//! generation is refused ([`WorkError::Stale`]) until the engine has been
//! reloaded from Redis.

use super::connection::{connect, RESPONSE_TIMEOUT};
use super::engine::Shared;
use super::error::WorkError;
use super::metrics::Stream;
use super::supervision::{wedged, Disposition, Health, Lifecycle, Ping, Restart};
use super::workers;
use crate::repository::{CommitError, Op, Prepared};
use actix::prelude::*;
use redis::aio::MultiplexedConnection;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tracing::{debug, warn};

const WORKER: &str = workers::PUBLISHER;

/// Apply these operations atomically, if this instance holds the lease.
#[derive(Message)]
#[rtype(result = "Result<usize, WorkError>")]
pub struct Commit {
    /// The transaction, being built on a blocking thread: a producer
    /// enqueues while it holds the engine (so commits land in the order the
    /// in-memory changes were made) and the transaction is built meanwhile.
    pub tx: tokio::sync::oneshot::Receiver<Prepared>,
    /// The engine generation the ops derive from (`None`: not from it).
    pub generation: Option<u64>,
}

/// Answers once every commit enqueued before it has landed or failed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Barrier;

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
        let request = shared.addrs().publisher.send(Commit { tx, generation });
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

pub struct Publisher {
    shared: Arc<Shared>,
    conn: Option<MultiplexedConnection>,
    life: Lifecycle,
    commits: u64,
    events: u64,
    last_commit_ms: u64,
    busy_since: Option<Instant>,
    /// Commits refused because an earlier one of their state failed.
    refused: u64,
    /// Test-only: this many of the next state commits fail.
    faults: u32,
}

impl Publisher {
    pub fn new(shared: Arc<Shared>) -> Publisher {
        let life = Lifecycle::new(&shared.settings);
        let shared_faults = shared.settings.faults.commit_failures;
        Publisher {
            shared,
            conn: None,
            life,
            commits: 0,
            events: 0,
            last_commit_ms: 0,
            busy_since: None,
            refused: 0,
            faults: shared_faults,
        }
    }
}

impl Actor for Publisher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.life.resume();
        // Enqueue order is commit order only while the mailbox has room;
        // producers each await their own commit, so a few are ever queued.
        ctx.set_mailbox_capacity(1024);
    }
}

impl Supervised for Publisher {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.conn = None;
        self.busy_since = None;
        self.life.restarting(&self.shared, WORKER);
    }
}

impl Handler<Commit> for Publisher {
    type Result = AtomicResponse<Self, Result<usize, WorkError>>;

    fn handle(&mut self, msg: Commit, _: &mut Context<Self>) -> Self::Result {
        let generation = msg.generation;
        if generation.is_some_and(|g| g < self.shared.broken.load(Ordering::SeqCst)) {
            self.refused += 1;
            self.shared.metrics().refused.inc();
            return AtomicResponse::new(Box::pin(fut::ready(Err(WorkError::Stale))));
        }
        let inject = generation.is_some() && self.faults > 0;
        self.faults = self.faults.saturating_sub(u32::from(inject));
        let shared = self.shared.clone();
        let conn = self.conn.take();
        self.busy_since = Some(Instant::now());
        let fut = async move {
            if inject {
                return Err(WorkError::Injected("faults.commit_failures"));
            }
            // The sender is gone only when building the transaction panicked.
            let tx = msg
                .tx
                .await
                .map_err(|_| WorkError::Panic("building a commit's transaction".to_string()))?;
            let mut conn = match conn {
                Some(c) => c,
                None => connect(&shared.client, RESPONSE_TIMEOUT).await?,
            };
            let r = shared.lease.commit_prepared(&mut conn, &tx).await;
            match r {
                Ok(n) => {
                    let per = tx.events_per_stream();
                    let stream = |i: usize| per.get(i).copied().unwrap_or(0);
                    // In the order of `Shared::event_streams`.
                    let metrics = shared.metrics();
                    metrics.events(Stream::Identity, stream(0));
                    metrics.events(Stream::Campaign, stream(1));
                    Ok((conn, n, tx.events()))
                }
                Err(CommitError::Fenced) => Err(WorkError::Fenced),
                Err(CommitError::Redis(e)) => Err(WorkError::Redis(e)),
            }
        };
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(move |r, act, ctx| {
            let took = act.busy_since.take().map(|t| t.elapsed());
            let metrics = act.shared.metrics();
            if r.is_ok() {
                metrics.commits.inc();
                if let Some(t) = took {
                    metrics.commit_seconds.observe(t.as_secs_f64());
                }
            } else {
                metrics.commit_failures.inc();
            }
            let took = took.map_or(0, |t| t.as_millis() as u64);
            match r {
                Ok((conn, n, events)) => {
                    act.conn = Some(conn);
                    act.commits += 1;
                    act.events += events;
                    act.last_commit_ms = took;
                    debug!(ops = n, events, took_ms = took, "committed");
                    Ok(n)
                }
                Err(e) => {
                    warn!(error = %e, "commit failed");
                    if let Some(g) = generation {
                        act.shared.broken.fetch_max(g + 1, Ordering::SeqCst);
                    }
                    if act.life.failed(&act.shared, &e) == Disposition::Restart {
                        // A lost connection: reconnect through a restart.
                        ctx.stop();
                    }
                    Err(WorkError::Commit(e.to_string()))
                }
            }
        })))
    }
}

impl Handler<Barrier> for Publisher {
    type Result = ();

    fn handle(&mut self, _: Barrier, _: &mut Context<Self>) {}
}

impl Handler<Ping> for Publisher {
    type Result = Option<Health>;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Option<Health> {
        if wedged(self.busy_since, &self.shared.settings) {
            return None;
        }
        Some(self.life.health(&[
            ("commits", self.commits.into()),
            ("events_published", self.events.into()),
            ("last_commit_ms", self.last_commit_ms.into()),
            ("refused", self.refused.into()),
        ]))
    }
}

impl Handler<Restart> for Publisher {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
