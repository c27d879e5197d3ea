//! `clusterd bench`: identity clustering (and the campaign layer, and the
//! incremental pass) timed in-process on a generated corpus.

use super::error::CliError;
use crate::cli::out::{out, outln};
use decnet_clusterd::harness::benchmark;
use indicatif::{ProgressBar, ProgressStyle};

/// Peak resident memory of this process, from /proc (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// `clusterd bench`.
pub fn bench(
    observations: usize,
    seed: u64,
    samples: usize,
    campaign_identities: usize,
    pass_batches: &[usize],
    passes: usize,
    reference: Option<&[usize]>,
) -> Result<i32, CliError> {
    if reference.is_some_and(|r| r.contains(&0)) {
        return Err(CliError::Usage(
            "--reference sizes must be at least 1".into(),
        ));
    }
    if pass_batches.contains(&0) || (!pass_batches.is_empty() && passes == 0) {
        return Err(CliError::Usage(
            "--pass-batches sizes and --passes must be at least 1".into(),
        ));
    }
    if observations == 0 {
        return Err(CliError::Usage("--observations must be at least 1".into()));
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let r = benchmark::run(observations, seed, samples, |stage| {
        spinner.set_message(stage.to_string())
    });
    spinner.finish_and_clear();
    let secs = |d: std::time::Duration| d.as_secs_f64();
    outln!(
        "identity clustering benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    outln!(
        "  corpus              {} observations (seed {seed}), generated in {:.2} s",
        r.observations,
        secs(r.generate)
    );
    outln!("  load (intern+index) {:.3} s", secs(r.load));
    outln!("  cluster (components){:>7.3} s", secs(r.cluster));
    outln!(
        "  full total          {:.3} s  → {} identities",
        secs(r.load + r.cluster),
        r.identities
    );
    outln!(
        "  one new observation median {:.1} µs, p99 {:.1} µs ({} samples)",
        r.incremental_median.as_secs_f64() * 1e6,
        r.incremental_p99.as_secs_f64() * 1e6,
        r.incremental_samples
    );
    if let Some(mib) = peak_rss_mib() {
        outln!("  peak RSS            {mib:.0} MiB (whole process; the corpus is streamed, never held)");
    }
    if campaign_identities > 0 {
        let c = benchmark::run_campaigns(campaign_identities, seed);
        outln!("campaign clustering benchmark");
        outln!(
            "  identities          {} (roll-ups built in {:.2} s)",
            c.identities,
            secs(c.rollup)
        );
        outln!(
            "  cluster (index+components) {:.3} s → {} campaigns",
            secs(c.cluster),
            c.campaigns
        );
    }
    if !pass_batches.is_empty() {
        let spinner = ProgressBar::new_spinner();
        spinner.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        let r = benchmark::run_passes(observations, seed, pass_batches, passes, |stage| {
            spinner.set_message(stage.to_string())
        });
        spinner.finish_and_clear();
        out!("{r}");
    }
    if let Some(sizes) = reference {
        reference_table(sizes, seed)?;
    }
    Ok(0)
}

/// The reference design's all-pairs identity rule beside ours, on the same
/// corpus at each size, as a table with the ratio. Exits 1 (an error) when
/// the two disagree on any identity.
fn reference_table(sizes: &[usize], seed: u64) -> Result<(), CliError> {
    outln!("identity clustering beside the reference design's all-pairs rule (same corpus, seed {seed})");
    outln!(
        "  {:>12}  {:>12}  {:>14}  {:>8}  {:>10}  same identities",
        "observations",
        "ours (s)",
        "all-pairs (s)",
        "ratio",
        "identities"
    );
    let mut disagree = Vec::new();
    for &n in sizes {
        // One size at a time, so each row prints as soon as it is timed.
        for r in benchmark::run_reference(&[n], seed) {
            outln!(
                "  {:>12}  {:>12.4}  {:>14.3}  {:>7.0}×  {:>10}  {}",
                r.observations,
                r.ours.as_secs_f64(),
                r.reference.as_secs_f64(),
                r.ratio(),
                r.identities,
                if r.agree { "yes" } else { "NO" }
            );
            if !r.agree {
                disagree.push(n);
            }
        }
    }
    if disagree.is_empty() {
        Ok(())
    } else {
        Err(CliError::Runtime(anyhow::anyhow!(
            "ours and the all-pairs reference found different identities at {disagree:?} observations"
        )))
    }
}
