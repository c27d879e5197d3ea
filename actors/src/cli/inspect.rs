//! `clusterd inspect`: an observation, identity or campaign from the
//! repository — named by uuid, unique uuid prefix or (observations) IP;
//! merged-out ones followed to the winner — as text or JSON.

use super::config::with_snapshot;
use super::error::CliError;
use super::render_inspect::inspection;
use super::resolve::{resolve, Kind};
use crate::cli::out::{out, outln};
use std::path::Path;

/// `clusterd inspect`.
pub fn inspect(kind: &str, uuid: &str, json: bool, config: Option<&Path>) -> Result<i32, CliError> {
    let parsed = Kind::parse(kind)?;
    with_snapshot(config, |snap| {
        let uuid = resolve(&snap.store, parsed, uuid)?;
        let mut v =
            super::snapshot::inspect(snap, parsed.name(), &uuid).map_err(CliError::Usage)?;
        super::render_inspect::with_phase_sources(&mut v);
        if json {
            outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            out!("{}", inspection(parsed.name(), &v, &snap.store));
        }
        Ok(0)
    })
}
