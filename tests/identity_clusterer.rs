//! The identity clusterer's tick against the in-memory store: lifecycle
//! events for formed / linked / merged / unmerged identities, idempotence,
//! and restarts that rename nothing.

use decnet_clusterd::evidence::{Fingerprint, Observation, Session, SessionExtras};
use decnet_clusterd::identity::clusterer::{identity_clusterer, Clusterer, TickContext};
use decnet_clusterd::identity::{Decision, DecisionKind, Decisions, IdentityWeights};
use decnet_clusterd::store::Store;

fn obs(uuid: &str, ja3: &str, payload: Option<&str>) -> Observation {
    let mut o = Observation::new(uuid);
    o.fingerprints.insert(Fingerprint {
        kind: "ja3".into(),
        value: ja3.into(),
    });
    if let Some(p) = payload {
        let s = Session {
            session_id: "s1".into(),
            extras: SessionExtras {
                payload_hashes: [p.into()].into(),
                ..Default::default()
            }
            .into(),
            ..Default::default()
        };
        o.sessions.join(s);
    }
    o
}

struct Harness {
    store: Store,
    clusterer: Box<dyn Clusterer>,
    next: u32,
}

impl Harness {
    fn new() -> Self {
        Harness {
            store: Store::default(),
            clusterer: identity_clusterer("connected_components", IdentityWeights::default())
                .unwrap(),
            next: 0,
        }
    }

    fn tick(&mut self) -> Vec<(String, serde_json::Value)> {
        let next = &mut self.next;
        let mut new_id = || {
            *next += 1;
            format!("id-{:03}", *next)
        };
        let mut ctx = TickContext {
            now: 1_000,
            new_id: &mut new_id,
        };
        self.clusterer.tick(&mut self.store, &mut ctx).unwrap();
        self.store
            .take_journal()
            .events
            .into_iter()
            .map(|e| (e.topic, e.payload))
            .collect()
    }

    fn identity(&self, o: &str) -> String {
        self.store.effective_identity(o).unwrap()
    }
}

#[test]
fn formed_linked_then_quiet() {
    let mut h = Harness::new();
    h.store.merge_observation(&obs("a", "rare1", None));
    h.store.merge_observation(&obs("b", "rare1", None));
    h.store.merge_observation(&obs("c", "other", None));
    let ev = h.tick();
    let formed: Vec<_> = ev.iter().filter(|e| e.0 == "identity.formed").collect();
    assert_eq!(formed.len(), 2, "{ev:?}");
    assert_eq!(h.identity("a"), h.identity("b"));
    assert_ne!(h.identity("a"), h.identity("c"));

    // Nothing changed: nothing written, nothing published.
    assert!(h.tick().is_empty());
    assert!(h.store.take_journal().is_empty());

    // A new observation with the rare fingerprint is linked.
    h.store.merge_observation(&obs("d", "rare1", None));
    let ev = h.tick();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].0, "identity.observation.linked");
    assert_eq!(ev[0].1["observation_uuid"], "d");
    assert_eq!(ev[0].1["identity_uuid"], h.identity("a").as_str());
    assert!(ev[0].1["prior_identity_uuid"].is_null());
}

#[test]
fn merge_then_unmerge_by_operator_decision() {
    let mut h = Harness::new();
    h.store.merge_observation(&obs("a", "r1", None));
    h.store.merge_observation(&obs("b", "r1", None));
    h.store.merge_observation(&obs("c", "r2", None));
    h.store.merge_observation(&obs("d", "r2", None));
    h.tick();
    let (ab, cd) = (h.identity("a"), h.identity("c"));
    assert_ne!(ab, cd);

    // Evidence bridges the two: the smallest uuid wins, the loser is soft-merged.
    h.store.merge_observation(&obs("e", "r1", None));
    let mut bridge = obs("e", "r2", None);
    bridge.fingerprints.insert(Fingerprint {
        kind: "ja3".into(),
        value: "r1".into(),
    });
    h.store.merge_observation(&bridge);
    let ev = h.tick();
    let merged: Vec<_> = ev.iter().filter(|e| e.0 == "identity.merged").collect();
    assert_eq!(merged.len(), 1, "{ev:?}");
    let (winner, loser) = if ab < cd { (&ab, &cd) } else { (&cd, &ab) };
    assert_eq!(merged[0].1["winner_uuid"], winner.as_str());
    assert_eq!(merged[0].1["loser_uuid"], loser.as_str());
    assert_eq!(h.identity("c"), *winner);
    assert_eq!(
        h.store.identities[loser].merged_into_uuid.as_deref(),
        Some(winner.as_str())
    );

    // The operator separates a and c: the bridge is cut, the loser comes back.
    let mut d = Decisions::default();
    let sep = Decision {
        kind: DecisionKind::Separate,
        requested_by: "analyst".into(),
        at: 5,
    };
    d.set("a", "c", sep.clone());
    d.set("b", "d", sep);
    h.store.set_decisions(d);
    let ev = h.tick();
    assert!(ev.iter().any(|e| e.0 == "identity.unmerged"), "{ev:?}");
    assert_ne!(h.identity("a"), h.identity("c"));
    assert_eq!(h.identity("a"), ab);
    assert_eq!(h.identity("c"), cd);
}

#[test]
fn restart_renames_nothing_and_publishes_nothing() {
    let mut h = Harness::new();
    for (u, j) in [("a", "x"), ("b", "x"), ("c", "y"), ("d", "z"), ("e", "z")] {
        h.store
            .merge_observation(&obs(u, j, Some("p-shared-by-d-and-e")));
    }
    h.tick();
    let before: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|o| h.identity(o))
        .collect();
    // A new process: fresh clusterer, same stored state.
    h.clusterer = identity_clusterer("connected_components", IdentityWeights::default()).unwrap();
    assert!(h.tick().is_empty());
    assert!(h.store.take_journal().is_empty());
    let after: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|o| h.identity(o))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn unknown_clusterer_names_the_known_ones() {
    let err = identity_clusterer("louvain", IdentityWeights::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("connected_components"), "{err}");
}
