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
//! input entry ──► evidence::event  (parse + validate, SPEC §4)
//!                     │ partial Observation
//!                     ▼
//!                 evidence          (merge: a join, order-independent)
//!                     │ Observation
//!                     ▼
//!                 identity          (features, similarity, candidate index,
//!                     │              incremental components, decisions)
//!                     │ components of observations
//!                     ▼
//!                 reconcile         (stored state + components → change set)
//!                     │ identities
//!                     ▼
//!                 campaign          (roll-ups, campaign edges, components)
//!                     │ components of identities
//!                     ▼
//!                 reconcile         (same rules, campaign vocabulary)
//! ```
//!
//! Beside the flow: [`set`] (the small ordered set evidence and roll-ups
//! are made of), [`phase`] (UKC phases, ATT&CK tactic ids), [`scenario`]
//! (YAML scenario language and seeded generator of input events with truth
//! labels) and [`metrics`] (ARI, homogeneity, completeness, singleton recall).

pub mod campaign;
pub mod evidence;
pub mod harness;
pub mod identity;
pub mod metrics;
pub mod phase;
pub mod reconcile;
pub mod scenario;
pub mod set;
pub mod store;
