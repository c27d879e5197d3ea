//! Every built-in scenario, fed through the core as the daemon would feed it
//! (shuffled, split and duplicated where the scenario says so, with ticks
//! along the way), scores 1.0 on every identity-level metric.

use decnet_clusterd::quality::{run_identities, QualityConfig};
use decnet_clusterd::scenario::{builtin, builtin_names};

#[test]
fn every_builtin_scenario_is_perfect_at_identity_level() {
    let mut failures = Vec::new();
    for name in builtin_names() {
        let generated = builtin(name).expect("builtin parses").generate();
        let (report, _) = run_identities(&generated, &QualityConfig::default()).expect("runs");
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
            failures.push(format!("{name}: {:?}", report.identity));
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
        let (_, a) = run_identities(&generated, &once).unwrap();
        let (_, b) = run_identities(&generated, &often).unwrap();
        let groups = |s: &decnet_clusterd::store::Store| {
            let mut by: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for (o, i) in decnet_clusterd::quality::identity_predictions(s) {
                by.entry(i).or_default().push(o);
            }
            let mut v: Vec<Vec<String>> = by.into_values().collect();
            v.sort();
            v
        };
        assert_eq!(groups(&a), groups(&b), "{name}");
    }
}
