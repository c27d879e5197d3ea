//! The command-line splitter and phase inference on hostile lines: 1 MiB
//! with 100k separators, and 1 MiB of nested substitutions (the speed
//! figure that `tests/command_split.rs` used to time; the test now counts
//! allocations instead).

use criterion::Criterion;
use decnet_clusterd::phase_rules::{split_command_line, PhaseRules};
use std::hint::black_box;
use std::time::Duration;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let line = "a;&|\n ".repeat(50_000) + &"x".repeat(1 << 20);
    let nested = "$(".repeat(300_000) + &"\"'`".repeat(100_000);
    let rules = PhaseRules::embedded().expect("the shipped table is valid");
    let mut group = c.benchmark_group("command_split");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("separators_1mib", |b| {
        b.iter(|| split_command_line(black_box(&line)))
    });
    group.bench_function("nested_1mib", |b| {
        b.iter(|| split_command_line(black_box(&nested)))
    });
    group.bench_function("infer_both", |b| {
        b.iter(|| rules.infer(black_box(&[line.as_str(), nested.as_str()])))
    });
    group.finish();
    c.final_summary();
}
