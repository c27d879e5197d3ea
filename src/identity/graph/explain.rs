//! Explanations of the identity graph for operators (`clusterd explain`):
//! the per-tier evidence of one pair, and the maximum spanning tree of
//! evidence edges and links that holds an identity together.

use super::{ExplainedEdge, IdentityGraph};
use crate::identity::similarity::{self, PairExplanation};
use petgraph::unionfind::UnionFind;
use rustc_hash::{FxHashMap, FxHashSet};

impl IdentityGraph {
    /// Per-tier scores, matching values, veto, rarity and decision of a pair.
    pub fn explain_pair(&self, a: &str, b: &str) -> Option<PairExplanation> {
        let (&x, &y) = (self.index_of.get(a)?, self.index_of.get(b)?);
        let mut e = similarity::explain(
            (a, &self.features[x as usize]),
            (b, &self.features[y as usize]),
            &self.rarity(),
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
