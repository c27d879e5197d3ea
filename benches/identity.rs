//! Criterion benchmarks of the identity layer: full clustering of 100,000
//! observations, and one new observation into a settled 1,000,000-observation
//! graph. (`clusterd bench` measures the 1,000,000 full run and peak memory.)

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use decnet_clusterd::evidence::{Fingerprint, Observation};
use decnet_clusterd::identity::{IdentityGraph, IdentityWeights};
use decnet_clusterd::scenario::corpus::large_corpus;
use std::time::Duration;

fn full_100k(c: &mut Criterion) {
    let (corpus, _) = large_corpus(100_000, 7);
    let mut group = c.benchmark_group("identity");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("full_cluster_100k", |b| {
        b.iter_batched(
            || IdentityGraph::new(IdentityWeights::default()).unwrap(),
            |mut g| {
                for o in &corpus {
                    g.upsert(o);
                }
                g.rebuild().len()
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn incremental_1m(c: &mut Criterion) {
    let (corpus, _) = large_corpus(1_000_000, 7);
    let mut g = IdentityGraph::new(IdentityWeights::default()).unwrap();
    for o in &corpus {
        g.upsert(o);
    }
    g.rebuild();
    drop(corpus);
    let mut i = 0u64;
    let mut group = c.benchmark_group("identity");
    group.sample_size(100);
    group.bench_function("one_new_observation_into_1m", |b| {
        b.iter(|| {
            i += 1;
            let mut o = Observation::new(format!("crit-new-{i}"));
            let value = if i % 2 == 0 {
                format!("crit-unique-{i}")
            } else {
                format!("actor-ja3-{}", 2 + i * 7 % 1000)
            };
            o.fingerprints.insert(Fingerprint {
                kind: "ja3".into(),
                value: value.into(),
            });
            g.upsert(&o);
            g.settle().len()
        })
    });
    group.finish();
}

criterion_group!(benches, full_100k, incremental_1m);
criterion_main!(benches);
