//! Indexes and candidate generation for the campaign graph (no all-pairs
//! pass): hand-offs by decky (comparable arrivals sorted by their first
//! time, enders by their last activity, so only pairs within the window are
//! visited), planted keys by (decky, key) for planters and users, shared
//! infrastructure by value, keystroke rhythm by SimHash blocks (64 bits cut
//! into 9 blocks of 7–8 bits: centroids within 8 bits agree exactly on at
//! least one block), and — only when the weights make them necessary —
//! temporal overlap by day bucket and cohort by token. Which signals are
//! indexed is derived from the weights ([`CampaignPlan`]): heaviest first
//! until the unindexed signals together cannot reach the threshold. The
//! score of one pair, and its cheap bound, are here too.

use super::CampaignGraph;
use crate::campaign::handoff::{arrival, ending, rival, DeckyArrivals};
use crate::campaign::rollup::IdentityRollup;
use crate::campaign::similarity::{self, CampaignPairScore, CampaignWeights};
use crate::evidence::Millis;
use rustc_hash::FxHashMap;

const DAY: Millis = 86_400_000;
/// Bit widths of the 9 SimHash blocks (sum 64).
const BLOCKS: [u32; 9] = [8, 7, 7, 7, 7, 7, 7, 7, 7];

/// Which signals have an index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CampaignPlan {
    pub handoff: bool,
    pub planted: bool,
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
            (w.planted, 5),
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
                4 => plan.cohort = true,
                _ => plan.planted = true,
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
pub(super) type Postings<K, T = u32> = FxHashMap<K, Vec<T>>;

fn post<K: std::hash::Hash + Eq, T: PartialEq>(p: &mut Postings<K, T>, k: K, item: T, add: bool) {
    let list = p.entry(k).or_default();
    if add {
        list.push(item);
    } else if let Some(i) = list.iter().position(|x| *x == item) {
        list.swap_remove(i);
    }
}

#[derive(Default, Debug, Clone)]
pub(super) struct DeckyIndex {
    /// (first phase time, node) of comparable arrivals, sorted.
    pub(super) arrivals: Vec<(Millis, u32)>,
    /// The arrivals that are rivals (see `handoff::rival`), sorted: what the
    /// decky's chance statistics count.
    pub(super) rivals: Vec<(Millis, u32)>,
    /// (last activity, node) of enders, sorted.
    pub(super) enders: Vec<(Millis, u32)>,
    pub(super) stats: DeckyArrivals,
    /// The rounded chances hand-off weights on this decky had at the last
    /// rebuild or settle (what the current components were computed with).
    pub(super) settled: [f64; 3],
    /// Arrivals changed since then (the decky is in `edited_deckies`).
    pub(super) edited: bool,
}

impl DeckyIndex {
    fn refresh(&mut self) {
        self.stats = DeckyArrivals {
            count: self.rivals.len() as u32,
            first: self.rivals.first().map_or(0, |a| a.0),
            last: self.rivals.last().map_or(0, |a| a.0),
        };
    }
}

impl CampaignGraph {
    /// Adds (`add`) or removes a node's postings; marks every identity whose
    /// hand-off weights change with a decky's arrival statistics.
    pub(super) fn index(&mut self, n: u32, add: bool) {
        // Taken out and put back so the indexes can be edited while reading it.
        let r = std::mem::take(&mut self.nodes[n as usize].rollup);
        self.index_rollup(n, &r, add);
        self.nodes[n as usize].rollup = r;
    }

    fn index_rollup(&mut self, n: u32, r: &IdentityRollup, add: bool) {
        let plan = self.plan;
        // Arrivals are kept whatever the plan: every scored hand-off is
        // discounted by its decky's rate, indexed or not.
        for (decky, act) in &r.deckies {
            let d = match self.deckies.get_mut(decky) {
                Some(d) => d,
                None => self.deckies.entry(decky.clone()).or_default(),
            };
            if let Some(t) = arrival(act, &self.weights) {
                edit_sorted(&mut d.arrivals, (t, n), add);
                if rival(act, &self.weights).is_some() {
                    edit_sorted(&mut d.rivals, (t, n), add);
                }
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
            if let Some(t) = ending(act) {
                edit_sorted(&mut d.enders, (t, n), add);
            }
        }
        if plan.planted {
            for (decky, act) in &r.deckies {
                for (k, _) in &act.planted {
                    post(&mut self.plants, (decky.clone(), k.clone()), n, add);
                }
                for (k, _) in &act.auth {
                    post(&mut self.auths, (decky.clone(), k.clone()), n, add);
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

    pub(super) fn score_with(&self, x: u32, y: u32, detailed: bool) -> CampaignPairScore {
        let (a, b) = (&self.nodes[x as usize], &self.nodes[y as usize]);
        similarity::score(
            (&a.id, &a.rollup),
            (&b.id, &b.rollup),
            &self.weights,
            |d| self.deckies.get(d).map(|i| &i.stats),
            detailed,
        )
    }

    pub(super) fn score(&self, x: u32, y: u32) -> CampaignPairScore {
        self.score_with(x, y, false)
    }

    /// Whether `x`–`y` is an edge, scoring fully only the pairs that can be.
    pub(super) fn is_edge(&self, x: u32, y: u32) -> bool {
        self.may_be_edge(x, y) && self.score(x, y).edge
    }

    /// A cheap bound: false only when the pair cannot be an edge.
    pub(super) fn may_be_edge(&self, x: u32, y: u32) -> bool {
        similarity::may_be_edge(
            &self.nodes[x as usize].rollup,
            &self.nodes[y as usize].rollup,
            &self.weights,
            |d| self.deckies.get(d).map(|i| &i.stats),
        )
    }

    /// Candidate partners of `x` (possibly repeated).
    pub(super) fn for_each_candidate(&self, x: u32, mut visit: impl FnMut(u32)) {
        let r = &self.nodes[x as usize].rollup;
        let window = self.weights.handoff_window_ms;
        if self.plan.handoff {
            for (decky, act) in &r.deckies {
                let Some(d) = self.deckies.get(decky) else {
                    continue;
                };
                if let Some(end) = ending(act) {
                    let (lo, hi) = (end, end + window);
                    let start = d.arrivals.partition_point(|a| a.0 < lo);
                    d.arrivals[start..]
                        .iter()
                        .take_while(|a| a.0 <= hi)
                        .for_each(|a| visit(a.1));
                }
                if let Some(t) = arrival(act, &self.weights) {
                    let start = d.enders.partition_point(|e| e.0 < t - window);
                    d.enders[start..]
                        .iter()
                        .take_while(|e| e.0 <= t)
                        .for_each(|e| visit(e.1));
                }
            }
        }
        if self.plan.planted {
            for (decky, act) in &r.deckies {
                // Planters meet users and users meet planters; the score
                // decides whether the use came after the planting.
                for ((k, _), posts) in act
                    .planted
                    .iter()
                    .map(|k| (k, &self.auths))
                    .chain(act.auth.iter().map(|k| (k, &self.plants)))
                {
                    posts
                        .get(&(decky.clone(), k.clone()))
                        .into_iter()
                        .flatten()
                        .for_each(|&y| visit(y));
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
