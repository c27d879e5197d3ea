//! Hostile control commands against a running daemon: wrong JSON types in
//! every envelope field run nothing, over-long request ids are refused
//! whole, decisions about observations that do not exist are refused, and
//! a pause answers only once ingest has stopped.
//! Each test uses its own key prefix and deletes its keys at the end.

mod common;

use clusterd::repository::control::request;
use clusterd::repository::control::Answer;
use clusterd::repository::Keys;
use common::*;
use redis::Commands;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Sends `cmd` (whose request id is `id`) and returns its reply.
fn send(p: &str, cmd: &Value, id: &str) -> Option<Value> {
    let client = redis::Client::open(URL).unwrap();
    let answer = block_on(request(
        &client,
        &Keys::new(p),
        cmd,
        id,
        Duration::from_secs(10),
    ))
    .unwrap();
    match answer {
        Answer::Reply(v) => Some(v),
        Answer::NoListener | Answer::NoReply => None,
    }
}

/// Publishes raw text on the control channel (no reply expected).
fn publish_raw(p: &str, raw: &str) {
    let n: i64 = conn().publish(Keys::new(p).control(), raw).unwrap();
    assert_eq!(n, 1, "the daemon must be listening");
}

fn lead(p: &str) {
    let keys = Keys::new(p);
    eventually("the daemon to lead and listen", 20, || {
        conn()
            .get::<_, Option<String>>(keys.leader())
            .ok()
            .flatten()
            .is_some()
            && health_of(p, "control")["state"] == "running"
    });
}

#[test]
fn wrong_types_run_nothing_and_bad_decisions_are_refused() {
    let prefix = Prefix::new("ctlhostile");
    let p = prefix.0.as_str();
    let mut daemon = Daemon::start(p);
    lead(p);
    // No usable request id: dropped, never run (this would pause and stop).
    publish_raw(p, r#"{"action":"pause","request_id":42}"#);
    publish_raw(p, r#"{"action":"stop","request_id":["x"]}"#);
    for target in [
        json!(5),
        json!(["all"]),
        json!({}),
        json!(null),
        json!(true),
    ] {
        for action in ["stop", "pause", "status"] {
            let id = format!("t-{action}-{target}");
            let r = send(
                p,
                &json!({"action": action, "target": target, "request_id": id}),
                &id,
            )
            .expect("a reply to a command with a usable id");
            assert_eq!(r["ok"], false, "{r}");
            assert!(
                r["error"]
                    .as_str()
                    .unwrap()
                    .contains("`target` must be a string"),
                "{r}"
            );
        }
    }
    let long = "x".repeat(129);
    let r = send(p, &json!({"action": "pause", "request_id": long}), &long).unwrap();
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["error"].as_str().unwrap().contains("longer than 128"));
    // Commands run in arrival order: this reply follows all of the above.
    let r = send(p, &json!({"action": "status", "request_id": "s"}), "s").unwrap();
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        r["result"]["workers"]["bus-ingest"]["state"], "running",
        "{r}"
    );
    assert_eq!(
        r["result"]["workers"]["clusterer"]["state"], "running",
        "{r}"
    );
    assert!(
        daemon.0.try_wait().unwrap().is_none(),
        "no command stopped it"
    );

    observe(p, "real-1", "ja3-q");
    eventually("real-1 stored", 20, || identity_of(p, "real-1").is_some());
    for action in ["link", "separate"] {
        for pair in [["real-1", "ghost-9"], ["ghost-8", "ghost-9"]] {
            let id = format!("{action}-{}", pair[1]);
            let cmd = json!({"action": action, "observation_uuids": pair, "request_id": id});
            let r = send(p, &cmd, &id).unwrap();
            assert_eq!(r["ok"], false, "{r}");
            assert!(
                r["error"].as_str().unwrap().contains("no such observation"),
                "{r}"
            );
        }
        let id = format!("{action}-self");
        let cmd =
            json!({"action": action, "observation_uuids": ["real-1", "real-1"], "request_id": id});
        let r = send(p, &cmd, &id).unwrap();
        assert_eq!(r["ok"], false, "{r}");
    }
    let stored: usize = conn().hlen(Keys::new(p).decisions()).unwrap();
    assert_eq!(stored, 0, "no refused decision was stored");
    let (code, _, err) = verb(p, &["explain", "real-1", "real-1"]);
    assert_eq!(code, 2);
    assert!(err.contains("same observation"), "{err}");
    assert_eq!(daemon.stop(), 0);
}

#[test]
fn nothing_is_consumed_after_pause_answers() {
    let prefix = Prefix::new("pausewait");
    let p = prefix.0.as_str();
    // A long blocking read: the pause lands while one is in hand.
    let daemon = start_with(p, &[("CLUSTERD_INGEST__BLOCK_MS", "1500")]);
    lead(p);
    observe(p, "before-1", "ja3-p");
    eventually("before-1 stored", 20, || {
        identity_of(p, "before-1").is_some()
    });
    let r = send(p, &json!({"action": "pause", "request_id": "p"}), "p").unwrap();
    assert_eq!(r["ok"], true, "{r}");
    observe(p, "after-1", "ja3-p");
    let keys = Keys::new(p);
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        let stored: bool = conn().sismember(keys.attackers(), "after-1").unwrap();
        assert!(!stored, "an entry sent after the pause reply was merged");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Unread, or read and left unacked: never acked while paused.
    let lag = send(p, &json!({"action": "status", "request_id": "s"}), "s").unwrap();
    let q = &lag["result"]["queues"];
    assert!(
        q["pending"].as_i64().unwrap_or(0) + q["lag"].as_i64().unwrap_or(0) >= 1,
        "{lag}"
    );
    let r = send(p, &json!({"action": "resume", "request_id": "r"}), "r").unwrap();
    assert_eq!(r["ok"], true, "{r}");
    eventually("after-1 ingested after resume", 20, || {
        identity_of(p, "after-1").is_some() && pending(p) == 0
    });
    assert_eq!(daemon.stop(), 0);
}
