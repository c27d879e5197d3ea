//! `clusterd explain`: the evidence between two observations (tiers,
//! values, veto, rarity, verdict), as text or JSON; each observation by
//! uuid, unique uuid prefix or IP.

use super::config::with_snapshot;
use super::error::CliError;
use super::render::{clean, pair};
use super::resolve::{resolve, Kind};
use std::path::Path;

/// `clusterd explain`.
pub fn explain(a: &str, b: &str, json: bool, config: Option<&Path>) -> Result<i32, CliError> {
    with_snapshot(config, |snap| {
        let a = &resolve(&snap.store, Kind::Observation, a)?;
        let b = &resolve(&snap.store, Kind::Observation, b)?;
        let e = snap.identities.graph().explain_pair(a, b).ok_or_else(|| {
            CliError::Usage(format!(
                "unknown observation: `{}` or `{}` is not in the repository",
                clean(a, 64),
                clean(b, 64)
            ))
        })?;
        if json {
            println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
        } else {
            print!("{}", pair(&e));
        }
        Ok(0)
    })
}
