//! `clusterd export`: the identity/campaign graph as JSON, or as Graphviz
//! DOT with a cluster per campaign; one campaign (by uuid or unique
//! prefix, merged-out ones followed to the winner) or every campaign of at
//! least `--min-identities` identities.

use super::config::with_snapshot;
use super::error::CliError;
use super::resolve::{resolve, Kind};
use super::snapshot::{export_dot, export_json};
use crate::cli::out::{out, outln};
use decnet_clusterd::reconcile::effective_root;
use std::path::Path;

/// `clusterd export`.
pub fn export(
    format: &str,
    campaign: Option<&str>,
    min_identities: Option<usize>,
    config: Option<&Path>,
) -> Result<i32, CliError> {
    with_snapshot(config, |snap| {
        let only = campaign
            .map(|c| resolve(&snap.store, Kind::Campaign, c))
            .transpose()?
            .map(|c| effective_root(&snap.store.campaign_groups, &c));
        // The whole graph as a picture leaves out the lone scanners.
        let min = min_identities.unwrap_or(if only.is_none() && format == "dot" {
            2
        } else {
            1
        });
        match format {
            "dot" => out!("{}", export_dot(snap, only.as_deref(), min)),
            _ => outln!(
                "{}",
                serde_json::to_string_pretty(&export_json(snap, only.as_deref(), min))
                    .unwrap_or_default()
            ),
        }
        Ok(0)
    })
}
