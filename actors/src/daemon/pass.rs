//! What a holder of the engine runs: the reload before use (after a
//! failure left the state invalid, or a commit of it failed) and the body
//! of a clustering pass that both layers share (tick on a blocking thread,
//! journal → writes, hand them to the Publisher, release the engine before
//! awaiting the commit).

use super::connection::{connect, RESPONSE_TIMEOUT};
use super::engine::{now_ms, Engine, Shared};
use super::error::{panicked, WorkError};
use super::outbox;
use crate::repository;
use decnet_clusterd::identity::clusterer::TickContext;
use decnet_clusterd::store::Store;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tracing::{debug, error, info};

/// Reloads the store from Redis and starts both clusterers afresh (their
/// next passes rebuild from the store and reconcile: nothing is renamed)
/// when the state is not valid. True when it reloaded.
pub async fn ensure_loaded(engine: &mut Engine, shared: &Shared) -> Result<bool, WorkError> {
    if engine.valid && engine.loads >= shared.broken.load(Ordering::SeqCst) {
        return Ok(false);
    }
    // Commits already handed to the Publisher land (or are refused)
    // before Redis is read, so the reload sees all of them.
    if let Some(addrs) = shared.addrs.get() {
        addrs
            .publisher
            .send(outbox::Barrier)
            .await
            .map_err(|_| WorkError::Mailbox("the publisher"))?;
    }
    let t = Instant::now();
    let mut conn = connect(&shared.client, RESPONSE_TIMEOUT).await?;
    let (store, quarantined) = repository::load_checked(&mut conn, &shared.keys, |what, n| {
        if n % 100_000 == 0 {
            info!(what, loaded = n, "loading the repository");
        }
    })
    .await?;
    // A row that cannot be read is left out, not an outage: each newly
    // found one is named once in the quarantine stream.
    let new: Vec<_> = quarantined
        .iter()
        .filter(|q| !engine.quarantined.contains(q))
        .cloned()
        .collect();
    for q in &new {
        error!(
            key = %q.key.escape_debug(),
            reason = %q.reason.escape_debug(),
            "stored row quarantined: left out of the load, kept in Redis"
        );
    }
    repository::report_quarantined(&mut conn, &shared.keys, &new).await?;
    shared
        .quarantined
        .store(quarantined.len() as u64, Ordering::SeqCst);
    engine.quarantined = quarantined;
    info!(
        observations = store.observations.len(),
        identities = store.identities.len(),
        campaigns = store.campaigns.len(),
        elapsed_ms = t.elapsed().as_millis() as u64,
        "repository loaded"
    );
    let fresh = Engine::new(&shared.settings).map_err(WorkError::Cluster)?;
    engine.store = store;
    engine.identities = fresh.identities;
    engine.campaigns = fresh.campaigns;
    engine.valid = true;
    engine.loads = engine.loads.max(shared.broken.load(Ordering::SeqCst)) + 1;
    let (o, i, c) = counts(&engine.store);
    shared.metrics().counts(o, i, c);
    shared.telemetry.loaded.store(true, Ordering::Relaxed);
    Ok(true)
}

/// Observations, identities and campaigns stored (merged-out rows not
/// counted).
fn counts(store: &Store) -> (usize, usize, usize) {
    (
        store.observations.len(),
        store
            .identities
            .len()
            .saturating_sub(store.identity_groups.merged_into.len()),
        store
            .campaigns
            .len()
            .saturating_sub(store.campaign_groups.merged_into.len()),
    )
}

/// What a committed pass wrote.
#[derive(Clone, Copy, Debug, Default)]
pub struct Written {
    pub events: usize,
    pub identities: usize,
    pub campaigns: usize,
    pub observations: usize,
    /// Observations in the store after the pass.
    pub stored: usize,
}

/// The body of a clustering pass, shared by both layers: with the engine
/// held (and marked invalid until the tick is done), runs `tick` on a
/// blocking thread — a panic there comes back as [`WorkError::Panic`] —
/// turns its journal into writes there too, hands them to the Publisher and
/// releases the engine before awaiting the commit, so the next batch or
/// pass works while Redis applies this one. `inject` is the test-only
/// fault: the pass panics with that message.
pub async fn cluster_and_commit(
    shared: &Shared,
    layer: &'static str,
    mut engine: tokio::sync::OwnedMutexGuard<Engine>,
    inject: Option<&'static str>,
    tick: fn(&mut Engine, &mut TickContext) -> Result<(), String>,
) -> Result<Written, WorkError> {
    engine.valid = false;
    let now = now_ms();
    let started = Instant::now();
    let keys = shared.keys.clone();
    let maxlen = shared.settings.output.stream_maxlen;
    let (mut engine, r) = tokio::task::spawn_blocking(move || {
        if let Some(fault) = inject {
            panic!("injected fault ({fault})");
        }
        let mut new_id = || uuid::Uuid::new_v4().to_string();
        let mut ctx = TickContext {
            now,
            new_id: &mut new_id,
        };
        engine.store.timings = Default::default();
        let r = tick(&mut engine, &mut ctx).map(|()| {
            let phases = engine.store.timings.phases().map(|(name, d)| {
                let ms = d.as_secs_f64() * 1000.0;
                (name, (ms * 10.0).round() / 10.0)
            });
            debug!(layer, ?phases, "clustering pass phases (ms)");
            let journal = engine.store.take_journal();
            let written = Written {
                events: journal.events.len(),
                identities: journal.identities.len() + journal.identity_campaigns.len(),
                campaigns: journal.campaigns.len(),
                observations: journal.observation_identity.len(),
                stored: engine.store.observations.len(),
            };
            let ops = if journal.is_empty() {
                Vec::new()
            } else {
                repository::journal_ops(&keys, &journal, maxlen, now)
            };
            (written, ops, counts(&engine.store))
        });
        (engine, r)
    })
    .await
    .map_err(panicked)?;
    let (written, ops, (o, i, c)) = r.map_err(WorkError::Cluster)?;
    let ticked = Instant::now();
    let committed = outbox::enqueue(shared, ops, Some(engine.loads));
    engine.valid = true;
    drop(engine);
    committed.await?;
    shared.metrics().counts(o, i, c);
    debug!(
        layer,
        events = written.events,
        tick_ms = (ticked - started).as_millis() as u64,
        commit_ms = ticked.elapsed().as_millis() as u64,
        "clustering pass"
    );
    Ok(written)
}
