//! Test and benchmark scaffolding, not domain code: nothing on the daemon's
//! path from an input entry to a committed change set calls into this
//! folder. It sits in the library (not under `tests/`) because the property
//! tests, the criterion benches and the `clusterd bench` / `clusterd score`
//! verbs all share it.
//!
//! - [`reference`](mod@reference): the deliberately naive all-pairs identity and campaign
//!   clusterings that the property tests compare the indexed, incremental
//!   graphs against.
//! - [`benchmark`]: the synthetic corpus, settled stores and timed passes
//!   behind `clusterd bench` and the benches.
//! - [`cowrie`]: a world recorded from the real Cowrie lab, read as a
//!   scenario through the importer's core.
//! - [`quality`]: a generated scenario fed through the core as the daemon
//!   feeds it, scored against its truth labels (`clusterd score`, SPEC §11).

pub mod benchmark;
pub mod cowrie;
pub mod quality;
pub mod reference;
