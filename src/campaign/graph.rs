//! The campaign graph: effective identities as nodes, campaign edges found
//! through indexes, campaigns as connected components, kept incrementally.
//! Like the identity graph it clusters a *closed scope* (whole components
//! plus changed identities and everything they now touch) with the same
//! procedure for a rebuild and a settle, so both agree by construction.
//! Member lists are kept explicitly (petgraph's `UnionFind` only joins, and
//! a settle must also split); `UnionFind` joins nodes inside a scope.
//!
//! Indexes (no all-pairs pass): hand-offs by decky (arrivals sorted by their
//! first time, enders by their last activity, so only pairs within the
//! window are visited), shared infrastructure by value, keystroke rhythm by
//! SimHash blocks (64 bits cut into 9 blocks of 7–8 bits: centroids within
//! 8 bits agree exactly on at least one block), and — only when the weights
//! make them necessary — temporal overlap by day bucket and cohort by token.
//! Which signals are indexed is derived from the weights: heaviest first
//! until the unindexed signals together cannot reach the threshold.

use super::rollup::IdentityRollup;
use super::similarity::{
    self, is_handoff_end, is_handoff_start, CampaignPairScore, CampaignWeightError,
    CampaignWeights, DeckyArrivals,
};
use crate::evidence::Millis;
use petgraph::unionfind::UnionFind;
use rustc_hash::{FxHashMap, FxHashSet};

const NONE: u32 = u32::MAX;
const DAY: Millis = 86_400_000;
/// Bit widths of the 9 SimHash blocks (sum 64).
const BLOCKS: [u32; 9] = [8, 7, 7, 7, 7, 7, 7, 7, 7];

/// Which signals have an index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CampaignPlan {
    pub handoff: bool,
    pub infra: bool,
    pub rhythm: bool,
    pub overlap: bool,
    pub cohort: bool,
}

impl CampaignPlan {
    pub fn derive(w: &CampaignWeights) -> CampaignPlan {
        let mut signals = [
            (w.handoff, 0),
            (w.infra, 1),
            (w.rhythm, 2),
            (w.overlap, 3),
            (w.cohort, 4),
        ];
        signals.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut remaining: f64 = signals.iter().map(|s| s.0).sum();
        let mut plan = CampaignPlan::default();
        for (weight, s) in signals {
            if remaining < w.threshold {
                break;
            }
            remaining -= weight;
            match s {
                0 => plan.handoff = true,
                1 => plan.infra = true,
                2 => plan.rhythm = true,
                3 => plan.overlap = true,
                _ => plan.cohort = true,
            }
        }
        plan
    }
}

fn blocks(h: u64) -> impl Iterator<Item = (u8, u64)> {
    let mut shift = 0;
    BLOCKS.iter().enumerate().map(move |(i, &bits)| {
        let v = (h >> shift) & ((1u64 << bits) - 1);
        shift += bits;
        (i as u8, v)
    })
}

/// Postings keyed by a value (of nodes, or of items that name a node).
type Postings<K, T = u32> = FxHashMap<K, Vec<T>>;

fn post<K: std::hash::Hash + Eq, T: PartialEq>(p: &mut Postings<K, T>, k: K, item: T, add: bool) {
    let list = p.entry(k).or_default();
    if add {
        list.push(item);
    } else if let Some(i) = list.iter().position(|x| *x == item) {
        list.swap_remove(i);
    }
}

#[derive(Default, Debug, Clone)]
struct DeckyIndex {
    /// (first phase time, node) of arrivals, sorted.
    arrivals: Vec<(Millis, u32)>,
    /// (last activity, node) of enders, sorted.
    enders: Vec<(Millis, u32)>,
    stats: DeckyArrivals,
    /// The rounded chances hand-off weights on this decky had at the last
    /// rebuild or settle (what the current components were computed with).
    settled: (f64, f64),
    /// Arrivals changed since then (the decky is in `edited_deckies`).
    edited: bool,
}

impl DeckyIndex {
    fn refresh(&mut self) {
        self.stats = DeckyArrivals {
            count: self.arrivals.len() as u32,
            first: self.arrivals.first().map_or(0, |a| a.0),
            last: self.arrivals.last().map_or(0, |a| a.0),
        };
    }
}

/// One identity as a node.
#[derive(Debug, Clone, Default)]
struct Node {
    id: String,
    rollup: IdentityRollup,
    alive: bool,
}

/// The incremental campaign graph.
#[derive(Debug, Clone)]
pub struct CampaignGraph {
    weights: CampaignWeights,
    plan: CampaignPlan,
    nodes: Vec<Node>,
    index_of: FxHashMap<String, u32>,
    deckies: FxHashMap<String, DeckyIndex>,
    infra: Postings<String>,
    /// (node, its centroid) by centroid block: the distance check reads the
    /// list alone, never the (large, scattered) nodes.
    rhythm: Postings<(u8, u64), (u32, u64)>,
    buckets: Postings<i64>,
    cohort: Postings<String>,
    comp_of: Vec<u32>,
    comps: Vec<Vec<u32>>,
    free: Vec<u32>,
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
    /// Set once components exist; until then nothing needs re-examining.
    built: bool,
    /// Deckies whose arrivals changed since the last settle: if their
    /// rounded chances moved, the hand-off pairs on them are re-examined.
    edited_deckies: Vec<String>,
}

/// A campaign as computed: sorted member identity ids and its cohesion.
#[derive(Clone, Debug, PartialEq)]
pub struct ComputedCampaign {
    pub members: Vec<String>,
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

    /// Adds (`add`) or removes a node's postings; marks every identity whose
    /// hand-off weights change with a decky's arrival statistics.
    fn index(&mut self, n: u32, add: bool) {
        // Taken out and put back so the indexes can be edited while reading it.
        let r = std::mem::take(&mut self.nodes[n as usize].rollup);
        self.index_rollup(n, &r, add);
        self.nodes[n as usize].rollup = r;
    }

    fn index_rollup(&mut self, n: u32, r: &IdentityRollup, add: bool) {
        let plan = self.plan;
        if plan.handoff {
            for (decky, act) in &r.deckies {
                let d = match self.deckies.get_mut(decky) {
                    Some(d) => d,
                    None => self.deckies.entry(decky.clone()).or_default(),
                };
                if let Some((_, t)) = act.first_phase.filter(|(p, _)| is_handoff_start(*p)) {
                    edit_sorted(&mut d.arrivals, (t, n), add);
                    d.refresh();
                    // The decky's arrival rate may have changed, and with it
                    // every hand-off weight on it: decided at the next settle
                    // (against the rate the components were computed with).
                    // Before the first build there is nothing to re-examine.
                    if self.built && !d.edited {
                        d.edited = true;
                        self.edited_deckies.push(decky.clone());
                    }
                }
                if act.last_phase.is_some_and(|(p, _)| is_handoff_end(p)) {
                    edit_sorted(&mut d.enders, (act.last_activity, n), add);
                }
            }
        }
        if plan.infra {
            for v in &r.infra {
                post(&mut self.infra, v.clone(), n, add);
            }
        }
        if plan.rhythm {
            if let Some(h) = r.keystroke_centroid {
                for b in blocks(h) {
                    post(&mut self.rhythm, b, (n, h), add);
                }
            }
        }
        if plan.overlap {
            for d in day_buckets(r) {
                post(&mut self.buckets, d, n, add);
            }
        }
        if plan.cohort {
            for t in similarity::cohort(r) {
                post(&mut self.cohort, t.clone(), n, add);
            }
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
                self.nodes.push(Node::default());
                self.comp_of.push(NONE);
                self.is_dirty.push(false);
                self.index_of.insert(id.to_string(), n);
                n
            }
        };
        self.nodes[n as usize] = Node {
            id: id.to_string(),
            rollup,
            alive: true,
        };
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

    fn score_with(&self, x: u32, y: u32, detailed: bool) -> CampaignPairScore {
        let (a, b) = (&self.nodes[x as usize], &self.nodes[y as usize]);
        similarity::score(
            (&a.id, &a.rollup),
            (&b.id, &b.rollup),
            &self.weights,
            |d| self.deckies.get(d).map(|i| &i.stats),
            detailed,
        )
    }

    fn score(&self, x: u32, y: u32) -> CampaignPairScore {
        self.score_with(x, y, false)
    }

    /// Whether `x`–`y` is an edge, scoring fully only the pairs that can be.
    fn is_edge(&self, x: u32, y: u32) -> bool {
        self.may_be_edge(x, y) && self.score(x, y).edge
    }

    /// A cheap bound: false only when the pair cannot be an edge.
    fn may_be_edge(&self, x: u32, y: u32) -> bool {
        similarity::may_be_edge(
            &self.nodes[x as usize].rollup,
            &self.nodes[y as usize].rollup,
            &self.weights,
            |d| self.deckies.get(d).map(|i| &i.stats),
        )
    }

    /// Candidate partners of `x` (possibly repeated).
    fn for_each_candidate(&self, x: u32, mut visit: impl FnMut(u32)) {
        let r = &self.nodes[x as usize].rollup;
        let window = self.weights.handoff_window_ms;
        if self.plan.handoff {
            for (decky, act) in &r.deckies {
                let Some(d) = self.deckies.get(decky) else {
                    continue;
                };
                if act.last_phase.is_some_and(|(p, _)| is_handoff_end(p)) {
                    let (lo, hi) = (act.last_activity, act.last_activity + window);
                    let start = d.arrivals.partition_point(|a| a.0 < lo);
                    d.arrivals[start..]
                        .iter()
                        .take_while(|a| a.0 <= hi)
                        .for_each(|a| visit(a.1));
                }
                if let Some((_, t)) = act.first_phase.filter(|(p, _)| is_handoff_start(*p)) {
                    let start = d.enders.partition_point(|e| e.0 < t - window);
                    d.enders[start..]
                        .iter()
                        .take_while(|e| e.0 <= t)
                        .for_each(|e| visit(e.1));
                }
            }
        }
        if self.plan.infra {
            for v in &r.infra {
                self.infra
                    .get(v)
                    .into_iter()
                    .flatten()
                    .for_each(|&y| visit(y));
            }
        }
        if self.plan.rhythm {
            if let Some(h) = r.keystroke_centroid {
                let max = self.weights.rhythm_max_bits;
                for b in blocks(h) {
                    for &(y, hy) in self.rhythm.get(&b).into_iter().flatten() {
                        if (h ^ hy).count_ones() <= max {
                            visit(y);
                        }
                    }
                }
            }
        }
        if self.plan.overlap {
            for d in day_buckets(r) {
                self.buckets
                    .get(&d)
                    .into_iter()
                    .flatten()
                    .for_each(|&y| visit(y));
            }
        }
        if self.plan.cohort {
            for t in similarity::cohort(r) {
                self.cohort
                    .get(t)
                    .into_iter()
                    .flatten()
                    .for_each(|&y| visit(y));
            }
        }
    }

    /// Every campaign from scratch.
    pub fn rebuild(&mut self) -> Vec<ComputedCampaign> {
        for d in std::mem::take(&mut self.dirty) {
            self.is_dirty[d as usize] = false;
        }
        self.comps.clear();
        self.free.clear();
        self.comp_of.iter_mut().for_each(|c| *c = NONE);
        let window = self.weights.handoff_window_ms;
        for d in self.deckies.values_mut() {
            d.settled = d.stats.chances(window);
            d.edited = false;
        }
        self.edited_deckies.clear();
        let scope: Vec<u32> = (0..self.nodes.len() as u32)
            .filter(|&n| self.nodes[n as usize].alive)
            .collect();
        self.cluster_and_store(&scope)
    }

    /// The (ender, arrival) pairs, both alive, of every hand-off on a decky
    /// whose rounded chances moved since the last settle (their weights
    /// changed; nothing else did), each with whether its weight may have
    /// risen (a chance fell). Forgets the edits.
    fn changed_handoffs(&mut self) -> Vec<(u32, u32, bool)> {
        let window = self.weights.handoff_window_ms;
        let mut out = Vec::new();
        for name in std::mem::take(&mut self.edited_deckies) {
            let Some(d) = self.deckies.get_mut(&name) else {
                continue;
            };
            d.edited = false;
            let now = d.stats.chances(window);
            if now == d.settled {
                continue;
            }
            // A weight is handoff × e^-chance: it rises only where a chance fell.
            let may_rise = now.0 < d.settled.0 || now.1 < d.settled.1;
            d.settled = now;
            for &(end, e) in &d.enders {
                let start = d.arrivals.partition_point(|a| a.0 < end);
                for &(_, a) in d.arrivals[start..]
                    .iter()
                    .take_while(|a| a.0 <= end + window)
                {
                    if a != e && self.nodes[a as usize].alive && self.nodes[e as usize].alive {
                        out.push((e, a, may_rise));
                    }
                }
            }
        }
        // One entry a pair; it may rise if it may on any of its deckies.
        out.sort_unstable_by_key(|x| (x.0, x.1, !x.2));
        out.dedup_by(|later, first| (later.0, later.1) == (first.0, first.1));
        out
    }

    /// Re-clusters what changed since the last settle; returns the campaigns
    /// of the recomputed (closed) scope.
    pub fn settle(&mut self) -> Vec<ComputedCampaign> {
        let handoffs = self.changed_handoffs();
        if self.dirty.is_empty() && handoffs.is_empty() {
            return Vec::new();
        }
        let seeds = std::mem::take(&mut self.dirty);
        for &d in &seeds {
            self.is_dirty[d as usize] = false;
        }
        let mut scope_set = FxHashSet::default();
        let mut scope = Vec::new();
        let mut comps_seen = FxHashSet::default();
        // Adds n's component (or n alone). A node already in the scope needs
        // nothing: its component, if it has one, is in too.
        let add = |n: u32,
                   g: &Self,
                   scope: &mut Vec<u32>,
                   scope_set: &mut FxHashSet<u32>,
                   comps_seen: &mut FxHashSet<u32>| {
            let c = g.comp_of[n as usize];
            let members = if c != NONE && comps_seen.insert(c) {
                &g.comps[c as usize][..]
            } else {
                std::slice::from_ref(&n)
            };
            for &m in members {
                if g.nodes[m as usize].alive && scope_set.insert(m) {
                    scope.push(m);
                }
            }
        };
        // Changed identities: every pair with them may have changed.
        for &s in &seeds {
            add(s, self, &mut scope, &mut scope_set, &mut comps_seen);
            if !self.nodes[s as usize].alive {
                continue;
            }
            let mut seen = FxHashSet::default();
            self.for_each_candidate(s, |y| {
                // Scoring only decides whether y's component joins the scope.
                if y != s
                    && self.nodes[y as usize].alive
                    && !scope_set.contains(&y)
                    && seen.insert(y)
                    && self.is_edge(s, y)
                {
                    add(y, self, &mut scope, &mut scope_set, &mut comps_seen);
                }
            });
        }
        // Hand-offs re-weighted by a decky's new arrival rate. Components are
        // closed under the edges they were computed with, so a pair in two
        // components had no edge: only an edge now joins them, and only a
        // weight that rose can make one (a pair whose rollups changed is
        // re-examined above, as a seed's candidate). A pair inside one
        // component may have lost its edge or changed its weight (and with
        // it the campaign's confidence): that component is re-clustered.
        for &(e, a, may_rise) in &handoffs {
            let (ce, ca) = (self.comp_of[e as usize], self.comp_of[a as usize]);
            if ce != NONE && ce == ca {
                add(e, self, &mut scope, &mut scope_set, &mut comps_seen);
            } else if may_rise
                && !(scope_set.contains(&e) && scope_set.contains(&a))
                && self.is_edge(e, a)
            {
                add(e, self, &mut scope, &mut scope_set, &mut comps_seen);
                add(a, self, &mut scope, &mut scope_set, &mut comps_seen);
            }
        }
        for &s in &seeds {
            let c = self.comp_of[s as usize];
            if c != NONE {
                for m in std::mem::take(&mut self.comps[c as usize]) {
                    self.comp_of[m as usize] = NONE;
                }
                self.free.push(c);
            }
        }
        for &n in &scope {
            let c = self.comp_of[n as usize];
            if c != NONE {
                for m in std::mem::take(&mut self.comps[c as usize]) {
                    self.comp_of[m as usize] = NONE;
                }
                self.free.push(c);
            }
        }
        self.cluster_and_store(&scope)
    }

    fn cluster_and_store(&mut self, scope: &[u32]) -> Vec<ComputedCampaign> {
        if !self.built {
            // The first components (a first settle covers every node, all
            // dirty): hand-off weights are now those of the current rates.
            let window = self.weights.handoff_window_ms;
            for d in self.deckies.values_mut() {
                d.settled = d.stats.chances(window);
            }
        }
        self.built = true;
        let local: FxHashMap<u32, u32> = scope
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, i as u32))
            .collect();
        let mut uf = UnionFind::<u32>::new(scope.len());
        let mut best = vec![0.0f64; scope.len()];
        let mut seen = vec![NONE; scope.len()];
        for (i, &x) in scope.iter().enumerate() {
            self.for_each_candidate(x, |y| {
                if y <= x {
                    return;
                }
                let Some(&j) = local.get(&y) else { return };
                if seen[j as usize] == i as u32 {
                    return;
                }
                seen[j as usize] = i as u32;
                if !self.may_be_edge(x, y) {
                    return;
                }
                let s = self.score(x, y);
                if s.edge {
                    uf.union(i as u32, j);
                    best[i] = best[i].max(s.total);
                    best[j as usize] = best[j as usize].max(s.total);
                }
            });
        }
        let mut groups: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for (i, root) in uf.into_labeling().into_iter().enumerate() {
            groups.entry(root).or_default().push(i as u32);
        }
        let saturation = self.weights.confidence_saturation;
        let mut out = Vec::with_capacity(groups.len());
        for locals in groups.into_values() {
            let mut members: Vec<(String, f64)> = locals
                .iter()
                .map(|&l| {
                    (
                        self.nodes[scope[l as usize] as usize].id.clone(),
                        best[l as usize],
                    )
                })
                .collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            let confidence = if members.len() < 2 {
                1.0
            } else {
                members
                    .iter()
                    .map(|m| (m.1 / saturation).min(1.0))
                    .sum::<f64>()
                    / members.len() as f64
            };
            let slot = self.free.pop().unwrap_or_else(|| {
                self.comps.push(Vec::new());
                (self.comps.len() - 1) as u32
            });
            let nodes: Vec<u32> = locals.iter().map(|&l| scope[l as usize]).collect();
            for &n in &nodes {
                self.comp_of[n as usize] = slot;
            }
            self.comps[slot as usize] = nodes;
            out.push(ComputedCampaign {
                members: members.into_iter().map(|m| m.0).collect(),
                confidence,
            });
        }
        out.sort_by(|a, b| a.members.cmp(&b.members));
        out
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
                    .map(|&n| self.nodes[n as usize].id.clone())
                    .collect();
                v.sort();
                v
            })
            .collect();
        out.sort();
        out
    }

    /// The evidence between two identities.
    pub fn explain(&self, a: &str, b: &str) -> Option<CampaignPairScore> {
        let (&x, &y) = (self.index_of.get(a)?, self.index_of.get(b)?);
        Some(self.score_with(x, y, true))
    }

    /// The edges that hold the campaign of `id` together (a maximum spanning tree).
    pub fn explain_campaign(&self, id: &str) -> Vec<(String, String, CampaignPairScore)> {
        let Some(&n) = self.index_of.get(id) else {
            return Vec::new();
        };
        let c = self.comp_of[n as usize];
        if c == NONE {
            return Vec::new();
        }
        let members = &self.comps[c as usize];
        let local: FxHashMap<u32, u32> = members
            .iter()
            .enumerate()
            .map(|(i, &m)| (m, i as u32))
            .collect();
        let mut edges = Vec::new();
        for &x in members {
            let mut seen = FxHashSet::default();
            self.for_each_candidate(x, |y| {
                if y > x && seen.insert(y) && local.contains_key(&y) {
                    let s = self.score_with(x, y, true);
                    if s.edge {
                        edges.push((s.total, x, y, s));
                    }
                }
            });
        }
        edges.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        let mut uf = UnionFind::<u32>::new(members.len());
        edges
            .into_iter()
            .filter(|e| uf.union(local[&e.1], local[&e.2]))
            .map(|e| {
                (
                    self.nodes[e.1 as usize].id.clone(),
                    self.nodes[e.2 as usize].id.clone(),
                    e.3,
                )
            })
            .collect()
    }
}

/// The days an identity's session windows touch (its overlap buckets).
fn day_buckets(r: &IdentityRollup) -> Vec<i64> {
    let mut days: Vec<i64> = r
        .windows
        .iter()
        .flat_map(|w| w.0.div_euclid(DAY)..=w.1.div_euclid(DAY))
        .collect();
    days.dedup();
    days
}

fn edit_sorted(v: &mut Vec<(Millis, u32)>, item: (Millis, u32), add: bool) {
    match v.binary_search(&item) {
        Ok(i) if !add => {
            v.remove(i);
        }
        Err(i) if add => v.insert(i, item),
        _ => {}
    }
}

/// All-pairs reference campaigns (quadratic; for tests).
pub fn all_pairs_campaigns(
    identities: &[(String, IdentityRollup)],
    w: &CampaignWeights,
) -> Vec<Vec<String>> {
    let mut g = CampaignGraph::new(w.clone()).expect("valid weights");
    for (id, r) in identities {
        g.upsert(id, r.clone());
    }
    let ids: Vec<&String> = identities.iter().map(|i| &i.0).collect();
    let mut uf = UnionFind::<usize>::new(ids.len());
    for i in 0..ids.len() {
        for j in i + 1..ids.len() {
            if g.explain(ids[i], ids[j]).is_some_and(|s| s.edge) {
                uf.union(i, j);
            }
        }
    }
    let mut groups: FxHashMap<usize, Vec<String>> = FxHashMap::default();
    for (i, id) in ids.iter().enumerate() {
        groups
            .entry(uf.find_mut(i))
            .or_default()
            .push((*id).clone());
    }
    let mut out: Vec<Vec<String>> = groups.into_values().collect();
    out.iter_mut().for_each(|g| g.sort());
    out.sort();
    out.dedup();
    out
}
