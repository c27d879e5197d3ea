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

use super::decisions::{DecisionKind, Decisions};
use super::features::{Features, Vocabulary};
use super::index::{BlockingPlan, Postings};
use super::similarity::{self, IdentityWeights, PairExplanation, PairScore, WeightError};
use crate::evidence::Observation;
use petgraph::unionfind::UnionFind;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

const NONE: u32 = u32::MAX;

/// Pairs of scope-local node indices.
type LocalPairs = Vec<(u32, u32)>;

/// A payload/C2 value carried by more observations than this is clustered
/// per tooling profile (all carriers of one profile are joined directly,
/// profiles pairwise) instead of pair by pair, so a 10,000-bot botnet costs
/// linear, not quadratic, work.
pub const BIG_VALUE_CARRIERS: u32 = 256;

/// One identity as computed: sorted member uuids and its cohesion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComputedIdentity {
    pub members: Vec<String>,
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

/// A component as computed over a scope: its members and its identities.
struct ScopeComponent {
    members: Vec<u32>,
    parts: Vec<(Vec<u32>, f64)>,
}

/// The scope of a settle as it is closed: whole components, and nodes not
/// yet in any component.
#[derive(Default)]
struct ScopeSet {
    nodes: Vec<u32>,
    in_scope: FxHashSet<u32>,
    comps: FxHashSet<u32>,
}

impl ScopeSet {
    /// Whether `n` (hence its whole component) is already in the scope.
    fn holds(&self, g: &IdentityGraph, n: u32) -> bool {
        let c = g.comp_of[n as usize];
        if c == NONE {
            self.in_scope.contains(&n)
        } else {
            self.comps.contains(&c)
        }
    }

    /// Adds `n` and every member of its component.
    fn add_comp(&mut self, g: &IdentityGraph, n: u32) {
        let c = g.comp_of[n as usize];
        if c == NONE {
            if self.in_scope.insert(n) {
                self.nodes.push(n);
            }
        } else if self.comps.insert(c) {
            for &m in &g.comps[c as usize].members {
                if self.in_scope.insert(m) {
                    self.nodes.push(m);
                }
            }
        }
    }
}

/// The incremental identity graph.
#[derive(Debug, Clone)]
pub struct IdentityGraph {
    weights: IdentityWeights,
    plan: BlockingPlan,
    vocab: Vocabulary,
    uuids: Vec<Box<str>>,
    index_of: FxHashMap<Box<str>, u32>,
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
}

/// An edge as found during clustering (local node indices).
#[derive(Clone, Copy, Debug)]
struct Edge {
    a: u32,
    b: u32,
    weight: f64,
}

impl IdentityGraph {
    /// An empty graph; fails when a weight is out of its domain.
    pub fn new(weights: IdentityWeights) -> Result<Self, WeightError> {
        weights.validate()?;
        Ok(IdentityGraph {
            plan: BlockingPlan::derive(&weights),
            weights,
            vocab: Vocabulary::default(),
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
        })
    }

    /// Changes the carrier count above which payload/C2 values are clustered
    /// per tooling profile. The components do not depend on it (tests prove
    /// it by setting it low); only the cost does. Takes effect at the next
    /// rebuild.
    pub fn set_big_value_carriers(&mut self, carriers: u32) {
        self.big_value_carriers = carriers.max(1);
    }

    pub fn weights(&self) -> &IdentityWeights {
        &self.weights
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
                self.uuids.push(obs.uuid.as_str().into());
                self.index_of.insert(obs.uuid.as_str().into(), n);
                self.features.push(Features::default());
                self.comp_of.push(NONE);
                self.is_dirty.push(false);
                self.expand.push(false);
                self.post.update(n, &f, self.plan, true);
                self.rarity_changed(&f.tools, &[]);
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
        let added: Vec<u32> = f
            .tools
            .iter()
            .filter(|t| !old.tools.contains(t))
            .copied()
            .collect();
        let removed: Vec<u32> = old
            .tools
            .iter()
            .filter(|t| !f.tools.contains(t))
            .copied()
            .collect();
        self.features[node as usize] = f;
        self.rarity_changed(&added, &removed);
        self.mark_dirty(node);
        true
    }

    /// When a tooling value gains or loses a carrier its rarity may change,
    /// and with it every pair among its carriers: mark them dirty.
    fn rarity_changed(&mut self, added: &[u32], removed: &[u32]) {
        for (&t, delta) in added
            .iter()
            .map(|t| (t, 1i64))
            .chain(removed.iter().map(|t| (t, -1i64)))
        {
            let now = self.post.tool_carriers(t);
            let before = (now as i64 - delta) as u32;
            let (r_now, r_before) = (self.weights.rarity(now), self.weights.rarity(before));
            if r_now != r_before {
                let carriers = self.post.tools[t as usize].clone();
                for c in carriers {
                    if r_now < r_before {
                        self.mark_shrunk(c);
                    } else {
                        self.mark_dirty(c);
                    }
                }
            }
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

    fn carriers_fn(&self) -> impl Fn(u32) -> u32 + '_ {
        |t| self.post.tool_carriers(t)
    }

    fn score(&self, x: u32, y: u32) -> PairScore {
        similarity::score(
            &self.features[x as usize],
            &self.features[y as usize],
            &self.weights,
            self.carriers_fn(),
        )
    }

    fn is_big(&self, carriers: u32, weight: f64) -> bool {
        carriers > self.big_value_carriers && weight >= self.weights.threshold
    }

    /// Calls `visit(y)` for every candidate partner of `x` (possibly more than
    /// once). Big payload/C2 values are skipped unless `include_big`.
    fn for_each_candidate(&self, x: u32, include_big: bool, mut visit: impl FnMut(u32)) {
        let f = &self.features[x as usize];
        let w = &self.weights;
        for &t in f.tools.iter() {
            let list = &self.post.tools[t as usize];
            if w.rarity(list.len() as u32) > 0.0 && w.fingerprint > 0.0 {
                list.iter().for_each(|&y| visit(y));
            }
        }
        if w.payload > 0.0 {
            for &p in f.payloads.iter() {
                let list = &self.post.payloads[p as usize];
                if include_big || !self.is_big(list.len() as u32, w.payload) {
                    list.iter().for_each(|&y| visit(y));
                }
            }
        }
        if w.c2 > 0.0 {
            for &c in f.c2.iter() {
                let list = &self.post.c2[c as usize];
                if include_big || !self.is_big(list.len() as u32, w.c2) {
                    list.iter().for_each(|&y| visit(y));
                }
            }
        }
        if self.plan.commands {
            for k in f.commands.iter() {
                if let Some(list) = self.post.commands.get(k) {
                    list.iter().for_each(|&y| visit(y));
                }
            }
        }
        if self.plan.credentials {
            for k in f.credentials.iter() {
                if let Some(list) = self.post.credentials.get(k) {
                    list.iter().for_each(|&y| visit(y));
                }
            }
        }
        if self.plan.asn {
            if let Some(list) = f.asn.and_then(|a| self.post.asn.get(&a)) {
                list.iter().for_each(|&y| visit(y));
            }
        }
    }

    /// The big payload/C2 values `x` carries, as (is_c2, id).
    fn big_values_of(&self, x: u32, out: &mut Vec<(bool, u32)>) {
        let f = &self.features[x as usize];
        for &p in f.payloads.iter() {
            if self.is_big(self.post.payload_carriers(p), self.weights.payload) {
                out.push((false, p));
            }
        }
        for &c in f.c2.iter() {
            if self.is_big(self.post.c2_carriers(c), self.weights.c2) {
                out.push((true, c));
            }
        }
    }

    fn big_carriers(&self, (is_c2, id): (bool, u32)) -> &[u32] {
        if is_c2 {
            &self.post.c2[id as usize]
        } else {
            &self.post.payloads[id as usize]
        }
    }

    /// Clusters everything from scratch; returns every identity.
    pub fn rebuild(&mut self) -> Vec<ComputedIdentity> {
        for d in std::mem::take(&mut self.dirty) {
            self.is_dirty[d as usize] = false;
            self.expand[d as usize] = false;
        }
        let scope: Vec<u32> = (0..self.uuids.len() as u32).collect();
        self.comps.clear();
        self.free_comps.clear();
        self.comp_of.iter_mut().for_each(|c| *c = NONE);
        self.cluster_and_store(&scope)
    }

    /// Re-clusters only what changed since the last settle. Returns the
    /// identities of the closed scope that was recomputed (unchanged ones
    /// included, so the caller can reconcile the whole scope).
    pub fn settle(&mut self) -> Vec<ComputedIdentity> {
        if self.dirty.is_empty() {
            return Vec::new();
        }
        let seeds = std::mem::take(&mut self.dirty);
        for &d in &seeds {
            self.is_dirty[d as usize] = false;
        }
        let scope = self.close_scope(&seeds);
        for &d in &seeds {
            self.expand[d as usize] = false;
        }
        for &n in &scope {
            let c = self.comp_of[n as usize];
            if c != NONE {
                self.comps[c as usize] = Component::default();
                self.free_comps.push(c);
                // Mark every member of the freed slot as unassigned.
            }
        }
        for &n in &scope {
            self.comp_of[n as usize] = NONE;
        }
        self.free_comps.sort_unstable();
        self.free_comps.dedup();
        self.cluster_and_store(&scope)
    }

    /// Seeds + their current components + the components of every node they
    /// now have an edge or a decision with.
    fn close_scope(&self, seeds: &[u32]) -> Vec<u32> {
        let mut scope = ScopeSet::default();
        // Every seed's component first: a candidate already in the scope
        // (most partners of a seed arrive in its batch, or sit in its own
        // component) is not scored, as adding it again would change nothing.
        for &s in seeds {
            scope.add_comp(self, s);
        }
        let mut bigs = Vec::new();
        let mut seen = FxHashSet::default();
        for &s in seeds {
            if !self.expand[s as usize] {
                // Its scores only fell: every edge it has now it had before,
                // inside its component.
                continue;
            }
            seen.clear();
            self.for_each_candidate(s, false, |y| {
                if y != s
                    && seen.insert(y)
                    && !scope.holds(self, y)
                    && self.score(s, y).is_edge(&self.weights)
                {
                    scope.add_comp(self, y);
                }
            });
            if let Some(adj) = self.decision_adj.get(&s) {
                for &(y, _) in adj {
                    scope.add_comp(self, y);
                }
            }
            bigs.clear();
            self.big_values_of(s, &mut bigs);
            for &v in &bigs {
                let fs = &self.features[s as usize];
                for &y in self.big_carriers(v) {
                    if !scope.holds(self, y) && !similarity::vetoed(fs, &self.features[y as usize])
                    {
                        scope.add_comp(self, y);
                    }
                }
            }
        }
        scope.nodes
    }

    fn cluster_and_store(&mut self, scope: &[u32]) -> Vec<ComputedIdentity> {
        let comps = self.cluster_scope(scope);
        let mut out = Vec::with_capacity(comps.len());
        for comp in comps {
            let slot = match self.free_comps.pop() {
                Some(s) => s,
                None => {
                    self.comps.push(Component::default());
                    (self.comps.len() - 1) as u32
                }
            };
            for &m in &comp.members {
                self.comp_of[m as usize] = slot;
            }
            let split = comp.parts.len() > 1;
            let mut parts = Vec::new();
            for (members, confidence) in comp.parts {
                out.push(ComputedIdentity {
                    members: self.sorted_uuids(&members),
                    confidence,
                });
                if split {
                    parts.push(members);
                }
            }
            self.comps[slot as usize] = Component {
                members: comp.members,
                parts,
            };
        }
        out.sort_by(|a, b| a.members.cmp(&b.members));
        out
    }

    fn sorted_uuids(&self, nodes: &[u32]) -> Vec<String> {
        let mut v: Vec<String> = nodes
            .iter()
            .map(|&m| self.uuids[m as usize].to_string())
            .collect();
        v.sort_unstable();
        v
    }

    /// Cohesion of one identity: mean over members (in uuid order) of
    /// min(1, strongest tie / saturation); 1.0 for a single observation.
    fn confidence(&self, nodes: &[u32], best: impl Fn(u32) -> f64) -> f64 {
        if nodes.len() < 2 {
            return 1.0;
        }
        let saturation = self.weights.confidence_saturation;
        let mut ties: Vec<(&str, f64)> = nodes
            .iter()
            .map(|&n| (&*self.uuids[n as usize], best(n)))
            .collect();
        ties.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let sum: f64 = ties.iter().map(|t| (t.1 / saturation).min(1.0)).sum();
        sum / ties.len() as f64
    }

    /// Clusters a closed scope: returns (members, confidence) per component.
    fn cluster_scope(&self, scope: &[u32]) -> Vec<ScopeComponent> {
        let mut local: FxHashMap<u32, u32> = FxHashMap::default();
        local.reserve(scope.len());
        for (i, &n) in scope.iter().enumerate() {
            local.insert(n, i as u32);
        }
        let mut uf = UnionFind::<u32>::new(scope.len());
        let mut best = vec![0.0f64; scope.len()];
        let threshold = self.weights.threshold;
        let mut seen: Vec<u32> = vec![NONE; scope.len()];
        for (i, &x) in scope.iter().enumerate() {
            let i = i as u32;
            self.for_each_candidate(x, false, |y| {
                if y <= x {
                    return;
                }
                let Some(&j) = local.get(&y) else { return };
                if seen[j as usize] == i {
                    return;
                }
                seen[j as usize] = i;
                let s = self.score(x, y);
                if s.total >= threshold {
                    uf.union(i, j);
                    best[i as usize] = best[i as usize].max(s.total);
                    best[j as usize] = best[j as usize].max(s.total);
                }
            });
        }
        for e in self.big_value_edges(scope, &local) {
            uf.union(e.a, e.b);
            best[e.a as usize] = best[e.a as usize].max(e.weight);
            best[e.b as usize] = best[e.b as usize].max(e.weight);
        }
        let saturation = self.weights.confidence_saturation;
        let (links, separates) = self.decisions_in(&local);
        for &(a, b) in &links {
            uf.union(a, b);
            best[a as usize] = best[a as usize].max(saturation);
            best[b as usize] = best[b as usize].max(saturation);
        }
        let labels = uf.into_labeling();
        let mut by_root: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for (i, &root) in labels.iter().enumerate() {
            by_root.entry(root).or_default().push(i as u32);
        }
        let mut out = Vec::with_capacity(by_root.len());
        for (root, locals) in by_root {
            let members: Vec<u32> = locals.iter().map(|&l| scope[l as usize]).collect();
            let cut = separates
                .iter()
                .any(|(a, b)| labels[*a as usize] == root && labels[*b as usize] == root);
            let parts = if cut {
                self.split_component(scope, &local, &locals, &links, &separates)
            } else {
                let confidence = self.confidence(&members, |n| best[local[&n] as usize]);
                vec![(members.clone(), confidence)]
            };
            out.push(ScopeComponent { members, parts });
        }
        out
    }

    /// Edges for big payload/C2 values within the scope: carriers with the
    /// same tooling profile are joined to the group's first member (by uuid);
    /// groups whose profiles are not vetoed are joined by their first members.
    fn big_value_edges(&self, scope: &[u32], local: &FxHashMap<u32, u32>) -> Vec<Edge> {
        let mut values = Vec::new();
        for &x in scope {
            self.big_values_of(x, &mut values);
        }
        values.sort_unstable();
        values.dedup();
        let mut edges = Vec::new();
        for v in values {
            let mut carriers: Vec<u32> = self
                .big_carriers(v)
                .iter()
                .copied()
                .filter(|y| local.contains_key(y))
                .collect();
            carriers.sort_unstable_by(|a, b| self.uuids[*a as usize].cmp(&self.uuids[*b as usize]));
            let mut groups: Vec<(u32, u32)> = Vec::new(); // (profile, first carrier)
            let mut group_of_profile: FxHashMap<u32, usize> = FxHashMap::default();
            for &y in &carriers {
                let p = self.features[y as usize].profile;
                match group_of_profile.get(&p) {
                    Some(&g) => {
                        let head = groups[g].1;
                        let s = self.score(head, y);
                        edges.push(Edge {
                            a: local[&head],
                            b: local[&y],
                            weight: s.total,
                        });
                    }
                    None => {
                        group_of_profile.insert(p, groups.len());
                        groups.push((p, y));
                    }
                }
            }
            for i in 0..groups.len() {
                for j in i + 1..groups.len() {
                    let (x, y) = (groups[i].1, groups[j].1);
                    if !similarity::vetoed(&self.features[x as usize], &self.features[y as usize]) {
                        let s = self.score(x, y);
                        edges.push(Edge {
                            a: local[&x],
                            b: local[&y],
                            weight: s.total,
                        });
                    }
                }
            }
        }
        edges
    }

    /// Link and separate pairs with both ends in the scope, in canonical order.
    fn decisions_in(&self, local: &FxHashMap<u32, u32>) -> (LocalPairs, LocalPairs) {
        let mut links = Vec::new();
        let mut separates = Vec::new();
        for ((a, b), d) in self.decisions.iter() {
            let (Some(x), Some(y)) = (self.index_of.get(a.as_str()), self.index_of.get(b.as_str()))
            else {
                continue;
            };
            let (Some(&i), Some(&j)) = (local.get(x), local.get(y)) else {
                continue;
            };
            match d.kind {
                DecisionKind::Link => links.push((i, j)),
                DecisionKind::Separate => separates.push((i, j)),
            }
        }
        (links, separates)
    }

    /// Cuts a component that contains a separated pair: Kruskal over every
    /// edge inside it (links first, then strongest first, ties by uuid pair),
    /// refusing any join that would unite a separated pair.
    fn split_component(
        &self,
        scope: &[u32],
        local: &FxHashMap<u32, u32>,
        members: &[u32],
        links: &[(u32, u32)],
        separates: &[(u32, u32)],
    ) -> Vec<(Vec<u32>, f64)> {
        let inside: FxHashSet<u32> = members.iter().copied().collect();
        let mut edges: Vec<(f64, &str, &str, u32, u32)> = Vec::new();
        for &i in members {
            let x = scope[i as usize];
            let mut seen = FxHashSet::default();
            self.for_each_candidate(x, true, |y| {
                if y <= x || !seen.insert(y) {
                    return;
                }
                let Some(&j) = local.get(&y) else { return };
                if !inside.contains(&j) {
                    return;
                }
                let s = self.score(x, y);
                if s.is_edge(&self.weights) {
                    let (ux, uy) = (&*self.uuids[x as usize], &*self.uuids[y as usize]);
                    let (lo, hi) = if ux < uy { (ux, uy) } else { (uy, ux) };
                    edges.push((s.total, lo, hi, i, j));
                }
            });
        }
        edges.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.cmp(b.1))
                .then_with(|| a.2.cmp(b.2))
        });
        let seps: Vec<(u32, u32)> = separates
            .iter()
            .copied()
            .filter(|(a, b)| inside.contains(a) && inside.contains(b))
            .collect();
        let saturation = self.weights.confidence_saturation;
        let mut canon_links: Vec<(&str, &str, u32, u32)> = links
            .iter()
            .filter(|(a, b)| inside.contains(a) && inside.contains(b))
            .map(|&(a, b)| {
                let ua = &*self.uuids[scope[a as usize] as usize];
                let ub = &*self.uuids[scope[b as usize] as usize];
                (ua.min(ub), ua.max(ub), a, b)
            })
            .collect();
        canon_links.sort();
        let mut uf = UnionFind::<u32>::new(scope.len());
        let joins = canon_links
            .iter()
            .map(|l| (saturation, l.2, l.3))
            .chain(edges.iter().map(|e| (e.0, e.3, e.4)));
        for (_, a, b) in joins.clone() {
            let (ra, rb) = (uf.find_mut(a), uf.find_mut(b));
            if ra == rb {
                continue;
            }
            let refused = seps.iter().any(|&(s, t)| {
                let (rs, rt) = (uf.find_mut(s), uf.find_mut(t));
                (rs == ra && rt == rb) || (rs == rb && rt == ra)
            });
            if !refused {
                uf.union(a, b);
            }
        }
        let mut best: FxHashMap<u32, f64> = FxHashMap::default();
        for (w, a, b) in joins {
            if uf.find_mut(a) == uf.find_mut(b) {
                for n in [a, b] {
                    let e = best.entry(n).or_insert(0.0);
                    *e = e.max(w);
                }
            }
        }
        let mut parts: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for &m in members {
            parts.entry(uf.find_mut(m)).or_default().push(m);
        }
        parts
            .into_values()
            .map(|locals| {
                let nodes: Vec<u32> = locals.iter().map(|&l| scope[l as usize]).collect();
                let confidence =
                    self.confidence(&nodes, |n| best.get(&local[&n]).copied().unwrap_or(0.0));
                (nodes, confidence)
            })
            .collect()
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

    /// Per-tier scores, matching values, veto, rarity and decision of a pair.
    pub fn explain_pair(&self, a: &str, b: &str) -> Option<PairExplanation> {
        let (&x, &y) = (self.index_of.get(a)?, self.index_of.get(b)?);
        let mut e = similarity::explain(
            (a, &self.features[x as usize]),
            (b, &self.features[y as usize]),
            &self.weights,
            &self.vocab,
            self.carriers_fn(),
        );
        e.decision = self
            .decisions
            .get(a, b)
            .map(|d| d.kind.as_str().to_string());
        Some(e)
    }

    /// The edges that hold the identity of `uuid` together: a maximum
    /// spanning tree of its evidence edges (operator links included, with
    /// weight = confidence saturation).
    pub fn explain_identity(&self, uuid: &str) -> Option<Vec<ExplainedEdge>> {
        let members = self.identity_of(uuid)?;
        let nodes: Vec<u32> = members.iter().map(|m| self.index_of[m.as_str()]).collect();
        let local: FxHashMap<u32, u32> = nodes
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, i as u32))
            .collect();
        let mut edges: Vec<(f64, u32, u32)> = Vec::new();
        for (i, &x) in nodes.iter().enumerate() {
            let mut seen = FxHashSet::default();
            self.for_each_candidate(x, false, |y| {
                if y <= x || !seen.insert(y) {
                    return;
                }
                if let Some(&j) = local.get(&y) {
                    let s = self.score(x, y);
                    if s.is_edge(&self.weights) {
                        edges.push((s.total, i as u32, j));
                    }
                }
            });
        }
        edges.extend(
            self.big_value_edges(&nodes, &local)
                .into_iter()
                .map(|e| (e.weight, e.a, e.b)),
        );
        let (links, _) = self.decisions_in(&local);
        edges.extend(links.iter().map(|&(a, b)| (f64::INFINITY, a, b)));
        edges.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| (a.1, a.2).cmp(&(b.1, b.2)))
        });
        let mut uf = UnionFind::<u32>::new(nodes.len());
        let mut out = Vec::new();
        for (w, a, b) in edges {
            if uf.union(a, b) {
                let (ua, ub) = (&members[a as usize], &members[b as usize]);
                let explanation = self.explain_pair(ua, ub)?;
                out.push(ExplainedEdge {
                    weight: if w.is_finite() {
                        w
                    } else {
                        self.weights.confidence_saturation
                    },
                    explanation,
                });
            }
        }
        Some(out)
    }
}
