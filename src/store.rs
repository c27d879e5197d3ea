//! The stored state, in memory: observations with their merged evidence,
//! identity and campaign rows (SPEC §3), group assignments and merge chains,
//! and operator decisions. The daemon keeps one of these as the mirror of
//! its Redis repository (it is the only writer while it holds the lease);
//! tests, `clusterd score` and the benches use it alone.
//!
//! A clustering tick reads a `Store`, changes it, and records every write
//! and every lifecycle event it made in the store's [`Journal`], which the
//! daemon persists in one fenced transaction. A tick over unchanged evidence
//! leaves the journal empty.

use crate::evidence::{Millis, Observation, Sym};
use crate::identity::Decisions;
use crate::reconcile::StoredGroups;
use crate::set::SortedSet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Current schema of identity and campaign rows.
pub const SCHEMA_VERSION: u32 = 1;

/// One identity row (`{p}:identity:{uuid}`); field names are SPEC §3's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdentityRow {
    pub uuid: String,
    pub schema_version: u32,
    pub campaign_id: Option<String>,
    pub merged_into_uuid: Option<String>,
    pub observation_count: u64,
    pub first_seen_at: Option<Millis>,
    pub last_seen_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub confidence: f64,
    /// Interned, as the observations' own values are (shared with them).
    pub ja3_hashes: SortedSet<Sym>,
    pub hassh_hashes: SortedSet<Sym>,
    pub payload_hashes: SortedSet<Sym>,
    pub c2_endpoints: SortedSet<Sym>,
    pub kd_digraph_simhash: Option<String>,
    pub notes: String,
}

impl IdentityRow {
    /// Whether two rows differ in anything but `updated_at`.
    pub fn same_content(&self, other: &IdentityRow) -> bool {
        // Destructured so a new field cannot be forgotten here.
        let IdentityRow {
            uuid,
            schema_version,
            campaign_id,
            merged_into_uuid,
            observation_count,
            first_seen_at,
            last_seen_at,
            created_at,
            updated_at: _,
            confidence,
            ja3_hashes,
            hassh_hashes,
            payload_hashes,
            c2_endpoints,
            kd_digraph_simhash,
            notes,
        } = self;
        *uuid == other.uuid
            && *schema_version == other.schema_version
            && *campaign_id == other.campaign_id
            && *merged_into_uuid == other.merged_into_uuid
            && *observation_count == other.observation_count
            && *first_seen_at == other.first_seen_at
            && *last_seen_at == other.last_seen_at
            && *created_at == other.created_at
            && *confidence == other.confidence
            && *ja3_hashes == other.ja3_hashes
            && *hassh_hashes == other.hassh_hashes
            && *payload_hashes == other.payload_hashes
            && *c2_endpoints == other.c2_endpoints
            && *kd_digraph_simhash == other.kd_digraph_simhash
            && *notes == other.notes
    }
}

/// One campaign row (`{p}:campaign:{uuid}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignRow {
    pub uuid: String,
    pub schema_version: u32,
    pub merged_into_uuid: Option<String>,
    pub identity_count: u64,
    pub first_seen_at: Option<Millis>,
    pub last_seen_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub confidence: f64,
}

impl CampaignRow {
    /// Whether two rows differ in anything but `updated_at`.
    pub fn same_content(&self, other: &CampaignRow) -> bool {
        let mut a = self.clone();
        a.updated_at = other.updated_at;
        a == *other
    }
}

/// The output streams of SPEC §5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutStream {
    Identity,
    Campaign,
}

/// One lifecycle event to publish (SPEC §5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutEvent {
    pub stream: OutStream,
    pub topic: String,
    pub payload: serde_json::Value,
}

/// Every write a tick made, to be persisted atomically with its events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// Observation → its new direct identity (`identity_id`).
    pub observation_identity: BTreeMap<String, String>,
    /// Identity rows created or changed (the whole row).
    pub identities: BTreeMap<String, IdentityRow>,
    /// Identities whose direct campaign is all that changed (a campaign
    /// pass): the new `campaign_id` and `updated_at`, written without
    /// rewriting the rest of the row.
    pub identity_campaigns: BTreeMap<String, (String, Millis)>,
    /// Campaign rows created or changed.
    pub campaigns: BTreeMap<String, CampaignRow>,
    /// Events in publication order.
    pub events: Vec<OutEvent>,
}

impl Journal {
    pub fn is_empty(&self) -> bool {
        self.observation_identity.is_empty()
            && self.identities.is_empty()
            && self.identity_campaigns.is_empty()
            && self.campaigns.is_empty()
            && self.events.is_empty()
    }
}

/// Time spent in each phase of the clustering ticks, accumulated until the
/// caller resets it. Instrumentation only (benchmarks, diagnostics): never
/// persisted and never part of a result.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PassTimings {
    /// Identity graph: upserting changed observations and settling.
    pub identity_graph: Duration,
    /// Identity reconciliation (computing and applying the change set).
    pub identity_reconcile: Duration,
    /// Identity rows, member lists and events.
    pub identity_rows: Duration,
    /// Roll-ups of changed identities.
    pub campaign_rollups: Duration,
    /// Campaign graph: upserts and settling.
    pub campaign_graph: Duration,
    /// Campaign reconciliation.
    pub campaign_reconcile: Duration,
    /// Campaign rows, identity campaign ids and events.
    pub campaign_rows: Duration,
}

impl PassTimings {
    /// The phases with their names, in pass order.
    pub fn phases(&self) -> [(&'static str, Duration); 7] {
        [
            ("identity graph", self.identity_graph),
            ("identity reconcile", self.identity_reconcile),
            ("identity rows+events", self.identity_rows),
            ("campaign roll-ups", self.campaign_rollups),
            ("campaign graph", self.campaign_graph),
            ("campaign reconcile", self.campaign_reconcile),
            ("campaign rows+events", self.campaign_rows),
        ]
    }

    pub fn total(&self) -> Duration {
        self.phases().iter().map(|p| p.1).sum()
    }
}

/// The in-memory stored state.
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// Values boxed: a B-tree node holds eleven entries and is often
    /// half full, so a 128-byte value inline cost about twice its size.
    pub observations: BTreeMap<Sym, Box<Observation>>,
    /// observation → identity, identity → merged_into.
    pub identity_groups: StoredGroups,
    pub identities: BTreeMap<String, IdentityRow>,
    /// Effective identity → its member observations (sorted); maintained by
    /// the identity layer for the campaign layer.
    pub identity_members: BTreeMap<String, Vec<Sym>>,
    /// identity → campaign, campaign → merged_into.
    pub campaign_groups: StoredGroups,
    pub campaigns: BTreeMap<String, CampaignRow>,
    pub decisions: Decisions,
    /// Observations whose evidence changed since the identity layer last looked.
    pub changed_observations: BTreeSet<Sym>,
    /// Identities whose members or roll-up changed since the campaign layer last looked.
    pub changed_identities: BTreeSet<String>,
    /// Set when decisions changed since the identity layer last looked.
    pub decisions_changed: bool,
    /// Writes and events not yet persisted.
    pub journal: Journal,
    /// Where the ticks spent their time (see [`PassTimings`]).
    pub timings: PassTimings,
}

impl Store {
    /// Folds a (partial) observation into the stored one. Returns whether the
    /// stored observation changed.
    pub fn merge_observation(&mut self, partial: &Observation) -> bool {
        let changed = match self.observations.get_mut(&partial.uuid) {
            Some(existing) => existing.merge(partial),
            None => {
                let mut o = Observation::new(partial.uuid.clone());
                o.merge(partial);
                self.observations.insert(o.uuid.clone(), Box::new(o));
                true
            }
        };
        if changed {
            self.changed_observations.insert(partial.uuid.clone());
        }
        changed
    }

    /// [`Store::merge_observation`] taking the partial by value: a new
    /// observation is stored as it came (merging into an empty observation
    /// gives the partial itself), without copying its evidence.
    pub fn merge_observation_owned(&mut self, partial: Observation) -> bool {
        if self.observations.contains_key(&partial.uuid) {
            return self.merge_observation(&partial);
        }
        self.changed_observations.insert(partial.uuid.clone());
        self.observations
            .insert(partial.uuid.clone(), Box::new(partial));
        true
    }

    /// Replaces the operator decisions.
    pub fn set_decisions(&mut self, decisions: Decisions) {
        if decisions != self.decisions {
            self.decisions = decisions;
            self.decisions_changed = true;
        }
    }

    /// Takes the journal (what the daemon must persist next).
    pub fn take_journal(&mut self) -> Journal {
        std::mem::take(&mut self.journal)
    }

    /// The stored observation of this uuid.
    pub fn observation(&self, uuid: &str) -> Option<&Observation> {
        self.observations.get(uuid).map(|o| &**o)
    }

    /// The effective identity of an observation.
    pub fn effective_identity(&self, observation: &str) -> Option<String> {
        crate::reconcile::effective_group_of(&self.identity_groups, observation)
    }

    /// The effective campaign of an identity.
    pub fn effective_campaign(&self, identity: &str) -> Option<String> {
        let root = crate::reconcile::effective_root(&self.identity_groups, identity);
        crate::reconcile::effective_group_of(&self.campaign_groups, &root)
    }
}
