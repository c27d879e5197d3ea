//! `clusterd inspect`: an observation, identity or campaign from the
//! repository (merged-out ones followed to the winner), as text or JSON.

use super::config::with_snapshot;
use super::error::CliError;
use super::render::inspection;
use crate::cli::out::{out, outln};
use std::path::Path;

/// `clusterd inspect`.
pub fn inspect(kind: &str, uuid: &str, json: bool, config: Option<&Path>) -> Result<i32, CliError> {
    with_snapshot(config, |snap| {
        let v = super::snapshot::inspect(snap, kind, uuid).map_err(CliError::Usage)?;
        if json {
            outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            out!("{}", inspection(kind, &v));
        }
        Ok(0)
    })
}
