//! The identity benchmark behind `clusterd bench`: full clustering of a
//! large synthetic corpus (interning, indexing and components) and the
//! latency of one new observation into the settled graph. Timings only;
//! the CLI adds memory figures.

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
    stream_corpus(observations, seed, |o, _| {
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
