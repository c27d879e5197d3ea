//! The candidate index of the identity layer: inverted postings from every
//! evidence value that can create an edge to the observations carrying it,
//! and the *blocking plan* that decides which tiers need postings at all.
//!
//! Soundness rule (why no edge is ever lost): a pair that shares no indexed
//! value scores zero on every indexed tier, so its total is at most the sum
//! of the maximum weights of the unindexed tiers. The plan indexes tiers, the
//! heaviest first, until that sum is below the threshold; a weight change
//! re-derives the plan, so a configuration can never silently drop edges.
//! Values whose rarity is 0 (carried by `rarity_zero_at` or more
//! observations, or catalogued as tooling or stock) weigh 0 in every tier
//! they feed and are never used as keys; their postings are kept for
//! counting (rarity) and for finding the carriers whose scores change when
//! a value's rarity does.

use super::features::Features;
use super::similarity::{Carriers, IdentityWeights};
use rustc_hash::FxHashMap;

/// Which tiers are visited for candidates beyond the high tier's values
/// (fingerprints, keys, payloads, C2 always are).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockingPlan {
    pub commands: bool,
    pub credentials: bool,
    pub asn: bool,
}

impl BlockingPlan {
    /// Derives the plan from the weights (see the module doc).
    pub fn derive(w: &IdentityWeights) -> BlockingPlan {
        let mut tiers = [
            (w.commands, 0usize),
            (w.credentials + w.rare_credential, 1usize),
            (w.asn, 2usize),
        ];
        tiers.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut remaining = w.soft_max();
        let mut plan = BlockingPlan::default();
        for (weight, tier) in tiers {
            if remaining < w.threshold {
                break;
            }
            remaining -= weight;
            match tier {
                0 => plan.commands = true,
                1 => plan.credentials = true,
                _ => plan.asn = true,
            }
        }
        plan
    }
}

/// Postings of every namespace. Lists are unordered; removal is by search.
/// Every namespace but ASN is always kept (rarity counts its carriers);
/// ASN postings only when the plan visits them.
#[derive(Default, Debug, Clone)]
pub struct Postings {
    pub tools: Vec<Vec<u32>>,
    pub keys: Vec<Vec<u32>>,
    pub payloads: Vec<Vec<u32>>,
    pub c2: Vec<Vec<u32>>,
    pub commands: Vec<Vec<u32>>,
    pub credentials: Vec<Vec<u32>>,
    pub asn: FxHashMap<u32, Vec<u32>>,
}

fn len_of(lists: &[Vec<u32>], id: u32) -> u32 {
    lists.get(id as usize).map_or(0, |l| l.len() as u32)
}

impl Carriers for Postings {
    fn tool(&self, id: u32) -> u32 {
        len_of(&self.tools, id)
    }
    fn key(&self, id: u32) -> u32 {
        len_of(&self.keys, id)
    }
    fn credential(&self, id: u32) -> u32 {
        len_of(&self.credentials, id)
    }
    fn command(&self, id: u32) -> u32 {
        len_of(&self.commands, id)
    }
}

fn slot(lists: &mut Vec<Vec<u32>>, id: u32) -> &mut Vec<u32> {
    let i = id as usize;
    if lists.len() <= i {
        lists.resize_with(i + 1, Vec::new);
    }
    &mut lists[i]
}

fn remove(list: &mut Vec<u32>, node: u32) {
    if let Some(pos) = list.iter().position(|&n| n == node) {
        list.swap_remove(pos);
    }
}

/// Walks two sorted slices: `f(x, false)` for what only `old` holds,
/// `f(x, true)` for what only `new` holds.
fn diff<T: Ord + Copy>(old: &[T], new: &[T], mut f: impl FnMut(T, bool)) {
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(&a), Some(&b)) if a < b => {
                f(a, false);
                i += 1;
            }
            (Some(&a), None) => {
                f(a, false);
                i += 1;
            }
            (_, Some(&b)) => {
                f(b, true);
                j += 1;
            }
            (None, None) => break,
        }
    }
}

impl Postings {
    /// Adds (`add = true`) or removes a node's features.
    pub fn update(&mut self, node: u32, f: &Features, plan: BlockingPlan, add: bool) {
        let apply = |list: &mut Vec<u32>| {
            if add {
                list.push(node)
            } else {
                remove(list, node)
            }
        };
        for &t in f.tools().iter() {
            apply(slot(&mut self.tools, t));
        }
        for &k in f.keys().iter() {
            apply(slot(&mut self.keys, k));
        }
        for &p in f.payloads().iter() {
            apply(slot(&mut self.payloads, p));
        }
        for &c in f.c2().iter() {
            apply(slot(&mut self.c2, c));
        }
        for &k in f.commands().iter() {
            apply(slot(&mut self.commands, k));
        }
        for &k in f.credentials().iter() {
            apply(slot(&mut self.credentials, k));
        }
        if plan.asn {
            if let Some(a) = f.asn {
                apply(self.asn.entry(a).or_default());
            }
        }
    }

    /// Replaces a node's features `old` by `new`, touching only the lists of
    /// values that differ: a list of a common value (a library fingerprint
    /// carried by a large share of the store) is searched only when the
    /// node really joins or leaves it.
    pub fn replace(&mut self, node: u32, old: &Features, new: &Features, plan: BlockingPlan) {
        let apply = |list: &mut Vec<u32>, add: bool| {
            if add {
                list.push(node)
            } else {
                remove(list, node)
            }
        };
        diff(old.tools(), new.tools(), |t, add| {
            apply(slot(&mut self.tools, t), add)
        });
        diff(old.payloads(), new.payloads(), |p, add| {
            apply(slot(&mut self.payloads, p), add)
        });
        diff(old.c2(), new.c2(), |c, add| {
            apply(slot(&mut self.c2, c), add)
        });
        diff(old.keys(), new.keys(), |k, add| {
            apply(slot(&mut self.keys, k), add)
        });
        diff(old.commands(), new.commands(), |k, add| {
            apply(slot(&mut self.commands, k), add)
        });
        diff(old.credentials(), new.credentials(), |k, add| {
            apply(slot(&mut self.credentials, k), add)
        });
        if plan.asn && old.asn != new.asn {
            if let Some(a) = old.asn {
                apply(self.asn.entry(a).or_default(), false);
            }
            if let Some(a) = new.asn {
                apply(self.asn.entry(a).or_default(), true);
            }
        }
    }

    /// Number of observations carrying a tooling value.
    pub fn tool_carriers(&self, id: u32) -> u32 {
        len_of(&self.tools, id)
    }

    pub fn payload_carriers(&self, id: u32) -> u32 {
        self.payloads.get(id as usize).map_or(0, |l| l.len() as u32)
    }

    pub fn c2_carriers(&self, id: u32) -> u32 {
        self.c2.get(id as usize).map_or(0, |l| l.len() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_only_what_differs() {
        let mut got = Vec::new();
        diff(&[1, 3, 5, 7], &[2, 3, 6, 7, 9], |x, add| got.push((x, add)));
        got.sort();
        assert_eq!(
            got,
            vec![(1, false), (2, true), (5, false), (6, true), (9, true)]
        );
        let mut none = 0;
        diff(&[4, 8], &[4, 8], |_, _| none += 1);
        assert_eq!(none, 0);
    }

    #[test]
    fn default_weights_visit_credentials_beside_the_high_tier() {
        // A strong shared password is an edge on its own (rare_credential
        // 1.0); commands 0.6 + ASN 0.05 stay below the threshold.
        assert_eq!(
            BlockingPlan::derive(&IdentityWeights::default()),
            BlockingPlan {
                credentials: true,
                ..BlockingPlan::default()
            }
        );
        let w = IdentityWeights {
            rare_credential: 0.0,
            ..Default::default()
        };
        assert_eq!(BlockingPlan::derive(&w), BlockingPlan::default());
    }

    #[test]
    fn heavy_soft_tiers_get_indexed_heaviest_first() {
        let w = IdentityWeights {
            commands: 0.9,
            rare_credential: 0.0,
            ..Default::default()
        };
        // 0.9 + 0.2 + 0.05 >= 1 → commands indexed; then 0.25 < 1.
        let p = BlockingPlan::derive(&w);
        assert!(p.commands && !p.credentials && !p.asn);
        let w = IdentityWeights {
            commands: 0.6,
            credentials: 0.6,
            rare_credential: 0.0,
            asn: 0.5,
            ..Default::default()
        };
        let p = BlockingPlan::derive(&w);
        assert!(p.commands && p.credentials && !p.asn);
    }
}
