//! The control channel end to end (`clusterd ctl`): status, pause and
//! resume, tick, recluster, operator decisions persisted and applied,
//! restart of one actor, stop.
//! Each test that writes uses its own key prefix and deletes its keys at
//! the end.

mod common;

use clusterd::repository::Keys;
use common::*;
use redis::Commands;
use std::time::{Duration, Instant};

#[test]
fn control_actions_and_operator_decisions() {
    let prefix = Prefix::new("control");
    let p = prefix.0.as_str();
    let daemon = Daemon::start(p);
    let mut c = conn();
    let keys = Keys::new(p);
    eventually("the daemon to lead", 20, || {
        c.get::<_, Option<String>>(keys.leader())
            .ok()
            .flatten()
            .is_some()
    });
    for (o, j) in [
        ("op-a", "rare-1"),
        ("op-b", "rare-1"),
        ("op-c", "other-1"),
        ("op-d", "other-2"),
    ] {
        observe(p, o, j);
    }
    eventually("identities", 20, || {
        identity_of(p, "op-a").is_some()
            && identity_of(p, "op-a") == identity_of(p, "op-b")
            && identity_of(p, "op-d").is_some()
    });

    let (code, out, _) = ctl(p, &["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("leader:") && out.contains("clusterd"), "{out}");
    let (code, out, _) = ctl(p, &["status", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["result"]["workers"]["clusterd"]["state"], "running");
    for w in [
        "bus-ingest",
        "clusterer",
        "campaign-clusterer",
        "publisher",
        "control",
    ] {
        let h = &v["result"]["workers"][w];
        assert_eq!(h["worker"], w, "{v}");
        for field in [
            "instance_id",
            "pid",
            "host",
            "version",
            "ts",
            "uptime_s",
            "state",
            "restarts",
        ] {
            assert!(!h[field].is_null(), "{w} heartbeat lacks {field}");
        }
    }
    assert!(!v["result"]["workers"]["bus-ingest"]["lag"].is_null());
    assert!(!v["result"]["workers"]["clusterer"]["last_tick_ms"].is_null());

    // Checked before sending: usage errors.
    let (code, _, err) = ctl(p, &["explode"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown action"), "{err}");
    let (code, _, err) = ctl(p, &["link", "op-a"]);
    assert_eq!(code, 2);
    assert!(err.contains("takes 2 observations"), "{err}");

    // Separate: persisted with who and when, and applied.
    let (code, _, err) = ctl(p, &["separate", "op-a", "op-b"]);
    assert_eq!(code, 0, "{err}");
    let stored: String = c.hget(keys.decisions(), "op-a|op-b").unwrap();
    let d: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(d["kind"], "separate");
    assert_eq!(d["requested_by"], "test-analyst");
    assert!(d["at"].as_i64().unwrap() > 0);
    eventually("the separation to apply", 20, || {
        identity_of(p, "op-a") != identity_of(p, "op-b")
    });
    // Link two unrelated observations.
    assert_eq!(ctl(p, &["link", "op-c", "op-d"]).0, 0);
    eventually("the link to apply", 20, || {
        identity_of(p, "op-c") == identity_of(p, "op-d")
    });
    // Forget the separation: the evidence joins them again.
    assert_eq!(ctl(p, &["forget", "op-b", "op-a"]).0, 0);
    assert!(c
        .hget::<_, _, Option<String>>(keys.decisions(), "op-a|op-b")
        .unwrap()
        .is_none());
    eventually("the forget to apply", 20, || {
        identity_of(p, "op-a") == identity_of(p, "op-b")
    });
    assert_eq!(
        ctl(p, &["forget", "op-a", "op-b"]).0,
        1,
        "nothing left to forget"
    );

    assert_eq!(ctl(p, &["pause"]).0, 0);
    let (_, out, _) = ctl(p, &["status", "--json"]);
    assert!(out.contains("\"paused\""), "{out}");
    assert_eq!(ctl(p, &["resume"]).0, 0);
    assert_eq!(ctl(p, &["tick"]).0, 0);
    assert_eq!(ctl(p, &["recluster"]).0, 0);
    assert_eq!(
        identity_of(p, "op-c"),
        identity_of(p, "op-d"),
        "decisions survive a recluster"
    );

    // stop: a reply, then a clean exit.
    assert_eq!(ctl(p, &["stop"]).0, 0);
    let mut daemon = daemon;
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    // No daemon: ctl says so and exits non-zero.
    let (code, _, err) = ctl(p, &["status", "--timeout", "1"]);
    assert_eq!(code, 1);
    assert!(err.contains("no daemon is listening"), "{err}");
}

#[test]
fn restart_through_control_restarts_one_actor_and_pause_targets_one() {
    let prefix = Prefix::new("ctlrestart");
    let p = prefix.0.as_str();
    let daemon = start_with(p, &[]);
    eventually("the bus-ingest heartbeat", 20, || {
        health_of(p, "bus-ingest")["state"] == "running"
    });
    let (code, out, err) = ctl(p, &["restart", "--target", "bus-ingest", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("bus-ingest"), "{out}");
    eventually("bus-ingest to count the restart", 10, || {
        health_of(p, "bus-ingest")["restarts"] == 1
            && health_of(p, "bus-ingest")["state"] == "running"
    });
    assert_eq!(health_of(p, "clusterer")["restarts"], 0);
    // Pausing one worker leaves the others running.
    assert_eq!(ctl(p, &["pause", "--target", "clusterer"]).0, 0);
    eventually("the clusterer to report paused", 10, || {
        health_of(p, "clusterer")["state"] == "paused"
    });
    assert_eq!(health_of(p, "bus-ingest")["state"], "running");
    // A restart does not lift an operator's pause.
    assert_eq!(ctl(p, &["restart", "--target", "clusterer"]).0, 0);
    eventually("the restarted clusterer to stay paused", 10, || {
        health_of(p, "clusterer")["restarts"] == 1 && health_of(p, "clusterer")["state"] == "paused"
    });
    let (code, _, err) = ctl(p, &["pause", "--target", "publisher"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot be paused"), "{err}");
    assert_eq!(ctl(p, &["resume", "--target", "clusterer"]).0, 0);
    // Ingest still works after the restart.
    let g = publish(p, "multi_operator");
    eventually("settled after the restart", 30, || {
        settled(p, g.truth.identity.len())
    });
    assert_eq!(daemon.stop(), 0);
}
