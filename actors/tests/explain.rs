//! `explain` of two identities judges as the running daemon does: a daemon
//! with a non-default campaign threshold writes its effective configuration
//! to `{p}:config`, and `explain` (run without that setting) reads it and
//! agrees with the daemon's verdict, saying which configuration it used;
//! with no configuration written it falls back to its own, and says so.

mod common;

use clusterd::repository::Keys;
use common::*;
use redis::Commands;
use std::collections::BTreeMap;

#[test]
fn explain_of_two_identities_agrees_with_a_daemon_of_another_threshold() {
    let prefix = Prefix::new("explain");
    let p = prefix.0.as_str();
    let daemon = start_with(p, &[("CLUSTERD_CAMPAIGN__THRESHOLD", "1.5")]);
    let g = publish(p, "handoff_no_infra");
    let n = g.truth.identity.len();
    eventually("the hand-off scenario settles", 60, || settled(p, n));
    let (ids, camps) = predictions(p);
    // One identity per actor; the daemon keeps broker and buyer apart: the
    // hand-off alone (1.0) is below its threshold of 1.5.
    let mut actor_identity: BTreeMap<&str, &str> = BTreeMap::new();
    let mut actor_campaign: BTreeMap<&str, &str> = BTreeMap::new();
    for (o, label) in &g.truth.identity {
        actor_identity.insert(label, &ids[o]);
        actor_campaign.insert(label, &camps[o]);
    }
    let (broker, buyer) = (
        actor_identity["handoff/access-broker"],
        actor_identity["handoff/buyer"],
    );
    assert_ne!(
        actor_campaign["handoff/access-broker"], actor_campaign["handoff/buyer"],
        "the daemon (threshold 1.5) must keep the two apart"
    );
    let mut c = conn();
    let raw: String = c.get(Keys::new(p).config()).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(doc["settings"]["campaign"]["threshold"], 1.5);
    assert!(doc["settings"]["redis"]["url"].is_string());

    let (code, out, err) = verb(p, &["explain", broker, buyer, "--json"]);
    assert_eq!(code, 0, "{err}");
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["config_source"], "daemon", "{out}");
    assert_eq!(e["score"]["threshold"], 1.5);
    assert_eq!(
        e["score"]["edge"], false,
        "explain must agree with the daemon: {out}"
    );
    let h = &e["score"]["handoff_detail"];
    assert_eq!(h["decky"], "decky-20");
    assert_eq!(h["discount"], 1.0);
    // The scenario's phases come from the sensor.
    assert_eq!(h["from_phase_source"], "sensor", "{out}");
    assert_eq!(h["to_phase_source"], "sensor", "{out}");
    let missing = e["missing"].as_f64().unwrap();
    let total = e["score"]["total"].as_f64().unwrap();
    assert!((missing - (1.5 - total)).abs() < 1e-9, "{out}");

    let (code, text, _) = verb(p, &["explain", broker, buyer]);
    assert_eq!(code, 0);
    assert!(text.contains("no campaign edge"), "{text}");
    assert!(
        text.contains("judged with the daemon's configuration"),
        "{text}"
    );
    assert!(text.contains("hand-off        1.00"), "{text}");
    assert!(text.contains("e^-μ = 1.00"), "{text}");
    assert!(text.contains("(sensor) →"), "{text}");

    assert_eq!(daemon.stop(), 0);
    // No configuration written: explain judges with its own (threshold 1.0,
    // where the hand-off is enough) and says so.
    let _: () = c.del(Keys::new(p).config()).unwrap();
    let (code, out, _) = verb(p, &["explain", broker, buyer, "--json"]);
    assert_eq!(code, 0);
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["config_source"], "local", "{out}");
    assert!(e["judged_with"]
        .as_str()
        .unwrap()
        .contains("no daemon has written"));
    assert_eq!(e["score"]["edge"], true, "{out}");
}

/// SPEC §4: wherever a phase is shown, its source is too. A Cowrie log has
/// no phases; the daemon infers them from the commands, and `explain` (text
/// and JSON) and `inspect --json` say `inferred`.
#[test]
fn explain_and_inspect_show_where_the_phase_came_from() {
    let prefix = Prefix::new("explain-phase-source");
    let p = prefix.0.as_str();
    let log = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/cowrie/lab-small.json"
    );
    let (code, _, err) = verb(p, &["import", "cowrie", log]);
    assert_eq!(code, 0, "{err}");
    let daemon = Daemon::start(p);
    // lab-small.json holds 15 observations.
    eventually("the Cowrie log settles", 60, || settled(p, 15));
    let (ids, _) = predictions(p);
    let mut with_phase = Vec::new();
    for o in ids.keys() {
        let (code, out, err) = verb(p, &["inspect", "observation", o, "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let sessions = v["observation"]["sessions"].clone();
        let sessions: Vec<serde_json::Value> = match sessions {
            serde_json::Value::Object(m) => m.into_iter().map(|(_, s)| s).collect(),
            serde_json::Value::Array(a) => a,
            other => panic!("sessions: {other}"),
        };
        for s in sessions {
            if s["phase"].is_string() {
                assert_eq!(s["phase_source"], "inferred", "{out}");
                with_phase.push(o.clone());
            } else {
                assert!(s["phase_source"].is_null(), "{out}");
            }
        }
    }
    with_phase.dedup();
    assert!(
        with_phase.len() >= 2,
        "two observations with an inferred phase"
    );
    let (a, b) = (with_phase[0].as_str(), with_phase[1].as_str());
    let (code, out, err) = verb(p, &["explain", a, b, "--json"]);
    assert_eq!(code, 0, "{err}");
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    for side in ["a", "b"] {
        let sessions = e["phases"][side].as_array().expect("phases per side");
        assert!(
            sessions.iter().any(|s| s["phase_source"] == "inferred"),
            "{out}"
        );
    }
    let (code, text, _) = verb(p, &["explain", a, b]);
    assert_eq!(code, 0);
    assert!(text.contains("phases of a: "), "{text}");
    assert!(text.contains("(inferred)"), "{text}");
    assert_eq!(daemon.stop(), 0);
}
