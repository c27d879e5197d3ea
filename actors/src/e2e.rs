//! `clusterd bench-e2e`: the end-to-end benchmark against a real Redis. It
//! runs `clusterd run` as a child process on a private key prefix and
//! measures (1) sustained ingest — a backlog of observation events published
//! up front, timed from the daemon's first read of it until every entry is
//! acked and clustered (and, beside it, from the process start) — with the
//! Redis commands per observation, the CPU the daemon and Redis used, and
//! the daemon's peak resident memory and page faults beside Redis's
//! resident memory (Redis is asked to hand back the free memory it holds
//! first, `MEMORY PURGE`, so runs do not depend on what ran before), and
//! (2) latency — new
//! observations published at a fixed rate, each timed from its XADD to the
//! identity event that names it. The prefix's keys are deleted afterwards.
//!
//! Between the two it times a start-up (a second daemon over the stored
//! state: load, first full identity and campaign passes, reconcile and
//! commit), with the
//! load and the first pass shown apart from the daemon's own figures.
//!
//! Start-up alone over a large store, without paying for its ingest each
//! time: `CLUSTERD_BENCH_E2E_PREFIX=<prefix>` uses that key prefix instead of
//! a fresh one and, when it already holds observations, skips the ingest and
//! times the start-up over them; `CLUSTERD_BENCH_E2E_KEEP=1` keeps the
//! prefix's keys afterwards; `--seconds 0` skips the latency phase (which
//! would add observations to a kept store); `CLUSTERD_BENCH_E2E_LOG=<level>`
//! sets the ingesting daemon's log level (default `warn`).

use crate::cli::CliError;
use crate::keys::Keys;
use anyhow::Context;
use decnet_clusterd::evidence::publish::observed_payload;
use decnet_clusterd::scenario::corpus::stream_corpus;
use redis::Commands;
use std::collections::HashMap;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The numeric `fields` of one `INFO` section, summed (0 for any missing).
fn info_sum(c: &mut redis::Connection, section: &str, fields: &[&str]) -> f64 {
    let info: String = redis::cmd("INFO").arg(section).query(c).unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| fields.contains(k))
        .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
        .sum()
}

fn info_commands(c: &mut redis::Connection) -> u64 {
    info_sum(c, "stats", &["total_commands_processed"]) as u64
}

/// Seconds of CPU the Redis server has used (user + system).
fn redis_cpu(c: &mut redis::Connection) -> f64 {
    info_sum(c, "cpu", &["used_cpu_user", "used_cpu_sys"])
}

/// Redis's resident memory in MiB (`used_memory_rss`).
fn redis_rss_mib(c: &mut redis::Connection) -> f64 {
    info_sum(c, "memory", &["used_memory_rss"]) / (1024.0 * 1024.0)
}

/// The fields of `/proc/<pid>/stat` after the command name (which is in
/// parentheses and may hold spaces), so index 0 is field 3, `state`; empty
/// where there is no `/proc`.
fn proc_stat(pid: u32) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    // `state` is a letter: keep it as 0 so the indexes hold.
    rest.split_whitespace()
        .map(|t| t.parse().unwrap_or(0))
        .collect()
}

/// Seconds of CPU a process has used (user + system, all its threads), from
/// `/proc` (0 where there is none). Linux reports it in USER_HZ ticks, which
/// are 1/100 s on every architecture it exposes to user space this way.
fn process_cpu(pid: u32) -> f64 {
    // utime and stime: fields 14 and 15.
    let ticks: u64 = proc_stat(pid).iter().skip(11).take(2).sum();
    ticks as f64 / 100.0
}

/// A process's peak resident memory in MiB (`VmHWM`) and the page faults
/// it has taken (minor and major), from `/proc`; zeros where there is none.
/// Every fresh page the kernel hands out is zeroed first, and on a virtual
/// machine the host may back it only then: faults cost CPU of their own.
fn process_memory(pid: u32) -> (f64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    // minflt and majflt: fields 10 and 12.
    let stat = proc_stat(pid);
    let faults = [7, 9].iter().filter_map(|&i| stat.get(i)).sum();
    (peak_kib as f64 / 1024.0, faults)
}

/// The machine's CPU time so far, from `/proc/stat`: (all, stolen by the
/// hypervisor), in ticks; zeros where there is no `/proc`.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal (guest time is
    // already counted in user).
    (cpu.iter().take(8).sum(), cpu.get(7).copied().unwrap_or(0))
}

/// Calls of these commands (lower case) the server has counted.
fn calls(c: &mut redis::Connection, commands: &[&str]) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(c)
        .unwrap_or_default();
    info.lines()
        .filter(|l| {
            l.strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
                .is_some_and(|(name, _)| commands.contains(&name))
        })
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

fn publish(
    c: &mut redis::Connection,
    keys: &Keys,
    payloads: &[(String, String)],
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for (_, p) in payloads {
        pipe.cmd("XADD")
            .arg(keys.input())
            .arg("*")
            .arg("topic")
            .arg("attacker.observed")
            .arg("payload")
            .arg(p)
            .ignore();
    }
    pipe.query(c)
}

/// The log level of the benchmarked daemon (its log goes to this command's
/// stderr): `warn`, or `CLUSTERD_BENCH_E2E_LOG` (`debug` shows each batch's
/// and each pass's timings).
fn daemon_log_level() -> String {
    std::env::var("CLUSTERD_BENCH_E2E_LOG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "warn".into())
}

/// The benchmarked daemon's heartbeat interval. The clock stops at the
/// first heartbeat showing everything settled, so it overshoots by up to one
/// interval: 50 ms is about 1 % of a 100,000-event run (200 ms, before, was
/// up to 5 %), at the cost of six small writes per interval.
const HEARTBEAT_MS: &str = "50";

/// When the daemon first took entries of the backlog: the consumer group
/// exists and has delivered some (`entries-read`, or pending entries).
fn first_read(c: &mut redis::Connection, keys: &Keys) -> bool {
    let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(keys.input())
        .query(c)
        .unwrap_or_default();
    let positive = |v: Option<&redis::Value>| matches!(v, Some(redis::Value::Int(n)) if *n > 0);
    groups
        .iter()
        .any(|g| positive(g.get("entries-read")) || positive(g.get("pending")))
}

/// `clusterd run` on the benchmark's prefix, with the benchmark's settings
/// (README: large batches, a short debounce, frequent heartbeats).
fn daemon_command(url: &str, keys: &Keys) -> Result<Command, CliError> {
    let exe = std::env::current_exe().context("locating clusterd")?;
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .env("REDIS_URL", url)
        .env("CLUSTERD_KEY_PREFIX", keys.prefix())
        .env("CLUSTERD_HEARTBEAT__INTERVAL_MS", HEARTBEAT_MS)
        .env("CLUSTERD_INGEST__BATCH", "10000")
        .env("CLUSTERD_INGEST__BLOCK_MS", "100")
        .env("CLUSTERD_CLUSTERING__DEBOUNCE_MS", "20")
        .stdout(Stdio::null());
    Ok(cmd)
}

/// A benchmarked daemon, killed if the benchmark stops without stopping it
/// (an error, or a panic such as printing to a closed stdout), so it never
/// outlives the benchmark.
struct Daemon(std::process::Child);

impl std::ops::Deref for Daemon {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Daemon {
    /// Stops the daemon the way an operator does (SIGTERM: it finishes and
    /// commits the batch in hand) and waits for it to exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Nothing to do for a daemon already stopped and waited for.
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn_daemon(url: &str, keys: &Keys) -> Result<Daemon, CliError> {
    Ok(Daemon(
        daemon_command(url, keys)?
            .env("CLUSTERD_LOG__LEVEL", daemon_log_level())
            .spawn()
            .context("starting clusterd run")?,
    ))
}

/// Starts a daemon whose load log line is forwarded: the receiver gets the
/// `elapsed_ms` of its "repository loaded" line.
fn spawn_logged_daemon(url: &str, keys: &Keys) -> Result<(Daemon, mpsc::Receiver<u64>), CliError> {
    let mut child = daemon_command(url, keys)?
        .env("CLUSTERD_LOG__LEVEL", "warn,clusterd::actor=info")
        .env("CLUSTERD_LOG__FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .context("starting clusterd run")?;
    let (tx, rx) = mpsc::channel();
    if let Some(err) = child.stderr.take() {
        // Drained to the end, so the daemon never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let f = &v["fields"];
                if f["message"] == "repository loaded" {
                    if let Some(ms) = f["elapsed_ms"].as_u64() {
                        let _ = tx.send(ms);
                    }
                }
            }
        });
    }
    Ok((Daemon(child), rx))
}

/// An error when the benchmarked daemon has exited (rather than waiting for
/// it until the time limit).
fn gone(child: &mut std::process::Child, doing: &str) -> Result<(), CliError> {
    match child.try_wait() {
        Ok(Some(status)) => Err(CliError::Runtime(anyhow::anyhow!(
            "the daemon exited ({status}) while {doing}; rerun with CLUSTERD_BENCH_E2E_LOG=info to see why"
        ))),
        _ => Ok(()),
    }
}

/// Benchmark options outside the verb's flags (see the module comment).
struct Reuse {
    prefix: Option<String>,
    keep: bool,
}

impl Reuse {
    fn from_env() -> Reuse {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Reuse {
            prefix: var("CLUSTERD_BENCH_E2E_PREFIX"),
            keep: var("CLUSTERD_BENCH_E2E_KEEP").is_some_and(|v| v != "0" && v != "false"),
        }
    }
}

/// Runs the benchmark.
pub fn run(url: &str, observations: usize, rate: u32, seconds: u64) -> Result<i32, CliError> {
    let reuse = Reuse::from_env();
    let prefix = reuse
        .prefix
        .clone()
        .unwrap_or_else(|| format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
    let keys = Keys::new(&prefix);
    let mut c = redis::Client::open(url)
        .and_then(|cl| cl.get_connection())
        .with_context(|| format!("connecting to {url}"))?;
    // A panic (printing to a closed stdout, say) still stops the daemon (its
    // guard) and deletes the prefix's keys before it goes on.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        measure(url, &mut c, &keys, observations, rate, seconds)
    }));
    if !reuse.keep {
        delete_prefix(&mut c, &prefix);
    } else if outcome.is_ok() {
        println!("  keys of prefix {prefix} kept");
    }
    outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Deletes every key of the benchmark's prefix.
fn delete_prefix(c: &mut redis::Connection, prefix: &str) {
    let stale: Vec<String> = c
        .scan_match::<_, String>(format!("{prefix}:*"))
        .map(|i| i.filter_map(Result::ok).collect())
        .unwrap_or_default();
    for chunk in stale.chunks(500) {
        let _: redis::RedisResult<()> = c.del(chunk);
    }
}

fn measure(
    url: &str,
    c: &mut redis::Connection,
    keys: &Keys,
    observations: usize,
    rate: u32,
    seconds: u64,
) -> Result<i32, CliError> {
    println!(
        "end-to-end benchmark on {} (prefix {})",
        url.split('@').next_back().unwrap_or(url),
        keys.prefix()
    );
    let stored: usize = c.scard(keys.attackers()).unwrap_or(0);
    let (observations, child) = if stored > 0 {
        println!("  {stored} observations already stored: ingest skipped");
        (stored, None)
    } else {
        (observations, Some(ingest(url, c, keys, observations)?))
    };
    if let Some(child) = child {
        // Start-up: stop the daemon, start another over the stored state.
        child.stop();
    }
    let child = startup(url, c, keys, observations)?;
    if seconds == 0 {
        child.stop();
        return Ok(0);
    }
    let r = latency(c, url, keys, rate, seconds);
    child.stop();
    r
}

/// Sustained ingest of a backlog; returns the daemon, still running.
fn ingest(
    url: &str,
    c: &mut redis::Connection,
    keys: &Keys,
    observations: usize,
) -> Result<Daemon, CliError> {
    // Memory an earlier run freed stays resident in Redis's allocator, and
    // growing into it is far cheaper than into fresh pages (up to a fifth
    // of the ingest rate at 1,000,000 on this project's VMs): hand it back
    // first, so every run grows the store the way a new store grows.
    // Harmless on a shared Redis (only free memory goes); a Redis without
    // jemalloc answers OK and does nothing.
    let _: redis::RedisResult<redis::Value> = redis::cmd("MEMORY").arg("PURGE").query(c);
    let mut payloads = Vec::with_capacity(observations);
    stream_corpus(observations, 11, |o, _, _| {
        payloads.push((o.uuid.clone(), observed_payload(&o).to_string()))
    });
    for chunk in payloads.chunks(1000) {
        publish(c, keys, chunk).context("publishing the backlog")?;
    }
    println!("  backlog of {observations} observation events published");
    // The daemon's round trips on the data path: each read, and each
    // commit's two (the lease check that WATCHes the fence, then
    // MULTI…EXEC); heartbeats, lease renewals and lag checks come on top.
    const TRIPS: &[&str] = &["xreadgroup", "watch", "exec"];
    let (cmds0, tx0, trips0, redis0) = (
        info_commands(c),
        calls(c, &["exec"]),
        calls(c, TRIPS),
        redis_cpu(c),
    );
    let ticks0 = machine_ticks();
    let mut child = spawn_daemon(url, keys)?;
    let started = Instant::now();
    // Sustained ingest is timed from the daemon's first read of the backlog;
    // process start, connecting, the lease and loading an empty store come
    // before it (start-up is timed on its own below).
    // On an error the daemon's guard stops it.
    while !first_read(c, keys) {
        gone(&mut child, "starting")?;
        if started.elapsed() > Duration::from_secs(60) {
            return Err(CliError::Runtime(anyhow::anyhow!(
                "the daemon did not start reading within a minute"
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let reading = Instant::now();
    while !crate::bus::settled(c, keys, observations as u64) {
        gone(&mut child, "ingesting the backlog")?;
        if started.elapsed() > Duration::from_secs(600) {
            return Err(CliError::Runtime(anyhow::anyhow!(
                "the backlog did not settle within 10 minutes"
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = reading.elapsed();
    let from_start = started.elapsed();
    let daemon_cpu = process_cpu(child.id());
    let (daemon_peak, daemon_faults) = process_memory(child.id());
    let redis_cpu = redis_cpu(c) - redis0;
    let ticks = machine_ticks();
    let (all, stolen) = (ticks.0 - ticks0.0, ticks.1 - ticks0.1);
    let (cmds, txs, trips) = (
        info_commands(c) - cmds0,
        calls(c, &["exec"]) - tx0,
        calls(c, TRIPS) - trips0,
    );
    println!(
        "  ingest: {observations} observations ingested and clustered in {:.2} s from the first read → {:.0} observations/s",
        elapsed.as_secs_f64(),
        observations as f64 / elapsed.as_secs_f64()
    );
    println!(
        "          {:.2} s from process start, {:.0} observations/s counting the daemon's start ({:.2} s to its first read)",
        from_start.as_secs_f64(),
        observations as f64 / from_start.as_secs_f64(),
        (from_start - elapsed).as_secs_f64()
    );
    println!(
        "          {:.2} Redis commands and {:.4} commit transactions per observation (server-side counts, including the daemon's reads and heartbeats)",
        cmds as f64 / observations as f64,
        txs as f64 / observations as f64
    );
    println!(
        "          {:.4} round trips per observation on the data path ({trips} in all: reads, and two per commit)",
        trips as f64 / observations as f64
    );
    println!(
        "          CPU: daemon {daemon_cpu:.2} s, Redis {redis_cpu:.2} s ({:.0} µs per observation in all; this machine has {} cores)",
        (daemon_cpu + redis_cpu) * 1e6 / observations as f64,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "          memory: daemon peak {daemon_peak:.0} MiB resident, {:.1} page faults per observation; Redis {:.0} MiB resident",
        daemon_faults as f64 / observations as f64,
        redis_rss_mib(c)
    );
    if all > 0 {
        println!(
            "          {:.0} % of the machine's CPU time was stolen by the hypervisor meanwhile (a shared host: figures vary with it)",
            100.0 * stolen as f64 / all as f64
        );
    }
    Ok(child)
}

/// Starts a daemon over the stored state and times it until its first pass
/// (load + full rebuild + reconcile + commit) is done; returns the daemon.
fn startup(
    url: &str,
    c: &mut redis::Connection,
    keys: &Keys,
    observations: usize,
) -> Result<Daemon, CliError> {
    let started = Instant::now();
    let (mut child, loaded) = spawn_logged_daemon(url, keys)?;
    let mut first_pass_ms = None;
    // Ready once both layers have passed over the stored state: the
    // identity pass, then the campaign pass it triggers.
    let pid = child.id();
    let mut ready = |c: &mut redis::Connection| {
        let health = |c: &mut redis::Connection, worker: &str| {
            let h: Option<String> = c.get(keys.health(worker)).ok();
            h.and_then(|h| serde_json::from_str::<serde_json::Value>(&h).ok())
                .filter(|h| h["pid"] == pid && h["ticks"].as_u64().unwrap_or(0) >= 1)
        };
        let Some(identity) = health(c, "clusterer") else {
            return false;
        };
        let ready = health(c, "campaign-clusterer").is_some()
            && health(c, "clusterd").is_some_and(|h| h["state"] == "running");
        if ready {
            first_pass_ms = identity["last_tick_ms"].as_u64();
        }
        ready
    };
    while !ready(c) {
        gone(&mut child, "starting up")?;
        if started.elapsed() > Duration::from_secs(600) {
            return Err(CliError::Runtime(anyhow::anyhow!(
                "the restarted daemon did not finish its first pass"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let total = started.elapsed().as_secs_f64();
    println!(
        "  start-up: {observations} stored observations loaded, rebuilt and reconciled in {total:.2} s"
    );
    let secs =
        |ms: Option<u64>| ms.map_or("?".to_string(), |ms| format!("{:.2}", ms as f64 / 1000.0));
    let load_ms = loaded.recv_timeout(Duration::from_secs(1)).ok();
    println!(
        "            repository load {} s, first identity pass {} s (the daemon's figures; the rest is the campaign pass, process start, lease, commits and heartbeats)",
        secs(load_ms),
        secs(first_pass_ms)
    );
    Ok(child)
}

/// Latency: publishes at `rate`, times each observation to its identity event.
fn latency(
    c: &mut redis::Connection,
    url: &str,
    keys: &Keys,
    rate: u32,
    seconds: u64,
) -> Result<i32, CliError> {
    let tail_url = url.to_string();
    let tail_keys = keys.clone();
    let deadline = Instant::now() + Duration::from_secs(seconds + 5);
    let tail = std::thread::spawn(move || -> HashMap<String, Instant> {
        let mut seen = HashMap::new();
        let Ok(mut t) = redis::Client::open(tail_url.as_str()).and_then(|cl| cl.get_connection())
        else {
            return seen;
        };
        let mut last = "$".to_string();
        while Instant::now() < deadline {
            let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1000)
                .arg("BLOCK")
                .arg(200)
                .arg("STREAMS")
                .arg(tail_keys.identity_stream())
                .arg(&last)
                .query(&mut t)
                .ok()
                .flatten();
            let now = Instant::now();
            for k in reply.map(|r| r.keys).unwrap_or_default() {
                for e in k.ids {
                    last = e.id.clone();
                    let payload: String = e.get("payload").unwrap_or_default();
                    let v: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
                    let named = v["observation_uuids"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .chain(v.get("observation_uuid").cloned());
                    for o in named.filter_map(|o| o.as_str().map(str::to_string)) {
                        seen.entry(o).or_insert(now);
                    }
                }
            }
        }
        seen
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut fresh = Vec::new();
    let total = rate as usize * seconds as usize;
    // Fresh uuids each run, so a re-run over a kept store times new ones.
    let run = uuid::Uuid::new_v4().simple().to_string();
    stream_corpus(total, 12, |mut o, _, _| {
        o.uuid = format!("lat{}-{}", &run[..8], o.uuid);
        fresh.push((o.uuid.clone(), observed_payload(&o).to_string()));
    });
    let mut sent_at: HashMap<String, Instant> = HashMap::with_capacity(total);
    let t0 = Instant::now();
    let per_tick = (rate as usize / 100).max(1);
    for (i, chunk) in fresh.chunks(per_tick).enumerate() {
        let due = t0 + Duration::from_millis(10 * i as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let now = Instant::now();
        publish(c, keys, chunk).context("publishing")?;
        for (u, _) in chunk {
            sent_at.insert(u.clone(), now);
        }
    }
    let seen = tail.join().unwrap_or_default();
    let mut lat: Vec<Duration> = sent_at
        .iter()
        .filter_map(|(u, t)| seen.get(u).map(|s| s.saturating_duration_since(*t)))
        .collect();
    lat.sort();
    if lat.is_empty() {
        return Err(CliError::Runtime(anyhow::anyhow!(
            "no identity event named a published observation"
        )));
    }
    let q = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    println!(
        "  latency at {rate} events/s for {seconds} s: {} of {} observations seen in identity events; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        sent_at.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
    Ok(0)
}
