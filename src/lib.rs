//! # decnet-clusterd core
//!
//! The pure heart of `decnet-clusterd`: everything that decides *what* the
//! identities and campaigns are, with no actix, Redis or tokio in sight (the
//! dependency graph enforces it). The daemon in `actors/` only moves data in
//! and out of these functions and commits the change sets they return.
//!
//! # Layout
//!
//! ```text
//! input entry ──► evidence::event  (parse + validate, SPEC §4; timestamps
//!                     │              decoded by evidence::time)
//!                     │ partial Observation
//!                     ▼
//!                 evidence          (merge: a join, order-independent)
//!                     │ Observation
//!                     ▼
//!                 identity          (catalogues, features, similarity,
//!                     │              candidate index, graph: candidates,
//!                     │              scope, components, explain;
//!                     │              decisions; clusterer)
//!                     │ components of observations
//!                     ▼
//!                 reconcile         (stored state + components → change set)
//!                     │ identities
//!                     ▼
//!                 campaign          (roll-ups, similarity, graph: candidates,
//!                     │              scope, explain; clusterer)
//!                     │ components of identities
//!                     ▼
//!                 reconcile         (same rules, campaign vocabulary)
//! ```
//!
//! Beside the flow: [`store`] (the stored state in memory, which a tick
//! reads and journals its writes into), [`set`] (the small ordered set
//! evidence and roll-ups are made of), [`par`] (a pure map over the
//! machine's cores, for the per-identity work of large passes), [`phase`]
//! (UKC phases, ATT&CK tactic ids), [`evidence::time`] (the timestamp codec every output timestamp is
//! written with), [`evidence::publish`] (an observation written back out as
//! an input payload), [`scenario`] (YAML scenario language and seeded
//! generator of input events with truth labels), [`metrics`] (ARI,
//! homogeneity, completeness, singleton recall), [`phase_rules`] (the rule
//! table that infers a session's phases from its commands) and [`sensor`]
//! (real honeypots' logs read into input events: Cowrie).
//!
//! Not domain code: [`harness`] is test and benchmark scaffolding (the
//! all-pairs references the property tests compare against, the benchmark
//! corpus and passes, the quality scoring of scenarios).

pub mod campaign;
pub mod evidence;
pub mod harness;
pub mod identity;
pub mod metrics;
pub mod par;
pub mod phase;
pub mod phase_rules;
pub mod reconcile;
pub mod scenario;
pub mod sensor;
pub mod set;
pub mod store;
