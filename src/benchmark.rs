//! The identity benchmark behind `clusterd bench`: full clustering of a
//! large synthetic corpus (interning, indexing and components) and the
//! latency of one new observation into the settled graph. Timings only;
//! the CLI adds memory figures.

use crate::campaign::{CampaignGraph, CampaignWeights, IdentityRollup};
use crate::evidence::{Fingerprint, Observation};
use crate::identity::{IdentityGraph, IdentityWeights};
use crate::scenario::corpus::stream_corpus;
use std::time::{Duration, Instant};

/// The figures of one run.
#[derive(Clone, Debug)]
pub struct BenchReport {
    pub observations: usize,
    pub identities: usize,
    /// Generating the corpus (streamed: never held whole).
    pub generate: Duration,
    /// Interning and indexing every observation.
    pub load: Duration,
    /// Components from scratch.
    pub cluster: Duration,
    pub incremental_samples: usize,
    pub incremental_median: Duration,
    pub incremental_p99: Duration,
}

/// Runs the benchmark on `observations` generated from `seed`.
pub fn run(
    observations: usize,
    seed: u64,
    incremental_samples: usize,
    mut progress: impl FnMut(&str),
) -> BenchReport {
    progress("generating and loading observations");
    let mut graph =
        IdentityGraph::new(IdentityWeights::default()).expect("default weights are valid");
    let mut load = Duration::ZERO;
    let started = Instant::now();
    stream_corpus(observations, seed, |o, _, _| {
        let t = Instant::now();
        graph.upsert(&o);
        load += t.elapsed();
    });
    let generate = started.elapsed().saturating_sub(load);
    progress("clustering");
    let t = Instant::now();
    let identities = graph.rebuild().len();
    let cluster = t.elapsed();
    progress("incremental updates");
    let mut samples = Vec::with_capacity(incremental_samples);
    for i in 0..incremental_samples {
        // Alternate between a new lone scanner and a new IP of an existing actor.
        let mut o = Observation::new(format!("bench-new-{i}"));
        let value = if i % 2 == 0 {
            format!("bench-unique-{i}")
        } else {
            format!("actor-ja3-{}", 2 + i * 7 % 1000)
        };
        o.fingerprints.insert(Fingerprint {
            kind: "ja3".into(),
            value,
        });
        let t = Instant::now();
        graph.upsert(&o);
        graph.settle();
        samples.push(t.elapsed());
    }
    samples.sort();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    BenchReport {
        observations,
        identities,
        generate,
        load,
        cluster,
        incremental_samples,
        incremental_median: at(0.5),
        incremental_p99: at(0.99),
    }
}

/// Roll-ups of `identities` synthetic identities: the benchmark corpus's
/// truth groups (lone scanners, rotating actors, botnets), rolled up.
pub fn corpus_rollups(identities: usize, seed: u64) -> Vec<(String, IdentityRollup)> {
    let mut out: Vec<(String, IdentityRollup)> = Vec::with_capacity(identities);
    let mut current: Option<String> = None;
    let mut members: Vec<Observation> = Vec::new();
    // Generous upper bound on observations; stops early once enough groups closed.
    let mut done = false;
    stream_corpus(identities * 8, seed, |o, label, _| {
        if done {
            return;
        }
        if current.as_deref() != Some(label) {
            if let Some(l) = current.take() {
                out.push((l, IdentityRollup::from_observations(members.iter())));
                members.clear();
                done = out.len() == identities;
            }
            current = Some(label.to_string());
        }
        members.push(o);
    });
    if !done {
        if let Some(l) = current {
            out.push((l, IdentityRollup::from_observations(members.iter())));
        }
    }
    out
}

/// The campaign benchmark: rebuild over `identities` roll-ups.
#[derive(Clone, Debug)]
pub struct CampaignBenchReport {
    pub identities: usize,
    pub campaigns: usize,
    pub rollup: Duration,
    pub cluster: Duration,
}

/// Clusters `identities` synthetic identities into campaigns.
pub fn run_campaigns(identities: usize, seed: u64) -> CampaignBenchReport {
    let t = Instant::now();
    let rollups = corpus_rollups(identities, seed);
    let rollup = t.elapsed();
    let t = Instant::now();
    let mut g = CampaignGraph::new(CampaignWeights::default()).expect("default weights are valid");
    for (id, r) in rollups {
        g.upsert(&id, r);
    }
    let campaigns = g.rebuild().len();
    CampaignBenchReport {
        identities: g.len(),
        campaigns,
        rollup,
        cluster: t.elapsed(),
    }
}
