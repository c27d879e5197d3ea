//! The campaign layer's seed shape (SPEC §2): a [`CampaignClusterer`] with a
//! `name` and a single `tick` against the store; the factory
//! [`campaign_clusterer`] returns the one named by
//! `DECNET_CAMPAIGN_CLUSTERER_TYPE`. `connected_components` keeps the
//! [`CampaignGraph`] over effective identities and reconciles its components
//! into stored campaigns with the same rules as the identity layer.

use super::graph::{CampaignGraph, ComputedCampaign};
use super::rollup::IdentityRollup;
use super::similarity::{CampaignWeightError, CampaignWeights};
use crate::evidence::Sym;
use crate::identity::catalogue::Catalogue;
use crate::identity::clusterer::TickContext;
use crate::reconcile;
use crate::store::{CampaignRow, OutEvent, OutStream, Store, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Names the factory knows, first the default.
pub const KNOWN_CAMPAIGN_CLUSTERERS: &[&str] = &["connected_components"];

/// `campaign.formed` payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignFormed {
    pub campaign_uuid: String,
    pub identity_uuids: Vec<String>,
}

/// `campaign.identity.assigned` / `identity.campaign.assigned` payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdentityAssigned {
    pub campaign_uuid: String,
    pub identity_uuid: String,
    pub prior_campaign_uuid: Option<String>,
}

/// `campaign.merged` payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignMerged {
    pub winner_uuid: String,
    pub loser_uuid: String,
}

/// `campaign.unmerged` payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignUnmerged {
    pub resurrected_uuid: String,
    pub former_winner_uuid: String,
}

/// The side effects of one campaign tick (SPEC §2).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignClusterResult {
    pub campaigns_formed: Vec<CampaignFormed>,
    pub identities_assigned: Vec<IdentityAssigned>,
    pub campaigns_merged: Vec<CampaignMerged>,
    pub campaigns_unmerged: Vec<CampaignUnmerged>,
}

impl CampaignClusterResult {
    pub fn is_empty(&self) -> bool {
        self.campaigns_formed.is_empty()
            && self.identities_assigned.is_empty()
            && self.campaigns_merged.is_empty()
            && self.campaigns_unmerged.is_empty()
    }

    /// The events in publication order; `identity.campaign.assigned` goes
    /// with every assignment and with each identity of a formed campaign.
    pub fn events(&self) -> Vec<OutEvent> {
        let mut out = Vec::new();
        let mut push = |stream, topic: &str, v: serde_json::Result<serde_json::Value>| {
            if let Ok(payload) = v {
                out.push(OutEvent {
                    stream,
                    topic: topic.to_string(),
                    payload,
                });
            }
        };
        for f in &self.campaigns_formed {
            push(
                OutStream::Campaign,
                "campaign.formed",
                serde_json::to_value(f),
            );
            for i in &f.identity_uuids {
                let a = IdentityAssigned {
                    campaign_uuid: f.campaign_uuid.clone(),
                    identity_uuid: i.clone(),
                    prior_campaign_uuid: None,
                };
                push(
                    OutStream::Identity,
                    "identity.campaign.assigned",
                    serde_json::to_value(&a),
                );
            }
        }
        for u in &self.campaigns_unmerged {
            push(
                OutStream::Campaign,
                "campaign.unmerged",
                serde_json::to_value(u),
            );
        }
        for m in &self.campaigns_merged {
            push(
                OutStream::Campaign,
                "campaign.merged",
                serde_json::to_value(m),
            );
        }
        for a in &self.identities_assigned {
            push(
                OutStream::Campaign,
                "campaign.identity.assigned",
                serde_json::to_value(a),
            );
            push(
                OutStream::Identity,
                "identity.campaign.assigned",
                serde_json::to_value(a),
            );
        }
        out
    }
}

/// Why a campaign clusterer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CampaignClusterError {
    #[error("unknown campaign clusterer type `{given}`; known: {}", KNOWN_CAMPAIGN_CLUSTERERS.join(", "))]
    UnknownType { given: String },
    #[error("invalid campaign weights: {0}")]
    Weights(#[from] CampaignWeightError),
}

/// A campaign clustering algorithm (SPEC §2).
pub trait CampaignClusterer: Send {
    fn name(&self) -> &'static str;
    fn tick(
        &mut self,
        store: &mut Store,
        ctx: &mut TickContext<'_>,
    ) -> Result<CampaignClusterResult, CampaignClusterError>;
    fn reset(&mut self);
    fn graph(&self) -> &CampaignGraph;
}

/// The factory keyed by `DECNET_CAMPAIGN_CLUSTERER_TYPE`.
pub fn campaign_clusterer(
    kind: &str,
    weights: CampaignWeights,
) -> Result<Box<dyn CampaignClusterer>, CampaignClusterError> {
    match kind {
        "connected_components" => Ok(Box::new(CampaignComponents::new(weights)?)),
        other => Err(CampaignClusterError::UnknownType {
            given: other.to_string(),
        }),
    }
}

/// Connected components of the campaign graph.
pub struct CampaignComponents {
    graph: CampaignGraph,
    loaded: bool,
}

impl CampaignComponents {
    pub fn new(weights: CampaignWeights) -> Result<Self, CampaignClusterError> {
        Ok(CampaignComponents {
            graph: CampaignGraph::new(weights)?,
            loaded: false,
        })
    }
}

fn rollup_of(store: &Store, identity: &str, stock: &Catalogue) -> Option<IdentityRollup> {
    let members = store.identity_members.get(identity)?;
    Some(IdentityRollup::from_observations(
        members.iter().filter_map(|m| store.observation(m)),
        stock,
    ))
}

/// Roll-ups built at a time before they go into the graph (in input
/// order): enough to keep every core busy, few enough that the built ones
/// waiting for the graph hold little memory.
const ROLLUP_BLOCK: usize = 16_384;

impl CampaignClusterer for CampaignComponents {
    fn name(&self) -> &'static str {
        "connected_components"
    }

    fn reset(&mut self) {
        if let Ok(g) = CampaignGraph::new(self.graph.weights().clone()) {
            self.graph = g;
        }
        self.loaded = false;
    }

    fn graph(&self) -> &CampaignGraph {
        &self.graph
    }

    fn tick(
        &mut self,
        store: &mut Store,
        ctx: &mut TickContext<'_>,
    ) -> Result<CampaignClusterResult, CampaignClusterError> {
        let changed = std::mem::take(&mut store.changed_identities);
        let mut rollups = Duration::ZERO;
        let started = Instant::now();
        // A full pass rolls up every identity; a later one the changed ones
        // (removing those left without members). Built over the machine's
        // cores ([`crate::par`]), put into the graph in order.
        let ids: Vec<String> = match self.loaded {
            true => changed.into_iter().collect(),
            false => store.identity_members.keys().cloned().collect(),
        };
        for block in ids.chunks(ROLLUP_BLOCK) {
            let t = Instant::now();
            let stock = &self.graph.weights().catalogue;
            let built = crate::par::map(block, |id| rollup_of(store, id, stock));
            rollups += t.elapsed();
            for (id, r) in block.iter().zip(built) {
                match r {
                    Some(r) => self.graph.upsert(id, r),
                    None if self.loaded => self.graph.remove(id),
                    None => {}
                }
            }
        }
        let computed = if self.loaded {
            self.graph.settle()
        } else {
            self.loaded = true;
            self.graph.rebuild()
        };
        store.timings.campaign_rollups += rollups;
        store.timings.campaign_graph += started.elapsed().saturating_sub(rollups);
        if computed.is_empty() {
            return Ok(CampaignClusterResult::default());
        }
        Ok(commit(store, &computed, ctx))
    }
}

fn commit(
    store: &mut Store,
    computed: &[ComputedCampaign],
    ctx: &mut TickContext<'_>,
) -> CampaignClusterResult {
    let started = Instant::now();
    let components: Vec<Vec<Sym>> = computed.iter().map(|c| c.members.clone()).collect();
    let created_at = |g: &str| store.campaigns.get(g).map(|r| r.created_at);
    let changes =
        reconcile::reconcile(&store.campaign_groups, &components, &created_at, ctx.new_id);
    changes.apply(&mut store.campaign_groups);
    store.timings.campaign_reconcile += started.elapsed();
    let started = Instant::now();
    let result = CampaignClusterResult {
        campaigns_formed: changes
            .formed
            .iter()
            .map(|f| CampaignFormed {
                campaign_uuid: f.group.to_string(),
                identity_uuids: f.members.iter().map(Sym::to_string).collect(),
            })
            .collect(),
        identities_assigned: changes
            .linked
            .iter()
            .map(|l| IdentityAssigned {
                campaign_uuid: l.group.to_string(),
                identity_uuid: l.member.to_string(),
                prior_campaign_uuid: l.prior.as_ref().map(Sym::to_string),
            })
            .collect(),
        campaigns_merged: changes
            .merged
            .iter()
            .map(|m| CampaignMerged {
                winner_uuid: m.winner.to_string(),
                loser_uuid: m.loser.to_string(),
            })
            .collect(),
        campaigns_unmerged: changes
            .unmerged
            .iter()
            .map(|u| CampaignUnmerged {
                resurrected_uuid: u.resurrected.to_string(),
                former_winner_uuid: u.former_winner.to_string(),
            })
            .collect(),
    };
    // Campaign rows of the scope.
    let mut roots: BTreeMap<String, &ComputedCampaign> = BTreeMap::new();
    for c in computed {
        if let Some(first) = c.members.first() {
            if let Some(root) = reconcile::effective_group_of(&store.campaign_groups, first) {
                roots.insert(root, c);
            }
        }
    }
    for (root, c) in roots {
        let existing = store.campaigns.get(&root);
        let rows: Vec<_> = c
            .members
            .iter()
            .filter_map(|m| store.identities.get(m.as_str()))
            .collect();
        let row = CampaignRow {
            uuid: root.clone(),
            schema_version: SCHEMA_VERSION,
            merged_into_uuid: None,
            identity_count: c.members.len() as u64,
            first_seen_at: rows.iter().filter_map(|r| r.first_seen_at).min(),
            last_seen_at: rows.iter().filter_map(|r| r.last_seen_at).max(),
            created_at: existing.map_or(ctx.now, |e| e.created_at),
            updated_at: ctx.now,
            confidence: c.confidence,
        };
        if existing.is_none_or(|e| !e.same_content(&row)) {
            store.journal.campaigns.insert(root.clone(), row.clone());
            store.campaigns.insert(root, row);
        }
    }
    for (group, winner) in &changes.merged_into {
        if let Some(row) = store.campaigns.get_mut(group.as_str()) {
            row.merged_into_uuid = winner.as_ref().map(Sym::to_string);
            row.updated_at = ctx.now;
            store
                .journal
                .campaigns
                .insert(group.to_string(), row.clone());
        }
    }
    // Identity rows carry their direct campaign.
    for (identity, campaign) in &changes.assignments {
        if let Some(row) = store.identities.get_mut(identity.as_str()) {
            if row.campaign_id.as_deref() != Some(campaign.as_str()) {
                row.campaign_id = Some(campaign.to_string());
                row.updated_at = ctx.now;
                // A row still waiting in the journal is written whole, with
                // its new campaign; otherwise only the two fields change.
                match store.journal.identities.get_mut(identity.as_str()) {
                    Some(pending) => pending.clone_from(row),
                    None => {
                        store
                            .journal
                            .identity_campaigns
                            .insert(identity.to_string(), (campaign.to_string(), ctx.now));
                    }
                }
            }
        }
    }
    store.journal.events.extend(result.events());
    store.timings.campaign_rows += started.elapsed();
    result
}
