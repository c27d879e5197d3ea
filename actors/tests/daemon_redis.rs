//! The daemon against the real Redis at 127.0.0.1:6379: scenarios published
//! as shuffled, split, duplicated events settle to perfect identity and
//! campaign scores read back from the hashes; a restart publishes and
//! renames nothing; poison entries are dead-lettered with a reason while
//! good entries flow; a stale leader's commit is refused; SIGTERM exits 0;
//! bad configuration exits 2 naming the key. Each test uses its own key
//! prefix and deletes its keys at the end.

use clusterd::repository::Keys;
use clusterd::repository::Op;
use clusterd::repository::{CommitError, Lease, Prepared};
use decnet_clusterd::metrics::score;
use decnet_clusterd::scenario::builtin;
use redis::Commands;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const URL: &str = "redis://127.0.0.1:6379";

/// A key prefix of its own, deleted (all `{prefix}:*` keys) on drop.
struct Prefix(String);

impl Prefix {
    fn new(tag: &str) -> Prefix {
        Prefix(format!("test-{tag}-{}", uuid::Uuid::new_v4().simple()))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        if let Ok(mut c) = redis::Client::open(URL).and_then(|c| c.get_connection()) {
            let keys: Vec<String> = c
                .scan_match::<_, String>(format!("{}:*", self.0))
                .map(|i| i.filter_map(Result::ok).collect())
                .unwrap_or_default();
            for k in keys {
                let _: Result<(), _> = c.del(k);
            }
        }
    }
}

fn conn() -> redis::Connection {
    redis::Client::open(URL)
        .and_then(|c| c.get_connection())
        .expect("Redis must answer on 127.0.0.1:6379")
}

struct Daemon(Child);

impl Daemon {
    fn start(prefix: &str) -> Daemon {
        Daemon::start_on(prefix, URL)
    }

    fn start_on(prefix: &str, url: &str) -> Daemon {
        let child = Command::new(env!("CARGO_BIN_EXE_clusterd"))
            .arg("run")
            .env("REDIS_URL", url)
            .env("CLUSTERD_KEY_PREFIX", prefix)
            .env("CLUSTERD_LEASE__PERIOD_MS", "2000")
            .env("CLUSTERD_HEARTBEAT__INTERVAL_MS", "500")
            .env("CLUSTERD_INGEST__BLOCK_MS", "200")
            .env("CLUSTERD_INGEST__CLAIM_IDLE_MS", "1000")
            .env("CLUSTERD_LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn clusterd");
        Daemon(child)
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> i32 {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(s)) = self.0.try_wait() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "clusterd did not stop within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `cond` until it holds or the deadline passes.
fn eventually(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn publish(prefix: &str, name: &str) -> decnet_clusterd::scenario::Generated {
    let g = builtin(name).unwrap().generate();
    let mut c = conn();
    let keys = Keys::new(prefix);
    for e in &g.events {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(keys.input()).arg("*");
        for (k, v) in e.fields() {
            cmd.arg(k).arg(v);
        }
        let _: String = cmd.query(&mut c).unwrap();
    }
    g
}

fn follow(c: &mut redis::Connection, key: String) -> Option<String> {
    let mut id: String = c.hget(&key, "uuid").ok()?;
    let base = key.rsplit_once(':')?.0.to_string();
    for _ in 0..64 {
        let next: Option<String> = c
            .hget(format!("{base}:{id}"), "merged_into_uuid")
            .ok()
            .filter(|s: &String| !s.is_empty());
        match next {
            Some(n) => id = n,
            None => return Some(id),
        }
    }
    None
}

/// Effective identity and campaign of every observation, from the hashes.
fn predictions(prefix: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut c = conn();
    let keys = Keys::new(prefix);
    let obs: Vec<String> = c.smembers(keys.attackers()).unwrap();
    let (mut ids, mut camps) = (BTreeMap::new(), BTreeMap::new());
    for o in obs {
        let direct: Option<String> = c.hget(keys.attacker(&o), "identity_id").ok();
        let Some(direct) = direct.filter(|d| !d.is_empty()) else {
            continue;
        };
        let Some(identity) = follow(&mut c, keys.identity(&direct)) else {
            continue;
        };
        let campaign: Option<String> = c.hget(keys.identity(&identity), "campaign_id").ok();
        if let Some(camp) = campaign
            .filter(|c| !c.is_empty())
            .and_then(|cid| follow(&mut c, keys.campaign(&cid)))
        {
            camps.insert(o.clone(), camp);
        }
        ids.insert(o, identity);
    }
    (ids, camps)
}

fn settled(prefix: &str, observations: usize) -> bool {
    let mut c = conn();
    let keys = Keys::new(prefix);
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(keys.input())
        .arg("clusterd")
        .query(&mut c)
        .unwrap_or(redis::Value::Nil);
    let none_pending = matches!(&pending, redis::Value::Array(v) if matches!(v.first(), Some(redis::Value::Int(0))));
    let health: Option<String> = c.get(keys.health("clusterd")).ok();
    let clean = health
        .and_then(|h| serde_json::from_str::<serde_json::Value>(&h).ok())
        .is_some_and(|h| h["dirty"] == 0);
    let (ids, camps) = predictions(prefix);
    none_pending && clean && ids.len() == observations && camps.len() == observations
}

#[test]
fn scenarios_settle_perfectly_and_restarts_publish_nothing() {
    for name in [
        "multi_operator",
        "partial_evidence",
        "common_library",
        "busy_fleet",
    ] {
        let prefix = Prefix::new(name);
        let daemon = Daemon::start(&prefix.0);
        let g = publish(&prefix.0, name);
        let n = g.truth.identity.len();
        eventually(&format!("{name} to settle"), 60, || settled(&prefix.0, n));
        let (ids, camps) = predictions(&prefix.0);
        assert!(
            score(&g.truth.identity, &ids).perfect(),
            "{name} identity {:?}",
            score(&g.truth.identity, &ids)
        );
        assert!(
            score(&g.truth.campaign, &camps).perfect(),
            "{name} campaign {:?}",
            score(&g.truth.campaign, &camps)
        );
        assert_eq!(daemon.stop(), 0, "{name}: SIGTERM must exit 0");

        // Restart over the stored state: nothing renamed, nothing published.
        let mut c = conn();
        let keys = Keys::new(&prefix.0);
        let before: (usize, usize) = (
            c.xlen(keys.identity_stream()).unwrap(),
            c.xlen(keys.campaign_stream()).unwrap(),
        );
        let daemon = Daemon::start(&prefix.0);
        eventually("the restarted daemon to take the lease", 20, || {
            let h: Option<String> = c.get(keys.health("clusterd")).ok();
            h.is_some_and(|h| h.contains("\"running\"") && h.contains("\"ticks\":1"))
        });
        let after: (usize, usize) = (
            c.xlen(keys.identity_stream()).unwrap(),
            c.xlen(keys.campaign_stream()).unwrap(),
        );
        assert_eq!(before, after, "{name}: a restart published events");
        assert_eq!(
            predictions(&prefix.0),
            (ids, camps),
            "{name}: a restart renamed something"
        );
        assert_eq!(daemon.stop(), 0);
    }
}

#[test]
fn poison_entries_are_dead_lettered_while_good_ones_flow() {
    let prefix = Prefix::new("poison");
    let keys = Keys::new(&prefix.0);
    let daemon = Daemon::start(&prefix.0);
    let mut c = conn();
    // Thousands of tiny fields: more than one call of the commit script
    // takes, were they all copied into the dead letter.
    let names: Vec<String> = (0..6000).map(|i| format!("f{i}")).collect();
    let mut many: Vec<(&str, Vec<u8>)> = vec![
        ("topic", b"attacker.observed".to_vec()),
        ("payload", b"not json".to_vec()),
    ];
    many.extend(names.iter().map(|n| (n.as_str(), Vec::new())));
    let poison: Vec<Vec<(&str, Vec<u8>)>> = vec![
        many,
        vec![
            ("topic", b"attacker.observed".to_vec()),
            ("payload", b"not json".to_vec()),
        ],
        vec![
            ("topic", b"attacker.observed".to_vec()),
            ("payload", br#"{"ip":"1.2.3.4"}"#.to_vec()),
        ],
        vec![
            ("topic", b"attacker.observed".to_vec()),
            (
                "payload",
                br#"{"uuid":"a","sessions":[{"session_id":"s","phase":"hax"}]}"#.to_vec(),
            ),
        ],
        vec![("topic", vec![0xff, 0xfe]), ("payload", b"{}".to_vec())],
        vec![
            ("topic", b"attacker.observed".to_vec()),
            (
                "payload",
                format!(r#"{{"uuid":"big","x":"{}"}}"#, "x".repeat(70_000)).into_bytes(),
            ),
        ],
        vec![
            ("topic", b"attacker.observed".to_vec()),
            ("payload", br#"{"uuid":"a b\n{}"}"#.to_vec()),
        ],
    ];
    for fields in &poison {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(keys.input()).arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(v.as_slice());
        }
        let _: String = cmd.query(&mut c).unwrap();
    }
    let _: String = redis::cmd("XADD")
        .arg(keys.input())
        .arg("*")
        .arg("topic")
        .arg("attacker.rumoured")
        .arg("payload")
        .arg("{}")
        .query(&mut c)
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(keys.input())
        .arg("*")
        .arg("topic")
        .arg("attacker.observed")
        .arg("payload")
        .arg(r#"{"uuid":"good-1","ip":"198.51.100.1"}"#)
        .query(&mut c)
        .unwrap();
    // Field names are attacker bytes too: one that is not UTF-8 must not
    // stall the reads (an extra one is ignored; without a topic the entry
    // is dead-lettered).
    let _: String = redis::cmd("XADD")
        .arg(keys.input())
        .arg("*")
        .arg(&[0xffu8, 0x00, 0xc3][..])
        .arg("x")
        .query(&mut c)
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(keys.input())
        .arg("*")
        .arg("topic")
        .arg("attacker.observed")
        .arg(&[0xfeu8][..])
        .arg("extra")
        .arg("payload")
        .arg(r#"{"uuid":"good-2","ip":"198.51.100.2"}"#)
        .query(&mut c)
        .unwrap();
    eventually("the good entries to be stored", 30, || {
        c.sismember(keys.attackers(), "good-1").unwrap_or(false)
            && c.sismember(keys.attackers(), "good-2").unwrap_or(false)
    });
    eventually("every poison entry to be dead-lettered", 30, || {
        c.xlen::<_, usize>(keys.deadletter()).unwrap_or(0) == poison.len() + 1
    });
    let entries: redis::streams::StreamRangeReply = c.xrange_all(keys.deadletter()).unwrap();
    for e in &entries.ids {
        let reason: String = e.get("reason").expect("a reason");
        assert!(!reason.is_empty());
    }
    let dropped: Vec<String> = entries
        .ids
        .iter()
        .filter_map(|e| e.get("orig_fields_dropped"))
        .collect();
    assert_eq!(
        dropped,
        vec!["5002".to_string()],
        "6,002 fields, 1,000 kept"
    );
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(keys.input())
        .arg("clusterd")
        .query(&mut c)
        .unwrap();
    assert!(
        matches!(&pending, redis::Value::Array(v) if matches!(v.first(), Some(redis::Value::Int(0)))),
        "all acked: {pending:?}"
    );
    assert_eq!(daemon.stop(), 0);
}

/// Runs a future on a fresh single-threaded runtime.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn async_conn() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(URL).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

fn lease(keys: &Keys, instance: &str, period_ms: u64) -> Lease {
    Lease {
        key: keys.leader(),
        instance: instance.into(),
        period_ms,
    }
}

/// A commit of one operation: `member` added to the observation index.
fn add_member(keys: &Keys, member: &str) -> Vec<Op> {
    vec![Op {
        cmd: "SADD",
        args: vec![keys.attackers(), member.to_string()],
    }]
}

/// The observation index, sorted.
async fn index_members(conn: &mut redis::aio::MultiplexedConnection, keys: &Keys) -> Vec<String> {
    let mut m: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.attackers())
        .query_async(conn)
        .await
        .unwrap();
    m.sort();
    m
}

#[test]
fn a_stale_leaders_commit_is_refused() {
    let prefix = Prefix::new("fence");
    let keys = Keys::new(&prefix.0);
    block_on(async {
        let mut conn = async_conn().await;
        let old = lease(&keys, "old", 300);
        let new = lease(&keys, "new", 5_000);
        assert!(old.acquire(&mut conn).await.unwrap());
        assert!(
            !new.acquire(&mut conn).await.unwrap(),
            "a held lease cannot be taken"
        );
        let op = |v: &str| add_member(&keys, v);
        assert_eq!(old.commit(&mut conn, &op("by-old")).await.unwrap(), 1);
        tokio::time::sleep(std::time::Duration::from_millis(400)).await; // old leader pauses
        assert!(
            new.acquire(&mut conn).await.unwrap(),
            "the lease expired: a standby takes over"
        );
        assert!(matches!(
            old.commit(&mut conn, &op("late")).await,
            Err(CommitError::Fenced)
        ));
        assert!(!old.renew(&mut conn).await.unwrap());
        new.commit(&mut conn, &op("by-new")).await.unwrap();
        assert_eq!(index_members(&mut conn, &keys).await, ["by-new", "by-old"]);
    });
}

#[test]
fn the_fence_refuses_a_takeover_between_the_lease_check_and_the_transaction_not_a_renewal() {
    let prefix = Prefix::new("fence-race");
    let keys = Keys::new(&prefix.0);
    block_on(async {
        let mut conn = async_conn().await;
        let mut other = async_conn().await;
        let old = lease(&keys, "old", 300);
        let new = lease(&keys, "new", 5_000);
        assert!(old.acquire(&mut conn).await.unwrap());
        // The holder renews its lease while one of its commits is in flight.
        let n = old
            .commit_checked(
                &mut conn,
                &Prepared::new(&add_member(&keys, "kept"), &[]),
                || async {
                    assert!(old.renew(&mut other).await.unwrap());
                },
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
        // The old leader checked the lease, then paused before its
        // transaction reached Redis; a standby took over meanwhile.
        let late = add_member(&keys, "late");
        let r = old
            .commit_checked(&mut conn, &Prepared::new(&late, &[]), || async {
                tokio::time::sleep(std::time::Duration::from_millis(400)).await;
                assert!(new.acquire(&mut other).await.unwrap());
            })
            .await;
        assert!(matches!(r, Err(CommitError::Fenced)), "{r:?}");
        assert_eq!(
            index_members(&mut conn, &keys).await,
            ["kept"],
            "nothing of the refused commit landed"
        );
        // The connection is usable afterwards, and the new leader commits.
        new.commit(&mut conn, &late).await.unwrap();
        assert_eq!(index_members(&mut conn, &keys).await, ["kept", "late"]);
    });
}

#[test]
fn a_commit_with_thousands_of_arguments_per_operation_lands_whole() {
    // A pass over a large backlog adds tens of thousands of members to an
    // index set in one commit (an earlier commit script failed on these:
    // Redis's Lua unpacks only about 8,000 values at once).
    let prefix = Prefix::new("bigcommit");
    let keys = Keys::new(&prefix.0);
    block_on(async {
        let mut conn = async_conn().await;
        let lease = lease(&keys, "big", 5_000);
        assert!(lease.acquire(&mut conn).await.unwrap());
        let mut sadd = vec![keys.attackers()];
        sadd.extend((0..20_000).map(|i| format!("m{i}")));
        let mut hset = vec![keys.attacker("wide")];
        hset.extend((0..3_000).flat_map(|i| [format!("f{i}"), i.to_string()]));
        let ops = vec![
            Op {
                cmd: "SADD",
                args: sadd,
            },
            Op {
                cmd: "HSET",
                args: hset,
            },
        ];
        lease.commit(&mut conn, &ops).await.unwrap();
        let members: usize = redis::cmd("SCARD")
            .arg(keys.attackers())
            .query_async(&mut conn)
            .await
            .unwrap();
        let fields: usize = redis::cmd("HLEN")
            .arg(keys.attacker("wide"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!((members, fields), (20_000, 3_000));
    });
}

#[test]
fn bad_configuration_exits_2_naming_the_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .arg("run")
        .env("CLUSTERD_INGEST__BATCH", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingest.batch"));
    let out = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .arg("run")
        .env("DECNET_CLUSTERER_TYPE", "louvain")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("connected_components"));
}

fn ctl(prefix: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .arg("ctl")
        .args(args)
        .arg("--by")
        .arg("test-analyst")
        .env("REDIS_URL", URL)
        .env("CLUSTERD_KEY_PREFIX", prefix)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn observe(prefix: &str, uuid: &str, ja3: &str) {
    let mut c = conn();
    let payload =
        format!(r#"{{"uuid":"{uuid}","fingerprints":[{{"kind":"ja3","value":"{ja3}"}}]}}"#);
    let _: String = redis::cmd("XADD")
        .arg(Keys::new(prefix).input())
        .arg("*")
        .arg("topic")
        .arg("attacker.observed")
        .arg("payload")
        .arg(payload)
        .query(&mut c)
        .unwrap();
}

fn identity_of(prefix: &str, obs: &str) -> Option<String> {
    predictions(prefix).0.get(obs).cloned()
}

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

    let (code, _, err) = ctl(p, &["explode"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown action"), "{err}");
    let (code, _, err) = ctl(p, &["link", "op-a"]);
    assert_eq!(code, 1);
    assert!(err.contains("exactly two"), "{err}");

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
    assert!(err.contains("no reply"), "{err}");
}

fn kill9(d: &mut Daemon) {
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(d.0.id().to_string())
        .status();
    let _ = d.0.wait();
}

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
fn a_standby_takes_over_when_the_leader_dies() {
    let prefix = Prefix::new("failover");
    let p = prefix.0.as_str();
    let mut c = conn();
    let keys = Keys::new(p);
    let mut first = Daemon::start(p);
    eventually("a leader", 20, || {
        c.get::<_, Option<String>>(keys.leader())
            .ok()
            .flatten()
            .is_some()
    });
    let leader: String = c.get(keys.leader()).unwrap();
    let second = Daemon::start(p);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        c.get::<_, String>(keys.leader()).unwrap(),
        leader,
        "one leader at a time"
    );
    let health: String = c.get(keys.health("clusterd")).unwrap();
    assert!(health.contains(&leader), "the leader writes the heartbeat");
    kill9(&mut first);
    // The lease period is 2 s in these tests: the standby must lead within it (plus polling slack).
    eventually("the standby to take over", 6, || {
        c.get::<_, Option<String>>(keys.leader())
            .ok()
            .flatten()
            .is_some_and(|l| l != leader)
    });
    let g = publish(p, "tool_upgrade");
    eventually("the new leader to cluster", 30, || {
        settled(p, g.truth.identity.len())
    });
    assert!(score(&g.truth.identity, &predictions(p).0).perfect());
    assert_eq!(second.stop(), 0);
}

/// A private redis-server with an append-only file, on a free port.
struct PrivateRedis {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("clusterd-redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = PrivateRedis {
            port,
            dir,
            child: None,
        };
        r.up();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn up(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH");
        self.child = Some(child);
        let url = self.url();
        eventually("the private redis to answer", 10, || {
            redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok()
        });
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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

fn verb(prefix: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .args(args)
        .env("REDIS_URL", URL)
        .env("CLUSTERD_KEY_PREFIX", prefix)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn inspect_explain_and_export_read_the_repository_and_escape_attacker_strings() {
    let prefix = Prefix::new("verbs");
    let p = prefix.0.as_str();
    let daemon = Daemon::start(p);
    let g = publish(p, "multi_operator");
    eventually("settled", 30, || settled(p, g.truth.identity.len()));
    // Hostile strings in every free-text field an attacker controls.
    let hostile = r#"evil\" -> \"x\"; } digraph { \n\u0007\u001b[31m"#;
    for uuid in ["hostile-1", "hostile-2"] {
        let payload = format!(
            r#"{{"uuid":"{uuid}","fingerprints":[{{"kind":"ja3","value":"{hostile}"}}],"sessions":[{{"session_id":"s","decky_id":"{hostile}","phase":"persistence","commands":["{hostile}"],"c2_callback":"{hostile}","payload_hash":"{hostile}"}}]}}"#
        );
        let mut c = conn();
        let _: String = redis::cmd("XADD")
            .arg(Keys::new(p).input())
            .arg("*")
            .arg("topic")
            .arg("attacker.observed")
            .arg("payload")
            .arg(payload)
            .query(&mut c)
            .unwrap();
    }
    eventually("the hostile observations to cluster", 30, || {
        let ids = predictions(p).0;
        ids.contains_key("hostile-1") && ids.get("hostile-1") == ids.get("hostile-2")
    });
    daemon.stop();

    let (ids, camps) = predictions(p);
    let some_obs = g.truth.identity.keys().next().unwrap();
    let (code, out, err) = verb(p, &["inspect", "observation", some_obs]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(some_obs.as_str()));
    let identity = &ids[some_obs];
    let (code, out, _) = verb(p, &["inspect", "identity", identity, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["effective_identity"], identity.as_str());
    assert!(!v["members"].as_array().unwrap().is_empty());
    let history: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["topic"].as_str())
        .collect();
    assert!(history.contains(&"identity.formed"), "{history:?}");
    let (code, out, _) = verb(p, &["inspect", "campaign", &camps[some_obs]]);
    assert_eq!(code, 0);
    assert!(out.contains("campaign"));
    let (code, _, err) = verb(p, &["inspect", "identity", "no-such-identity"]);
    assert_eq!(code, 2);
    assert!(err.contains("no identity"));

    let (code, out, _) = verb(p, &["explain", "hostile-1", "hostile-2", "--json"]);
    assert_eq!(code, 0);
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["edge"], true);
    let (code, out, _) = verb(p, &["explain", "hostile-1", "hostile-2"]);
    assert_eq!(code, 0);
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{7}'),
        "control characters reached the terminal"
    );

    let (code, dot, _) = verb(p, &["export", "--format", "dot"]);
    assert_eq!(code, 0);
    assert!(dot.starts_with("digraph clusterd {") && dot.trim_end().ends_with('}'));
    assert!(!dot.contains('\u{1b}') && !dot.contains('\u{7}'));
    for line in dot.lines() {
        // Every quote inside a line is either a delimiter or escaped: count the unescaped ones.
        let unescaped = line
            .replace("\\\\", "")
            .replace("\\\"", "")
            .matches('"')
            .count();
        assert_eq!(unescaped % 2, 0, "unbalanced quotes in DOT line: {line}");
    }
    assert!(
        !dot.contains("digraph { \n"),
        "an attacker string broke out of its label"
    );
    // Where Graphviz is installed, the DOT must render.
    if Command::new("dot")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        use std::io::Write;
        let mut child = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(dot.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "Graphviz rejected the DOT: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (code, json, _) = verb(p, &["export", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(!v["campaigns"].as_array().unwrap().is_empty());
}

#[test]
fn the_demo_runs_end_to_end_and_cleans_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .arg("demo")
        .env("REDIS_URL", URL)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("691 observations → 648 identities → 647 campaigns"),
        "{stdout}"
    );
    assert!(
        stdout.contains("identity level   1.000        1.000         1.000             1.000"),
        "{stdout}"
    );
    assert!(
        stdout.contains("campaign level   1.000        1.000         1.000             1.000"),
        "{stdout}"
    );
    assert!(stdout.contains("hand-off on decky-07"), "{stdout}");
    let prefix = stdout
        .split("key prefix `")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .unwrap()
        .to_string();
    let mut c = conn();
    let left: Vec<String> = c
        .scan_match::<_, String>(format!("{prefix}:*"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert!(left.is_empty(), "the demo left keys behind: {left:?}");
}

#[test]
fn the_demo_starts_a_private_redis_when_none_answers() {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .arg("demo")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("started a private redis-server"),
        "{stdout}"
    );
    assert!(stdout.contains("campaign level   1.000"), "{stdout}");
}

#[test]
fn simulate_publishes_a_scenario_with_delivery_options() {
    let prefix = Prefix::new("simulate");
    let (code, out, err) = verb(
        &prefix.0,
        &[
            "simulate",
            "tool_upgrade",
            "--shuffle",
            "--duplicate",
            "0.5",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("published"), "{out}");
    let g = builtin("tool_upgrade").unwrap().generate();
    let published: usize = conn().xlen(Keys::new(&prefix.0).input()).unwrap();
    assert!(
        published > g.events.len(),
        "duplicates were added: {published}"
    );
    let (code, _, err) = verb(&prefix.0, &["simulate", "tool_upgrade", "--duplicate", "2"]);
    assert_eq!(code, 2);
    assert!(err.contains("--duplicate"), "{err}");
    let (code, _, err) = verb(&prefix.0, &["simulate", "no-such-scenario"]);
    assert_eq!(code, 2);
    assert!(err.contains("built-in scenario"), "{err}");
}

fn start_with(prefix: &str, extra: &[(&str, &str)]) -> Daemon {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clusterd"));
    cmd.arg("run")
        .env("REDIS_URL", URL)
        .env("CLUSTERD_KEY_PREFIX", prefix)
        .env("CLUSTERD_LEASE__PERIOD_MS", "2000")
        .env("CLUSTERD_HEARTBEAT__INTERVAL_MS", "200")
        .env("CLUSTERD_INGEST__BLOCK_MS", "100")
        .env("CLUSTERD_LOG__LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Daemon(cmd.spawn().expect("spawn clusterd"))
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

#[test]
fn score_and_help_as_a_user_runs_them() {
    let (code, out, err) = verb("unused", &["score", "--check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Identity level") && out.contains("Campaign level"),
        "{out}"
    );
    assert!(!out.contains("0.9"), "every score is 1.000: {out}");
    let (code, out, _) = verb("unused", &["score", "--list"]);
    assert_eq!(code, 0);
    assert!(out.contains("busy_fleet"));
    let (code, _, err) = verb("unused", &["score", "no-such-scenario"]);
    assert_eq!(code, 2, "{err}");
    for v in [
        "run",
        "demo",
        "ctl",
        "simulate",
        "inspect",
        "explain",
        "export",
        "score",
        "bench",
        "bench-e2e",
    ] {
        let (code, out, _) = verb("unused", &[v, "--help"]);
        assert_eq!(code, 0, "{v} --help");
        assert!(out.contains("Usage:"), "{v}: {out}");
    }
    let (code, _, err) = verb("unused", &["frobnicate"]);
    assert_eq!(code, 2, "{err}");
}

fn health_of(prefix: &str, worker: &str) -> serde_json::Value {
    let raw: Option<String> = conn().get(Keys::new(prefix).health(worker)).ok().flatten();
    raw.and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_default()
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

#[test]
fn sigterm_in_the_middle_of_ingest_commits_what_was_read_and_exits_0() {
    let prefix = Prefix::new("sigterm");
    let p = prefix.0.as_str();
    let daemon = start_with(p, &[("CLUSTERD_INGEST__BATCH", "20")]);
    let mut c = conn();
    let keys = Keys::new(p);
    eventually("the daemon to lead", 20, || {
        c.get::<_, Option<String>>(keys.leader())
            .ok()
            .flatten()
            .is_some()
    });
    let g = publish(p, "all_with_noise");
    eventually("ingest to start", 20, || {
        c.scard::<_, usize>(keys.attackers()).unwrap_or(0) > 0
    });
    assert_eq!(daemon.stop(), 0);
    // Everything acked was written: a second daemon finishes the rest.
    assert!(c.get::<_, Option<String>>(keys.leader()).unwrap().is_none());
    let again = start_with(p, &[]);
    eventually("settled after the restart", 60, || {
        settled(p, g.truth.identity.len())
    });
    let (ids, camps) = predictions(p);
    assert!(score(&g.truth.identity, &ids).perfect());
    assert!(score(&g.truth.campaign, &camps).perfect());
    assert_eq!(again.stop(), 0);
}
