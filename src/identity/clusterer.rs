//! The identity layer's seed shape (SPEC §2): a [`Clusterer`] is a named
//! algorithm with a single `tick` pass against the [`Store`]; the factory
//! [`identity_clusterer`] returns the one named by `DECNET_CLUSTERER_TYPE`.
//! `connected_components` is the first: the incremental [`IdentityGraph`],
//! reconciled into stored identities by [`crate::reconcile`].
//!
//! A tick computes everything before it changes anything, so a failed tick
//! leaves the store as it was. It records its writes and events in the
//! store's journal; a tick over unchanged evidence records nothing.

use super::graph::{ComputedIdentity, IdentityGraph};
use super::similarity::{IdentityWeights, WeightError};
use crate::evidence::time::format_timestamp;
use crate::evidence::{Millis, Observation, Sym};
use crate::reconcile::{self, ChangeSet};
use crate::set::SortedSet;
use crate::store::{IdentityRow, OutEvent, OutStream, Store, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Names the factory knows, first the default.
pub const KNOWN_CLUSTERERS: &[&str] = &["connected_components"];

/// `identity.formed` payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdentityFormed {
    pub identity_uuid: String,
    pub observation_uuids: Vec<String>,
    pub confidence: f64,
    pub first_seen_at: Option<String>,
}

/// `identity.observation.linked` payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservationLinked {
    pub identity_uuid: String,
    pub observation_uuid: String,
    pub prior_identity_uuid: Option<String>,
    pub confidence_after: f64,
}

/// `identity.merged` payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdentityMerged {
    pub winner_uuid: String,
    pub loser_uuid: String,
    pub observation_uuids: Vec<String>,
    pub confidence_after: f64,
}

/// `identity.unmerged` payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdentityUnmerged {
    pub resurrected_uuid: String,
    pub former_winner_uuid: String,
}

/// The side effects of one identity tick (SPEC §2).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterResult {
    pub identities_formed: Vec<IdentityFormed>,
    pub observations_linked: Vec<ObservationLinked>,
    pub identities_merged: Vec<IdentityMerged>,
    pub identities_unmerged: Vec<IdentityUnmerged>,
}

impl ClusterResult {
    pub fn is_empty(&self) -> bool {
        self.identities_formed.is_empty()
            && self.observations_linked.is_empty()
            && self.identities_merged.is_empty()
            && self.identities_unmerged.is_empty()
    }

    /// The events, in publication order.
    pub fn events(&self) -> Vec<OutEvent> {
        let mut out = Vec::new();
        let mut push = |topic: &str, v: serde_json::Result<serde_json::Value>| {
            if let Ok(payload) = v {
                out.push(OutEvent {
                    stream: OutStream::Identity,
                    topic: topic.to_string(),
                    payload,
                });
            }
        };
        for e in &self.identities_formed {
            push("identity.formed", serde_json::to_value(e));
        }
        for e in &self.identities_unmerged {
            push("identity.unmerged", serde_json::to_value(e));
        }
        for e in &self.identities_merged {
            push("identity.merged", serde_json::to_value(e));
        }
        for e in &self.observations_linked {
            push("identity.observation.linked", serde_json::to_value(e));
        }
        out
    }
}

/// Why a clusterer could not be built or a tick could not run.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("unknown clusterer type `{given}`; known: {}", KNOWN_CLUSTERERS.join(", "))]
    UnknownType { given: String },
    #[error("invalid identity weights: {0}")]
    Weights(#[from] WeightError),
}

/// What a tick needs from its caller besides the store.
pub struct TickContext<'a> {
    /// The clock, only for `created_at` / `updated_at` bookkeeping.
    pub now: Millis,
    /// Makes a fresh identity uuid (v4 in production).
    pub new_id: &'a mut dyn FnMut() -> String,
}

/// An identity clustering algorithm (SPEC §2).
pub trait Clusterer: Send {
    fn name(&self) -> &'static str;
    /// One pass: takes the store's changed observations and decisions,
    /// updates identities, records writes and events in the journal.
    fn tick(
        &mut self,
        store: &mut Store,
        ctx: &mut TickContext<'_>,
    ) -> Result<ClusterResult, ClusterError>;
    /// Forgets all in-memory state so the next tick rebuilds from the store.
    fn reset(&mut self);
    /// The in-memory graph, for explanations.
    fn graph(&self) -> &IdentityGraph;
}

/// The factory keyed by `DECNET_CLUSTERER_TYPE`.
pub fn identity_clusterer(
    kind: &str,
    weights: IdentityWeights,
) -> Result<Box<dyn Clusterer>, ClusterError> {
    match kind {
        "connected_components" => Ok(Box::new(ConnectedComponents::new(weights)?)),
        other => Err(ClusterError::UnknownType {
            given: other.to_string(),
        }),
    }
}

/// Connected components of the evidence graph, with operator decisions.
pub struct ConnectedComponents {
    graph: IdentityGraph,
    loaded: bool,
}

impl ConnectedComponents {
    pub fn new(weights: IdentityWeights) -> Result<Self, ClusterError> {
        Ok(ConnectedComponents {
            graph: IdentityGraph::new(weights)?,
            loaded: false,
        })
    }
}

impl Clusterer for ConnectedComponents {
    fn name(&self) -> &'static str {
        "connected_components"
    }

    fn reset(&mut self) {
        if let Ok(g) = IdentityGraph::new(self.graph.weights().clone()) {
            self.graph = g;
        }
        self.loaded = false;
    }

    fn graph(&self) -> &IdentityGraph {
        &self.graph
    }

    fn tick(
        &mut self,
        store: &mut Store,
        ctx: &mut TickContext<'_>,
    ) -> Result<ClusterResult, ClusterError> {
        let started = Instant::now();
        let mut changed = None;
        let computed = if self.loaded {
            let taken = std::mem::take(&mut store.changed_observations);
            for uuid in &taken {
                if let Some(o) = store.observations.get(uuid) {
                    self.graph.upsert(o);
                }
            }
            changed = Some(taken);
            if std::mem::take(&mut store.decisions_changed) {
                self.graph.set_decisions(store.decisions.clone());
            }
            self.graph.settle()
        } else {
            for o in store.observations.values() {
                self.graph.upsert(o);
            }
            self.graph.set_decisions(store.decisions.clone());
            store.changed_observations.clear();
            store.decisions_changed = false;
            self.loaded = true;
            self.graph.rebuild()
        };
        store.timings.identity_graph += started.elapsed();
        if computed.is_empty() && changed.as_ref().is_none_or(|c| c.is_empty()) {
            return Ok(ClusterResult::default());
        }
        Ok(commit(store, computed, changed.as_ref(), ctx))
    }
}

/// Reconciles computed identities with the store and applies the result.
/// `changed` holds the observations whose evidence changed since the last
/// tick (`None` on a full rebuild, which rebuilds every row).
fn commit(
    store: &mut Store,
    computed: Vec<ComputedIdentity>,
    changed: Option<&BTreeSet<Sym>>,
    ctx: &mut TickContext<'_>,
) -> ClusterResult {
    let started = Instant::now();
    let (components, confidences): (Vec<Vec<Sym>>, Vec<f64>) = computed
        .into_iter()
        .map(|c| (c.members, c.confidence))
        .unzip();
    let changes = if components.is_empty() {
        ChangeSet::default()
    } else {
        let created_at = |g: &str| store.identities.get(g).map(|r| r.created_at);
        reconcile::reconcile(&store.identity_groups, &components, &created_at, ctx.new_id)
    };
    changes.apply(&mut store.identity_groups);
    store.timings.identity_reconcile += started.elapsed();
    let started = Instant::now();

    // The identity each component now resolves to, with its confidence.
    let mut confidence_of: BTreeMap<String, f64> = BTreeMap::new();
    let mut members_of: BTreeMap<String, &[Sym]> = BTreeMap::new();
    for (members, &confidence) in components.iter().zip(&confidences) {
        if let Some(first) = members.first() {
            if let Some(root) = store.effective_identity(first) {
                confidence_of.insert(root.clone(), confidence);
                members_of.insert(root, members);
            }
        }
    }
    let result = result_of(&changes, &confidence_of, store);

    // Rows: every effective identity of the scope, plus merge-chain changes.
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let mut rebuild: Vec<(&String, &[Sym], f64)> = Vec::new();
    for (root, members) in &members_of {
        let existing = store.identities.get(root);
        let confidence = confidence_of[root];
        if let (Some(changed), Some(e)) = (changed, existing) {
            // Same members as when the row was last built and none of their
            // evidence changed since: the row's evidence fields still hold,
            // only the confidence can differ (a value's rarity moved).
            let unchanged = e.merged_into_uuid.is_none()
                && e.schema_version == SCHEMA_VERSION
                && e.observation_count == members.len() as u64
                && store
                    .identity_members
                    .get(root)
                    .is_some_and(|m| m[..] == **members)
                && !members.iter().any(|m| changed.contains(m));
            if unchanged {
                if e.confidence != confidence {
                    let mut row = e.clone();
                    row.confidence = confidence;
                    row.updated_at = ctx.now;
                    touched.insert(root.clone());
                    store.journal.identities.insert(root.clone(), row.clone());
                    store.identities.insert(root.clone(), row);
                }
                continue;
            }
        }
        rebuild.push((root, members, confidence));
    }
    // Each row depends on its own members and stored row only: built over
    // the machine's cores, applied in order.
    let now = ctx.now;
    for block in rebuild.chunks(ROW_BLOCK) {
        let rows = crate::par::map(block, |&(root, members, confidence)| {
            let existing = store.identities.get(root);
            identity_row(
                root,
                members,
                confidence,
                existing,
                &store.observations,
                now,
            )
        });
        for (&(root, _, _), row) in block.iter().zip(rows) {
            let existing = store.identities.get(root);
            if existing.is_none_or(|e| !e.same_content(&row)) {
                touched.insert(root.clone());
                store.journal.identities.insert(root.clone(), row.clone());
                store.identities.insert(root.clone(), row);
            }
        }
    }
    // Evidence that changed without changing any edge (a new session with
    // the same tooling, say) leaves its component out of the settle, but the
    // row's evidence fields (first/last seen, fingerprints) still move.
    if let Some(changed) = changed {
        let outside: BTreeSet<String> = changed
            .iter()
            .filter_map(|m| store.effective_identity(m))
            .filter(|root| !members_of.contains_key(root))
            .collect();
        for root in outside {
            let Some(members) = store.identity_members.get(&root) else {
                continue;
            };
            let existing = store.identities.get(&root);
            let confidence = existing.map_or(0.0, |e| e.confidence);
            let row = identity_row(
                &root,
                members,
                confidence,
                existing,
                &store.observations,
                ctx.now,
            );
            if existing.is_none_or(|e| !e.same_content(&row)) {
                touched.insert(root.clone());
                store.journal.identities.insert(root.clone(), row.clone());
                store.identities.insert(root, row);
            }
        }
    }
    for (root, members) in &members_of {
        match store.identity_members.get_mut(root) {
            Some(m) if m[..] == **members => {}
            Some(m) => *m = members.to_vec(),
            None => {
                store
                    .identity_members
                    .insert(root.clone(), members.to_vec());
            }
        }
    }
    for (group, winner) in &changes.merged_into {
        if winner.is_some() {
            store.identity_members.remove(group.as_str());
        }
        if let Some(row) = store.identities.get_mut(group.as_str()) {
            row.merged_into_uuid = winner.as_ref().map(Sym::to_string);
            row.updated_at = ctx.now;
            store
                .journal
                .identities
                .insert(group.to_string(), row.clone());
            touched.insert(group.to_string());
        }
    }
    for (member, group) in &changes.assignments {
        store
            .journal
            .observation_identity
            .insert(member.to_string(), group.to_string());
    }
    store.changed_identities.extend(touched);
    store.journal.events.extend(result.events());
    store.timings.identity_rows += started.elapsed();
    result
}

fn result_of(
    changes: &ChangeSet,
    confidence_of: &BTreeMap<String, f64>,
    store: &Store,
) -> ClusterResult {
    let conf = |id: &str| confidence_of.get(id).copied().unwrap_or(1.0);
    let first_seen = |members: &[Sym]| {
        members
            .iter()
            .filter_map(|m| store.observations.get(m))
            .filter_map(|o| first_seen_of(o))
            .min()
            .map(format_timestamp)
    };
    ClusterResult {
        identities_formed: changes
            .formed
            .iter()
            .map(|f| IdentityFormed {
                identity_uuid: f.group.to_string(),
                observation_uuids: strings(&f.members),
                confidence: conf(&f.group),
                first_seen_at: first_seen(&f.members),
            })
            .collect(),
        observations_linked: changes
            .linked
            .iter()
            .map(|l| ObservationLinked {
                identity_uuid: l.group.to_string(),
                observation_uuid: l.member.to_string(),
                prior_identity_uuid: l.prior.as_ref().map(Sym::to_string),
                confidence_after: conf(&l.group),
            })
            .collect(),
        identities_merged: changes
            .merged
            .iter()
            .map(|m| IdentityMerged {
                winner_uuid: m.winner.to_string(),
                loser_uuid: m.loser.to_string(),
                observation_uuids: strings(&m.members),
                confidence_after: conf(&m.winner),
            })
            .collect(),
        identities_unmerged: changes
            .unmerged
            .iter()
            .map(|u| IdentityUnmerged {
                resurrected_uuid: u.resurrected.to_string(),
                former_winner_uuid: u.former_winner.to_string(),
            })
            .collect(),
    }
}

/// Uuids as the event payloads carry them.
fn strings(uuids: &[Sym]) -> Vec<String> {
    uuids.iter().map(Sym::to_string).collect()
}

fn first_seen_of(o: &Observation) -> Option<Millis> {
    let sessions = o
        .sessions
        .values()
        .filter_map(|s| s.started_at.or(s.ended_at));
    o.first_seen.into_iter().chain(sessions).min()
}

fn last_seen_of(o: &Observation) -> Option<Millis> {
    let sessions = o
        .sessions
        .values()
        .filter_map(|s| s.ended_at.or(s.started_at));
    o.last_seen.into_iter().chain(sessions).max()
}

/// Bitwise majority of 64-bit SimHashes (ties give 0), as 16 hex chars.
pub fn simhash_centroid(hashes: impl IntoIterator<Item = u64>) -> Option<String> {
    let mut counts = [0u32; 64];
    let mut n = 0u32;
    for h in hashes {
        n += 1;
        for (bit, c) in counts.iter_mut().enumerate() {
            *c += ((h >> bit) & 1) as u32;
        }
    }
    if n == 0 {
        return None;
    }
    let mut out = 0u64;
    for (bit, &c) in counts.iter().enumerate() {
        if 2 * c > n {
            out |= 1 << bit;
        }
    }
    Some(format!("{out:016x}"))
}

/// Identity rows built at a time before they are applied (see
/// [`crate::par`]).
const ROW_BLOCK: usize = 16_384;

/// The stored row of an effective identity with these members.
fn identity_row(
    uuid: &str,
    members: &[Sym],
    confidence: f64,
    existing: Option<&IdentityRow>,
    observations: &BTreeMap<Sym, Box<Observation>>,
    now: Millis,
) -> IdentityRow {
    let mut row = IdentityRow {
        uuid: uuid.to_string(),
        schema_version: SCHEMA_VERSION,
        campaign_id: existing.and_then(|e| e.campaign_id.clone()),
        merged_into_uuid: None,
        observation_count: members.len() as u64,
        created_at: existing.map_or(now, |e| e.created_at),
        updated_at: now,
        confidence,
        notes: existing.map(|e| e.notes.clone()).unwrap_or_default(),
        ..Default::default()
    };
    let mut simhashes = Vec::new();
    // Borrowed values first, deduplicated, so each distinct string is
    // allocated once however many members share it.
    let (mut ja3, mut hassh, mut payloads, mut c2) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for o in members.iter().filter_map(|m| observations.get(m)) {
        row.first_seen_at = row.first_seen_at.into_iter().chain(first_seen_of(o)).min();
        row.last_seen_at = row.last_seen_at.into_iter().chain(last_seen_of(o)).max();
        for fp in &o.fingerprints {
            match fp.kind.as_str() {
                "ja3" => ja3.push(&fp.value),
                "hassh" => hassh.push(&fp.value),
                _ => {}
            }
        }
        for s in o.sessions.values() {
            payloads.extend(s.extras.payload_hashes.iter());
            c2.extend(s.extras.c2_endpoints.iter());
            simhashes.extend(s.kd_digraph_simhash);
        }
    }
    row.ja3_hashes = SortedSet::from_syms(ja3);
    row.hassh_hashes = SortedSet::from_syms(hassh);
    row.payload_hashes = SortedSet::from_syms(payloads);
    row.c2_endpoints = SortedSet::from_syms(c2);
    row.kd_digraph_simhash = simhash_centroid(simhashes);
    row
}
