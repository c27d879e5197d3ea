//! The identity graph: observations as nodes, evidence edges found through
//! the candidate index, and identities as connected components with operator
//! decisions applied. Clustering always runs over a *closed scope* — a set of
//! whole components plus the changed observations and everything they now
//! touch — with the same procedure for a full rebuild (scope = everything)
//! and an incremental settle (scope = what changed), so the two give the same
//! components by construction (and a property test checks it).
//!
//! Components are kept as explicit member lists rather than in petgraph's
//! `UnionFind`: a union-find can only join, and incremental settling must
//! also split a component when new evidence removes an edge (a value turns
//! common, a veto appears). `UnionFind` is still what joins nodes inside a
//! scope.
//!
//! This file holds the graph's state and its edits (observations in,
//! decisions in, which nodes are dirty) and answers what the identities are.
//! Beside it: `candidates` (which pairs to score, through the postings, and
//! the per-profile edges of big payload/C2 values), `scope` (rebuild, settle
//! and the closing of a settle's scope), `components` (clustering a closed
//! scope into components, cutting them where operators separated a pair) and
//! `explain` (why a pair scores as it does, what holds an identity together).

mod candidates;
mod components;
mod explain;
mod scope;

use super::decisions::{DecisionKind, Decisions};
use super::features::{Features, Vocabulary};
use super::index::{BlockingPlan, Postings};
use super::similarity::{Carriers, IdentityWeights, PairExplanation, Rarity, WeightError};
use crate::evidence::{Observation, Sym};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

const NONE: u32 = u32::MAX;

/// A payload/C2 value carried by more observations than this is clustered
/// per tooling profile (all carriers of one profile are joined directly,
/// profiles pairwise) instead of pair by pair, so a 10,000-bot botnet costs
/// linear, not quadratic, work.
pub const BIG_VALUE_CARRIERS: u32 = 256;

/// Scopes of fewer nodes are scored on the calling thread: starting the
/// threads costs more than a small scope's scoring.
pub const PARALLEL_SCOPE: usize = 4096;

/// The namespaces whose values have a rarity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Namespace {
    Tools,
    Keys,
    Credentials,
    Commands,
}

impl Namespace {
    const ALL: [Namespace; 4] = [
        Namespace::Tools,
        Namespace::Keys,
        Namespace::Credentials,
        Namespace::Commands,
    ];

    fn ids(self, f: &Features) -> &[u32] {
        match self {
            Namespace::Tools => f.tools(),
            Namespace::Keys => f.keys(),
            Namespace::Credentials => f.credentials(),
            Namespace::Commands => f.commands(),
        }
    }

    fn carriers(self, p: &Postings, id: u32) -> u32 {
        match self {
            Namespace::Tools => p.tool(id),
            Namespace::Keys => p.key(id),
            Namespace::Credentials => p.credential(id),
            Namespace::Commands => p.command(id),
        }
    }

    fn list(self, p: &Postings, id: u32) -> &[u32] {
        let lists = match self {
            Namespace::Tools => &p.tools,
            Namespace::Keys => &p.keys,
            Namespace::Credentials => &p.credentials,
            Namespace::Commands => &p.commands,
        };
        lists.get(id as usize).map_or(&[], Vec::as_slice)
    }
}

/// Walks two sorted id slices: `f(id, -1)` for what only `old` holds,
/// `f(id, 1)` for what only `new` holds.
fn walk_diff(old: &[u32], new: &[u32], mut f: impl FnMut(u32, i64)) {
    let (mut i, mut j) = (0, 0);
    loop {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(&a), Some(&b)) if a < b => {
                f(a, -1);
                i += 1;
            }
            (Some(&a), None) => {
                f(a, -1);
                i += 1;
            }
            (_, Some(&b)) => {
                f(b, 1);
                j += 1;
            }
            (None, None) => break,
        }
    }
}

/// One identity as computed: sorted member uuids and its cohesion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComputedIdentity {
    pub members: Vec<Sym>,
    /// Mean over members of min(1, strongest tie / confidence_saturation);
    /// 1.0 for a single observation.
    pub confidence: f64,
}

/// One edge inside an identity, explained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExplainedEdge {
    pub weight: f64,
    pub explanation: PairExplanation,
}

/// A component closed under evidence edges and links. When operator
/// `separate` decisions cut it, `parts` holds the identities it was cut into;
/// the scope of an incremental settle is always made of whole components, so
/// a cut is re-decided with everything it depends on.
#[derive(Clone, Debug, Default)]
struct Component {
    members: Vec<u32>,
    /// Empty when the component is one identity.
    parts: Vec<Vec<u32>>,
}

/// The incremental identity graph.
#[derive(Debug, Clone)]
pub struct IdentityGraph {
    weights: IdentityWeights,
    plan: BlockingPlan,
    vocab: Vocabulary,
    /// The store's interned uuids (a clone is a count, not a copy).
    uuids: Vec<Sym>,
    index_of: FxHashMap<Sym, u32>,
    features: Vec<Features>,
    post: Postings,
    comp_of: Vec<u32>,
    comps: Vec<Component>,
    free_comps: Vec<u32>,
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
    /// Dirty for a reason that can create edges to other components (new
    /// or changed evidence, a decision, a value turning rarer). A node dirty
    /// only because a value it carries turned more common can only lose
    /// edges, so its settle scope is just its own component.
    expand: Vec<bool>,
    decisions: Decisions,
    /// Decisions by node, for nodes that exist.
    decision_adj: FxHashMap<u32, Vec<(u32, DecisionKind)>>,
    /// See [`BIG_VALUE_CARRIERS`].
    big_value_carriers: u32,
    /// Scopes of at least this many nodes score their candidate pairs over
    /// the machine's cores ([`crate::par`]).
    parallel_scope: usize,
}

impl IdentityGraph {
    /// An empty graph; fails when a weight is out of its domain.
    pub fn new(weights: IdentityWeights) -> Result<Self, WeightError> {
        weights.validate()?;
        Ok(IdentityGraph {
            plan: BlockingPlan::derive(&weights),
            vocab: Vocabulary::new(&weights),
            weights,
            uuids: Vec::new(),
            index_of: FxHashMap::default(),
            features: Vec::new(),
            post: Postings::default(),
            comp_of: Vec::new(),
            comps: Vec::new(),
            free_comps: Vec::new(),
            dirty: Vec::new(),
            is_dirty: Vec::new(),
            expand: Vec::new(),
            decisions: Decisions::default(),
            decision_adj: FxHashMap::default(),
            big_value_carriers: BIG_VALUE_CARRIERS,
            parallel_scope: PARALLEL_SCOPE,
        })
    }

    /// Changes the carrier count above which payload/C2 values are clustered
    /// per tooling profile. The components do not depend on it (tests prove
    /// it by setting it low); only the cost does. Takes effect at the next
    /// rebuild.
    pub fn set_big_value_carriers(&mut self, carriers: u32) {
        self.big_value_carriers = carriers.max(1);
    }

    /// Changes the scope size from which candidate pairs are scored over
    /// the machine's cores (default [`PARALLEL_SCOPE`]). The components do
    /// not depend on it (the property tests set it to 2 to prove it); only
    /// the time does.
    pub fn set_parallel_scope(&mut self, nodes: usize) {
        self.parallel_scope = nodes;
    }

    pub fn weights(&self) -> &IdentityWeights {
        &self.weights
    }

    /// Rarity of every value as the graph counts it now.
    pub(super) fn rarity(&self) -> Rarity<'_> {
        Rarity {
            weights: &self.weights,
            vocab: &self.vocab,
            carriers: &self.post,
        }
    }

    /// Number of observations.
    pub fn len(&self) -> usize {
        self.uuids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.uuids.is_empty()
    }

    /// Observations changed since the last settle.
    pub fn dirty_len(&self) -> usize {
        self.dirty.len()
    }

    pub fn contains(&self, uuid: &str) -> bool {
        self.index_of.contains_key(uuid)
    }

    fn mark_dirty(&mut self, n: u32) {
        self.expand[n as usize] = true;
        self.mark_shrunk(n);
    }

    /// Dirty only because a value `n` carries turned more common: its
    /// scores can only fall (see `expand`).
    fn mark_shrunk(&mut self, n: u32) {
        if !self.is_dirty[n as usize] {
            self.is_dirty[n as usize] = true;
            self.dirty.push(n);
        }
    }

    /// Inserts or updates an observation (its full, merged evidence). Returns
    /// whether anything the identity layer looks at changed.
    pub fn upsert(&mut self, obs: &Observation) -> bool {
        let f = Features::extract(obs, &mut self.vocab);
        let node = match self.index_of.get(obs.uuid.as_str()) {
            Some(&n) => n,
            None => {
                let n = self.uuids.len() as u32;
                self.uuids.push(obs.uuid.clone());
                self.index_of.insert(obs.uuid.clone(), n);
                self.features.push(Features::default());
                self.comp_of.push(NONE);
                self.is_dirty.push(false);
                self.expand.push(false);
                self.post.update(n, &f, self.plan, true);
                self.rarity_changed(&Features::default(), &f);
                self.features[n as usize] = f;
                self.attach_decisions(n);
                self.mark_dirty(n);
                return true;
            }
        };
        if self.features[node as usize] == f {
            return false;
        }
        let old = std::mem::take(&mut self.features[node as usize]);
        self.post.replace(node, &old, &f, self.plan);
        self.rarity_changed(&old, &f);
        self.features[node as usize] = f;
        self.mark_dirty(node);
        true
    }

    /// When a value gains or loses a carrier its rarity may change, and with
    /// it the scores of its carriers: mark them dirty. Their scores can
    /// *rise* when a value turns common — a tooling value's rarity decides
    /// vetoes (turning common can lift one), and a command's or credential's
    /// weighs in the denominator of weighted Jaccards with partners that do
    /// not carry it — so those carriers are re-examined with their
    /// candidates. Only a key turning more common can just lower scores
    /// (`mark_shrunk`: a key weighs only in the high tier's maximum).
    fn rarity_changed(&mut self, old: &Features, new: &Features) {
        let mut changed: Vec<(Namespace, u32, bool)> = Vec::new();
        for ns in Namespace::ALL {
            walk_diff(ns.ids(old), ns.ids(new), |id, delta| {
                let now = ns.carriers(&self.post, id);
                let before = (now as i64 - delta) as u32;
                let (r_now, r_before) =
                    (self.effective(ns, id, now), self.effective(ns, id, before));
                if r_now != r_before {
                    changed.push((ns, id, r_now > r_before));
                }
            });
        }
        for (ns, id, rarer) in changed {
            let carriers = ns.list(&self.post, id).to_vec();
            for c in carriers {
                if rarer || ns != Namespace::Keys {
                    self.mark_dirty(c);
                } else {
                    self.mark_shrunk(c);
                }
            }
        }
    }

    /// The rarity a value would have with `carriers` carriers.
    fn effective(&self, ns: Namespace, id: u32, carriers: u32) -> f64 {
        let w = &self.weights;
        match ns {
            Namespace::Tools if self.vocab.tool_library[id as usize].is_some() => 0.0,
            Namespace::Commands if self.vocab.command_stock[id as usize] => 0.0,
            Namespace::Credentials => {
                (self.vocab.credential_prior[id as usize] as f64).min(w.rarity(carriers))
            }
            _ => w.rarity(carriers),
        }
    }

    fn attach_decisions(&mut self, n: u32) {
        let uuid = self.uuids[n as usize].clone();
        let mut found = Vec::new();
        for ((a, b), d) in self.decisions.iter() {
            let other = if **a == *uuid {
                b
            } else if **b == *uuid {
                a
            } else {
                continue;
            };
            if let Some(&m) = self.index_of.get(other.as_str()) {
                found.push((m, d.kind));
            }
        }
        for (m, kind) in found {
            self.decision_adj.entry(n).or_default().push((m, kind));
            self.decision_adj.entry(m).or_default().push((n, kind));
            self.mark_dirty(m);
        }
    }

    /// Replaces the operator decisions; observations on changed pairs are
    /// re-examined at the next settle.
    pub fn set_decisions(&mut self, decisions: Decisions) {
        let changed = decisions.changed_pairs(&self.decisions);
        self.decisions = decisions;
        self.decision_adj.clear();
        for ((a, b), d) in self.decisions.iter() {
            if let (Some(&x), Some(&y)) =
                (self.index_of.get(a.as_str()), self.index_of.get(b.as_str()))
            {
                self.decision_adj.entry(x).or_default().push((y, d.kind));
                self.decision_adj.entry(y).or_default().push((x, d.kind));
            }
        }
        for (a, b) in changed {
            for u in [a, b] {
                if let Some(&n) = self.index_of.get(u.as_str()) {
                    self.mark_dirty(n);
                }
            }
        }
    }

    pub fn decisions(&self) -> &Decisions {
        &self.decisions
    }

    /// The uuids of these nodes, sorted (shared with the store).
    fn sorted_syms(&self, nodes: &[u32]) -> Vec<Sym> {
        let mut v: Vec<Sym> = nodes
            .iter()
            .map(|&m| self.uuids[m as usize].clone())
            .collect();
        v.sort_unstable();
        v
    }

    /// [`Self::sorted_syms`] as owned strings (a `Sym` orders as its text).
    fn sorted_uuids(&self, nodes: &[u32]) -> Vec<String> {
        self.sorted_syms(nodes).iter().map(Sym::to_string).collect()
    }

    /// Every current identity (after the last rebuild/settle), sorted.
    pub fn identities(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for c in &self.comps {
            if c.parts.is_empty() {
                if !c.members.is_empty() {
                    out.push(self.sorted_uuids(&c.members));
                }
            } else {
                out.extend(c.parts.iter().map(|p| self.sorted_uuids(p)));
            }
        }
        out.sort();
        out
    }

    /// The members of the identity that holds `uuid`.
    pub fn identity_of(&self, uuid: &str) -> Option<Vec<String>> {
        let &n = self.index_of.get(uuid)?;
        let c = self.comps.get(self.comp_of[n as usize] as usize)?;
        if c.parts.is_empty() {
            return Some(self.sorted_uuids(&c.members));
        }
        c.parts
            .iter()
            .find(|p| p.contains(&n))
            .map(|p| self.sorted_uuids(p))
    }
}
