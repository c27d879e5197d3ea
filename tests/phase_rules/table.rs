//! The shipped phase table, compiled once per test binary (compiling it is
//! the slow part of a debug build); shared by the phase-rule test files.

use decnet_clusterd::phase_rules::PhaseRules;
use std::sync::OnceLock;

pub fn shipped() -> &'static PhaseRules {
    static TABLE: OnceLock<PhaseRules> = OnceLock::new();
    TABLE.get_or_init(|| PhaseRules::embedded().expect("the shipped table is valid"))
}
