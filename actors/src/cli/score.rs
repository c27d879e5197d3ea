//! `clusterd score`: the core run in-process, without Redis, on scenarios
//! (or worlds recorded from a real Cowrie: a folder with `truth.json`),
//! scored against their truth labels at the identity and campaign level.
//! Also how the in-process verbs name a scenario and the algorithms.

use super::error::CliError;
use crate::cli::out::{out, outln};
use anyhow::Context;
use decnet_clusterd::harness::cowrie::recorded_world;
use decnet_clusterd::harness::quality::{run, QualityConfig};
use decnet_clusterd::metrics::format_table;
use decnet_clusterd::phase_rules::PhaseRules;
use decnet_clusterd::scenario::{builtin, builtin_names, Scenario};
use std::path::Path;
use std::sync::Arc;

/// The quality configuration, with the algorithms named by
/// `DECNET_CLUSTERER_TYPE` / `DECNET_CAMPAIGN_CLUSTERER_TYPE` (an unknown
/// name is a usage error that lists the known ones).
pub fn quality_config() -> Result<QualityConfig, CliError> {
    use decnet_clusterd::campaign::clusterer::KNOWN_CAMPAIGN_CLUSTERERS;
    use decnet_clusterd::identity::clusterer::KNOWN_CLUSTERERS;
    let mut cfg = QualityConfig::default();
    for (var, known, slot) in [
        (
            "DECNET_CLUSTERER_TYPE",
            KNOWN_CLUSTERERS,
            &mut cfg.clusterer,
        ),
        (
            "DECNET_CAMPAIGN_CLUSTERER_TYPE",
            KNOWN_CAMPAIGN_CLUSTERERS,
            &mut cfg.campaign_clusterer,
        ),
    ] {
        if let Ok(v) = std::env::var(var) {
            if !known.contains(&v.as_str()) {
                return Err(CliError::Usage(format!(
                    "{var}: unknown type `{v}`; known: {}",
                    known.join(", ")
                )));
            }
            *slot = v;
        }
    }
    Ok(cfg)
}

pub fn load_scenario(name: &str) -> Result<Scenario, CliError> {
    if let Some(s) = builtin(name) {
        return Ok(s);
    }
    let text = std::fs::read_to_string(name).map_err(|e| {
        CliError::Usage(format!(
            "`{name}` is neither a built-in scenario ({}) nor a readable file: {e}",
            builtin_names().join(", ")
        ))
    })?;
    Scenario::from_yaml(&text).map_err(|e| CliError::Usage(format!("{name}: {e}")))
}

/// `clusterd score`.
pub fn score(names: &[String], json: bool, check: bool, list: bool) -> Result<i32, CliError> {
    if list {
        for name in builtin_names() {
            let s = builtin(name).ok_or_else(|| {
                CliError::Runtime(anyhow::anyhow!("built-in {name} does not parse"))
            })?;
            outln!("{name:<22} {}", s.description);
        }
        return Ok(0);
    }
    let names: Vec<String> = if names.is_empty() {
        builtin_names().iter().map(|s| s.to_string()).collect()
    } else {
        names.to_vec()
    };
    let cfg = quality_config()?;
    let mut rows = Vec::new();
    let mut campaign_rows = Vec::new();
    let mut all_perfect = true;
    let mut json_rows = Vec::new();
    for name in &names {
        let (generated, defeats, cfg) = if Path::new(name).join("truth.json").is_file() {
            // A world recorded from a real sensor: no phases given, so they
            // are inferred with the shipped rules, as the daemon does.
            let g = recorded_world(Path::new(name))
                .map_err(|e| CliError::Usage(format!("{name}: {e}")))?;
            let rules = PhaseRules::embedded()
                .map_err(|e| CliError::Runtime(anyhow::anyhow!("config/phases.toml: {e}")))?;
            let cfg = QualityConfig {
                phase_rules: Some(Arc::new(rules)),
                ..cfg.clone()
            };
            (g, "(recorded from a real sensor)".to_string(), cfg)
        } else {
            let scenario = load_scenario(name)?;
            (scenario.generate(), scenario.defeats, cfg.clone())
        };
        let r = run(&generated, &cfg).context("clustering failed")?.report;
        all_perfect &= r.identity.perfect() && r.rejected == 0;
        json_rows.push(serde_json::json!({
            "scenario": r.name, "events": r.events, "rejected": r.rejected,
            "observations": r.observations, "identities": r.identities,
            "campaigns": r.campaigns, "identity": r.identity, "campaign": r.campaign,
            "defeats": defeats,
        }));
        all_perfect &= r.campaign.perfect();
        rows.push((
            format!("{} ({} obs → {} ids)", r.name, r.observations, r.identities),
            r.identity,
        ));
        campaign_rows.push((
            format!("{} ({} campaigns)", r.name, r.campaigns),
            r.campaign,
        ));
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json_rows).context("encoding JSON")?
        );
    } else {
        outln!("Identity level (SPEC §11), every observation scored against its truth label:\n");
        out!("{}", format_table(&rows));
        outln!("\nCampaign level:\n");
        out!("{}", format_table(&campaign_rows));
    }
    Ok(if check && !all_perfect { 1 } else { 0 })
}
