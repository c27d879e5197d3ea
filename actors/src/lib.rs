//! # clusterd — the daemon package
//!
//! The imperative shell around the pure core (`decnet_clusterd`): the
//! daemon, its Redis repository and bus, the control channel, and the
//! command line. Only data moves here; every decision about identities and
//! campaigns is made by the core.
//!
//! # Layout
//!
//! ```text
//! main.rs        parses the command line, runs one verb, maps errors to exit codes
//! cli.rs         the verbs and their flags (clap)
//! settings.rs    configuration: embedded defaults, file and environment overlays
//! keys.rs        every Redis key name, from the prefix
//! lease.rs       leader lease and the fenced commit transaction (all writes)
//! repository.rs  rows → write operations; loading the whole store at start
//! daemon.rs      `run`: wiring — lease, the six supervised actors, graceful stop
//! actor/         one file per actor (SPEC §2) and what they share:
//!   bus_ingest.rs, identity_clusterer.rs, campaign_clusterer.rs,
//!   publisher.rs, heartbeat.rs, control.rs; mod.rs holds the engine,
//!   messages, restart budgets
//! control.rs     control commands: parsing, replies, the re-subscribing listener
//! bus.rs         publishing events into the input stream
//! run.rs         the Redis-facing verbs: run, ctl, simulate, inspect, explain, export
//! inspect.rs     snapshots of the repository and their JSON/DOT renderings
//! demo.rs        `demo`: Redis (or a private one), the daemon in-process, a summary
//! offline.rs     in-process verbs: score, bench, the offline demo
//! e2e.rs         `bench-e2e`: ingest throughput and latency against Redis
//! report.rs      terminal renderings (attacker strings escaped)
//! ```
//!
//! The daemon is an actix actor system: BusIngest, IdentityClusterer,
//! CampaignClusterer, Publisher, Heartbeat and Control, each under a
//! supervisor with its own restart budget; clustering runs on blocking
//! threads where a panic becomes an error value.

pub mod actor;
pub mod bus;
pub mod cli;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod e2e;
pub mod inspect;
pub mod keys;
pub mod lease;
pub mod offline;
pub mod report;
pub mod repository;
pub mod run;
pub mod settings;
