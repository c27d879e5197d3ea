//! The daemon's steady state: a clustering pass (identity tick, campaign
//! tick, journal) over a batch of new and changed observations merged into
//! a store already settled by both clusterers. Prints the per-phase split
//! (median and mean over passes) at each store size, then lets criterion
//! time whole passes (the merge of the batch is excluded).
//!
//! Store sizes come from `TICK_BENCH_OBSERVATIONS` (comma-separated,
//! default `100000,1000000`); batch sizes from `TICK_BENCH_BATCHES`
//! (default `500,2000`); passes per batch size from `TICK_BENCH_PASSES`
//! (default 20).

use criterion::Criterion;
use decnet_clusterd::harness::benchmark::{passes_over, SettledStore};
use std::time::Duration;

fn sizes(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|s| s.trim().replace('_', "").parse().ok())
        .collect()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let batches = sizes("TICK_BENCH_BATCHES", "500,2000");
    for observations in sizes("TICK_BENCH_OBSERVATIONS", "100000,1000000") {
        let mut s = SettledStore::new(observations, 7);
        let passes = sizes("TICK_BENCH_PASSES", "20")
            .first()
            .copied()
            .unwrap_or(20);
        let report = passes_over(&mut s, &batches, passes, |_| {});
        println!("{report}");
        let mut group = c.benchmark_group(format!("pass_{observations}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(10));
        for &n in &batches {
            group.bench_function(format!("batch_{n}"), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| s.next_pass(n).pass()).sum())
            });
        }
        group.finish();
        drop(s);
    }
    c.final_summary();
}
