//! Scopes of the identity graph: a rebuild clusters everything, a settle
//! only the *closed scope* of what changed — the dirty observations, their
//! components, and the components of every node they now have an edge or a
//! decision with. Both hand their scope to the same clustering
//! (`components`), which is why they agree.

use super::{Component, ComputedIdentity, IdentityGraph, NONE};
use rustc_hash::FxHashSet;

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

impl IdentityGraph {
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
                for &y in self.big_carriers(v) {
                    if !scope.holds(self, y) && !self.vetoed(s, y) {
                        scope.add_comp(self, y);
                    }
                }
            }
        }
        scope.nodes
    }
}
