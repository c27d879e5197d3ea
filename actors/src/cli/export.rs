//! `clusterd export`: the identity/campaign graph as JSON, or as Graphviz
//! DOT with a cluster per campaign.

use super::config::with_snapshot;
use super::error::CliError;
use super::snapshot::{export_dot, export_json};
use crate::cli::out::{out, outln};
use std::path::Path;

/// `clusterd export`.
pub fn export(
    format: &str,
    campaign: Option<&str>,
    config: Option<&Path>,
) -> Result<i32, CliError> {
    with_snapshot(config, |snap| {
        match format {
            "dot" => out!("{}", export_dot(snap, campaign)),
            _ => outln!(
                "{}",
                serde_json::to_string_pretty(&export_json(snap, campaign)).unwrap_or_default()
            ),
        }
        Ok(0)
    })
}
