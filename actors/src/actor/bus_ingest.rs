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

use super::identity_clusterer::Evidence;
use super::{connect, Health, Lifecycle, Ping, Restart, SetPaused, Shared, WorkError};
use crate::keys::CONSUMER_GROUP;
use crate::repository::{index_op, observation_op, Op};
use actix::prelude::*;
use decnet_clusterd::evidence::event::{parse_entry, Limits, Topic};
use decnet_clusterd::evidence::Observation;
use redis::aio::MultiplexedConnection;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

pub const WORKER: &str = "bus-ingest";

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
    busy_since: Option<Instant>,
    in_flight: Arc<AtomicBool>,
    /// Commits handed to the Publisher and not yet answered: the next batch
    /// is read while the last one is applied.
    committing: Arc<AtomicUsize>,
    backoff: Duration,
    faults: u32,
    ingested: u64,
    dead_lettered: u64,
    unknown_topics: u64,
    lag: i64,
}

impl BusIngest {
    pub fn new(shared: Arc<Shared>, consumer: String) -> BusIngest {
        let life = Lifecycle::new(&shared.settings);
        let faults = shared.settings.faults.ingest_failures;
        BusIngest {
            shared,
            consumer,
            conns: None,
            draining: false,
            life,
            pending_first: true,
            last_claim: None,
            last_lag: None,
            busy_since: None,
            in_flight: Arc::new(AtomicBool::new(false)),
            committing: Arc::new(AtomicUsize::new(0)),
            backoff: Duration::from_millis(100),
            faults,
            ingested: 0,
            dead_lettered: 0,
            unknown_topics: 0,
            lag: 0,
        }
    }
}

impl Actor for BusIngest {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.pending_first = true;
        let shared = self.shared.clone();
        async move { super::wait_for_redis(&shared).await }
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

/// A batch's commit, handed to the Publisher and awaited apart.
type PendingCommit = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), WorkError>>>>;

/// Commits in flight at most: one being applied while the next batch is
/// merged and handed over.
const MAX_COMMITTING: usize = 2;

/// What one batch did.
#[derive(Default)]
struct Batch {
    commit: Option<PendingCommit>,
    read: usize,
    ingested: u64,
    dead_lettered: u64,
    unknown_topics: u64,
    changed: usize,
    claimed: usize,
    reloaded: bool,
    lag: Option<i64>,
}

/// Everything a batch needs, moved into its future.
struct Job {
    shared: Arc<Shared>,
    consumer: String,
    from_pending: bool,
    claim: bool,
    lag: bool,
    fail: bool,
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
        let fail = self.faults > 0;
        self.faults = self.faults.saturating_sub(1);
        let job = Job {
            shared: self.shared.clone(),
            consumer: self.consumer.clone(),
            from_pending: self.pending_first,
            claim,
            lag,
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
                    let reader =
                        connect(&job.shared.client, block + super::RESPONSE_TIMEOUT).await?;
                    let mut writer = connect(&job.shared.client, super::RESPONSE_TIMEOUT).await?;
                    ensure_group(&job.shared, &mut writer).await?;
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
                        act.backoff = Duration::from_millis(100);
                        if claim {
                            act.last_claim = Some(Instant::now());
                        }
                        if let Some(l) = b.lag {
                            act.lag = l;
                            act.last_lag = Some(Instant::now());
                        }
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
                    Err(e) => {
                        act.shared.check_fenced(&e);
                        if matches!(e, WorkError::Fenced) {
                            return;
                        }
                        warn!(error = %e, backoff_ms = act.backoff.as_millis() as u64, "ingest failed; restarting bus-ingest");
                        act.life.fail();
                        // Back off before the restart reconnects, so a Redis
                        // that is down is not hammered.
                        let wait = act.backoff;
                        act.backoff = (act.backoff * 2).min(super::MAX_BACKOFF);
                        ctx.run_later(wait, |_, ctx| ctx.stop());
                    }
                }
            })
            .spawn(ctx);
    }
}

impl BusIngest {
    /// Awaits a batch's commit apart from the loop, which goes on reading.
    fn await_commit(&mut self, commit: PendingCommit, ctx: &mut Context<Self>) {
        self.committing.fetch_add(1, Ordering::SeqCst);
        commit
            .into_actor(self)
            .map(|r, act, ctx| {
                act.committing.fetch_sub(1, Ordering::SeqCst);
                match r {
                    Ok(()) => {}
                    Err(e @ (WorkError::Stale | WorkError::Commit(_))) => {
                        // The Publisher failed this commit or an earlier one
                        // (it restarts itself), so the batch was not written
                        // or acked: read it again (as pending) once the
                        // engine is reloaded.
                        warn!(error = %e, "batch not committed; reading it again");
                        act.pending_first = true;
                    }
                    Err(e) => {
                        warn!(error = %e, "batch not committed; restarting bus-ingest");
                        act.life.fail();
                        ctx.stop();
                    }
                }
            })
            .spawn(ctx);
    }
}

async fn ensure_group(shared: &Shared, conn: &mut MultiplexedConnection) -> Result<(), WorkError> {
    let r: Result<String, _> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(shared.keys.input())
        .arg(CONSUMER_GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Takes over entries another consumer (a crashed instance) read but never
/// acked, once they have been idle for `claim_idle_ms`.
async fn claim_stale(job: &Job, conn: &mut MultiplexedConnection) -> Result<usize, WorkError> {
    let s = &job.shared.settings;
    let mut cursor = "0-0".to_string();
    let mut claimed = 0;
    for _ in 0..1000 {
        let reply: redis::Value = redis::cmd("XAUTOCLAIM")
            .arg(job.shared.keys.input())
            .arg(CONSUMER_GROUP)
            .arg(&job.consumer)
            .arg(s.ingest.claim_idle_ms)
            .arg(&cursor)
            .arg("COUNT")
            .arg(s.ingest.batch)
            .arg("JUSTID")
            .query_async(conn)
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
    job: &Job,
    conn: &mut MultiplexedConnection,
) -> Result<HashMap<String, u64>, WorkError> {
    let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(job.shared.keys.input())
        .arg(CONSUMER_GROUP)
        .arg("-")
        .arg("+")
        .arg(job.shared.settings.ingest.batch)
        .arg(&job.consumer)
        .query_async(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, _, _, count)| (id, count))
        .collect())
}

/// Entries not yet delivered to the consumer group (XINFO GROUPS lag).
pub async fn group_lag(shared: &Shared, conn: &mut MultiplexedConnection) -> Option<i64> {
    let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(shared.keys.input())
        .query_async(conn)
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

/// Reads, merges, commits and acks one batch.
async fn run_batch(
    job: &Job,
    reader: &mut MultiplexedConnection,
    writer: &mut MultiplexedConnection,
) -> Result<Batch, WorkError> {
    let shared = &job.shared;
    let s = &shared.settings;
    let mut b = Batch::default();
    if job.claim {
        b.claimed = claim_stale(job, writer).await?;
    }
    if job.lag {
        b.lag = group_lag(shared, writer).await;
    }
    let from = if job.from_pending { "0" } else { ">" };
    // A read that times out replies nil.
    let reply: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(CONSUMER_GROUP)
        .arg(&job.consumer)
        .arg("COUNT")
        .arg(s.ingest.batch)
        .arg("BLOCK")
        .arg(s.ingest.block_ms)
        .arg("STREAMS")
        .arg(shared.keys.input())
        .arg(from)
        .query_async(reader)
        .await?;
    let entries = stream_entries(reply)?;
    b.read = entries.len();
    if entries.is_empty() {
        return Ok(b);
    }
    if job.fail {
        return Err(WorkError::Injected("faults.ingest_failures"));
    }
    let deliveries = if job.from_pending {
        delivery_counts(job, writer).await?
    } else {
        HashMap::new()
    };
    // Validation needs no engine: it runs on a blocking thread, overlapping
    // a clustering pass that may hold the engine meanwhile.
    let keys = shared.keys.clone();
    let limits = s.limits.clone();
    let (max, maxlen) = (s.ingest.max_deliveries, s.output.stream_maxlen);
    let items = tokio::task::spawn_blocking(move || {
        entries
            .into_iter()
            .map(|entry| validate(entry, &deliveries, max, &limits, &keys, maxlen))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| WorkError::Panic(super::panic_text(e)))?;
    let waited = Instant::now();
    let mut engine = shared.engine.clone().lock_owned().await;
    let locked = Instant::now();
    b.reloaded = engine.ensure_loaded(shared).await?;
    // Merging and writing the hashes (serializing each changed observation's
    // evidence) run on a blocking thread too, leaving the runtime thread to
    // the Publisher's I/O meanwhile. A panic there leaves the engine marked
    // invalid, to be reloaded by its next holder.
    engine.valid = false;
    let keys = shared.keys.clone();
    let from_pending = job.from_pending;
    let (engine, ops, merge) = tokio::task::spawn_blocking(move || {
        let (ops, merge) = merge_batch(&mut engine.store, &keys, items, from_pending);
        engine.valid = true;
        (engine, ops, merge)
    })
    .await
    .map_err(|e| WorkError::Panic(super::panic_text(e)))?;
    b.ingested = merge.ingested;
    b.unknown_topics = merge.unknown_topics;
    b.dead_lettered = merge.dead_lettered;
    let changed = merge.changed;
    // Enqueued while the engine is held (commits land in that order), then
    // awaited without it: the next pass runs while Redis applies the batch.
    let merged = Instant::now();
    let committed = super::enqueue(shared, ops, Some(engine.loads));
    drop(engine);
    b.changed = changed;
    let b_changed = changed;
    shared.addrs().identity.do_send(Evidence {
        changed: b.changed,
        read: b.read,
        reloaded: b.reloaded,
    });
    let (read, wait_ms, merge_ms) = (
        b.read,
        (locked - waited).as_millis() as u64,
        (merged - locked).as_millis() as u64,
    );
    b.commit = Some(Box::pin(async move {
        committed.await?;
        debug!(
            read,
            changed = b_changed,
            wait_ms,
            merge_ms,
            commit_ms = merged.elapsed().as_millis() as u64,
            "ingested a batch"
        );
        Ok(())
    }));
    Ok(b)
}

/// What merging a batch did.
struct Merged {
    ingested: u64,
    unknown_topics: u64,
    dead_lettered: u64,
    /// Observations whose hash is rewritten.
    changed: usize,
}

/// Merges a validated batch into the store and returns its writes: the
/// changed observations' hashes, the dead letters and the ack of every
/// entry. With `from_pending` (entries read again) every observation is
/// written, even one whose merge changed nothing in memory (its earlier
/// batch may have been merged but never committed).
fn merge_batch(
    store: &mut decnet_clusterd::store::Store,
    keys: &crate::keys::Keys,
    items: Vec<(String, Item)>,
    from_pending: bool,
) -> (Vec<Op>, Merged) {
    let mut m = Merged {
        ingested: 0,
        unknown_topics: 0,
        dead_lettered: 0,
        changed: 0,
    };
    let mut ops: Vec<Op> = Vec::new();
    let mut acks = Vec::with_capacity(items.len());
    let mut changed = BTreeSet::new();
    // Observations stored as parsed, with the evidence validation made
    // for them (dropped again if a later entry of the batch merges in).
    let mut fresh: HashMap<String, String> = HashMap::new();
    for (id, item) in items {
        match item {
            Item::Good(o, evidence) => {
                let uuid = o.uuid.clone();
                let new = !store.observations.contains_key(&uuid);
                if store.merge_observation_owned(*o) || from_pending {
                    changed.insert(uuid.clone());
                }
                match evidence {
                    Some(e) if new => {
                        fresh.insert(uuid, e);
                    }
                    _ => {
                        fresh.remove(&uuid);
                    }
                }
                m.ingested += 1;
            }
            Item::UnknownTopic => m.unknown_topics += 1,
            Item::Dead(op) => {
                m.dead_lettered += 1;
                ops.push(op);
            }
        }
        acks.push(id);
    }
    for uuid in &changed {
        if let Some(o) = store.observations.get(uuid) {
            let identity = store.identity_groups.direct.get(uuid).map(String::as_str);
            ops.push(observation_op(keys, o, identity, fresh.remove(uuid)));
        }
    }
    ops.extend(index_op(keys.attackers(), &changed));
    let mut ack = vec![keys.input(), CONSUMER_GROUP.to_string()];
    ack.extend(acks);
    ops.push(Op {
        cmd: "XACK",
        args: ack,
    });
    m.changed = changed.len();
    (ops, m)
}

/// One input entry as read: its id and its fields, raw bytes, in order.
type RawEntry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// The entries of an XREADGROUP reply (RESP2 arrays or RESP3 maps; nil when
/// the read timed out), moved out of the reply rather than copied. Field
/// names stay bytes like the values: a name that is not UTF-8 is a problem
/// of its entry, never of the read (which would stall ingest behind it).
fn stream_entries(reply: redis::Value) -> Result<Vec<RawEntry>, WorkError> {
    use redis::Value;
    let unexpected = |what: &str| {
        WorkError::Redis(redis::RedisError::from((
            redis::ErrorKind::Parse,
            "unexpected XREADGROUP reply",
            what.to_string(),
        )))
    };
    let bytes = |v: Value| match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        other => Err(unexpected(&format!("a field of kind {other:?}"))),
    };
    let streams: Vec<Value> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams,
        Value::Map(streams) => streams
            .into_iter()
            .map(|(name, entries)| Value::Array(vec![name, entries]))
            .collect(),
        _ => return Err(unexpected("not a list of streams")),
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(mut parts) = stream else {
            return Err(unexpected("a stream that is not a [name, entries] pair"));
        };
        let entries = match parts.pop() {
            Some(Value::Array(entries)) if parts.len() == 1 => entries,
            _ => return Err(unexpected("a stream that is not a [name, entries] pair")),
        };
        out.reserve(entries.len());
        for entry in entries {
            let Value::Array(mut e) = entry else {
                return Err(unexpected("an entry that is not an [id, fields] pair"));
            };
            let (fields, id) = match (e.pop(), e.pop()) {
                (Some(fields), Some(id)) if e.is_empty() => (fields, id),
                _ => return Err(unexpected("an entry that is not an [id, fields] pair")),
            };
            let id = String::from_utf8(bytes(id)?).map_err(|_| unexpected("a non-UTF-8 id"))?;
            let fields = match fields {
                // A pending entry deleted from the stream since.
                Value::Nil => Vec::new(),
                Value::Array(flat) => {
                    let mut pairs = Vec::with_capacity(flat.len() / 2);
                    let mut it = flat.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((bytes(k)?, bytes(v)?));
                    }
                    pairs
                }
                Value::Map(m) => m
                    .into_iter()
                    .map(|(k, v)| Ok((bytes(k)?, bytes(v)?)))
                    .collect::<Result<_, WorkError>>()?,
                _ => return Err(unexpected("entry fields that are not a list")),
            };
            out.push((id, fields));
        }
    }
    Ok(out)
}

/// Fields of an invalid entry copied into its dead letter.
const MAX_DEAD_LETTER_FIELDS: usize = 1000;

/// What one input entry amounts to.
enum Item {
    /// With the evidence of an `attacker.observed` entry, serialized here,
    /// outside the engine lock: stored as it is when the observation is new.
    Good(Box<Observation>, Option<String>),
    UnknownTopic,
    /// The dead-letter write, with the reason.
    Dead(Op),
}

/// Validates one entry: its observation, an unknown topic (acked and
/// counted), or the dead-letter write for invalid input or an entry
/// delivered too often.
fn validate(
    (id, fields): RawEntry,
    deliveries: &HashMap<String, u64>,
    max: u64,
    limits: &Limits,
    keys: &crate::keys::Keys,
    maxlen: u64,
) -> (String, Item) {
    let delivered = deliveries.get(&id).copied().unwrap_or(1);
    let reason = if delivered > max {
        format!("delivered {delivered} times without being acked (max_deliveries {max})")
    } else {
        match parse_entry(&fields, limits) {
            Ok(p) => {
                // `attacker.observed` mostly announces a new observation,
                // whose stored evidence is exactly what was parsed.
                let evidence = (p.topic == Topic::Observed)
                    .then(|| crate::repository::evidence(&p.observation));
                return (id, Item::Good(Box::new(p.observation), evidence));
            }
            Err(e) if e.is_unknown_topic() => return (id, Item::UnknownTopic),
            Err(e) => e.reason(),
        }
    };
    let mut args = vec![
        keys.deadletter(),
        "MAXLEN".into(),
        "~".into(),
        maxlen.to_string(),
        "*".into(),
    ];
    // An entry may carry thousands of tiny fields: the dead letter keeps the
    // first ones and counts the rest, so a hostile entry cannot make its
    // dead letter (and the commit that carries it) arbitrarily wide.
    for (k, v) in fields.iter().take(MAX_DEAD_LETTER_FIELDS) {
        args.push(format!("orig_{}", String::from_utf8_lossy(k)));
        args.push(String::from_utf8_lossy(v).into_owned());
    }
    if fields.len() > MAX_DEAD_LETTER_FIELDS {
        args.push("orig_fields_dropped".to_string());
        args.push((fields.len() - MAX_DEAD_LETTER_FIELDS).to_string());
    }
    args.extend([
        "entry_id".to_string(),
        id.clone(),
        "reason".to_string(),
        reason,
    ]);
    (id, Item::Dead(Op { cmd: "XADD", args }))
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
    type Result = ();

    fn handle(&mut self, m: SetPaused, _: &mut Context<Self>) {
        self.life.set_paused(m.0);
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
        if super::wedged(self.busy_since, &self.shared.settings) {
            return None;
        }
        Some(self.life.health(&[
            ("ingested", self.ingested.into()),
            ("dead_lettered", self.dead_lettered.into()),
            ("unknown_topics", self.unknown_topics.into()),
            ("lag", self.lag.into()),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn bulk(b: &[u8]) -> Value {
        Value::BulkString(b.to_vec())
    }

    #[test]
    fn evidence_made_at_validation_is_used_only_for_observations_stored_as_parsed() {
        use decnet_clusterd::evidence::Stamped;
        let keys = crate::keys::Keys::new("t");
        let obs = |uuid: &str, ip: &str, at: i64| {
            let mut o = Observation::new(uuid);
            o.first_seen = Some(at);
            o.ip = Some(Stamped {
                at,
                value: ip.to_string(),
            });
            o
        };
        let good = |o: Observation| {
            let e = crate::repository::evidence(&o);
            Item::Good(Box::new(o), Some(e))
        };
        let mut store = decnet_clusterd::store::Store::default();
        store.merge_observation(&obs("old", "192.0.2.1", 5));
        // Each later report is older than what it merges into (an earlier
        // first sighting, an older address), so the merged evidence
        // differs from the report's own.
        let items = vec![
            ("1-0".to_string(), good(obs("new", "192.0.2.2", 1))),
            // Seen twice in one batch: the second report merges in.
            ("2-0".to_string(), good(obs("twice", "192.0.2.3", 3))),
            ("3-0".to_string(), good(obs("twice", "192.0.2.4", 2))),
            // Already stored: merged, so its evidence is made again.
            ("4-0".to_string(), good(obs("old", "192.0.2.5", 2))),
        ];
        let (ops, merged) = merge_batch(&mut store, &keys, items, false);
        assert_eq!(merged.changed, 3);
        // The index set takes every changed observation in one call.
        let adds: Vec<&Vec<String>> = ops
            .iter()
            .filter(|o| o.cmd == "SADD")
            .map(|o| &o.args)
            .collect();
        assert_eq!(
            adds,
            [&["t:attackers", "new", "old", "twice"]
                .map(String::from)
                .to_vec()]
        );
        for uuid in ["new", "twice", "old"] {
            let hset = ops
                .iter()
                .find(|o| o.cmd == "HSET" && o.args[0] == keys.attacker(uuid))
                .unwrap();
            let at = hset.args.iter().position(|a| a == "evidence").unwrap();
            assert_eq!(
                hset.args[at + 1],
                crate::repository::evidence(&store.observations[uuid]),
                "{uuid}"
            );
        }
    }

    #[test]
    fn stream_replies_of_both_protocols_give_entries_in_order_with_raw_names() {
        let entry = |id: &[u8], fields: Value| Value::Array(vec![bulk(id), fields]);
        let entries = Value::Array(vec![
            entry(
                b"1-0",
                Value::Array(vec![bulk(b"topic"), bulk(b"t"), bulk(&[0xff]), bulk(b"x")]),
            ),
            // Deleted from the stream while pending.
            entry(b"2-0", Value::Nil),
        ]);
        let want: Vec<RawEntry> = vec![
            (
                "1-0".into(),
                vec![
                    (b"topic".to_vec(), b"t".to_vec()),
                    (vec![0xff], b"x".to_vec()),
                ],
            ),
            ("2-0".into(), vec![]),
        ];
        let resp2 = Value::Array(vec![Value::Array(vec![bulk(b"s"), entries.clone()])]);
        assert_eq!(stream_entries(resp2).unwrap(), want);
        let resp3 = Value::Map(vec![(bulk(b"s"), entries)]);
        assert_eq!(stream_entries(resp3).unwrap(), want);
        assert!(stream_entries(Value::Nil).unwrap().is_empty());
        // A shape Redis never sends is an error, not a silent skip (skipped
        // entries would stay pending forever).
        let odd = Value::Array(vec![Value::Array(vec![bulk(b"s"), Value::Int(3)])]);
        assert!(stream_entries(odd).is_err());
        let odd = Value::Array(vec![Value::Array(vec![
            bulk(b"s"),
            Value::Array(vec![Value::Array(vec![bulk(b"1-0")])]),
        ])]);
        assert!(stream_entries(odd).is_err());
    }
}
