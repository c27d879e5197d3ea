//! # clusterd — the daemon package
//!
//! The imperative shell around the pure core (`decnet_clusterd`): the
//! command line and the offline verbs that drive the core directly.
//!
//! # Layout
//!
//! ```text
//! main.rs    parses the command line, calls one verb, maps errors to exit codes
//! cli.rs     the verbs and their flags (clap)
//! offline.rs verbs that run the core in-process without Redis: score, bench, demo
//! report.rs  human-readable rendering of identities, campaigns and scores
//! ```

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
