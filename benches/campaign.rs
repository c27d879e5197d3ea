//! Criterion benchmark of the campaign layer: rebuilding campaigns over
//! 100,000 synthetic identities (roll-ups prepared outside the timing).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use decnet_clusterd::campaign::{CampaignGraph, CampaignWeights};
use decnet_clusterd::harness::benchmark::corpus_rollups;
use std::time::Duration;

fn campaigns_100k(c: &mut Criterion) {
    let rollups = corpus_rollups(100_000, 7);
    let mut group = c.benchmark_group("campaign");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("rebuild_100k_identities", |b| {
        b.iter_batched(
            || rollups.clone(),
            |rollups| {
                let mut g = CampaignGraph::new(CampaignWeights::default()).unwrap();
                for (id, r) in rollups {
                    g.upsert(&id, r);
                }
                g.rebuild().len()
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, campaigns_100k);
criterion_main!(benches);
