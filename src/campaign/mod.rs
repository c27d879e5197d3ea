//! The campaign layer (SPEC §8): which identities cooperate in one
//! operation. `rollup` derives what is compared from an identity's members,
//! `similarity` scores a pair (hand-off with its chance discount from
//! `handoff`, planted artifact from `planted`, shared infrastructure,
//! temporal overlap, cohort, keystroke rhythm), `graph`
//! finds candidates through indexes and keeps campaigns incrementally, and
//! `clusterer` is the seed shape of SPEC §2 with reconciliation into stored
//! campaigns.

pub mod clusterer;
pub mod graph;
pub mod handoff;
pub mod planted;
pub mod rollup;
pub mod similarity;

pub use graph::{CampaignGraph, CampaignWhy, ComputedCampaign};
pub use handoff::{DeckyArrivals, Handoff};
pub use planted::PlantedKey;
pub use rollup::IdentityRollup;
pub use similarity::{CampaignPairScore, CampaignWeights};
