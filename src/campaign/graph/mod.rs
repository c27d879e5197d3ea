//! The campaign graph: effective identities as nodes, campaign edges found
//! through indexes, campaigns as connected components, kept incrementally.
//! Like the identity graph it clusters a *closed scope* (whole components
//! plus changed identities and everything they now touch) with the same
//! procedure for a rebuild and a settle, so both agree by construction.
//! Member lists are kept explicitly (petgraph's `UnionFind` only joins, and
//! a settle must also split); `UnionFind` joins nodes inside a scope.
//!
//! This file holds the graph's state and its edits (roll-ups in, identities
//! out, which nodes are dirty) and answers what the campaigns are. Beside it:
//! `candidates` (the indexes and which pairs they make worth scoring),
//! `scope` (rebuild, settle with the hand-offs re-weighted by a decky's
//! arrival rate, and clustering a closed scope), `explain` (the evidence
//! of a pair, what holds a campaign together) and `why` (a pair's evidence
//! with the reasons behind it, and the near-miss when there is no edge).

mod candidates;
mod explain;
mod scope;
mod why;

pub use candidates::CampaignPlan;
pub use why::CampaignWhy;

use super::rollup::IdentityRollup;
use super::similarity::{CampaignWeightError, CampaignWeights};
use crate::evidence::Sym;
use candidates::{DeckyIndex, Postings};
use rustc_hash::FxHashMap;

const NONE: u32 = u32::MAX;

/// One identity as a node.
#[derive(Debug, Clone, Default)]
struct Node {
    id: Sym,
    rollup: IdentityRollup,
    alive: bool,
}

/// The incremental campaign graph.
#[derive(Debug, Clone)]
pub struct CampaignGraph {
    weights: CampaignWeights,
    plan: CampaignPlan,
    nodes: Vec<Node>,
    index_of: FxHashMap<Sym, u32>,
    deckies: FxHashMap<Sym, DeckyIndex>,
    infra: Postings<Sym>,
    /// Planters and users of a key, by (decky, key).
    plants: Postings<(Sym, Sym)>,
    auths: Postings<(Sym, Sym)>,
    /// (node, its centroid) by centroid block: the distance check reads the
    /// list alone, never the (large, scattered) nodes.
    rhythm: Postings<(u8, u64), (u32, u64)>,
    buckets: Postings<i64>,
    cohort: Postings<Sym>,
    comp_of: Vec<u32>,
    comps: Vec<Vec<u32>>,
    free: Vec<u32>,
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
    /// Set once components exist; until then nothing needs re-examining.
    built: bool,
    /// Deckies whose arrivals changed since the last settle: if their
    /// rounded chances moved, the hand-off pairs on them are re-examined.
    edited_deckies: Vec<Sym>,
}

/// A campaign as computed: sorted member identity ids and its cohesion.
#[derive(Clone, Debug, PartialEq)]
pub struct ComputedCampaign {
    pub members: Vec<Sym>,
    pub confidence: f64,
}

impl CampaignGraph {
    pub fn new(weights: CampaignWeights) -> Result<Self, CampaignWeightError> {
        weights.validate()?;
        Ok(CampaignGraph {
            plan: CampaignPlan::derive(&weights),
            weights,
            nodes: Vec::new(),
            index_of: FxHashMap::default(),
            deckies: FxHashMap::default(),
            infra: Postings::default(),
            plants: Postings::default(),
            auths: Postings::default(),
            rhythm: Postings::default(),
            buckets: Postings::default(),
            cohort: Postings::default(),
            comp_of: Vec::new(),
            comps: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            is_dirty: Vec::new(),
            built: false,
            edited_deckies: Vec::new(),
        })
    }

    pub fn weights(&self) -> &CampaignWeights {
        &self.weights
    }

    pub fn len(&self) -> usize {
        self.index_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index_of.is_empty()
    }

    pub fn dirty_len(&self) -> usize {
        self.dirty.len()
    }

    fn mark(&mut self, n: u32) {
        if !self.is_dirty[n as usize] {
            self.is_dirty[n as usize] = true;
            self.dirty.push(n);
        }
    }

    /// Inserts or replaces an effective identity's roll-up.
    pub fn upsert(&mut self, id: &str, rollup: IdentityRollup) {
        let n = match self.index_of.get(id) {
            Some(&n) => {
                if self.nodes[n as usize].alive && self.nodes[n as usize].rollup == rollup {
                    return;
                }
                if self.nodes[n as usize].alive {
                    self.index(n, false);
                }
                n
            }
            None => {
                let n = self.nodes.len() as u32;
                let id = Sym::new(id);
                self.nodes.push(Node {
                    id: id.clone(),
                    ..Node::default()
                });
                self.comp_of.push(NONE);
                self.is_dirty.push(false);
                self.index_of.insert(id, n);
                n
            }
        };
        let node = &mut self.nodes[n as usize];
        node.rollup = rollup;
        node.alive = true;
        self.index(n, true);
        self.mark(n);
    }

    /// Removes an identity (merged out, or gone).
    pub fn remove(&mut self, id: &str) {
        let Some(&n) = self.index_of.get(id) else {
            return;
        };
        if !self.nodes[n as usize].alive {
            return;
        }
        self.index(n, false);
        self.nodes[n as usize].alive = false;
        self.mark(n);
    }

    /// Every current campaign (sorted member lists, sorted).
    pub fn campaigns(&self) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = self
            .comps
            .iter()
            .filter(|c| !c.is_empty())
            .map(|c| {
                let mut v: Vec<String> = c
                    .iter()
                    .map(|&n| self.nodes[n as usize].id.to_string())
                    .collect();
                v.sort();
                v
            })
            .collect();
        out.sort();
        out
    }
}
