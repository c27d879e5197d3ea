//! The campaign tick against the store: formed campaigns publish
//! `identity.campaign.assigned` for each identity, joins publish the pair
//! `campaign.identity.assigned` + `identity.campaign.assigned`, a second pass
//! publishes nothing, and identities an operator separated may still share a
//! campaign.

use decnet_clusterd::campaign::clusterer::campaign_clusterer;
use decnet_clusterd::evidence::{Fingerprint, Observation, Session, SessionExtras};
use decnet_clusterd::harness::quality::counter_ids;
use decnet_clusterd::identity::clusterer::{identity_clusterer, TickContext};
use decnet_clusterd::identity::{Decision, DecisionKind, Decisions};
use decnet_clusterd::phase::Phase;
use decnet_clusterd::store::Store;

const HOUR: i64 = 3_600_000;

fn obs(uuid: &str, ja3: &str, c2: &str, phase: Phase, at: i64) -> Observation {
    let mut o = Observation::new(uuid);
    o.fingerprints.insert(Fingerprint {
        kind: "ja3".into(),
        value: ja3.into(),
    });
    let s = Session {
        session_id: "s".into(),
        decky_id: Some("decky-9".into()),
        started_at: Some(at),
        ended_at: Some(at + HOUR / 4),
        phase: Some(phase),
        extras: SessionExtras {
            c2_endpoints: [c2.into()].into(),
            payload_hashes: ["shared-payload".into()].into(),
            ..Default::default()
        }
        .into(),
        ..Default::default()
    };
    o.sessions.join(s);
    o
}

fn tick(store: &mut Store, new_id: &mut dyn FnMut() -> String) -> Vec<(String, serde_json::Value)> {
    let mut ids = identity_clusterer("connected_components", Default::default()).unwrap();
    let mut camps = campaign_clusterer("connected_components", Default::default()).unwrap();
    let mut ctx = TickContext { now: 7, new_id };
    ids.tick(store, &mut ctx).unwrap();
    camps.tick(store, &mut ctx).unwrap();
    store
        .take_journal()
        .events
        .into_iter()
        .map(|e| (e.topic, e.payload))
        .collect()
}

#[test]
fn campaign_events_and_idempotence() {
    let mut store = Store::default();
    let mut new_id = counter_ids(3);
    // Two operators (different tools: the veto keeps them apart) share C2
    // and payload: one campaign of two identities.
    store.merge_observation(&obs("a1", "tool-a", "c2.x", Phase::Persistence, 0));
    store.merge_observation(&obs("b1", "tool-b", "c2.x", Phase::Discovery, 2 * HOUR));
    let ev = tick(&mut store, &mut new_id);
    let topics: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        topics.iter().filter(|t| **t == "identity.formed").count(),
        2,
        "{topics:?}"
    );
    assert_eq!(
        topics.iter().filter(|t| **t == "campaign.formed").count(),
        1,
        "{topics:?}"
    );
    assert_eq!(
        topics
            .iter()
            .filter(|t| **t == "identity.campaign.assigned")
            .count(),
        2,
        "{topics:?}"
    );
    let ia = store.effective_identity("a1").unwrap();
    let ib = store.effective_identity("b1").unwrap();
    assert_ne!(ia, ib);
    assert_eq!(store.effective_campaign(&ia), store.effective_campaign(&ib));
    assert_eq!(
        store.identities[&ia].campaign_id,
        store.effective_campaign(&ia)
    );

    // Restart (fresh clusterers, same store): nothing to publish.
    assert!(tick(&mut store, &mut new_id).is_empty());

    // A third identity joins the campaign: the paired assignment events.
    store.merge_observation(&obs("c1", "tool-c", "c2.x", Phase::Discovery, 3 * HOUR));
    let ev = tick(&mut store, &mut new_id);
    let topics: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
    assert!(topics.contains(&"campaign.identity.assigned"), "{topics:?}");
    assert_eq!(
        topics
            .iter()
            .filter(|t| **t == "campaign.identity.assigned")
            .count(),
        topics
            .iter()
            .filter(|t| **t == "identity.campaign.assigned")
            .count()
    );
}

#[test]
fn separated_identities_may_share_a_campaign() {
    let mut store = Store::default();
    let mut new_id = counter_ids(4);
    // Same tool and C2: one identity, until the operator separates them.
    store.merge_observation(&obs("x1", "same-tool", "c2.y", Phase::Persistence, 0));
    store.merge_observation(&obs("x2", "same-tool", "c2.y", Phase::Discovery, HOUR));
    tick(&mut store, &mut new_id);
    assert_eq!(
        store.effective_identity("x1"),
        store.effective_identity("x2")
    );
    let mut d = Decisions::default();
    d.set(
        "x1",
        "x2",
        Decision {
            kind: DecisionKind::Separate,
            requested_by: "analyst".into(),
            at: 1,
        },
    );
    store.set_decisions(d);
    tick(&mut store, &mut new_id);
    let (i1, i2) = (
        store.effective_identity("x1").unwrap(),
        store.effective_identity("x2").unwrap(),
    );
    assert_ne!(i1, i2, "operator decisions win at identity level");
    assert_eq!(
        store.effective_campaign(&i1),
        store.effective_campaign(&i2),
        "but the campaign stays shared"
    );
}
