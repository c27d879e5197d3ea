//! Scopes of the campaign graph: a rebuild clusters every living identity,
//! a settle only the *closed scope* of what changed — changed identities,
//! their components and the components of every identity they now have an
//! edge with, and the hand-offs whose weights moved with a decky's arrival
//! rate. Both cluster their scope the same way (`cluster_and_store`), which
//! is why they agree.

use super::{CampaignGraph, ComputedCampaign, NONE};
use crate::evidence::Sym;
use petgraph::unionfind::UnionFind;
use rustc_hash::{FxHashMap, FxHashSet};

impl CampaignGraph {
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
            let may_rise = now.iter().zip(&d.settled).any(|(n, s)| n < s);
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
            let mut members: Vec<(Sym, f64)> = locals
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
}
