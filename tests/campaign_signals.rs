//! The campaign layer's newest rules, one identity pair at a time: a
//! session's last phase ends a stage (an inferred session that runs
//! discovery then persistence hands off), a planted key used later on the
//! same decky is an edge at full weight (and not before it was planted, nor
//! on another decky), background arrivals neither follow up nor discount a
//! hand-off, and `why` says what was missing when there is no edge.

use decnet_clusterd::campaign::{CampaignGraph, CampaignWeights, IdentityRollup};
use decnet_clusterd::evidence::{Observation, Session, SessionExtras};
use decnet_clusterd::identity::catalogue::Catalogue;
use decnet_clusterd::phase::Phase;

const HOUR: i64 = 3_600_000;
const KEY: &str = "SHA256:g7EuY8x0UYhZAkG2PBLYaxvIRDsD6JENTH/qY+AXFRc";

struct S {
    decky: &'static str,
    at: i64,
    phase: Option<(Phase, Phase)>,
    commands: &'static [&'static str],
    planted: Option<&'static str>,
    auth: Option<&'static str>,
}

fn s(decky: &'static str, at: i64, phase: Phase, commands: &'static [&'static str]) -> S {
    S {
        decky,
        at,
        phase: Some((phase, phase)),
        commands,
        planted: None,
        auth: None,
    }
}

fn identity(sessions: Vec<S>) -> IdentityRollup {
    let mut o = Observation::new("o");
    for (i, x) in sessions.into_iter().enumerate() {
        o.sessions.join(Session {
            session_id: format!("s{i}").into(),
            decky_id: Some(x.decky.into()),
            started_at: Some(x.at * HOUR),
            ended_at: Some(x.at * HOUR + HOUR / 2),
            phase: x.phase.map(|p| p.0),
            last_phase: x.phase.and_then(|p| (p.1 != p.0).then_some(p.1)),
            phase_inferred: true,
            commands: x.commands.iter().map(|c| (*c).into()).collect(),
            extras: SessionExtras {
                planted_keys: x.planted.into_iter().map(Into::into).collect(),
                auth_keys: x.auth.into_iter().map(Into::into).collect(),
                ..Default::default()
            }
            .into(),
            ..Default::default()
        });
    }
    IdentityRollup::from_observations([&o], &Catalogue::embedded())
}

fn graph(ids: Vec<(&str, IdentityRollup)>) -> CampaignGraph {
    let mut g = CampaignGraph::new(CampaignWeights::default()).unwrap();
    for (id, r) in ids {
        g.upsert(id, r);
    }
    g.rebuild();
    g
}

const PLAYBOOK: &[&str] = &["cat /etc/shadow", "ps aux"];

#[test]
fn a_session_that_ends_in_persistence_hands_off() {
    let mut a = s("d1", 0, Phase::Discovery, &["id", "crontab -e"]);
    a.phase = Some((Phase::Discovery, Phase::Persistence));
    let g = graph(vec![
        ("a", identity(vec![a])),
        ("b", identity(vec![s("d1", 5, Phase::Discovery, PLAYBOOK)])),
    ]);
    let why = g.why("a", "b").unwrap();
    assert!(why.score.edge, "{why:?}");
    let h = why.score.handoff_detail.unwrap();
    assert_eq!(
        (h.from.as_str(), h.from_phase.as_str()),
        ("a", "persistence")
    );
    assert_eq!(h.discount, 1.0);
}

#[test]
fn a_planted_key_used_later_on_the_same_decky_is_an_edge() {
    let mut plant = s(
        "d1",
        0,
        Phase::Persistence,
        &["echo key >> authorized_keys"],
    );
    plant.planted = Some(KEY);
    let used = |decky, at| {
        let mut u = s(decky, at, Phase::Collection, &["tar cz /srv"]);
        u.auth = Some(KEY);
        identity(vec![u])
    };
    // Ten days later: no hand-off window, the key alone joins them.
    let g = graph(vec![
        ("planter", identity(vec![plant])),
        ("later", used("d1", 240)),
        ("before", used("d1", -3)),
        ("elsewhere", used("d2", 240)),
    ]);
    assert_eq!(
        g.campaigns(),
        vec![
            vec!["before".to_string()],
            vec!["elsewhere".to_string()],
            vec!["later".to_string(), "planter".to_string()],
        ]
    );
    let why = g.why("planter", "later").unwrap();
    assert_eq!(why.score.planted, 1.0);
    let p = why.score.planted_detail.clone().unwrap();
    assert_eq!(
        (p.planted_by.as_str(), p.used_by.as_str()),
        ("planter", "later")
    );
    assert_eq!(p.gap_ms, 240 * HOUR);
    assert!(
        why.notes
            .iter()
            .any(|n| n.contains("planted there 240.0 h earlier")),
        "{why:?}"
    );
    let before = g.why("planter", "before").unwrap();
    assert!(!before.score.edge);
    assert!(
        before
            .notes
            .iter()
            .any(|n| n.contains("before planter planted it")),
        "{before:?}"
    );
    let elsewhere = g.why("planter", "elsewhere").unwrap();
    assert!(
        elsewhere
            .notes
            .iter()
            .any(|n| n.contains("needs the same decky")),
        "{elsewhere:?}"
    );
}

/// An ender, a real follower ten hours later and thirty scanners in
/// between (half log in only, half run one `uname -a`).
fn noisy_decky() -> Vec<(String, IdentityRollup)> {
    let mut ids = vec![
        (
            "ender".to_string(),
            identity(vec![s("d1", 0, Phase::Persistence, &["crontab -e"])]),
        ),
        (
            "follower".to_string(),
            identity(vec![s("d1", 10, Phase::Discovery, PLAYBOOK)]),
        ),
    ];
    for i in 0..30 {
        let probe: &'static [&'static str] = if i % 2 == 0 { &[] } else { &["uname -a"] };
        let at = 1 + i as i64 / 5;
        ids.push((
            format!("scanner-{i:02}"),
            identity(vec![s("d1", at, Phase::Discovery, probe)]),
        ));
    }
    ids
}

#[test]
fn background_arrivals_neither_follow_up_nor_discount() {
    let ids = noisy_decky();
    let g = graph(ids.iter().map(|(n, r)| (n.as_str(), r.clone())).collect());
    let why = g.why("ender", "follower").unwrap();
    assert!(why.score.edge, "{why:?}");
    assert_eq!(why.score.handoff_detail.unwrap().chance, 0.0);
    let scanner = g.why("ender", "scanner-01").unwrap();
    assert!(!scanner.score.edge);
    assert!((scanner.missing - (1.0 - scanner.score.total)).abs() < 1e-12);
    assert!(
        scanner
            .notes
            .iter()
            .any(|n| n.contains("background traffic")),
        "{scanner:?}"
    );
    // Counting every arrival as a rival, the same hand-off is discounted
    // away, and `why` says by how much.
    let mut every = CampaignGraph::new(CampaignWeights {
        comparable_min_commands: 0,
        ..Default::default()
    })
    .unwrap();
    for (n, r) in &ids {
        every.upsert(n, r.clone());
    }
    every.rebuild();
    let why = every.why("ender", "follower").unwrap();
    assert!(!why.score.edge, "{why:?}");
    assert!(why.missing > 0.85, "{why:?}");
    assert!(
        why.notes.iter().any(|n| n.contains("31 rival arrival(s)")),
        "{why:?}"
    );
}
