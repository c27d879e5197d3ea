//! Components of a closed scope: evidence edges and operator links joined
//! with a union-find, each component's confidence, and the cut of a
//! component that holds a separated pair (Kruskal, refusing any join that
//! would unite one). The results are stored back as the graph's components.

use super::{Component, ComputedIdentity, IdentityGraph, NONE};
use crate::identity::decisions::DecisionKind;
use petgraph::unionfind::UnionFind;
use rustc_hash::{FxHashMap, FxHashSet};

/// Pairs of scope-local node indices.
type LocalPairs = Vec<(u32, u32)>;
/// A component as computed over a scope: its members and its identities.
pub(super) struct ScopeComponent {
    members: Vec<u32>,
    parts: Vec<(Vec<u32>, f64)>,
}

impl IdentityGraph {
    pub(super) fn cluster_and_store(&mut self, scope: &[u32]) -> Vec<ComputedIdentity> {
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
                    members: self.sorted_syms(&members),
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
        let threshold = self.weights.threshold;
        // Scoring the candidate pairs is most of a large scope's time and
        // reads the graph only: each chunk of the scope is scored on a core
        // of its own into a union-find and strongest ties of its own, and
        // those are joined (the union of the connections, the maxima of
        // the ties), so the result is the sequential one. Memory stays a
        // few arrays of the scope's size per core, however many edges.
        let parts = crate::par::chunks(scope, self.parallel_scope, |offset, xs| {
            let mut uf = UnionFind::<u32>::new(scope.len());
            let mut best = vec![0.0f64; scope.len()];
            let mut seen: Vec<u32> = vec![NONE; scope.len()];
            for (k, &x) in xs.iter().enumerate() {
                let i = (offset + k) as u32;
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
            (uf, best)
        });
        let mut parts = parts.into_iter();
        let (mut uf, mut best) = parts
            .next()
            .unwrap_or_else(|| (UnionFind::new(scope.len()), vec![0.0f64; scope.len()]));
        for (other, other_best) in parts {
            for (k, root) in other.into_labeling().into_iter().enumerate() {
                if root as usize != k {
                    uf.union(k as u32, root);
                }
            }
            for (b, o) in best.iter_mut().zip(other_best) {
                *b = b.max(o);
            }
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

    /// Link and separate pairs with both ends in the scope, in canonical order.
    pub(super) fn decisions_in(&self, local: &FxHashMap<u32, u32>) -> (LocalPairs, LocalPairs) {
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
}
