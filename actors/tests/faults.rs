//! Faults and restarts: a daemon killed mid-ingest, a Redis that restarts,
//! injected panics and failures of each actor (only that actor restarts,
//! nothing is lost), and a restart budget that runs out (exit 1).
//! Each test that writes uses its own key prefix and deletes its keys at
//! the end.

mod common;

use clusterd::repository::Keys;
use common::*;
use decnet_clusterd::metrics::score;
use decnet_clusterd::scenario::builtin;
use redis::Commands;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[test]
fn kill_9_mid_ingest_loses_nothing_and_forms_nothing_twice() {
    let prefix = Prefix::new("kill9");
    let p = prefix.0.as_str();
    let mut c = conn();
    let keys = Keys::new(p);
    let g = publish(p, "all_with_noise");
    let mut daemon = Daemon::start(p);
    // Let it get part of the way, then kill it without warning.
    eventually("some progress", 30, || {
        c.scard::<_, usize>(keys.attackers()).unwrap_or(0) > 0
    });
    kill9(&mut daemon);
    let daemon = Daemon::start(p);
    let n = g.truth.identity.len();
    eventually("the restarted daemon to settle", 60, || settled(p, n));
    let (ids, camps) = predictions(p);
    assert!(score(&g.truth.identity, &ids).perfect());
    assert!(score(&g.truth.campaign, &camps).perfect());
    // Every identity.formed created exactly one identity row: none twice.
    let formed: redis::streams::StreamRangeReply = c.xrange_all(keys.identity_stream()).unwrap();
    let formed = formed
        .ids
        .iter()
        .filter(|e| e.get::<String>("topic").as_deref() == Some("identity.formed"))
        .count();
    assert_eq!(formed, c.scard::<_, usize>(keys.identities()).unwrap());
    assert_eq!(daemon.stop(), 0);
}

#[test]
fn the_daemon_recovers_when_redis_restarts() {
    let mut redis_server = PrivateRedis::start();
    let url = redis_server.url();
    let prefix = "restart";
    let daemon = Daemon::start_on(prefix, &url);
    let g = builtin("vpn_hopping").unwrap().generate();
    let c = || {
        redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    };
    let keys = Keys::new(prefix);
    let send = |events: &[decnet_clusterd::scenario::GeneratedEvent]| {
        let mut conn = c();
        for e in events {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(keys.input()).arg("*");
            for (k, v) in e.fields() {
                cmd.arg(k).arg(v);
            }
            let _: String = cmd.query(&mut conn).unwrap();
        }
    };
    let half = g.events.len() / 2;
    send(&g.events[..half]);
    eventually("the first half to be acked", 30, || {
        let mut conn = c();
        let stored: usize = conn.scard(keys.attackers()).unwrap_or(0);
        stored > 0 && redis::cmd("XPENDING").arg(keys.input()).arg("clusterd").query::<redis::Value>(&mut conn)
            .is_ok_and(|v| matches!(&v, redis::Value::Array(a) if matches!(a.first(), Some(redis::Value::Int(0)))))
    });
    redis_server.down();
    std::thread::sleep(Duration::from_millis(300));
    redis_server.up();
    send(&g.events[half..]);
    eventually("the daemon to settle after the restart", 60, || {
        let mut conn = c();
        let obs: Vec<String> = conn.smembers(keys.attackers()).unwrap_or_default();
        obs.len() == g.truth.identity.len()
            && obs.iter().all(|o| {
                conn.hget::<_, _, Option<String>>(keys.attacker(o), "identity_id")
                    .ok()
                    .flatten()
                    .is_some_and(|i| !i.is_empty())
            })
    });
    let mut conn = c();
    let mut ids = BTreeMap::new();
    for o in conn.smembers::<_, Vec<String>>(keys.attackers()).unwrap() {
        let i: String = conn.hget(keys.attacker(&o), "identity_id").unwrap();
        ids.insert(o, i);
    }
    assert!(
        score(&g.truth.identity, &ids).perfect(),
        "{:?}",
        score(&g.truth.identity, &ids)
    );
    assert_eq!(daemon.stop(), 0);
}

#[test]
fn a_panicking_clustering_pass_is_restarted_and_ingest_carries_on() {
    let prefix = Prefix::new("faults");
    let p = prefix.0.as_str();
    let daemon = start_with(p, &[("CLUSTERD_FAULTS__CLUSTERING_PANICS", "2")]);
    let g = publish(p, "multi_operator");
    eventually("settled despite two injected panics", 30, || {
        settled(p, g.truth.identity.len())
    });
    let (ids, camps) = predictions(p);
    assert!(score(&g.truth.identity, &ids).perfect());
    assert!(score(&g.truth.campaign, &camps).perfect());
    let health = || -> serde_json::Value {
        let raw: String = conn()
            .get(Keys::new(p).health("clusterd"))
            .unwrap_or_default();
        serde_json::from_str(&raw).unwrap_or_default()
    };
    // The heartbeat is written every 200 ms: wait for one after the work.
    eventually(
        "the heartbeat to report the ingest and both restarts",
        10,
        || {
            let h = health();
            h["ingested"].as_u64() == Some(g.events.len() as u64)
                && h["restarts"] == 2
                && h["state"] == "running"
        },
    );
    // Only the clusterer was restarted.
    assert_eq!(health_of(p, "clusterer")["restarts"], 2);
    assert_eq!(health_of(p, "bus-ingest")["restarts"], 0);
    assert_eq!(daemon.stop(), 0);
}

#[test]
fn an_exhausted_restart_budget_exits_1() {
    let prefix = Prefix::new("budget");
    let p = prefix.0.as_str();
    let mut daemon = start_with(
        p,
        &[
            ("CLUSTERD_FAULTS__CLUSTERING_PANICS", "1000"),
            ("CLUSTERD_SUPERVISION__MAX_RESTARTS", "2"),
        ],
    );
    publish(p, "tool_upgrade");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon kept going past its restart budget"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
}

/// Publishes `scenario` to a daemon running with a fault switch on, waits
/// until it settles, and checks that both layers score perfectly, that
/// `worker` was restarted `restarts` times and runs again, and that no other
/// actor was restarted.
fn settles_with_only_one_actor_restarted(p: &str, scenario: &str, worker: &str, restarts: u64) {
    let g = publish(p, scenario);
    eventually(&format!("settled despite the {worker} faults"), 30, || {
        settled(p, g.truth.identity.len())
    });
    let (ids, camps) = predictions(p);
    assert!(score(&g.truth.identity, &ids).perfect());
    assert!(score(&g.truth.campaign, &camps).perfect());
    eventually(
        &format!("the {worker} heartbeat to show the restarts"),
        5,
        || {
            health_of(p, worker)["restarts"] == restarts
                && health_of(p, worker)["state"] == "running"
        },
    );
    for w in [
        "bus-ingest",
        "clusterer",
        "campaign-clusterer",
        "publisher",
        "control",
    ] {
        if w != worker {
            assert_eq!(health_of(p, w)["restarts"], 0, "{w}: {}", health_of(p, w));
        }
    }
}

#[test]
fn a_failing_ingest_batch_restarts_bus_ingest_alone_and_nothing_is_lost() {
    let prefix = Prefix::new("ingestfault");
    let p = prefix.0.as_str();
    let daemon = start_with(p, &[("CLUSTERD_FAULTS__INGEST_FAILURES", "2")]);
    settles_with_only_one_actor_restarted(p, "vpn_hopping", "bus-ingest", 2);
    assert_eq!(health_of(p, "clusterd")["restarts"], 2);
    assert_eq!(daemon.stop(), 0);
}

#[test]
fn a_failed_commit_restarts_the_publisher_alone_and_the_state_is_reloaded() {
    // Commits are enqueued while the engine is held and awaited after it is
    // released, so one can fail with others of the same state queued behind
    // it: those are refused, the engine is reloaded from Redis, the batches
    // that were not acked are read again, and nothing is lost.
    let prefix = Prefix::new("commitfault");
    let p = prefix.0.as_str();
    let daemon = start_with(
        p,
        &[
            ("CLUSTERD_FAULTS__COMMIT_FAILURES", "2"),
            ("CLUSTERD_INGEST__BATCH", "16"),
            ("CLUSTERD_CLUSTERING__DEBOUNCE_MS", "10"),
        ],
    );
    settles_with_only_one_actor_restarted(p, "vpn_hopping", "publisher", 2);
    // Every entry was acked in the end.
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(Keys::new(p).input())
        .arg("clusterd")
        .query(&mut conn())
        .unwrap();
    let redis::Value::Array(parts) = pending else {
        panic!("XPENDING: {pending:?}");
    };
    assert_eq!(parts.first(), Some(&redis::Value::Int(0)), "{parts:?}");
    assert_eq!(daemon.stop(), 0);
}

#[test]
fn a_panicking_campaign_pass_restarts_only_the_campaign_clusterer() {
    let prefix = Prefix::new("campfault");
    let p = prefix.0.as_str();
    let daemon = start_with(p, &[("CLUSTERD_FAULTS__CAMPAIGN_PANICS", "1")]);
    settles_with_only_one_actor_restarted(p, "handoff_no_infra", "campaign-clusterer", 1);
    assert_eq!(daemon.stop(), 0);
}
