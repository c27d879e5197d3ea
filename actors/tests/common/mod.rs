//! Shared helpers of the daemon package's Redis tests (each test file
//! includes this module): the Redis at 127.0.0.1:6379 and a key prefix of
//! a test's own (deleted at the end), the `clusterd` binary run as a daemon
//! or as one verb, polling with a deadline, publishing scenarios, reading
//! identities and campaigns back from the hashes, and a private
//! redis-server that can be stopped and started.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use clusterd::repository::{Keys, Lease, Op};
use decnet_clusterd::scenario::builtin;
use redis::Commands;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const URL: &str = "redis://127.0.0.1:6379";

/// A key prefix of its own, deleted (all `{prefix}:*` keys) on drop.
pub struct Prefix(pub String);

impl Prefix {
    pub fn new(tag: &str) -> Prefix {
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
            for chunk in keys.chunks(500) {
                let _: Result<(), _> = c.del(chunk);
            }
        }
    }
}

pub fn conn() -> redis::Connection {
    redis::Client::open(URL)
        .and_then(|c| c.get_connection())
        .expect("Redis must answer on 127.0.0.1:6379")
}

pub struct Daemon(pub Child);

impl Daemon {
    pub fn start(prefix: &str) -> Daemon {
        Daemon::start_on(prefix, URL)
    }

    pub fn start_on(prefix: &str, url: &str) -> Daemon {
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
    pub fn stop(mut self) -> i32 {
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

/// A `clusterd serve` process, killed on drop.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `clusterd serve` on `127.0.0.1:port` over `prefix`, logging warnings,
/// with `extra` settings (which may override the log level).
pub fn serve(prefix: &str, port: u16, extra: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clusterd"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("REDIS_URL", URL)
        .env("CLUSTERD_KEY_PREFIX", prefix)
        .env("CLUSTERD_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Server(cmd.spawn().expect("spawn clusterd serve"))
}

/// Polls `cond` until it holds or the deadline passes.
pub fn eventually(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn publish(prefix: &str, name: &str) -> decnet_clusterd::scenario::Generated {
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

pub fn follow(c: &mut redis::Connection, key: String) -> Option<String> {
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
pub fn predictions(prefix: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
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

pub fn settled(prefix: &str, observations: usize) -> bool {
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

/// Runs a future on a fresh single-threaded runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub async fn async_conn() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(URL).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

pub fn lease(keys: &Keys, instance: &str, period_ms: u64) -> Lease {
    Lease {
        key: keys.leader(),
        instance: instance.into(),
        period_ms,
    }
}

/// A commit of one operation: `member` added to the observation index.
pub fn add_member(keys: &Keys, member: &str) -> Vec<Op> {
    vec![Op {
        cmd: "SADD",
        args: vec![keys.attackers(), member.to_string()],
    }]
}

/// The observation index, sorted.
pub async fn index_members(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
) -> Vec<String> {
    let mut m: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.attackers())
        .query_async(conn)
        .await
        .unwrap();
    m.sort();
    m
}

pub fn ctl(prefix: &str, args: &[&str]) -> (i32, String, String) {
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

pub fn observe(prefix: &str, uuid: &str, ja3: &str) {
    observed(
        prefix,
        &format!(r#"{{"uuid":"{uuid}","fingerprints":[{{"kind":"ja3","value":"{ja3}"}}]}}"#),
    );
}

/// Publishes one `attacker.observed` entry with this payload.
pub fn observed(prefix: &str, payload: &str) {
    let _: String = redis::cmd("XADD")
        .arg(Keys::new(prefix).input())
        .arg("*")
        .arg("topic")
        .arg("attacker.observed")
        .arg("payload")
        .arg(payload)
        .query(&mut conn())
        .unwrap();
}

pub fn identity_of(prefix: &str, obs: &str) -> Option<String> {
    predictions(prefix).0.get(obs).cloned()
}

pub fn kill9(d: &mut Daemon) {
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(d.0.id().to_string())
        .status();
    let _ = d.0.wait();
}

/// A private redis-server with an append-only file, on a free port.
pub struct PrivateRedis {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
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

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn up(&mut self) {
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

    pub fn down(&mut self) {
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

pub fn verb(prefix: &str, args: &[&str]) -> (i32, String, String) {
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

pub fn start_with(prefix: &str, extra: &[(&str, &str)]) -> Daemon {
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

pub fn health_of(prefix: &str, worker: &str) -> serde_json::Value {
    let raw: Option<String> = conn().get(Keys::new(prefix).health(worker)).ok().flatten();
    raw.and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_default()
}

/// Entries of the consumer group still pending (read, never acked).
pub fn pending(prefix: &str) -> i64 {
    let reply: redis::Value = redis::cmd("XPENDING")
        .arg(Keys::new(prefix).input())
        .arg("clusterd")
        .query(&mut conn())
        .expect("XPENDING");
    match reply {
        redis::Value::Array(parts) => match parts.first() {
            Some(redis::Value::Int(n)) => *n,
            other => panic!("XPENDING count: {other:?}"),
        },
        other => panic!("XPENDING: {other:?}"),
    }
}

/// `clusterd run` on `prefix` with its log at `info` captured: every line
/// of its stderr is forwarded to the receiver (read to the end, so the
/// daemon never blocks on a full pipe).
pub fn start_logged(prefix: &str) -> (Daemon, mpsc::Receiver<String>) {
    start_logged_with(prefix, &[])
}

/// [`start_logged`] with more settings in the environment (`extra` is set
/// after the defaults, so it can override them).
pub fn start_logged_with(prefix: &str, extra: &[(&str, &str)]) -> (Daemon, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterd"));
    child
        .arg("run")
        .env("REDIS_URL", URL)
        .env("CLUSTERD_KEY_PREFIX", prefix)
        .env("CLUSTERD_LEASE__PERIOD_MS", "2000")
        .env("CLUSTERD_HEARTBEAT__INTERVAL_MS", "500")
        .env("CLUSTERD_INGEST__BLOCK_MS", "200")
        .env("CLUSTERD_INGEST__CLAIM_IDLE_MS", "1000")
        .env("CLUSTERD_LOG__LEVEL", "info")
        .env("NO_COLOR", "1")
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = child.spawn().expect("spawn clusterd");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            // The receiver may be gone; the pipe is drained regardless.
            let _ = tx.send(line);
        }
    });
    (Daemon(child), rx)
}

/// Waits up to `secs` for a line of `log` that contains `needle`.
pub fn wait_for_line(log: &mpsc::Receiver<String>, needle: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for the log line `{needle}`"),
        }
    }
}
