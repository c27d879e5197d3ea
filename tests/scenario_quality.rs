//! Every built-in scenario, fed through the core as the daemon would feed it
//! (shuffled, split and duplicated where the scenario says so, with ticks
//! along the way), scores 1.0 on every metric at identity and campaign level.

use decnet_clusterd::quality::{run, QualityConfig};
use decnet_clusterd::scenario::{builtin, builtin_names};

#[test]
fn every_builtin_scenario_is_perfect_at_both_levels() {
    let mut failures = Vec::new();
    for name in builtin_names() {
        let generated = builtin(name).expect("builtin parses").generate();
        let (report, _) = run(&generated, &QualityConfig::default()).expect("runs");
        assert_eq!(
            report.rejected, 0,
            "{name}: generated events must all be valid"
        );
        assert_eq!(
            report.observations,
            generated.truth.identity.len(),
            "{name}"
        );
        if !report.identity.perfect() {
            failures.push(format!("{name} identity: {:?}", report.identity));
        }
        if !report.campaign.perfect() {
            failures.push(format!("{name} campaign: {:?}", report.campaign));
        }
    }
    assert!(
        failures.is_empty(),
        "imperfect scenarios:\n{}",
        failures.join("\n")
    );
}

#[test]
fn ticking_often_or_once_gives_the_same_identities() {
    for name in ["common_library", "partial_evidence", "all_with_noise"] {
        let generated = builtin(name).unwrap().generate();
        let once = QualityConfig {
            tick_every: 0,
            ..Default::default()
        };
        let often = QualityConfig {
            tick_every: 7,
            ..Default::default()
        };
        let (_, a) = run(&generated, &once).unwrap();
        let (_, b) = run(&generated, &often).unwrap();
        let groups = |labels: std::collections::BTreeMap<String, String>| {
            let mut by: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for (o, i) in labels {
                by.entry(i).or_default().push(o);
            }
            let mut v: Vec<Vec<String>> = by.into_values().collect();
            v.sort();
            v
        };
        use decnet_clusterd::quality::{campaign_predictions, identity_predictions};
        assert_eq!(
            groups(identity_predictions(&a)),
            groups(identity_predictions(&b)),
            "{name}"
        );
        assert_eq!(
            groups(campaign_predictions(&a)),
            groups(campaign_predictions(&b)),
            "{name}"
        );
    }
}
