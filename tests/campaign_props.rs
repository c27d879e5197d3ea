//! Property tests of the campaign layer: indexed campaigns equal the
//! all-pairs reference, incremental settling equals a rebuild after random
//! upserts and removals, and shifting every timestamp by the same amount
//! changes no edge weight and no campaign.

use decnet_clusterd::campaign::graph::all_pairs_campaigns;
use decnet_clusterd::campaign::{CampaignGraph, CampaignWeights, IdentityRollup};
use decnet_clusterd::evidence::{Observation, Session};
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

fn observation() -> impl Strategy<Value = Observation> {
    proptest::collection::vec(
        (
            0..3u8,
            0..5usize,
            0..72i64,
            1..4i64,
            proptest::option::of(0..4u8),
            proptest::option::of((0..2u8, 0..12u32)),
        ),
        1..4,
    )
    .prop_map(|sessions| {
        let mut o = Observation::new("x");
        for (i, (decky, phase, start, len, infra, simhash)) in sessions.into_iter().enumerate() {
            let s = Session {
                session_id: format!("s{i}"),
                decky_id: Some(format!("decky-{decky}")),
                started_at: Some(start * HOUR),
                ended_at: Some((start + len) * HOUR),
                phase: Some(PHASES[phase]),
                payload_hashes: infra.into_iter().map(|p| format!("p{p}")).collect(),
                kd_digraph_simhash: simhash.map(|(base, flip)| {
                    [0x5a5a_3c3c_f0f0_0ff0u64, 0x1234_5678_9abc_def0][base as usize]
                        ^ (1u64 << flip)
                        ^ if flip > 9 { 0xff } else { 0 }
                }),
                ..Default::default()
            };
            o.sessions.insert(s.session_id.clone(), s);
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
                        IdentityRollup::from_observations(obs.iter()),
                    )
                })
                .collect()
        },
    )
}

fn weights() -> impl Strategy<Value = CampaignWeights> {
    (0.3f64..1.2, 0.1f64..1.0, 0.0f64..0.9, 0.0f64..0.5).prop_map(
        |(handoff, overlap, rhythm, cohort)| CampaignWeights {
            handoff,
            overlap,
            rhythm,
            cohort,
            ..Default::default()
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
