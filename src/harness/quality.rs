//! The quality harness: a generated scenario is fed through the core exactly
//! as the daemon feeds it (entry parsing, evidence merge, clustering ticks at
//! intervals so the incremental paths are exercised, a final tick), and the
//! resulting identities and campaigns are scored against the truth labels
//! (SPEC §11).
//! `clusterd score` prints these reports.

use crate::campaign::clusterer::{campaign_clusterer, CampaignClusterError};
use crate::campaign::CampaignWeights;
use crate::evidence::event::{parse_entry_with, Limits};
use crate::identity::clusterer::{identity_clusterer, ClusterError, Clusterer, TickContext};
use crate::identity::IdentityWeights;
use crate::metrics::{score, Scores};
use crate::phase_rules::PhaseRules;
use crate::scenario::Generated;
use crate::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How to run a scenario.
#[derive(Clone, Debug)]
pub struct QualityConfig {
    pub identity: IdentityWeights,
    pub campaign: CampaignWeights,
    pub limits: Limits,
    /// Tick after this many events (0: only at the end).
    pub tick_every: usize,
    /// Identity algorithm (`DECNET_CLUSTERER_TYPE`).
    pub clusterer: String,
    /// Campaign algorithm (`DECNET_CAMPAIGN_CLUSTERER_TYPE`).
    pub campaign_clusterer: String,
    /// Infer the phases of sessions that give none, as the daemon does
    /// (`None`: only sensor-given phases, as in the synthetic scenarios).
    pub phase_rules: Option<Arc<PhaseRules>>,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            identity: IdentityWeights::default(),
            campaign: CampaignWeights::default(),
            limits: Limits::default(),
            tick_every: 97,
            clusterer: "connected_components".into(),
            campaign_clusterer: "connected_components".into(),
            phase_rules: None,
        }
    }
}

/// One scenario's outcome.
#[derive(Clone, Debug)]
pub struct ScenarioReport {
    pub name: String,
    pub events: usize,
    /// Entries the parser refused (a scenario should have none).
    pub rejected: usize,
    pub observations: usize,
    pub identities: usize,
    pub campaigns: usize,
    pub identity: Scores,
    pub campaign: Scores,
}

/// Why a scenario could not be run.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error(transparent)]
    Identity(#[from] ClusterError),
    #[error(transparent)]
    Campaign(#[from] CampaignClusterError),
}

/// A deterministic uuid-shaped id generator for offline runs.
pub fn counter_ids(prefix: u32) -> impl FnMut() -> String {
    let mut next = 0u64;
    move || {
        next += 1;
        format!("{prefix:08x}-0000-4000-8000-{next:012x}")
    }
}

/// Feeds a generated scenario into a store through `tick`, which runs
/// whatever clustering layers the caller wants after every `tick_every`
/// events and once at the end.
pub fn feed(
    generated: &Generated,
    cfg: &QualityConfig,
    store: &mut Store,
    mut tick: impl FnMut(&mut Store) -> Result<(), QualityError>,
) -> Result<usize, QualityError> {
    let mut rejected = 0;
    for (i, event) in generated.events.iter().enumerate() {
        match parse_entry_with(&event.fields(), &cfg.limits, cfg.phase_rules.as_deref()) {
            Ok(parsed) => {
                store.merge_observation(&parsed.observation);
            }
            Err(_) => rejected += 1,
        }
        if cfg.tick_every > 0 && (i + 1) % cfg.tick_every == 0 {
            tick(store)?;
        }
    }
    tick(store)?;
    Ok(rejected)
}

/// Runs both layers over a scenario and scores them.
pub fn run(generated: &Generated, cfg: &QualityConfig) -> Result<Outcome, QualityError> {
    let mut store = Store::default();
    let mut identities: Box<dyn Clusterer> =
        identity_clusterer(&cfg.clusterer, cfg.identity.clone())?;
    let mut campaigns = campaign_clusterer(&cfg.campaign_clusterer, cfg.campaign.clone())?;
    let mut new_id = counter_ids(1);
    let rejected = feed(generated, cfg, &mut store, |store| {
        let mut ctx = TickContext {
            now: 0,
            new_id: &mut new_id,
        };
        identities.tick(store, &mut ctx)?;
        campaigns.tick(store, &mut ctx)?;
        store.take_journal();
        Ok(())
    })?;
    let predicted = identity_predictions(&store);
    let campaign_predicted = campaign_predictions(&store);
    let report = ScenarioReport {
        name: generated.name.clone(),
        events: generated.events.len(),
        rejected,
        observations: store.observations.len(),
        identities: predicted.values().collect::<BTreeSet<_>>().len(),
        campaigns: campaign_predicted.values().collect::<BTreeSet<_>>().len(),
        identity: score(&generated.truth.identity, &predicted),
        campaign: score(&generated.truth.campaign, &campaign_predicted),
    };
    Ok(Outcome {
        report,
        store,
        identities,
        campaigns,
    })
}

/// What a run leaves: the scores, the final store, and the clusterers (for
/// explanations).
pub struct Outcome {
    pub report: ScenarioReport,
    pub store: Store,
    pub identities: Box<dyn Clusterer>,
    pub campaigns: Box<dyn crate::campaign::clusterer::CampaignClusterer>,
}

/// The effective campaign of every observation (through its identity).
pub fn campaign_predictions(store: &Store) -> BTreeMap<String, String> {
    store
        .observations
        .keys()
        .filter_map(|o| {
            let identity = store.effective_identity(o)?;
            let campaign = store
                .effective_campaign(&identity)
                .unwrap_or_else(|| format!("no-campaign:{identity}"));
            Some((o.to_string(), campaign))
        })
        .collect()
}

/// The effective identity of every observation.
pub fn identity_predictions(store: &Store) -> BTreeMap<String, String> {
    store
        .observations
        .keys()
        .filter_map(|o| store.effective_identity(o).map(|i| (o.to_string(), i)))
        .collect()
}
