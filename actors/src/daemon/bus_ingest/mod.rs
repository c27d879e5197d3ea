//! BusIngest: reads `{p}:stream:attacker` through the `clusterd` consumer
//! group on its own blocking-read connection, validates each entry, merges
//! the evidence into the store, writes the changed observation hashes,
//! dead-letters what cannot be used and acks — in one fenced transaction, so
//! nothing is acked before it is written — then tells the IdentityClusterer
//! how much changed. The commit goes through the Publisher, handed over
//! while the engine is held (so it lands before any pass that saw the
//! batch) and awaited apart: the next batch is read and validated while
//! Redis applies this one. A batch whose commit fails, or is refused
//! because an earlier one failed, is read again from the pending entries
//! once the engine has been reloaded.
//!
//! Our own pending entries (read before a crash, never acked) are read
//! first, on every (re)start; entries other consumers left pending are taken
//! over with XAUTOCLAIM once idle for `ingest.claim_idle_ms`, at start and
//! periodically. An entry delivered more than `ingest.max_deliveries` times
//! is dead-lettered instead of retried forever.
//!
//! With `ingest.trim_acked`, at most once every [`TRIM_EVERY`] a batch
//! first trims the input stream of the entries every consumer group on it
//! has acknowledged (`repository::trim`): what any group
//! still has pending or has not read stays, so a kill -9 between an ack
//! and the trim loses nothing. A failed trim is warned about (once, until
//! one succeeds) and never stops ingest.

mod batch;

use super::connection::{connect, wait_for_redis, Backoff, RESPONSE_TIMEOUT};
use super::engine::Shared;
use super::error::WorkError;
use super::supervision::{wedged, Disposition, Health, Lifecycle, Ping, Restart, SetPaused};
use super::workers;
use crate::repository::stream::ensure_group;
use crate::repository::trim::Trimmed;
use actix::prelude::*;
use batch::{run_batch, Job, PendingCommit};
use redis::aio::MultiplexedConnection;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

const WORKER: &str = workers::BUS_INGEST;

/// Commits in flight at most: one being applied while the next batch is
/// merged and handed over.
const MAX_COMMITTING: usize = 2;

/// How often the input stream is trimmed of what every group acked (the
/// loop runs at least every `ingest.block_ms`, so an idle stream is
/// trimmed too): often enough that the stream holds about a second of
/// input, rarely enough that its three commands cost nothing.
pub(super) const TRIM_EVERY: Duration = Duration::from_secs(1);

/// The fewest entries a read asks for (or `ingest.batch`, when smaller).
const MIN_READ: usize = 64;

/// How many entries the next read asks for: twice what the last read
/// took, or the group's lag when known and larger, as a power of two
/// between [`MIN_READ`] and `cap` (`ingest.batch`). A read that came back
/// full doubles it, so a backlog is read in the largest batches within a
/// few reads; an idle stream brings it back to the floor.
pub(super) fn next_read_count(read: usize, lag: Option<i64>, cap: usize) -> usize {
    let lag = lag.map_or(0, |l| usize::try_from(l).unwrap_or(0));
    let want = read.saturating_mul(2).max(lag).max(1);
    want.checked_next_power_of_two()
        .unwrap_or(usize::MAX)
        .clamp(MIN_READ.min(cap), cap)
}

/// Read and process the next batch (the actor's loop, one message a batch).
#[derive(Message)]
#[rtype(result = "()")]
struct Next;

/// Stop reading; answers once the batch in hand is committed and acked.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

pub struct BusIngest {
    shared: Arc<Shared>,
    consumer: String,
    conns: Option<(MultiplexedConnection, MultiplexedConnection)>,
    draining: bool,
    life: Lifecycle,
    /// Read our own pending entries before new ones.
    pending_first: bool,
    last_claim: Option<Instant>,
    last_lag: Option<Instant>,
    last_trim: Option<Instant>,
    /// The last trim failed (warned once until one succeeds).
    trim_failing: bool,
    busy_since: Option<Instant>,
    in_flight: Arc<AtomicBool>,
    /// Entries the next read asks for (adapts to the backlog: see
    /// [`next_read_count`]).
    count: usize,
    /// Commits handed to the Publisher and not yet answered: the next batch
    /// is read while the last one is applied.
    committing: Arc<AtomicUsize>,
    backoff: Backoff,
    faults: u32,
    ingested: u64,
    dead_lettered: u64,
    unknown_topics: u64,
    lag: i64,
    /// Input entries removed by trims of what every group acked.
    trimmed: u64,
}

impl BusIngest {
    pub fn new(shared: Arc<Shared>, consumer: String) -> BusIngest {
        let life = Lifecycle::new(&shared.settings);
        let faults = shared.settings.faults.ingest_failures;
        let count = MIN_READ.min(shared.settings.ingest.batch);
        BusIngest {
            shared,
            consumer,
            conns: None,
            draining: false,
            life,
            pending_first: true,
            last_claim: None,
            last_lag: None,
            last_trim: None,
            trim_failing: false,
            busy_since: None,
            in_flight: Arc::new(AtomicBool::new(false)),
            count,
            committing: Arc::new(AtomicUsize::new(0)),
            backoff: Backoff::default(),
            faults,
            ingested: 0,
            dead_lettered: 0,
            unknown_topics: 0,
            lag: 0,
            trimmed: 0,
        }
    }
}

impl Actor for BusIngest {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.pending_first = true;
        let shared = self.shared.clone();
        async move { wait_for_redis(&shared.client).await }
            .into_actor(self)
            .map(|_, act, ctx| {
                act.life.resume();
                ctx.notify(Next);
            })
            .wait(ctx);
    }
}

impl Supervised for BusIngest {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.conns = None;
        self.busy_since = None;
        self.in_flight.store(false, Ordering::SeqCst);
        self.committing.store(0, Ordering::SeqCst);
        self.life.restarting(&self.shared, WORKER);
    }
}

impl Handler<Next> for BusIngest {
    type Result = ();

    fn handle(&mut self, _: Next, ctx: &mut Context<Self>) {
        if self.draining {
            return;
        }
        if self.life.paused {
            ctx.run_later(Duration::from_millis(100), |_, ctx| ctx.notify(Next));
            return;
        }
        if self.committing.load(Ordering::SeqCst) >= MAX_COMMITTING {
            ctx.run_later(Duration::from_millis(2), |_, ctx| ctx.notify(Next));
            return;
        }
        let s = &self.shared.settings;
        let claim = self
            .last_claim
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(s.ingest.claim_idle_ms));
        let lag = self
            .last_lag
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(s.heartbeat.interval_ms));
        let trim = s.ingest.trim_acked && self.last_trim.is_none_or(|t| t.elapsed() >= TRIM_EVERY);
        let fail = self.faults > 0;
        self.faults = self.faults.saturating_sub(1);
        let job = Job {
            shared: self.shared.clone(),
            consumer: self.consumer.clone(),
            from_pending: self.pending_first,
            // Own pending entries (after a restart or a claim) are read in
            // the largest batches, as they always were.
            count: if self.pending_first {
                s.ingest.batch
            } else {
                self.count
            },
            claim,
            lag,
            trim,
            fail,
        };
        let conns = self.conns.take();
        self.busy_since = Some(Instant::now());
        self.in_flight.store(true, Ordering::SeqCst);
        let fut = async move {
            let (mut reader, mut writer) = match conns {
                Some(c) => c,
                None => {
                    let block = Duration::from_millis(job.shared.settings.ingest.block_ms);
                    let reader = connect(&job.shared.client, block + RESPONSE_TIMEOUT).await?;
                    let mut writer = connect(&job.shared.client, RESPONSE_TIMEOUT).await?;
                    ensure_group(&mut writer, &job.shared.keys).await?;
                    (reader, writer)
                }
            };
            let batch = run_batch(&job, &mut reader, &mut writer).await?;
            Ok::<_, WorkError>((reader, writer, batch))
        };
        fut.into_actor(self)
            .map(move |r, act, ctx| {
                act.busy_since = None;
                act.in_flight.store(false, Ordering::SeqCst);
                match r {
                    Ok((reader, writer, mut b)) => {
                        act.conns = Some((reader, writer));
                        if let Some(commit) = b.commit.take() {
                            act.await_commit(commit, ctx);
                        }
                        if fail {
                            // An empty read had nothing to fail on.
                            act.faults += 1;
                        }
                        act.backoff.reset();
                        if claim {
                            act.last_claim = Some(Instant::now());
                        }
                        if let Some(t) = b.trimmed.take() {
                            act.last_trim = Some(Instant::now());
                            act.trim_done(t);
                        }
                        if let Some(l) = b.lag {
                            act.lag = l;
                            act.last_lag = Some(Instant::now());
                        }
                        act.count = next_read_count(
                            b.read,
                            b.lag,
                            act.shared.settings.ingest.batch,
                        );
                        if act.pending_first && b.read == 0 {
                            act.pending_first = false;
                        }
                        if b.claimed > 0 {
                            act.pending_first = true;
                        }
                        act.ingested += b.ingested;
                        act.dead_lettered += b.dead_lettered;
                        act.unknown_topics += b.unknown_topics;
                        ctx.notify(Next);
                    }
                    // A batch's commit is awaited apart (`await_commit`).
                    Err(e) => match act.life.failed(&act.shared, &e) {
                        Disposition::Exit => {}
                        Disposition::Retry => {
                            warn!(error = %e, "batch not committed; reading it again");
                            act.pending_first = true;
                            ctx.notify(Next);
                        }
                        Disposition::Restart => {
                            warn!(error = %e, backoff_ms = act.backoff.current().as_millis() as u64, "ingest failed; restarting bus-ingest");
                            // Back off before the restart reconnects, so a
                            // Redis that is down is not hammered.
                            let wait = act.backoff.next_wait();
                            ctx.run_later(wait, |_, ctx| ctx.stop());
                        }
                    },
                }
            })
            .spawn(ctx);
    }
}

impl BusIngest {
    /// Counts a trim's removed entries, or warns of its failure (once, until
    /// a trim succeeds again).
    fn trim_done(&mut self, t: Result<Trimmed, redis::RedisError>) {
        match t {
            Ok(t) => {
                if t.removed > 0 {
                    let minid = t.minid.map(|m| m.to_string()).unwrap_or_default();
                    debug!(removed = t.removed, %minid, "trimmed the input stream of acked entries");
                }
                self.trimmed += t.removed;
                if std::mem::take(&mut self.trim_failing) {
                    info!("trimming the input stream works again");
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut self.trim_failing, true) {
                    warn!(error = %e, "cannot trim the input stream of acked entries; it keeps growing (retried every second)");
                }
            }
        }
    }

    /// Awaits a batch's commit apart from the loop, which goes on reading.
    fn await_commit(&mut self, commit: PendingCommit, ctx: &mut Context<Self>) {
        self.committing.fetch_add(1, Ordering::SeqCst);
        commit
            .into_actor(self)
            .map(|r, act, ctx| {
                act.committing.fetch_sub(1, Ordering::SeqCst);
                let Err(e) = r else { return };
                match act.life.failed(&act.shared, &e) {
                    Disposition::Exit => {}
                    Disposition::Retry => {
                        // The Publisher failed this commit or an earlier one
                        // (it restarts itself), so the batch was not written
                        // or acked: read it again (as pending) once the
                        // engine is reloaded.
                        warn!(error = %e, "batch not committed; reading it again");
                        act.pending_first = true;
                    }
                    Disposition::Restart => {
                        warn!(error = %e, "batch not committed; restarting bus-ingest");
                        ctx.stop();
                    }
                }
            })
            .spawn(ctx);
    }
}

impl Handler<Drain> for BusIngest {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        self.draining = true;
        // Wait for the batch in hand (a read comes back within block_ms)
        // and for the commits (with their acks) of the batches before it.
        let in_flight = self.in_flight.clone();
        let committing = self.committing.clone();
        Box::pin(
            async move {
                while in_flight.load(Ordering::SeqCst) || committing.load(Ordering::SeqCst) > 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            .into_actor(self),
        )
    }
}

impl Handler<SetPaused> for BusIngest {
    type Result = ResponseActFuture<Self, ()>;

    /// A pause answers only once the batch in hand (a read comes back
    /// within `ingest.block_ms`) and the commits before it are done, so
    /// nothing is consumed or committed after the `ok` reply.
    fn handle(&mut self, m: SetPaused, _: &mut Context<Self>) -> Self::Result {
        self.life.set_paused(m.0);
        let settle = m.0;
        let in_flight = self.in_flight.clone();
        let committing = self.committing.clone();
        Box::pin(
            async move {
                while settle
                    && (in_flight.load(Ordering::SeqCst) || committing.load(Ordering::SeqCst) > 0)
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            .into_actor(self),
        )
    }
}

impl Handler<Restart> for BusIngest {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Ping> for BusIngest {
    type Result = Option<Health>;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Option<Health> {
        // A blocking read is expected to take block_ms; anything far past
        // the wedge limit is stuck.
        if wedged(self.busy_since, &self.shared.settings) {
            return None;
        }
        Some(self.life.health(&[
            ("ingested", self.ingested.into()),
            ("dead_lettered", self.dead_lettered.into()),
            ("unknown_topics", self.unknown_topics.into()),
            ("lag", self.lag.into()),
            ("trimmed", self.trimmed.into()),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::next_read_count;

    #[test]
    fn reads_grow_with_a_full_read_and_the_lag_and_shrink_when_idle() {
        // Idle: the floor.
        assert_eq!(next_read_count(0, None, 10_000), 64);
        assert_eq!(next_read_count(3, None, 10_000), 64);
        // A full read doubles it, up to the cap.
        assert_eq!(next_read_count(64, None, 10_000), 128);
        assert_eq!(next_read_count(4096, None, 10_000), 8192);
        assert_eq!(next_read_count(8192, None, 10_000), 10_000);
        // A known lag larger than that is read at once (capped).
        assert_eq!(next_read_count(64, Some(3000), 10_000), 4096);
        assert_eq!(next_read_count(64, Some(1_000_000), 10_000), 10_000);
        assert_eq!(next_read_count(64, Some(-1), 10_000), 128);
        // An operator's smaller `ingest.batch` is the cap, even under the floor.
        assert_eq!(next_read_count(0, None, 20), 20);
        assert_eq!(next_read_count(5000, Some(9000), 256), 256);
    }
}
