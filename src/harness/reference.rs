//! The all-pairs references the property tests hold the fast paths to.
//! Quadratic on purpose: each is the definition the indexed, incremental
//! graph must equal, and the tests compare the two on random corpora.
//!
//! Identities ([`all_pairs_components`]): every pair scored, edges taken
//! strongest first (operator links before any evidence, ties by uuid pair),
//! joins that would unite a separated pair refused — what
//! [`crate::identity::IdentityGraph`] must compute. Campaigns
//! ([`all_pairs_campaigns`]): each decky's comparable arrivals counted
//! straight from the roll-ups, every pair of identities scored with them
//! (every signal, the planted key's included), components of the edges —
//! what [`crate::campaign::CampaignGraph`] must compute with its indexes.

use crate::campaign::handoff::{rival, DeckyArrivals};
use crate::campaign::similarity::score as campaign_score;
use crate::campaign::{CampaignWeights, IdentityRollup};
use crate::evidence::Observation;
use crate::identity::decisions::{DecisionKind, Decisions};
use crate::identity::features::{Features, Vocabulary};
use crate::identity::similarity::{score, Carriers, IdentityWeights, Rarity};
use petgraph::unionfind::UnionFind;
use rustc_hash::FxHashMap;

/// Carriers of every value, counted straight from the features.
#[derive(Default)]
struct Counted {
    tools: FxHashMap<u32, u32>,
    keys: FxHashMap<u32, u32>,
    credentials: FxHashMap<u32, u32>,
    commands: FxHashMap<u32, u32>,
}

fn count(map: &FxHashMap<u32, u32>, id: u32) -> u32 {
    map.get(&id).copied().unwrap_or(0)
}

impl Carriers for Counted {
    fn tool(&self, id: u32) -> u32 {
        count(&self.tools, id)
    }
    fn key(&self, id: u32) -> u32 {
        count(&self.keys, id)
    }
    fn credential(&self, id: u32) -> u32 {
        count(&self.credentials, id)
    }
    fn command(&self, id: u32) -> u32 {
        count(&self.commands, id)
    }
}

/// All-pairs identity components (each sorted; the list sorted).
pub fn all_pairs_components(
    observations: &[Observation],
    weights: &IdentityWeights,
    decisions: &Decisions,
) -> Vec<Vec<String>> {
    let mut vocab = Vocabulary::new(weights);
    let mut obs: Vec<&Observation> = observations.iter().collect();
    obs.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    obs.dedup_by(|a, b| a.uuid == b.uuid);
    let feats: Vec<Features> = obs
        .iter()
        .map(|o| Features::extract(o, &mut vocab))
        .collect();
    let mut counted = Counted::default();
    for f in &feats {
        for (map, ids) in [
            (&mut counted.tools, f.tools()),
            (&mut counted.keys, f.keys()),
            (&mut counted.credentials, f.credentials()),
            (&mut counted.commands, f.commands()),
        ] {
            for &id in ids.iter() {
                *map.entry(id).or_default() += 1;
            }
        }
    }
    let rarity = Rarity {
        weights,
        vocab: &vocab,
        carriers: &counted,
    };
    let index: FxHashMap<&str, u32> = obs
        .iter()
        .enumerate()
        .map(|(i, o)| (o.uuid.as_str(), i as u32))
        .collect();
    let mut joins: Vec<(f64, u32, u32)> = Vec::new();
    let mut separates = Vec::new();
    for ((a, b), d) in decisions.iter() {
        if let (Some(&x), Some(&y)) = (index.get(a.as_str()), index.get(b.as_str())) {
            match d.kind {
                DecisionKind::Link => joins.push((f64::INFINITY, x, y)),
                DecisionKind::Separate => separates.push((x, y)),
            }
        }
    }
    for i in 0..feats.len() {
        for j in i + 1..feats.len() {
            let s = score(&feats[i], &feats[j], &rarity);
            if s.total >= weights.threshold {
                joins.push((s.total, i as u32, j as u32));
            }
        }
    }
    // Indices follow uuid order, so (i, j) order is uuid-pair order.
    joins.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| (a.1, a.2).cmp(&(b.1, b.2)))
    });
    let mut uf = UnionFind::<u32>::new(feats.len());
    for (_, a, b) in joins {
        let (ra, rb) = (uf.find_mut(a), uf.find_mut(b));
        if ra == rb {
            continue;
        }
        let refused = separates.iter().any(|&(s, t)| {
            let (rs, rt) = (uf.find_mut(s), uf.find_mut(t));
            (rs == ra && rt == rb) || (rs == rb && rt == ra)
        });
        if !refused {
            uf.union(a, b);
        }
    }
    let mut groups: FxHashMap<u32, Vec<String>> = FxHashMap::default();
    for (i, o) in obs.iter().enumerate() {
        groups
            .entry(uf.find_mut(i as u32))
            .or_default()
            .push(o.uuid.to_string());
    }
    let mut out: Vec<Vec<String>> = groups.into_values().collect();
    out.iter_mut().for_each(|g| g.sort());
    out.sort();
    out
}

/// All-pairs reference campaigns (quadratic; for tests).
pub fn all_pairs_campaigns(
    identities: &[(String, IdentityRollup)],
    w: &CampaignWeights,
) -> Vec<Vec<String>> {
    let mut times: FxHashMap<&str, Vec<i64>> = FxHashMap::default();
    for (_, r) in identities {
        for (decky, act) in &r.deckies {
            times
                .entry(decky.as_str())
                .or_default()
                .extend(rival(act, w));
        }
    }
    let stats: FxHashMap<&str, DeckyArrivals> = times
        .into_iter()
        .map(|(d, t)| (d, DeckyArrivals::of(t)))
        .collect();
    let ids: Vec<&String> = identities.iter().map(|i| &i.0).collect();
    let mut uf = UnionFind::<usize>::new(ids.len());
    for i in 0..ids.len() {
        for j in i + 1..ids.len() {
            let (a, b) = (&identities[i], &identities[j]);
            let s = campaign_score((&a.0, &a.1), (&b.0, &b.1), w, |d| stats.get(d), false);
            if s.edge {
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
