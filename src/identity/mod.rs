//! The identity layer (SPEC §8): which observations are the same hands.
//!
//! `catalogue` holds what says nothing about who (library fingerprints,
//! stock behaviour), `features` interns evidence into compact ids,
//! `weights` holds the layer's settings and the count rule of rarity,
//! `similarity` scores a pair (tiers, veto, rarity) and `explanation`
//! spells a pair's evidence out, `index` finds candidate pairs without an all-pairs
//! pass, `graph` keeps components incrementally with operator `decisions`
//! applied, and `clusterer` runs it as the seed shape of SPEC §2. The naive
//! all-pairs clustering the tests compare against is in
//! [`crate::harness::reference`].

pub mod catalogue;
pub mod clusterer;
pub mod decisions;
pub mod explanation;
pub mod features;
pub mod graph;
pub mod index;
pub mod similarity;
pub mod weights;

pub use decisions::{Decision, DecisionKind, Decisions};
pub use graph::{ComputedIdentity, ExplainedEdge, IdentityGraph};
pub use similarity::{IdentityWeights, PairExplanation};
