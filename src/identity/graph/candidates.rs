//! Candidate generation for the identity graph: which partners of an
//! observation are worth scoring, found through the postings of the
//! candidate index (never an all-pairs pass), the score of one pair, and the
//! per-profile edges of big payload/C2 values (see
//! [`super::BIG_VALUE_CARRIERS`]). The scope and component passes and the
//! explanations all visit pairs through here.

use super::IdentityGraph;
use crate::identity::similarity::{self, PairScore};
use rustc_hash::FxHashMap;

/// An edge as found during clustering (local node indices).
#[derive(Clone, Copy, Debug)]
pub(super) struct Edge {
    pub(super) a: u32,
    pub(super) b: u32,
    pub(super) weight: f64,
}

impl IdentityGraph {
    pub(super) fn score(&self, x: u32, y: u32) -> PairScore {
        similarity::score(
            &self.features[x as usize],
            &self.features[y as usize],
            &self.rarity(),
        )
    }

    pub(super) fn vetoed(&self, x: u32, y: u32) -> bool {
        similarity::vetoed(
            &self.features[x as usize],
            &self.features[y as usize],
            &self.rarity(),
        )
    }

    fn is_big(&self, carriers: u32, weight: f64) -> bool {
        carriers > self.big_value_carriers && weight >= self.weights.threshold
    }

    /// Calls `visit(y)` for every candidate partner of `x` (possibly more than
    /// once). Big payload/C2 values are skipped unless `include_big`.
    pub(super) fn for_each_candidate(&self, x: u32, include_big: bool, mut visit: impl FnMut(u32)) {
        let f = &self.features[x as usize];
        let w = &self.weights;
        let r = self.rarity();
        if w.fingerprint > 0.0 {
            for &t in f.tools().iter() {
                if r.tool(t) > 0.0 {
                    self.post.tools[t as usize].iter().for_each(|&y| visit(y));
                }
            }
        }
        if w.keys > 0.0 {
            for &k in f.keys().iter() {
                if r.key(k) > 0.0 {
                    self.post.keys[k as usize].iter().for_each(|&y| visit(y));
                }
            }
        }
        if w.payload > 0.0 {
            for &p in f.payloads().iter() {
                let list = &self.post.payloads[p as usize];
                if include_big || !self.is_big(list.len() as u32, w.payload) {
                    list.iter().for_each(|&y| visit(y));
                }
            }
        }
        if w.c2 > 0.0 {
            for &c in f.c2().iter() {
                let list = &self.post.c2[c as usize];
                if include_big || !self.is_big(list.len() as u32, w.c2) {
                    list.iter().for_each(|&y| visit(y));
                }
            }
        }
        if self.plan.commands {
            for &k in f.commands().iter() {
                if r.command(k) > 0.0 {
                    self.post.commands[k as usize]
                        .iter()
                        .for_each(|&y| visit(y));
                }
            }
        }
        if self.plan.credentials {
            for &k in f.credentials().iter() {
                if r.credential(k) > 0.0 {
                    self.post.credentials[k as usize]
                        .iter()
                        .for_each(|&y| visit(y));
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
    pub(super) fn big_values_of(&self, x: u32, out: &mut Vec<(bool, u32)>) {
        let f = &self.features[x as usize];
        for &p in f.payloads().iter() {
            if self.is_big(self.post.payload_carriers(p), self.weights.payload) {
                out.push((false, p));
            }
        }
        for &c in f.c2().iter() {
            if self.is_big(self.post.c2_carriers(c), self.weights.c2) {
                out.push((true, c));
            }
        }
    }

    pub(super) fn big_carriers(&self, (is_c2, id): (bool, u32)) -> &[u32] {
        if is_c2 {
            &self.post.c2[id as usize]
        } else {
            &self.post.payloads[id as usize]
        }
    }

    /// Edges for big payload/C2 values within the scope: carriers with the
    /// same tooling profile are joined to the group's first member (by uuid);
    /// groups whose profiles are not vetoed are joined by their first members.
    pub(super) fn big_value_edges(&self, scope: &[u32], local: &FxHashMap<u32, u32>) -> Vec<Edge> {
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
                    if !self.vetoed(x, y) {
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
}
