//! Explanations of the campaign graph for operators: the evidence between
//! two identities, and the maximum spanning tree of campaign edges that
//! holds a campaign together.

use super::{CampaignGraph, NONE};
use crate::campaign::similarity::CampaignPairScore;
use petgraph::unionfind::UnionFind;
use rustc_hash::{FxHashMap, FxHashSet};

impl CampaignGraph {
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
                    self.nodes[e.1 as usize].id.to_string(),
                    self.nodes[e.2 as usize].id.to_string(),
                    e.3,
                )
            })
            .collect()
    }
}
