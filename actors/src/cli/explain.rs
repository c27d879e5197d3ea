//! `clusterd explain`: the evidence between two observations (tiers,
//! values, veto, rarity, verdict), as text or JSON.

use super::config::with_snapshot;
use super::error::CliError;
use super::render::{clean, pair};
use crate::cli::out::{out, outln};
use std::path::Path;

/// `clusterd explain`.
pub fn explain(a: &str, b: &str, json: bool, config: Option<&Path>) -> Result<i32, CliError> {
    if a == b {
        return Err(CliError::Usage(format!(
            "`{}` is the same observation twice: explain compares two different observations",
            clean(a, 64)
        )));
    }
    with_snapshot(config, |snap| {
        let e = snap.identities.graph().explain_pair(a, b).ok_or_else(|| {
            CliError::Usage(format!(
                "unknown observation: `{}` or `{}` is not in the repository",
                clean(a, 64),
                clean(b, 64)
            ))
        })?;
        if json {
            outln!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
        } else {
            out!("{}", pair(&e));
        }
        Ok(0)
    })
}
