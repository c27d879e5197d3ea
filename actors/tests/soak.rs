//! Soaks: a backlog ingested through five kill -9 at random points (after
//! the last restart every entry is acked once, nothing is dead-lettered,
//! no identity is formed twice and the clustering is perfect), and a
//! private redis-server stopped mid-ingest and started again on the same
//! data directory (the same daemon process recovers; nothing acked is lost).
//! Each test uses its own key prefix (and the restart its own server).

mod common;

use clusterd::repository::Keys;
use common::*;
use decnet_clusterd::metrics::score;
use decnet_clusterd::scenario::builtin;
use redis::Commands;
use std::collections::BTreeMap;
use std::time::Duration;

/// A random number below `n` (the uuid generator is the randomness).
fn below(n: u64) -> u64 {
    (uuid::Uuid::new_v4().as_u128() % u128::from(n)) as u64
}

fn formed_events(c: &mut redis::Connection, keys: &Keys) -> usize {
    let all: redis::streams::StreamRangeReply = c.xrange_all(keys.identity_stream()).unwrap();
    all.ids
        .iter()
        .filter(|e| e.get::<String>("topic").as_deref() == Some("identity.formed"))
        .count()
}

#[test]
fn five_kill_9_at_random_points_lose_nothing() {
    let prefix = Prefix::new("soak");
    let p = prefix.0.as_str();
    let keys = Keys::new(p);
    let mut c = conn();
    let g = publish(p, "all_with_noise");
    let n = g.truth.identity.len();
    let mut daemon = Daemon::start(p);
    for kill in 0..5 {
        // A random point: some way into what is left of the backlog.
        let stored: usize = c.scard(keys.attackers()).unwrap_or(0);
        let goal = stored + 1 + below((n - stored.min(n)) as u64 / 3 + 1) as usize;
        eventually(&format!("progress before kill {kill}"), 60, || {
            c.scard::<_, usize>(keys.attackers()).unwrap_or(0) >= goal.min(n)
        });
        kill9(&mut daemon);
        daemon = Daemon::start(p);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !settled(p, n) {
        let (ids, camps) = predictions(p);
        assert!(
            std::time::Instant::now() < deadline,
            "not settled: pending {}, clusterer {}, campaign-clusterer {}, {} of {n} with identities, {} with campaigns",
            pending(p),
            health_of(p, "clusterer"),
            health_of(p, "campaign-clusterer"),
            ids.len(),
            camps.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ids, camps) = predictions(p);
    assert!(score(&g.truth.identity, &ids).perfect());
    assert!(score(&g.truth.campaign, &camps).perfect());
    assert_eq!(pending(p), 0, "every entry acked");
    let dead: usize = c.xlen(keys.deadletter()).unwrap_or(0);
    assert_eq!(dead, 0, "a good corpus dead-letters nothing");
    let identities: usize = c.scard(keys.identities()).unwrap();
    assert_eq!(
        formed_events(&mut c, &keys),
        identities,
        "no identity formed twice"
    );
    assert_eq!(daemon.stop(), 0);
}

#[test]
fn a_redis_restart_mid_ingest_is_survived_by_the_same_process() {
    let mut server = PrivateRedis::start();
    let url = server.url();
    let p = "soak-restart";
    let keys = Keys::new(p);
    let c = || {
        redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    };
    let g = builtin("all_with_noise").unwrap().generate();
    let mut conn = c();
    for e in &g.events {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(keys.input()).arg("*");
        for (k, v) in e.fields() {
            cmd.arg(k).arg(v);
        }
        let _: String = cmd.query(&mut conn).unwrap();
    }
    let n = g.truth.identity.len();
    let mut daemon = Daemon::start_on(p, &url);
    eventually("ingest under way", 60, || {
        c().scard::<_, usize>(keys.attackers()).unwrap_or(0) > 0
    });
    server.down();
    std::thread::sleep(Duration::from_millis(500));
    server.up();
    eventually("the same daemon to settle after the restart", 120, || {
        let mut conn = c();
        let obs: Vec<String> = conn.smembers(keys.attackers()).unwrap_or_default();
        let pending: redis::Value = redis::cmd("XPENDING")
            .arg(keys.input())
            .arg("clusterd")
            .query(&mut conn)
            .unwrap_or(redis::Value::Nil);
        obs.len() == n
            && matches!(&pending, redis::Value::Array(v) if matches!(v.first(), Some(redis::Value::Int(0))))
            && obs.iter().all(|o| {
                conn.hget::<_, _, Option<String>>(keys.attacker(o), "identity_id")
                    .ok()
                    .flatten()
                    .is_some_and(|i| !i.is_empty())
            })
    });
    assert!(
        daemon.0.try_wait().unwrap().is_none(),
        "the process survived"
    );
    let mut conn = c();
    let mut ids = BTreeMap::new();
    for o in conn.smembers::<_, Vec<String>>(keys.attackers()).unwrap() {
        let direct: String = conn.hget(keys.attacker(&o), "identity_id").unwrap();
        let effective = follow(&mut conn, keys.identity(&direct)).unwrap();
        ids.insert(o, effective);
    }
    let s = score(&g.truth.identity, &ids);
    assert!(s.perfect(), "{s:?}");
    let dead: usize = conn.xlen(keys.deadletter()).unwrap_or(0);
    assert_eq!(dead, 0);
    assert_eq!(daemon.stop(), 0);
}
