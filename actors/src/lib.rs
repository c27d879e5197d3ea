//! # clusterd — the daemon package
//!
//! The imperative shell around the pure core (`decnet_clusterd`): the
//! daemon, its Redis repository, and the command line. Only data moves
//! here; every decision about identities and campaigns is made by the core.
//!
//! # Layout
//!
//! ```text
//! main.rs        parses the command line, runs one verb, maps errors to exit codes
//! settings.rs    configuration: embedded defaults, file and environment overlays
//! effective.rs   the effective configuration the leader publishes (secrets
//!                removed) and how explain and the console adopt it
//! daemon/        the daemon (SPEC §2): wiring (mod.rs), the engine, supervision
//!                (states, budgets, the one place that decides retry, restart or
//!                exit), errors, connections and backoff, the outbox (Publisher),
//!                and one file or folder per actor: bus_ingest/,
//!                identity_clusterer.rs, campaign_clusterer.rs, heartbeat.rs,
//!                control/ (command parsing and the Control actor)
//! repository/    the only code that spells Redis keys, commands and encodings:
//!                keys, codec (values, the decision field), write (rows → ops),
//!                lease (lease and fenced commit), load, stream (the input
//!                stream's protocol, the ack, the dead letter, publishing),
//!                health (heartbeat keys, row counts), control (the control
//!                channel), events (the output streams read back and followed),
//!                feed (the state version the HTTP cache checks)
//! cli/           the command line: clap and dispatch (mod.rs), the error type
//!                (error.rs), one file per verb (list, watch, ctl, inspect, …),
//!                resolve.rs (uuid, unique prefix or IP → a row), render.rs,
//!                render_ctl.rs, render_inspect.rs (terminal renderings,
//!                attacker strings escaped), text.rs (tables, counts, times),
//!                snapshot.rs (the repository as inspect/explain/export see
//!                it), demo_next.rs (the demo's runnable next steps),
//!                bench_e2e/ (the end-to-end benchmark: probes, the daemon
//!                process, phases)
//! http/         the HTTP server of SPEC §13 (`serve`, and `run` with
//!                http.listen): state and routes (mod.rs), the console's
//!                files, /health, the API over a cached snapshot, events
//! ```
//!
//! The daemon is an actix actor system: BusIngest, IdentityClusterer,
//! CampaignClusterer, Publisher, Heartbeat and Control, each under a
//! supervisor with its own restart budget; clustering runs on blocking
//! threads where a panic becomes an error value.

pub mod cli;
pub mod daemon;
pub mod effective;
pub mod http;
pub mod repository;
pub mod settings;
