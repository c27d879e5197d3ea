//! Reconciliation through the clusterers (SPEC §8): names are stable (the
//! identity or campaign with the most members keeps its uuid, never a
//! newer, smaller one), and a split inside a merged-out identity goes to
//! the part holding most of each row's own observations, whether evidence
//! or an operator's `separate` caused it.

use decnet_clusterd::campaign::clusterer::{campaign_clusterer, CampaignClusterer};
use decnet_clusterd::evidence::{Fingerprint, Observation, Session, SessionExtras};
use decnet_clusterd::identity::clusterer::{identity_clusterer, Clusterer, TickContext};
use decnet_clusterd::identity::{Decision, DecisionKind, IdentityWeights};
use decnet_clusterd::phase::Phase;
use decnet_clusterd::store::Store;
use serde_json::Value;

type Event = (String, Value);

/// An observation with these fingerprints (`kind:value`) and payload hashes.
fn obs(uuid: &str, fingerprints: &[&str], payloads: &[&str]) -> Observation {
    let mut o = Observation::new(uuid);
    for fp in fingerprints {
        let (kind, value) = fp.split_once(':').expect("kind:value");
        o.fingerprints.insert(Fingerprint {
            kind: kind.into(),
            value: value.into(),
        });
    }
    if !payloads.is_empty() {
        o.sessions.join(Session {
            session_id: "s1".into(),
            extras: SessionExtras {
                payload_hashes: payloads.iter().map(|p| (*p).into()).collect(),
                ..Default::default()
            }
            .into(),
            ..Default::default()
        });
    }
    o
}

/// Both layers over one store, with a clock and uuids handed out in
/// *descending* order, so a newer group always has the smaller uuid (the
/// case the old smallest-uuid rule got wrong).
struct Harness {
    store: Store,
    identities: Box<dyn Clusterer>,
    campaigns: Box<dyn CampaignClusterer>,
    next: u32,
    now: i64,
}

impl Harness {
    fn new() -> Self {
        Harness {
            store: Store::default(),
            identities: identity_clusterer("connected_components", IdentityWeights::default())
                .unwrap(),
            campaigns: campaign_clusterer("connected_components", Default::default()).unwrap(),
            next: 0,
            now: 1_000,
        }
    }

    fn add(&mut self, o: Observation) {
        self.store.merge_observation(&o);
    }

    /// One tick of both layers, a minute after the previous one.
    fn tick(&mut self) -> Vec<Event> {
        self.now += 60_000;
        let next = &mut self.next;
        let mut new_id = || {
            *next += 1;
            format!("id-{:04}", 9_999 - *next)
        };
        let mut ctx = TickContext {
            now: self.now,
            new_id: &mut new_id,
        };
        self.identities.tick(&mut self.store, &mut ctx).unwrap();
        self.campaigns.tick(&mut self.store, &mut ctx).unwrap();
        let events: Vec<Event> = self
            .store
            .take_journal()
            .events
            .into_iter()
            .map(|e| (e.topic, e.payload))
            .collect();
        for (topic, p) in &events {
            if topic == "identity.observation.linked" {
                assert_ne!(
                    p["prior_identity_uuid"], p["identity_uuid"],
                    "linked to its own prior: {p}"
                );
            }
            if topic == "campaign.identity.assigned" {
                assert_ne!(
                    p["prior_campaign_uuid"], p["campaign_uuid"],
                    "assigned to its own prior: {p}"
                );
            }
        }
        events
    }

    fn identity(&self, o: &str) -> String {
        self.store.effective_identity(o).unwrap()
    }

    fn separate(&mut self, pairs: &[(&str, &str)]) {
        let mut d = self.store.decisions.clone();
        for (a, b) in pairs {
            d.set(
                a,
                b,
                Decision {
                    kind: DecisionKind::Separate,
                    requested_by: "analyst".into(),
                    at: self.now,
                },
            );
        }
        self.store.set_decisions(d);
    }
}

fn of_topic<'a>(events: &'a [Event], topic: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e.0 == topic)
        .map(|e| &e.1)
        .collect()
}

/// `n` observations `{prefix}000…` chained by a payload shared with the
/// next one: one identity, no value on more than two observations.
fn chain(h: &mut Harness, prefix: &str, n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i:03}")).collect();
    for (i, name) in names.iter().enumerate() {
        let mut payloads = vec![format!("{prefix}-p{i}")];
        if i > 0 {
            payloads.push(format!("{prefix}-p{}", i - 1));
        }
        let p: Vec<&str> = payloads.iter().map(String::as_str).collect();
        h.add(obs(name, &[], &p));
    }
    names
}

#[test]
fn a_newer_singleton_never_renames_a_large_identity() {
    let mut h = Harness::new();
    let big = chain(&mut h, "x", 400);
    h.tick();
    let x = h.identity(&big[0]);
    // A bare observation: its own identity, with a smaller uuid than x.
    h.add(obs("s", &[], &[]));
    h.tick();
    let s = h.identity("s");
    assert!(s < x, "the harness hands out descending uuids");
    // Its evidence arrives and ties it to the big identity.
    h.add(obs("s", &[], &["x-p0"]));
    let ev = h.tick();
    let merged = of_topic(&ev, "identity.merged");
    assert_eq!(merged.len(), 1, "{ev:?}");
    assert_eq!(merged[0]["winner_uuid"], x.as_str());
    assert_eq!(merged[0]["loser_uuid"], s.as_str());
    assert_eq!(merged[0]["observation_uuids"], serde_json::json!(["s"]));
    assert!(big.iter().all(|o| h.identity(o) == x), "x keeps its name");
    assert_eq!(h.identity("s"), x);
    assert!(
        of_topic(&ev, "identity.observation.linked").is_empty(),
        "{ev:?}"
    );
    // Converged: a restart renames nothing and publishes nothing.
    h.identities = identity_clusterer("connected_components", IdentityWeights::default()).unwrap();
    h.campaigns = campaign_clusterer("connected_components", Default::default()).unwrap();
    assert!(h.tick().is_empty());
}

#[test]
fn equal_sizes_keep_the_oldest_identity() {
    let mut h = Harness::new();
    h.add(obs("a1", &[], &["pa"]));
    h.add(obs("a2", &[], &["pa"]));
    h.tick();
    h.add(obs("b1", &[], &["pb"]));
    h.add(obs("b2", &[], &["pb"]));
    h.tick();
    let (a, b) = (h.identity("a1"), h.identity("b1"));
    assert!(b < a, "the newer one has the smaller uuid");
    h.add(obs("m", &[], &["pa", "pb"]));
    let ev = h.tick();
    let merged = of_topic(&ev, "identity.merged");
    assert_eq!(merged.len(), 1, "{ev:?}");
    assert_eq!(
        merged[0]["winner_uuid"],
        a.as_str(),
        "the older wins the tie"
    );
    assert_eq!(h.identity("b2"), a);
}

#[test]
fn a_split_inside_a_merged_out_identity_goes_to_the_larger_part() {
    let mut h = Harness::new();
    // X: a1, a2 share J1 + H1, a3 only J1. Y: likewise with J2 / H2.
    h.add(obs("a1", &["ja3:J1", "hassh:H1"], &[]));
    h.add(obs("a2", &["ja3:J1", "hassh:H1"], &[]));
    h.add(obs("a3", &["ja3:J1"], &[]));
    h.tick();
    h.add(obs("b1", &["ja3:J2", "hassh:H2"], &[]));
    h.add(obs("b2", &["ja3:J2", "hassh:H2"], &[]));
    h.add(obs("b3", &["ja3:J2"], &[]));
    h.tick();
    let (x, y) = (h.identity("a1"), h.identity("b1"));
    assert_eq!(h.identity("a3"), x);
    assert_eq!(h.identity("b3"), y);
    // A bridge carrying H1 and H2: equal sizes, X is older and wins.
    h.add(obs("bridge", &["hassh:H1", "hassh:H2"], &[]));
    let ev = h.tick();
    let merged = of_topic(&ev, "identity.merged");
    assert_eq!(merged.len(), 1, "{ev:?}");
    assert_eq!(merged[0]["winner_uuid"], x.as_str());
    assert_eq!(merged[0]["loser_uuid"], y.as_str());
    assert_eq!(
        h.store.identities[&y].merged_into_uuid.as_deref(),
        Some(&*x)
    );

    // 110 unrelated observations make J1 and J2 tooling: a3 and b3 lose
    // their only tie, everyone else still clusters with X.
    for i in 0..110 {
        h.add(obs(&format!("u{i:03}"), &["ja3:J1", "ja3:J2"], &[]));
    }
    let ev = h.tick();
    assert!(of_topic(&ev, "identity.unmerged").is_empty(), "{ev:?}");
    assert!(of_topic(&ev, "identity.merged").is_empty(), "{ev:?}");
    for o in ["a1", "a2", "b1", "b2", "bridge"] {
        assert_eq!(h.identity(o), x, "{o} stays with X");
    }
    assert_eq!(
        h.store.identities[&y].merged_into_uuid.as_deref(),
        Some(&*x),
        "Y stays merged out"
    );
    let (a3, b3) = (h.identity("a3"), h.identity("b3"));
    assert!(a3 != x && a3 != y && b3 != x && b3 != y && a3 != b3);
    let formed = of_topic(&ev, "identity.formed");
    for (o, id) in [("a3", &a3), ("b3", &b3)] {
        assert!(
            formed.iter().any(|f| f["identity_uuid"] == id.as_str()
                && f["observation_uuids"] == serde_json::json!([o])),
            "{o} forms a new identity: {ev:?}"
        );
    }
    let linked = of_topic(&ev, "identity.observation.linked");
    let moved: Vec<(&str, &str, &str)> = linked
        .iter()
        .map(|l| {
            (
                l["observation_uuid"].as_str().unwrap(),
                l["identity_uuid"].as_str().unwrap(),
                l["prior_identity_uuid"].as_str().unwrap_or("none"),
            )
        })
        .filter(|l| !l.0.starts_with('u'))
        .collect();
    assert_eq!(
        moved,
        vec![
            ("a3", a3.as_str(), x.as_str()),
            ("b3", b3.as_str(), y.as_str())
        ],
        "only a3 and b3 move, each from its own row"
    );
    assert!(h.tick().is_empty(), "converged");
}

#[test]
fn separating_one_member_of_a_merged_out_identity_moves_only_that_member() {
    let mut h = Harness::new();
    let xs = chain(&mut h, "x", 410);
    h.tick();
    let ys = chain(&mut h, "y", 400);
    h.tick();
    let (x, y) = (h.identity(&xs[0]), h.identity(&ys[0]));
    h.add(obs("bridge", &[], &["x-p0", "y-p0"]));
    let ev = h.tick();
    let merged = of_topic(&ev, "identity.merged");
    assert_eq!(merged.len(), 1, "{ev:?}");
    assert_eq!(merged[0]["winner_uuid"], x.as_str(), "the larger wins");
    assert_eq!(merged[0]["loser_uuid"], y.as_str());

    // The operator cuts the last bot of Y off its neighbour.
    let last = ys.last().unwrap().clone();
    h.separate(&[(&ys[398], &last)]);
    let ev = h.tick();
    assert!(of_topic(&ev, "identity.unmerged").is_empty(), "{ev:?}");
    assert!(of_topic(&ev, "identity.merged").is_empty(), "{ev:?}");
    let linked = of_topic(&ev, "identity.observation.linked");
    assert_eq!(linked.len(), 1, "{ev:?}");
    let alone = h.identity(&last);
    assert!(alone != x && alone != y);
    assert_eq!(linked[0]["observation_uuid"], last.as_str());
    assert_eq!(linked[0]["identity_uuid"], alone.as_str());
    assert_eq!(linked[0]["prior_identity_uuid"], y.as_str());
    assert_eq!(of_topic(&ev, "identity.formed").len(), 1, "{ev:?}");
    assert!(ys[..399].iter().all(|o| h.identity(o) == x));
    assert_eq!(
        h.store.identities[&y].merged_into_uuid.as_deref(),
        Some(&*x)
    );
    assert!(h.tick().is_empty(), "converged");
}

/// An identity whose only evidence is a C2 endpoint (and a tool of its
/// own, so identities never merge across tools).
fn operator(uuid: &str, c2: &[&str]) -> Observation {
    let mut o = obs(uuid, &[&format!("ja3:tool-{uuid}")], &[]);
    o.sessions.join(Session {
        session_id: "s2".into(),
        decky_id: Some("decky-1".into()),
        started_at: Some(0),
        ended_at: Some(1_000),
        phase: Some(Phase::CommandAndControl),
        extras: SessionExtras {
            c2_endpoints: c2.iter().map(|c| (*c).into()).collect(),
            ..Default::default()
        }
        .into(),
        ..Default::default()
    });
    o
}

#[test]
fn a_newer_single_identity_campaign_never_renames_a_larger_campaign() {
    let mut h = Harness::new();
    for o in ["k1", "k2", "k3"] {
        h.add(operator(o, &["c2.big"]));
    }
    h.tick();
    let ids: Vec<String> = ["k1", "k2", "k3"].iter().map(|o| h.identity(o)).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "three identities");
    let big = h.store.effective_campaign(&ids[0]).unwrap();
    assert!(ids
        .iter()
        .all(|i| h.store.effective_campaign(i).as_ref() == Some(&big)));
    // An identity without infrastructure yet: a campaign of its own.
    h.add(operator("n1", &[]));
    h.tick();
    let n1 = h.identity("n1");
    let small = h.store.effective_campaign(&n1).unwrap();
    assert_ne!(small, big);
    assert!(small < big, "the newer campaign has the smaller uuid");
    // Its C2 arrives: the same as the three, so the campaigns join.
    h.add(operator("n1", &["c2.big"]));
    let ev = h.tick();
    assert_eq!(h.identity("n1"), n1, "identities stay apart (tools differ)");
    let merged = of_topic(&ev, "campaign.merged");
    assert_eq!(merged.len(), 1, "{ev:?}");
    assert_eq!(merged[0]["winner_uuid"], big.as_str());
    assert_eq!(merged[0]["loser_uuid"], small.as_str());
    for i in ids.iter().chain([&n1]) {
        assert_eq!(h.store.effective_campaign(i).as_ref(), Some(&big));
    }
    assert!(h.tick().is_empty(), "converged");
}
