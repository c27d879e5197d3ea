//! Property tests of the campaign layer: indexed campaigns equal the
//! all-pairs reference, incremental settling equals a rebuild after random
//! upserts and removals, and shifting every timestamp by the same amount
//! changes no edge weight and no campaign. On a busy decky every arrival
//! moves the chance discount of every hand-off there: settling after each
//! change still equals the all-pairs reference. Sessions run 0–3 commands
//! (so some arrivals are comparable and some are background) and plant and
//! authenticate with keys from a small pool (so planted-artifact edges form,
//! and some uses come before the planting).

use decnet_clusterd::campaign::{CampaignGraph, CampaignWeights, IdentityRollup};
use decnet_clusterd::evidence::{Observation, Session, SessionExtras, Sym};
use decnet_clusterd::harness::reference::all_pairs_campaigns;
use decnet_clusterd::identity::catalogue::Catalogue;
use decnet_clusterd::phase::Phase;
use proptest::prelude::*;

const HOUR: i64 = 3_600_000;
const PHASES: [Phase; 5] = [
    Phase::Discovery,
    Phase::Persistence,
    Phase::CommandAndControl,
    Phase::LateralMovement,
    Phase::Execution,
];

const COMMANDS: [&str; 3] = ["uname -a", "cat /etc/passwd", "ps aux"];

fn key(k: u8) -> Sym {
    format!("SHA256:key{k}").into()
}

fn observation() -> impl Strategy<Value = Observation> {
    proptest::collection::vec(
        (
            0..3u8,
            0..5usize,
            0..72i64,
            1..4i64,
            proptest::option::of(0..4u8),
            proptest::option::of((0..2u8, 0..12u32)),
            (
                0..4usize,
                proptest::option::of(0..3u8),
                proptest::option::of(0..3u8),
            ),
        ),
        1..4,
    )
    .prop_map(|sessions| {
        let mut o = Observation::new("x");
        for (i, (decky, phase, start, len, infra, simhash, (commands, planted, auth))) in
            sessions.into_iter().enumerate()
        {
            let s = Session {
                session_id: format!("s{i}").into(),
                decky_id: Some(format!("decky-{decky}").into()),
                started_at: Some(start * HOUR),
                ended_at: Some((start + len) * HOUR),
                phase: Some(PHASES[phase]),
                kd_digraph_simhash: simhash.map(|(base, flip)| {
                    [0x5a5a_3c3c_f0f0_0ff0u64, 0x1234_5678_9abc_def0][base as usize]
                        ^ (1u64 << flip)
                        ^ if flip > 9 { 0xff } else { 0 }
                }),
                extras: SessionExtras {
                    payload_hashes: infra.into_iter().map(|p| format!("p{p}").into()).collect(),
                    planted_keys: planted.into_iter().map(key).collect(),
                    auth_keys: auth.into_iter().map(key).collect(),
                    ..Default::default()
                }
                .into(),
                commands: COMMANDS[..commands].iter().map(|c| (*c).into()).collect(),
                ..Default::default()
            };
            o.sessions.join(s);
        }
        o
    })
}

fn identities() -> impl Strategy<Value = Vec<(String, IdentityRollup)>> {
    proptest::collection::vec(proptest::collection::vec(observation(), 1..3), 1..16).prop_map(
        |ids| {
            ids.into_iter()
                .enumerate()
                .map(|(i, obs)| {
                    (
                        format!("id-{i:02}"),
                        IdentityRollup::from_observations(obs.iter(), &Catalogue::embedded()),
                    )
                })
                .collect()
        },
    )
}

fn weights() -> impl Strategy<Value = CampaignWeights> {
    (
        0.3f64..1.2,
        0.1f64..1.0,
        0.0f64..0.9,
        0.0f64..0.5,
        0.0f64..1.5,
        0..4u32,
    )
        .prop_map(
            |(handoff, overlap, rhythm, cohort, planted, comparable_min_commands)| {
                CampaignWeights {
                    handoff,
                    overlap,
                    rhythm,
                    cohort,
                    planted,
                    comparable_min_commands,
                    ..Default::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn indexed_equals_all_pairs(ids in identities(), w in prop_oneof![Just(CampaignWeights::default()), weights()]) {
        let mut g = CampaignGraph::new(w.clone()).unwrap();
        for (id, r) in &ids { g.upsert(id, r.clone()); }
        g.rebuild();
        prop_assert_eq!(g.campaigns(), all_pairs_campaigns(&ids, &w));
    }

    #[test]
    fn incremental_equals_rebuild(ids in identities(), removals in proptest::collection::vec(0..16usize, 0..4),
                                  w in prop_oneof![Just(CampaignWeights::default()), weights()]) {
        let mut g = CampaignGraph::new(w.clone()).unwrap();
        for (i, (id, r)) in ids.iter().enumerate() {
            g.upsert(id, r.clone());
            if i % 2 == 0 { g.settle(); }
        }
        g.settle();
        let mut alive = ids.clone();
        for r in removals {
            if let Some(id) = ids.get(r).map(|x| x.0.clone()) {
                g.remove(&id);
                alive.retain(|x| x.0 != id);
                g.settle();
            }
        }
        prop_assert_eq!(g.campaigns(), all_pairs_campaigns(&alive, &w));
    }

    #[test]
    fn shifting_time_changes_nothing(ids in identities(), offset in -1_000i64..1_000) {
        let w = CampaignWeights::default();
        let shifted: Vec<(String, IdentityRollup)> =
            ids.iter().map(|(id, r)| (id.clone(), r.shifted(offset * 86_400_000 + 12_345))).collect();
        let mut a = CampaignGraph::new(w.clone()).unwrap();
        let mut b = CampaignGraph::new(w).unwrap();
        for ((ia, ra), (ib, rb)) in ids.iter().zip(&shifted) {
            a.upsert(ia, ra.clone());
            b.upsert(ib, rb.clone());
        }
        a.rebuild();
        b.rebuild();
        prop_assert_eq!(a.campaigns(), b.campaigns());
        for (x, _) in &ids {
            for (y, _) in &ids {
                let (sa, sb) = (a.explain(x, y).unwrap(), b.explain(x, y).unwrap());
                prop_assert!((sa.total - sb.total).abs() < 1e-12, "{} {} {} vs {}", x, y, sa.total, sb.total);
            }
        }
    }
}

/// One identity on a single busy decky: discovery (an arrival) and/or
/// persistence (an ender), hours apart, so hand-offs are dense and every
/// arrival changes the decky's rate.
fn busy_identity() -> impl Strategy<Value = IdentityRollup> {
    (
        0..4u8,
        0..96i64,
        1..30i64,
        proptest::option::of(0..3u8),
        0..4usize,
    )
        .prop_map(|(shape, start, gap, infra, commands)| {
            let mut o = Observation::new("x");
            let phases: &[(Phase, i64)] = match shape {
                0 => &[(Phase::Discovery, 0)],
                1 => &[(Phase::Persistence, 0)],
                2 => &[(Phase::Discovery, 0), (Phase::Persistence, 1)],
                _ => &[(Phase::LateralMovement, 0), (Phase::CommandAndControl, 1)],
            };
            for (i, &(phase, k)) in phases.iter().enumerate() {
                let at = (start + k * gap) * HOUR;
                let s = Session {
                    session_id: format!("s{i}").into(),
                    decky_id: Some("decky-busy".into()),
                    started_at: Some(at),
                    ended_at: Some(at + HOUR),
                    phase: Some(phase),
                    extras: SessionExtras {
                        payload_hashes: infra.into_iter().map(|p| format!("p{p}").into()).collect(),
                        ..Default::default()
                    }
                    .into(),
                    commands: COMMANDS[..commands].iter().map(|c| (*c).into()).collect(),
                    ..Default::default()
                };
                o.sessions.join(s);
            }
            IdentityRollup::from_observations([&o], &Catalogue::embedded())
        })
}

/// An edit of the graph: upsert identity `i` with a roll-up, or remove it.
#[derive(Clone, Debug)]
enum Edit {
    Upsert(usize, Box<IdentityRollup>),
    Remove(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(
        prop_oneof![
            4 => (0..24usize, busy_identity()).prop_map(|(i, r)| Edit::Upsert(i, Box::new(r))),
            2 => (0..24usize).prop_map(Edit::Remove),
        ],
        1..60,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn busy_decky_incremental_equals_all_pairs(
        initial in proptest::collection::vec(busy_identity(), 0..12),
        edits in edits(),
        settle_every in 1..4usize,
        handoff in prop_oneof![Just(1.0f64), 1.0f64..4.0],
    ) {
        let w = CampaignWeights { handoff, ..Default::default() };
        let mut g = CampaignGraph::new(w.clone()).unwrap();
        let mut alive: std::collections::BTreeMap<usize, IdentityRollup> = Default::default();
        for (i, r) in initial.into_iter().enumerate() {
            g.upsert(&format!("id-{i:02}"), r.clone());
            alive.insert(i, r);
        }
        g.rebuild();
        for (k, e) in edits.into_iter().enumerate() {
            match e {
                Edit::Upsert(i, r) => {
                    g.upsert(&format!("id-{i:02}"), (*r).clone());
                    alive.insert(i, *r);
                }
                Edit::Remove(i) => {
                    g.remove(&format!("id-{i:02}"));
                    alive.remove(&i);
                }
            }
            if k % settle_every == 0 {
                g.settle();
            }
        }
        g.settle();
        let ids: Vec<(String, IdentityRollup)> =
            alive.into_iter().map(|(i, r)| (format!("id-{i:02}"), r)).collect();
        prop_assert_eq!(g.campaigns(), all_pairs_campaigns(&ids, &w));
    }
}
