//! Verbs that run the pure core in-process, without Redis: `score` (quality
//! against scenario truth), `bench` (identity clustering at scale) and
//! `demo` (a built-in mix, clustered and summarised).

use crate::cli::CliError;
use crate::report;
use anyhow::Context;
use decnet_clusterd::harness::benchmark;
use decnet_clusterd::harness::quality::{run, QualityConfig};
use decnet_clusterd::metrics::format_table;
use decnet_clusterd::scenario::{builtin, builtin_names, Scenario};
use indicatif::{ProgressBar, ProgressStyle};

/// The quality configuration, with the algorithms named by
/// `DECNET_CLUSTERER_TYPE` / `DECNET_CAMPAIGN_CLUSTERER_TYPE` (an unknown
/// name is a usage error that lists the known ones).
fn quality_config() -> Result<QualityConfig, CliError> {
    use decnet_clusterd::campaign::clusterer::KNOWN_CAMPAIGN_CLUSTERERS;
    use decnet_clusterd::identity::clusterer::KNOWN_CLUSTERERS;
    let mut cfg = QualityConfig::default();
    for (var, known, slot) in [
        (
            "DECNET_CLUSTERER_TYPE",
            KNOWN_CLUSTERERS,
            &mut cfg.clusterer,
        ),
        (
            "DECNET_CAMPAIGN_CLUSTERER_TYPE",
            KNOWN_CAMPAIGN_CLUSTERERS,
            &mut cfg.campaign_clusterer,
        ),
    ] {
        if let Ok(v) = std::env::var(var) {
            if !known.contains(&v.as_str()) {
                return Err(CliError::Usage(format!(
                    "{var}: unknown type `{v}`; known: {}",
                    known.join(", ")
                )));
            }
            *slot = v;
        }
    }
    Ok(cfg)
}

pub fn load_scenario(name: &str) -> Result<Scenario, CliError> {
    if let Some(s) = builtin(name) {
        return Ok(s);
    }
    let text = std::fs::read_to_string(name).map_err(|e| {
        CliError::Usage(format!(
            "`{name}` is neither a built-in scenario ({}) nor a readable file: {e}",
            builtin_names().join(", ")
        ))
    })?;
    Scenario::from_yaml(&text).map_err(|e| CliError::Usage(format!("{name}: {e}")))
}

/// `clusterd score`.
pub fn score(names: &[String], json: bool, check: bool, list: bool) -> Result<i32, CliError> {
    if list {
        for name in builtin_names() {
            let s = builtin(name).ok_or_else(|| {
                CliError::Runtime(anyhow::anyhow!("built-in {name} does not parse"))
            })?;
            println!("{name:<22} {}", s.description);
        }
        return Ok(0);
    }
    let names: Vec<String> = if names.is_empty() {
        builtin_names().iter().map(|s| s.to_string()).collect()
    } else {
        names.to_vec()
    };
    let cfg = quality_config()?;
    let mut rows = Vec::new();
    let mut campaign_rows = Vec::new();
    let mut all_perfect = true;
    let mut json_rows = Vec::new();
    for name in &names {
        let scenario = load_scenario(name)?;
        let generated = scenario.generate();
        let r = run(&generated, &cfg).context("clustering failed")?.report;
        all_perfect &= r.identity.perfect() && r.rejected == 0;
        json_rows.push(serde_json::json!({
            "scenario": r.name, "events": r.events, "rejected": r.rejected,
            "observations": r.observations, "identities": r.identities,
            "campaigns": r.campaigns, "identity": r.identity, "campaign": r.campaign,
            "defeats": scenario.defeats,
        }));
        all_perfect &= r.campaign.perfect();
        rows.push((
            format!("{} ({} obs → {} ids)", r.name, r.observations, r.identities),
            r.identity,
        ));
        campaign_rows.push((
            format!("{} ({} campaigns)", r.name, r.campaigns),
            r.campaign,
        ));
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json_rows).context("encoding JSON")?
        );
    } else {
        println!("Identity level (SPEC §11), every observation scored against its truth label:\n");
        print!("{}", format_table(&rows));
        println!("\nCampaign level:\n");
        print!("{}", format_table(&campaign_rows));
    }
    Ok(if check && !all_perfect { 1 } else { 0 })
}

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
) -> Result<i32, CliError> {
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
    println!(
        "identity clustering benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "  corpus              {} observations (seed {seed}), generated in {:.2} s",
        r.observations,
        secs(r.generate)
    );
    println!("  load (intern+index) {:.3} s", secs(r.load));
    println!("  cluster (components){:>7.3} s", secs(r.cluster));
    println!(
        "  full total          {:.3} s  → {} identities",
        secs(r.load + r.cluster),
        r.identities
    );
    println!(
        "  one new observation median {:.1} µs, p99 {:.1} µs ({} samples)",
        r.incremental_median.as_secs_f64() * 1e6,
        r.incremental_p99.as_secs_f64() * 1e6,
        r.incremental_samples
    );
    if let Some(mib) = peak_rss_mib() {
        println!("  peak RSS            {mib:.0} MiB (whole process; the corpus is streamed, never held)");
    }
    if campaign_identities > 0 {
        let c = benchmark::run_campaigns(campaign_identities, seed);
        println!("campaign clustering benchmark");
        println!(
            "  identities          {} (roll-ups built in {:.2} s)",
            c.identities,
            secs(c.rollup)
        );
        println!(
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
        print!("{r}");
    }
    Ok(0)
}

/// `clusterd demo` (in-process).
pub fn demo(top: usize) -> Result<i32, CliError> {
    let scenario = builtin("all_with_noise")
        .ok_or_else(|| CliError::Runtime(anyhow::anyhow!("built-in scenario missing")))?;
    let generated = scenario.generate();
    println!(
        "decnet-clusterd demo: the `all_with_noise` scenario, clustered in-process.\n{}\n",
        scenario.description
    );
    let cfg = quality_config()?;
    let outcome = run(&generated, &cfg).context("clustering failed")?;
    let store = &outcome.store;
    let quality = [
        ("identity level".to_string(), outcome.report.identity),
        ("campaign level".to_string(), outcome.report.campaign),
    ];
    print!(
        "{}",
        report::summary(
            store,
            outcome.identities.graph(),
            outcome.campaigns.graph(),
            generated.events.len(),
            &quality,
            top
        )
    );
    Ok(0)
}
