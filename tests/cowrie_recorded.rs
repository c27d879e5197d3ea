//! The world recorded from the real Cowrie lab (`tests/data/cowrie/lab-seed1`:
//! a real Cowrie 3.1 honeypot, real paramiko, asyncssh and OpenSSH clients,
//! 36 source IPs on two sensors) through the importer's core and the
//! clusterers with phase inference, as the daemon runs it: 1.0 at both
//! levels, and every signal that must carry it does.

use decnet_clusterd::harness::cowrie::recorded_world;
use decnet_clusterd::harness::quality::{run, QualityConfig};
use decnet_clusterd::phase_rules::PhaseRules;
use std::path::Path;
use std::sync::Arc;

fn config() -> QualityConfig {
    QualityConfig {
        phase_rules: Some(Arc::new(PhaseRules::embedded().unwrap())),
        ..Default::default()
    }
}

fn lab_seed1() -> decnet_clusterd::scenario::Generated {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cowrie/lab-seed1");
    recorded_world(&dir).expect("the recorded world reads")
}

#[test]
fn the_recorded_cowrie_world_is_perfect_at_both_levels() {
    let g = lab_seed1();
    assert_eq!(g.truth.identity.len(), 36);
    let report = run(&g, &config()).unwrap().report;
    println!(
        "lab-seed1: identity {:?}\ncampaign {:?}",
        report.identity, report.campaign
    );
    assert_eq!(report.rejected, 0);
    assert_eq!(report.observations, 36);
    assert!(report.identity.perfect(), "identity: {:?}", report.identity);
    assert!(report.campaign.perfect(), "campaign: {:?}", report.campaign);
}

#[test]
fn ticking_often_gives_the_same_result_on_the_recorded_world() {
    let g = lab_seed1();
    for tick_every in [1, 5] {
        let cfg = QualityConfig {
            tick_every,
            ..config()
        };
        let report = run(&g, &cfg).unwrap().report;
        assert!(
            report.identity.perfect() && report.campaign.perfect(),
            "tick_every {tick_every}: {:?} {:?}",
            report.identity,
            report.campaign
        );
    }
}
