//! The daemon against a real local Redis Cluster (docs/scaling.md): three
//! primaries started with `redis-server --cluster-enabled yes` on free
//! ports in a directory of their own, joined with `redis-cli --cluster
//! create`. clusterd speaks to one node with a plain connection, so it
//! runs when every key shares one hash slot (a hash-tagged prefix such as
//! `{decnet}`) and `redis.url` names that slot's owner; pointed elsewhere,
//! it exits at once with one line naming the owner or the hash tag. If the
//! cluster cannot be formed the test fails with the reason: nothing here
//! is skipped.

mod common;

use clusterd::repository::Keys;
use common::*;
use decnet_clusterd::metrics::score;
use decnet_clusterd::scenario::builtin;
use redis::Commands;
use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Three primaries on 127.0.0.1, each owning a third of the slots; killed
/// and their directory removed on drop.
struct Cluster {
    ports: Vec<u16>,
    dir: PathBuf,
    servers: Vec<Child>,
}

/// A port that is free, and whose cluster bus port (port + 10000) is too.
fn free_port() -> u16 {
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = l.local_addr().unwrap().port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("found no free port whose cluster bus port (+10000) is free too");
}

fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

fn node(port: u16) -> redis::Connection {
    redis::Client::open(url(port))
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("cluster node {port}: {e}"))
}

impl Cluster {
    fn start() -> Cluster {
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 3 {
            let p = free_port();
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let dir = std::env::temp_dir().join(format!(
            "clusterd-cluster-{}-{}",
            std::process::id(),
            ports[0]
        ));
        let mut c = Cluster {
            ports: ports.clone(),
            dir,
            servers: Vec::new(),
        };
        for &p in &ports {
            let d = c.dir.join(p.to_string());
            std::fs::create_dir_all(&d).expect("the cluster's directory");
            let child = Command::new("redis-server")
                .args(["--port", &p.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&d)
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("redis-server must be on the PATH: {e}"));
            c.servers.push(child);
        }
        for &p in &ports {
            eventually(&format!("cluster node {p} to answer PING"), 10, || {
                redis::Client::open(url(p))
                    .and_then(|c| c.get_connection())
                    .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                    .is_ok()
            });
            let info: String = redis::cmd("INFO")
                .arg("cluster")
                .query(&mut node(p))
                .unwrap();
            assert!(
                info.contains("cluster_enabled:1"),
                "redis-server on {p} did not start in cluster mode: {info}"
            );
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("redis-cli must be on the PATH: {e}"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for &p in &ports {
            eventually(&format!("cluster_state:ok on {p}"), 30, || {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut node(p))
                    .unwrap_or_default();
                info.contains("cluster_state:ok")
            });
        }
        c
    }

    /// The port of the primary serving the slot of `key`, from CLUSTER NODES
    /// once every node agrees on it.
    fn owner(&self, key: &str) -> u16 {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut node(self.ports[0]))
            .unwrap();
        let mut owner = None;
        eventually("every node to agree on the slot's owner", 30, || {
            let seen: Vec<Option<u16>> = self
                .ports
                .iter()
                .map(|&p| {
                    let nodes: String = redis::cmd("CLUSTER")
                        .arg("NODES")
                        .query(&mut node(p))
                        .unwrap_or_default();
                    owner_in(&nodes, slot)
                })
                .collect();
            owner = seen[0];
            owner.is_some() && seen.iter().all(|s| *s == owner)
        });
        owner.unwrap()
    }

    fn keys_on(&self, port: u16) -> i64 {
        redis::cmd("DBSIZE").query(&mut node(port)).unwrap()
    }
}

/// The port of the node that owns `slot` in a CLUSTER NODES reply.
fn owner_in(nodes: &str, slot: u16) -> Option<u16> {
    nodes.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 9 || !f[2].contains("master") {
            return None;
        }
        let owns = f[8..].iter().any(|r| {
            let (lo, hi) = r.split_once('-').unwrap_or((r, r));
            matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if lo <= slot && slot <= hi)
        });
        let port = f[1].split('@').next()?.rsplit(':').next()?.parse().ok()?;
        owns.then_some(port)
    })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn publish_to(
    c: &mut redis::Connection,
    prefix: &str,
    name: &str,
) -> decnet_clusterd::scenario::Generated {
    let g = builtin(name).unwrap().generate();
    let keys = Keys::new(prefix);
    for e in &g.events {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(keys.input()).arg("*");
        for (k, v) in e.fields() {
            cmd.arg(k).arg(v);
        }
        let _: String = cmd.query(c).unwrap();
    }
    g
}

/// Effective identity and campaign of every observation, read from `c`.
fn predictions_on(
    c: &mut redis::Connection,
    prefix: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let keys = Keys::new(prefix);
    let obs: Vec<String> = c.smembers(keys.attackers()).unwrap_or_default();
    let (mut ids, mut camps) = (BTreeMap::new(), BTreeMap::new());
    for o in obs {
        let direct: Option<String> = c.hget(keys.attacker(&o), "identity_id").ok();
        let Some(direct) = direct.filter(|d| !d.is_empty()) else {
            continue;
        };
        let Some(identity) = follow(c, keys.identity(&direct)) else {
            continue;
        };
        let campaign: Option<String> = c.hget(keys.identity(&identity), "campaign_id").ok();
        if let Some(camp) = campaign
            .filter(|c| !c.is_empty())
            .and_then(|cid| follow(c, keys.campaign(&cid)))
        {
            camps.insert(o.clone(), camp);
        }
        ids.insert(o, identity);
    }
    (ids, camps)
}

/// Nothing pending in the consumer group, nothing dirty, every observation
/// with an identity and a campaign.
fn settled_on(c: &mut redis::Connection, prefix: &str, observations: usize) -> bool {
    let keys = Keys::new(prefix);
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(keys.input())
        .arg("clusterd")
        .query(c)
        .unwrap_or(redis::Value::Nil);
    let none_pending = matches!(&pending, redis::Value::Array(v) if matches!(v.first(), Some(redis::Value::Int(0))));
    let health: Option<String> = c.get(keys.health("clusterd")).ok();
    let clean = health
        .and_then(|h| serde_json::from_str::<serde_json::Value>(&h).ok())
        .is_some_and(|h| h["dirty"] == 0);
    let (ids, camps) = predictions_on(c, prefix);
    none_pending && clean && ids.len() == observations && camps.len() == observations
}

/// `clusterd run` on `url` and `prefix`; its exit status and stderr once it
/// exits by itself within `secs`.
fn run_until_exit(url: &str, prefix: &str, secs: u64) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .arg("run")
        .env("REDIS_URL", url)
        .env("CLUSTERD_KEY_PREFIX", prefix)
        .env("CLUSTERD_LOG__LEVEL", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn clusterd");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("clusterd on {url} with prefix {prefix} did not exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code().unwrap_or(-1), err)
}

#[test]
fn a_hash_tagged_prefix_clusters_on_the_slot_owner() {
    let cluster = Cluster::start();
    let tag = format!("clusterd-{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("{{{tag}}}");
    let owner = cluster.owner(&tag);
    let mut c = node(owner);
    let g = publish_to(&mut c, &prefix, "multi_operator");
    let n = g.truth.identity.len();
    assert!(n > 1, "the scenario has observations");
    let daemon = Daemon::start_on(&prefix, &url(owner));
    eventually("multi_operator to settle on the cluster", 60, || {
        settled_on(&mut c, &prefix, n)
    });
    let (ids, camps) = predictions_on(&mut c, &prefix);
    let (si, sc) = (
        score(&g.truth.identity, &ids),
        score(&g.truth.campaign, &camps),
    );
    assert!(si.perfect(), "identity {si:?}");
    assert!(sc.perfect(), "campaign {sc:?}");
    let keys = Keys::new(&prefix);
    let events: usize = c.xlen(keys.identity_stream()).unwrap();
    assert!(events > 0, "no identity events on the owner");
    assert_eq!(daemon.stop(), 0, "clusterd stopped on SIGTERM");
    // Every key of the prefix landed in the owner's slot, none elsewhere.
    assert!(cluster.keys_on(owner) > 0);
    for &p in cluster.ports.iter().filter(|&&p| p != owner) {
        assert_eq!(
            cluster.keys_on(p),
            0,
            "keys on node {p}, not the owner {owner}"
        );
    }
}

#[test]
fn elsewhere_it_exits_naming_the_owner_or_the_hash_tag() {
    let cluster = Cluster::start();
    let tag = format!("clusterd-{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("{{{tag}}}");
    let owner = cluster.owner(&tag);
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(&tag)
        .query(&mut node(owner))
        .unwrap();
    let other = *cluster.ports.iter().find(|&&p| p != owner).unwrap();

    let (code, err) = run_until_exit(&url(other), &prefix, 20);
    assert_ne!(code, 0, "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("cluster node"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(&format!("slot {slot}")), "{line}");
    assert!(
        line.contains(&format!("redis://127.0.0.1:{owner}")),
        "{line}"
    );

    // Without a hash tag the lease and its fence fall in different slots:
    // refused on any node, with the tag to use.
    let untagged = "clusterd-untagged";
    let keys = Keys::new(untagged);
    let slot_of = |k: String| -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(k)
            .query(&mut node(owner))
            .unwrap()
    };
    let lease = clusterd::repository::Lease {
        key: keys.leader(),
        instance: String::new(),
        period_ms: 1,
    };
    assert_ne!(slot_of(keys.leader()), slot_of(lease.fence_key()));
    for &p in &cluster.ports {
        let (code, err) = run_until_exit(&url(p), untagged, 20);
        assert_ne!(code, 0, "{err}");
        assert!(
            err.contains("hash tag such as {clusterd-untagged}"),
            "{err}"
        );
    }
    for &p in &cluster.ports {
        assert_eq!(cluster.keys_on(p), 0, "a refused daemon wrote to node {p}");
    }
}
