//! The command line (SPEC §10): verbs and flags (clap), and the dispatch of
//! each verb to its file. The verbs share the error type (`error.rs`) and
//! the renderings (`render.rs`).

pub mod bench;
pub mod bench_e2e;
pub mod config;
pub mod ctl;
pub mod demo;
pub mod error;
pub mod explain;
pub mod export;
pub mod inspect;
pub mod render;
pub mod run;
pub mod score;
pub mod serve;
pub mod simulate;
pub mod snapshot;

pub use error::CliError;

use clap::{Parser, Subcommand};

/// Turns honeypot observations into identities and campaigns.
#[derive(Debug, Parser)]
#[command(name = "clusterd", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Run the daemon against Redis (REDIS_URL, CLUSTERD_KEY_PREFIX, --config).
    Run {
        /// A TOML file overlaid on config/default.toml.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Serve the operator console, /health and /api/* over HTTP (SPEC §13).
    Serve {
        /// host:port to listen on (default: http.listen, else 127.0.0.1:9464).
        #[arg(long)]
        listen: Option<String>,
        /// A TOML file overlaid on config/default.toml.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Send a control command (SPEC §7) to the running daemon and print its reply.
    Ctl {
        /// status, pause, resume, tick, recluster, restart, stop, link, separate, forget.
        action: String,
        /// For link / separate / forget: the two observation uuids.
        observations: Vec<String>,
        /// The worker the command is for.
        #[arg(long, default_value = "all")]
        target: String,
        /// Who asks (recorded with operator decisions).
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
        /// Print the raw reply as JSON.
        #[arg(long)]
        json: bool,
        /// Seconds to wait for the reply.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// A TOML file overlaid on config/default.toml (for the Redis URL and prefix).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Show an observation, identity or campaign from the repository (follows merges).
    Inspect {
        /// observation, identity or campaign.
        kind: String,
        /// Its uuid (merged-out identities and campaigns are followed to the winner).
        uuid: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// A TOML file overlaid on config/default.toml (for the Redis URL and prefix).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Explain the evidence between two observations: tiers, values, veto, rarity, verdict.
    Explain {
        /// The first observation's uuid.
        a: String,
        /// The second observation's uuid.
        b: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// A TOML file overlaid on config/default.toml (for the Redis URL and prefix).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Write the identity/campaign graph (JSON, or Graphviz DOT with a cluster per campaign).
    Export {
        /// json, or dot for Graphviz (`| dot -Tsvg > graph.svg`).
        #[arg(long, default_value = "json", value_parser = ["json", "dot"])]
        format: String,
        /// Only this campaign.
        #[arg(long)]
        campaign: Option<String>,
        /// A TOML file overlaid on config/default.toml (for the Redis URL and prefix).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// End-to-end benchmark against Redis: ingest throughput and event latency.
    BenchE2e {
        /// Observations in the ingest backlog.
        #[arg(long, default_value_t = 100_000)]
        observations: usize,
        /// Events per second in the latency phase.
        #[arg(long, default_value_t = 5_000)]
        rate: u32,
        /// Seconds of the latency phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Redis to use (default: REDIS_URL or redis://127.0.0.1:6379).
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
    },
    /// Publish a scenario's events into the input stream.
    Simulate {
        /// A built-in scenario name or a YAML file.
        scenario: String,
        /// Events per second (default: as fast as Redis takes them).
        #[arg(long)]
        rate: Option<u32>,
        /// Shuffle the events (overrides the scenario's delivery).
        #[arg(long)]
        shuffle: bool,
        /// Replay this share (0..1) of the events a second time.
        #[arg(long)]
        duplicate: Option<f64>,
        /// A TOML file overlaid on config/default.toml (for the Redis URL and prefix).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// The daemon on a built-in scenario mix, end to end, with a summary.
    Demo {
        /// Show this many of the largest campaigns.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// Keep the demo's data in Redis afterwards.
        #[arg(long)]
        keep: bool,
        /// Skip Redis: run the core in-process only.
        #[arg(long)]
        offline: bool,
    },
    /// Score scenarios against their truth labels (identity and campaign level).
    Score {
        /// Built-in scenario names or YAML files (default: every built-in).
        scenarios: Vec<String>,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
        /// Exit 1 unless every score is 1.0.
        #[arg(long)]
        check: bool,
        /// List the built-in scenarios and exit.
        #[arg(long)]
        list: bool,
    },
    /// Benchmark identity clustering on a generated corpus.
    Bench {
        /// Observations in the corpus.
        #[arg(long, default_value_t = 1_000_000)]
        observations: usize,
        /// Seed of the generated corpus.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// New observations timed one by one after the full run.
        #[arg(long, default_value_t = 2_000)]
        samples: usize,
        /// Identities in the campaign benchmark (0 skips it).
        #[arg(long, default_value_t = 100_000)]
        campaign_identities: usize,
        /// Batch sizes of the incremental-pass benchmark over a settled
        /// store of --observations (comma separated; empty skips it).
        #[arg(long, value_delimiter = ',', default_values_t = [500usize, 2000])]
        pass_batches: Vec<usize>,
        /// Timed passes per batch size.
        #[arg(long, default_value_t = 20)]
        passes: usize,
    },
}

/// Runs one verb; returns the exit status.
pub fn run(cli: Cli) -> Result<i32, CliError> {
    match cli.verb {
        Verb::Run { config } => run::run(config.as_deref()),
        Verb::Serve { listen, config } => serve::serve(listen, config.as_deref()),
        Verb::BenchE2e {
            observations,
            rate,
            seconds,
            redis_url,
        } => bench_e2e::run(&redis_url, observations, rate, seconds),
        Verb::Inspect {
            kind,
            uuid,
            json,
            config,
        } => inspect::inspect(&kind, &uuid, json, config.as_deref()),
        Verb::Explain { a, b, json, config } => explain::explain(&a, &b, json, config.as_deref()),
        Verb::Export {
            format,
            campaign,
            config,
        } => export::export(&format, campaign.as_deref(), config.as_deref()),
        Verb::Ctl {
            action,
            observations,
            target,
            by,
            json,
            timeout,
            config,
        } => ctl::ctl(
            &action,
            &observations,
            &target,
            &by,
            json,
            timeout,
            config.as_deref(),
        ),
        Verb::Simulate {
            scenario,
            rate,
            shuffle,
            duplicate,
            config,
        } => simulate::simulate(&scenario, rate, shuffle, duplicate, config.as_deref()),
        Verb::Demo { top, keep, offline } => demo::demo(top, keep, offline),
        Verb::Score {
            scenarios,
            json,
            check,
            list,
        } => score::score(&scenarios, json, check, list),
        Verb::Bench {
            observations,
            seed,
            samples,
            campaign_identities,
            pass_batches,
            passes,
        } => bench::bench(
            observations,
            seed,
            samples,
            campaign_identities,
            &pass_batches,
            passes,
        ),
    }
}
