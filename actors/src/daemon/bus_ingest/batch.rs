//! One BusIngest batch: read (own pending entries first, after taking
//! over a dead consumer's), validate each entry on a blocking thread,
//! merge the good ones into the store with the engine held, and hand the
//! writes (changed observation hashes, dead letters, the ack of every
//! entry) to the Publisher, to be awaited apart from the loop. About once a
//! second a batch first trims the input stream of what every consumer
//! group has acked (`ingest.trim_acked`).

use crate::daemon::engine::Shared;
use crate::daemon::error::{panicked, WorkError};
use crate::daemon::identity_clusterer::Evidence;
use crate::daemon::metrics::{DeadCounts, DeadReason};
use crate::daemon::outbox;
use crate::daemon::pass::ensure_loaded;
use crate::repository::stream::{
    ack_op, claim_stale, dead_letter_op, delivery_counts, group_lag, read_group, RawEntry,
};
use crate::repository::trim::{trim_acked, Trimmed};
use crate::repository::{evidence, index_op, observation_op, Keys, Op};
use decnet_clusterd::evidence::event::{parse_entry_with, Limits, Topic};
use decnet_clusterd::evidence::{Observation, Sym};
use decnet_clusterd::phase_rules::PhaseRules;
use decnet_clusterd::store::Store;
use redis::aio::MultiplexedConnection;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tracing::{debug, warn};

/// A batch's commit, handed to the Publisher and awaited apart.
pub(super) type PendingCommit =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), WorkError>>>>;

/// What one batch did.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) commit: Option<PendingCommit>,
    pub(super) read: usize,
    pub(super) ingested: u64,
    pub(super) dead_lettered: u64,
    pub(super) unknown_topics: u64,
    pub(super) changed: usize,
    pub(super) claimed: usize,
    pub(super) reloaded: bool,
    pub(super) lag: Option<i64>,
    /// The trim of what every group acked, when this batch ran one (its
    /// failure is reported, never the batch's).
    pub(super) trimmed: Option<Result<Trimmed, redis::RedisError>>,
}

/// Everything a batch needs, moved into its future.
pub(super) struct Job {
    pub(super) shared: Arc<Shared>,
    pub(super) consumer: String,
    pub(super) from_pending: bool,
    /// Entries this read asks for (at most `ingest.batch`).
    pub(super) count: usize,
    pub(super) claim: bool,
    pub(super) lag: bool,
    /// Trim the input stream of what every group acked, before the read.
    pub(super) trim: bool,
    pub(super) fail: bool,
}

/// Reads, merges, commits and acks one batch.
pub(super) async fn run_batch(
    job: &Job,
    reader: &mut MultiplexedConnection,
    writer: &mut MultiplexedConnection,
) -> Result<Batch, WorkError> {
    let shared = &job.shared;
    let s = &shared.settings;
    let mut b = Batch::default();
    if job.claim {
        b.claimed = claim_stale(
            writer,
            &shared.keys,
            &job.consumer,
            s.ingest.claim_idle_ms,
            s.ingest.batch,
        )
        .await?;
    }
    if job.lag {
        b.lag = group_lag(writer, &shared.keys).await;
    }
    if job.trim {
        // After the acks of the batches committed so far (and bounded by
        // what is pending, so a batch read and not yet committed stays):
        // a kill -9 at any point leaves every unacked entry in the stream.
        b.trimmed = Some(trim_acked(writer, &shared.keys).await);
    }
    let entries = read_group(
        reader,
        &shared.keys,
        &job.consumer,
        job.count,
        s.ingest.block_ms,
        job.from_pending,
    )
    .await?;
    b.read = entries.len();
    if entries.is_empty() {
        return Ok(b);
    }
    let began = Instant::now();
    shared.metrics().read.inc_by(b.read as u64);
    if job.fail {
        return Err(WorkError::Injected("faults.ingest_failures"));
    }
    let deliveries = if job.from_pending {
        delivery_counts(writer, &shared.keys, &job.consumer, job.count).await?
    } else {
        HashMap::new()
    };
    // Validation needs no engine: it runs on a blocking thread, overlapping
    // a clustering pass that may hold the engine meanwhile.
    let keys = shared.keys.clone();
    let limits = s.limits.clone();
    let rules = s.phase_rules.clone();
    let (max, maxlen) = (s.ingest.max_deliveries, s.output.stream_maxlen);
    let items = tokio::task::spawn_blocking(move || {
        entries
            .into_iter()
            .map(|entry| {
                validate(
                    entry,
                    &deliveries,
                    max,
                    (&limits, rules.as_deref()),
                    &keys,
                    maxlen,
                )
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(panicked)?;
    let waited = Instant::now();
    let mut engine = shared.engine.clone().lock_owned().await;
    let locked = Instant::now();
    b.reloaded = ensure_loaded(&mut engine, shared).await?;
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
    .map_err(panicked)?;
    b.ingested = merge.ingested;
    b.unknown_topics = merge.unknown_topics;
    b.dead_lettered = merge.dead_lettered;
    let changed = merge.changed;
    let (ingested, unknown, dead) = (merge.ingested, merge.unknown_topics, merge.dead);
    let telemetry = shared.telemetry.clone();
    // Enqueued while the engine is held (commits land in that order), then
    // awaited without it: the next pass runs while Redis applies the batch.
    let merged = Instant::now();
    let committed = outbox::enqueue(shared, ops, Some(engine.loads));
    drop(engine);
    b.changed = changed;
    let b_changed = changed;
    shared.addrs().identity.do_send(Evidence {
        changed: b.changed,
        read: b.read,
        reloaded: b.reloaded,
        // A full read: more is waiting, so the pass need not wait for it.
        backlog: b.read >= job.count,
    });
    let (read, wait_ms, merge_ms) = (
        b.read,
        (locked - waited).as_millis() as u64,
        (merged - locked).as_millis() as u64,
    );
    b.commit = Some(Box::pin(async move {
        committed.await?;
        // Counted once committed: a batch read again is not counted twice.
        let m = &telemetry.metrics;
        m.ingested.inc_by(ingested);
        m.unknown_topics.inc_by(unknown);
        m.dead_lettered(&dead);
        m.ingest_batch.observe(began.elapsed().as_secs_f64());
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
    /// Dead letters per reason class.
    dead: DeadCounts,
    /// Observations whose hash is rewritten.
    changed: usize,
}

/// Merges a validated batch into the store and returns its writes: the
/// changed observations' hashes, the dead letters and the ack of every
/// entry. With `from_pending` (entries read again) every observation is
/// written, even one whose merge changed nothing in memory (its earlier
/// batch may have been merged but never committed).
fn merge_batch(
    store: &mut Store,
    keys: &Keys,
    items: Vec<(String, Item)>,
    from_pending: bool,
) -> (Vec<Op>, Merged) {
    let mut m = Merged {
        ingested: 0,
        unknown_topics: 0,
        dead_lettered: 0,
        dead: DeadCounts::default(),
        changed: 0,
    };
    let mut ops: Vec<Op> = Vec::new();
    let mut acks = Vec::with_capacity(items.len());
    let mut changed = BTreeSet::new();
    // Observations stored as parsed, with the evidence validation made
    // for them (dropped again if a later entry of the batch merges in).
    let mut fresh: HashMap<Sym, String> = HashMap::new();
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
            Item::Dead(op, reason) => {
                m.dead_lettered += 1;
                m.dead[reason.index()] += 1;
                ops.push(op);
            }
        }
        acks.push(id);
    }
    for uuid in &changed {
        if let Some(o) = store.observations.get(uuid) {
            let identity = store.identity_groups.direct.get(uuid).map(Sym::as_str);
            ops.extend(observation_op(keys, o, identity, fresh.remove(uuid)));
        }
    }
    ops.extend(index_op(keys.attackers(), &changed));
    ops.push(ack_op(keys, acks));
    m.changed = changed.len();
    (ops, m)
}

/// What one input entry amounts to.
enum Item {
    /// With the evidence of an `attacker.observed` entry, serialized here,
    /// outside the engine lock: stored as it is when the observation is new.
    Good(Box<Observation>, Option<String>),
    UnknownTopic,
    /// The dead-letter write (with the reason), and the reason's class.
    Dead(Op, DeadReason),
}

/// Validates one entry: its observation, an unknown topic (acked and
/// counted), or the dead-letter write for invalid input or an entry
/// delivered too often.
fn validate(
    (id, fields): RawEntry,
    deliveries: &HashMap<String, u64>,
    max: u64,
    (limits, rules): (&Limits, Option<&PhaseRules>),
    keys: &Keys,
    maxlen: u64,
) -> (String, Item) {
    let delivered = deliveries.get(&id).copied().unwrap_or(1);
    let (reason, class) = if delivered > max {
        (
            format!("delivered {delivered} times without being acked (max_deliveries {max})"),
            DeadReason::MaxDeliveries,
        )
    } else {
        match parse_entry_with(&fields, limits, rules) {
            Ok(p) => {
                // `attacker.observed` mostly announces a new observation,
                // whose stored evidence is exactly what was parsed.
                let evidence = (p.topic == Topic::Observed).then(|| evidence(&p.observation));
                return (id, Item::Good(Box::new(p.observation), evidence));
            }
            Err(e) if e.is_unknown_topic() => return (id, Item::UnknownTopic),
            Err(e) => (e.reason(), DeadReason::of(&e)),
        }
    };
    // One line per entry; the reason may quote attacker bytes: escaped.
    warn!(entry = %id.escape_debug(), reason = %reason.escape_debug(), "input entry dead-lettered");
    let op = dead_letter_op(keys, &id, &fields, reason, maxlen);
    (id, Item::Dead(op, class))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_made_at_validation_is_used_only_for_observations_stored_as_parsed() {
        use decnet_clusterd::evidence::Stamped;
        let keys = Keys::new("t");
        let obs = |uuid: &str, ip: &str, at: i64| {
            let mut o = Observation::new(uuid);
            o.first_seen = Some(at);
            o.ip = Some(Stamped {
                at,
                value: Sym::unique(ip),
            });
            o
        };
        let good = |o: Observation| {
            let e = evidence(&o);
            Item::Good(Box::new(o), Some(e))
        };
        let mut store = Store::default();
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
            let set = ops
                .iter()
                .find(|o| o.cmd == "SET" && o.args[0] == keys.evidence(uuid))
                .unwrap();
            assert_eq!(set.args[1], evidence(&store.observations[uuid]), "{uuid}");
        }
    }
}
