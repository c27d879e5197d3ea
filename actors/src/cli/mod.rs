//! The command line (SPEC §10): verbs and flags (clap), and the dispatch of
//! each verb to its file. The verbs share the error type (`error.rs`), the
//! argument resolver (`resolve.rs`: uuid, unique prefix or IP), the
//! renderings (`render.rs`, `render_ctl.rs`) and their text pieces
//! (`text.rs`: tables, counts, times).

pub mod bench;
pub mod bench_e2e;
pub mod config;
pub mod ctl;
pub mod demo;
pub mod demo_next;
pub mod error;
pub mod explain;
pub mod export;
pub mod import;
pub mod import_follow;
pub mod inspect;
pub mod list;
pub mod out;
pub mod render;
pub mod render_ctl;
pub mod render_inspect;
pub mod resolve;
pub mod run;
pub mod score;
pub mod serve;
pub mod simulate;
pub mod snapshot;
pub mod text;
pub mod watch;

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
        /// For link / separate / forget: the two observations (uuid, unique uuid prefix or IP).
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
        /// Its uuid or a unique prefix of one, or an observation's IP (merged-out
        /// identities and campaigns are followed to the winner).
        uuid: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// A TOML file overlaid on config/default.toml (for the Redis URL and prefix).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Explain the evidence between two observations (tiers, values, veto, rarity, verdict) or two identities (campaign signals, hand-off discount, planted key, near-miss), judged with the daemon's configuration.
    Explain {
        /// The first observation or identity (uuid, unique uuid prefix or IP).
        a: String,
        /// The second observation or identity (uuid, unique uuid prefix or IP).
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
        /// Only this campaign (uuid or unique prefix).
        #[arg(long)]
        campaign: Option<String>,
        /// Leave out campaigns of fewer identities (default: 2 for the whole
        /// graph as DOT, 1 for JSON or one campaign).
        #[arg(long)]
        min_identities: Option<usize>,
        /// A TOML file overlaid on config/default.toml (for the Redis URL and prefix).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Find identities, campaigns or observations by IP, ASN, fingerprint, decky, size or age.
    List {
        /// identities, campaigns or observations.
        kind: String,
        /// An IP, or the start of one ending in `.` or `:` (203.0.113.).
        #[arg(long)]
        ip: Option<String>,
        /// An ASN (64512 or AS64512).
        #[arg(long)]
        asn: Option<String>,
        /// A fingerprint value (ja3, hassh, SSH key, …) or its start.
        #[arg(long)]
        fingerprint: Option<String>,
        /// A decky id a session was seen on.
        #[arg(long)]
        decky: Option<String>,
        /// At least this many observations (identities) or identities (campaigns).
        #[arg(long)]
        min_size: Option<u64>,
        /// Seen since: an RFC 3339 time or an age (30m, 12h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Show at most this many rows (0: all).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print one JSON document instead of a table.
        #[arg(long)]
        json: bool,
        /// A TOML file overlaid on config/default.toml (for the Redis URL and prefix).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Follow the identity and campaign output streams as readable lines.
    Watch {
        /// Start here instead of now: a stream id (1767236400000-0, 0 for the
        /// oldest retained) or an RFC 3339 time.
        #[arg(long)]
        from: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
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
        /// Serve the console from each daemon and poll it as an open page
        /// does (every second, with an event stream open); reports the
        /// poller's requests, errors and latency beside the figures.
        #[arg(long)]
        console: bool,
        /// Redis to use (default: REDIS_URL or redis://127.0.0.1:6379).
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
    },
    /// Read a honeypot's logs and publish their evidence (SPEC §12); `cowrie` only.
    Import {
        /// The sensor whose log format the files are in: cowrie.
        #[arg(value_parser = ["cowrie"])]
        sensor: String,
        /// Cowrie JSON logs (`var/log/cowrie/cowrie.json`), read in order.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Keep reading as the logs grow, across rotation and truncation.
        #[arg(long)]
        follow: bool,
        /// Names this importer's positions in Redis, and the sensor of
        /// records without one.
        #[arg(long, default_value = "cowrie")]
        source: String,
        /// Cowrie's working directory (where `var/lib/cowrie/tty/` is), or a
        /// directory of one such directory per sensor: keystroke timing.
        #[arg(long)]
        ttylog_dir: Option<std::path::PathBuf>,
        /// Milliseconds between polls of a followed file.
        #[arg(long, default_value_t = 250)]
        poll_ms: u64,
        /// A TOML file overlaid on config/default.toml (for the Redis URL and prefix).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
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
        /// Built-in scenario names, YAML files, or folders recorded from a
        /// real Cowrie (`truth.json` and its logs; phases inferred) (default:
        /// every built-in).
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
        /// store of --observations (comma separated; `--pass-batches` with no
        /// value skips it).
        #[arg(long, value_delimiter = ',', num_args = 0.., default_values_t = [500usize, 2000])]
        pass_batches: Vec<usize>,
        /// Timed passes per batch size.
        #[arg(long, default_value_t = 20)]
        passes: usize,
        /// Also time the reference design's all-pairs identity rule beside
        /// ours on the same corpus at these sizes (comma separated), with
        /// the ratio: `--reference` alone is 2000,4000,8000.
        #[arg(long, value_delimiter = ',', num_args = 0.., default_missing_value = "2000,4000,8000")]
        reference: Option<Vec<usize>>,
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
            console,
            redis_url,
        } => bench_e2e::run(&redis_url, observations, rate, seconds, console),
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
            min_identities,
            config,
        } => export::export(
            &format,
            campaign.as_deref(),
            min_identities,
            config.as_deref(),
        ),
        Verb::List {
            kind,
            ip,
            asn,
            fingerprint,
            decky,
            min_size,
            since,
            limit,
            json,
            config,
        } => {
            let filters = list::Filters {
                ip,
                asn,
                fingerprint,
                decky,
                min_size,
                since,
            };
            list::list(&kind, &filters, limit, json, config.as_deref())
        }
        Verb::Watch { from, json, config } => {
            watch::watch(from.as_deref(), json, config.as_deref())
        }
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
        Verb::Import {
            sensor,
            files,
            follow,
            source,
            ttylog_dir,
            poll_ms,
            config,
        } => {
            let args = import::ImportArgs {
                files,
                follow,
                source,
                ttylog_dir,
                poll_ms,
            };
            import::import(&sensor, &args, config.as_deref())
        }
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
            reference,
        } => bench::bench(
            observations,
            seed,
            samples,
            campaign_identities,
            &pass_batches,
            passes,
            reference.as_deref(),
        ),
    }
}
