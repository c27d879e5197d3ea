//! Property tests of the evidence model: replaying any set of input events,
//! in any order, any number of times, gives the same stored observation
//! (through the real entry parser); merge is a semilattice join; and the
//! parser never panics on hostile bytes or JSON.

use decnet_clusterd::evidence::event::{parse_entry, Limits};
use decnet_clusterd::evidence::Observation;
use proptest::prelude::*;
use serde_json::{json, Value};

/// One event's (topic, payload) over a small alphabet so values collide.
fn event() -> impl Strategy<Value = (String, Value)> {
    let session = (
        0..3u8,
        proptest::option::of(0..3u8),
        proptest::option::of(0..3u32),
        proptest::option::of(0..3u32),
        proptest::option::of(prop_oneof![
            Just("discovery"),
            Just("persistence"),
            Just("TA0008")
        ]),
        proptest::collection::vec(0..4u8, 0..3),
        proptest::collection::vec(0..3u8, 0..2),
        proptest::option::of(0..3u8),
        proptest::option::of(0..4u64),
    )
        .prop_map(
            |(id, decky, start, end, phase, cmds, creds, payload, simhash)| {
                let mut s = json!({"session_id": format!("s{id}")});
                if let Some(d) = decky {
                    s["decky_id"] = json!(format!("decky-{d}"));
                }
                if let Some(t) = start {
                    s["started_at"] = json!(1_767_000_000 + t * 60);
                }
                if let Some(t) = end {
                    s["ended_at"] = json!(format!("2026-01-0{}T00:00:00Z", t + 1));
                }
                if let Some(p) = phase {
                    let key = if p.starts_with("TA") {
                        "tactic"
                    } else {
                        "phase"
                    };
                    s[key] = json!(p);
                }
                s["commands"] = json!(cmds.iter().map(|c| format!("cmd {c}")).collect::<Vec<_>>());
                s["credentials"] = json!(creds
                    .iter()
                    .map(|c| [format!("u{c}"), "pw".to_string()])
                    .collect::<Vec<_>>());
                if let Some(p) = payload {
                    s["payload_hash"] = json!(format!("p{p}"));
                }
                if let Some(h) = simhash {
                    s["kd_digraph_simhash"] = json!(format!("{:016x}", h * 0x1111));
                }
                s
            },
        );
    prop_oneof![
        (
            proptest::option::of(0..3u8),
            proptest::option::of(0..3u32),
            proptest::option::of(0..5u32),
            proptest::option::of(0..5u32),
            proptest::collection::vec((0..3usize, 0..3u8), 0..3),
            proptest::collection::vec(session.clone(), 0..2),
        )
            .prop_map(|(ip, asn, first, last, fps, sessions)| {
                let mut p = json!({"uuid": "att-1"});
                if let Some(i) = ip {
                    p["ip"] = json!(format!("198.51.100.{i}"));
                }
                if let Some(a) = asn {
                    p["asn"] = json!(64500 + a);
                }
                if let Some(t) = first {
                    p["first_seen"] = json!(1_767_000_000 + t * 3600);
                }
                if let Some(t) = last {
                    p["last_seen"] = json!(1_767_000_000 + t * 3600);
                }
                p["fingerprints"] = json!(fps
                    .iter()
                    .map(|(k, v)| json!({"kind": (["ja3", "hassh", "jarm"][*k]), "value": format!("v{v}")}))
                    .collect::<Vec<_>>());
                p["sessions"] = json!(sessions);
                ("attacker.observed".to_string(), p)
            }),
        (0..3usize, 0..3u8).prop_map(|(k, v)| (
            "attacker.fingerprinted".to_string(),
            json!({"uuid": "att-1", "kind": (["ja3", "ja4", "hassh"][k]), "value": format!("v{v}")})
        )),
        session.prop_map(|s| ("attacker.session.ended".to_string(), json!({"uuid": "att-1", "session": s}))),
        Just(("attacker.scored".to_string(), json!({"uuid": "att-1", "score": 3}))),
    ]
}

fn fold(events: &[(String, Value)], order: &[usize]) -> Observation {
    let mut o = Observation::new("att-1");
    for &i in order {
        let (topic, payload) = &events[i];
        let fields = [("topic", topic.clone()), ("payload", payload.to_string())];
        let parsed = parse_entry(&fields, &Limits::default()).expect("generated events are valid");
        o.merge(&parsed.observation);
    }
    o
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn replay_in_any_order_any_number_of_times(
        events in proptest::collection::vec(event(), 1..8),
        perm in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
        dups in proptest::collection::vec(0..8usize, 0..6),
    ) {
        let base: Vec<usize> = (0..events.len()).collect();
        let reference = fold(&events, &base);
        let mut order = base.clone();
        order.extend(dups.iter().map(|d| d % events.len()));
        // A deterministic shuffle from the drawn seed.
        let mut seed = perm;
        for i in (1..order.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(fold(&events, &order), reference);
    }

    #[test]
    fn stored_evidence_reads_back_as_written_in_both_forms(
        events in proptest::collection::vec(event(), 1..8),
    ) {
        let o = fold(&events, &(0..events.len()).collect::<Vec<_>>());
        let compact = decnet_clusterd::evidence::stored::encode(&o);
        prop_assert_eq!(decnet_clusterd::evidence::stored::decode(compact.as_bytes()).unwrap(), o.clone());
        let earlier = serde_json::to_string(&o).unwrap();
        prop_assert!(compact.len() <= earlier.len());
        prop_assert_eq!(decnet_clusterd::evidence::stored::decode(earlier.as_bytes()).unwrap(), o);
    }

    #[test]
    fn a_parsed_observation_is_what_merging_it_into_nothing_gives(e in event()) {
        // The store keeps a new observation as parsed, without merging it.
        let fields = [("topic", e.0.clone()), ("payload", e.1.to_string())];
        let parsed = parse_entry(&fields, &Limits::default()).expect("generated events are valid");
        let mut merged = Observation::new(parsed.observation.uuid.clone());
        merged.merge(&parsed.observation);
        prop_assert_eq!(merged, parsed.observation);
    }

    #[test]
    fn merge_is_a_join(a in proptest::collection::vec(event(), 1..4),
                       b in proptest::collection::vec(event(), 1..4),
                       c in proptest::collection::vec(event(), 1..4)) {
        let x = fold(&a, &(0..a.len()).collect::<Vec<_>>());
        let y = fold(&b, &(0..b.len()).collect::<Vec<_>>());
        let z = fold(&c, &(0..c.len()).collect::<Vec<_>>());
        let join = |p: &Observation, q: &Observation| { let mut r = p.clone(); r.merge(q); r };
        prop_assert_eq!(join(&x, &y), join(&y, &x));
        prop_assert_eq!(join(&join(&x, &y), &z), join(&x, &join(&y, &z)));
        prop_assert_eq!(join(&x, &x), x.clone());
        // merge reports a change exactly when the observation changed.
        let mut r = x.clone();
        let changed = r.merge(&y);
        prop_assert_eq!(changed, r != x);
    }

    #[test]
    fn hostile_bytes_never_panic(fields in proptest::collection::vec(
        (prop_oneof![Just(b"topic".to_vec()), Just(b"payload".to_vec()), Just(b"ts".to_vec()),
                     Just(b"event_id".to_vec()), proptest::collection::vec(any::<u8>(), 0..8)],
         proptest::collection::vec(any::<u8>(), 0..64)), 0..6)) {
        let _ = parse_entry(&fields, &Limits::default());
    }

    #[test]
    fn hostile_json_never_panics(topic in prop_oneof![Just("attacker.observed"), Just("attacker.fingerprinted"),
                                                      Just("attacker.session.ended"), Just("attacker.scored")],
                                 payload in arb_json()) {
        let fields = [("topic", topic.to_string()), ("payload", payload.to_string())];
        let _ = parse_entry(&fields, &Limits::default());
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("uuid".to_string()),
            Just("att-1".to_string()),
            Just("TA0007".to_string()),
            ".{0,12}".prop_map(String::from)
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("uuid".to_string()),
                    Just("sessions".to_string()),
                    Just("session".to_string()),
                    Just("fingerprints".to_string()),
                    Just("session_id".to_string()),
                    Just("commands".to_string()),
                    Just("credentials".to_string()),
                    Just("asn".to_string()),
                    Just("ip".to_string()),
                    Just("kind".to_string()),
                    Just("value".to_string()),
                    Just("last_seen".to_string())
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
