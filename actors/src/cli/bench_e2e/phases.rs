//! The benchmark's phases: publishing, sustained ingest of a backlog, a
//! start-up over the stored state, and latency at a fixed rate.

use super::super::error::CliError;
use super::console::Poller;
use super::probes::*;
use super::process::*;
use crate::cli::out::outln;
use crate::repository::stream::settled;
use crate::repository::Keys;
use anyhow::Context;
use decnet_clusterd::evidence::publish::observed_payload;
use decnet_clusterd::evidence::Sym;
use decnet_clusterd::scenario::corpus::stream_corpus;
use redis::Commands;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub(super) fn publish(
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

pub(super) fn measure(
    url: &str,
    c: &mut redis::Connection,
    keys: &Keys,
    observations: usize,
    rate: u32,
    seconds: u64,
    console: Option<u16>,
) -> Result<i32, CliError> {
    outln!(
        "end-to-end benchmark on {} (prefix {})",
        url.split('@').next_back().unwrap_or(url),
        keys.prefix()
    );
    // Other work on the machine shows in every figure: say how much.
    if let Some(load) = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.rsplitn(3, ' ').nth(2).map(str::to_string))
    {
        outln!(
            "  machine: {} cores, load average {load} (1, 5, 15 min) before the run",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
    if let Some(port) = console {
        outln!(
            "  console open: each daemon serves http://127.0.0.1:{port}/ and a poller asks for the overview, the campaign list, the largest campaign and its first identity every {} s with an event stream open, during ingest and latency",
            super::console::POLL_INTERVAL.as_secs()
        );
    }
    let stored: usize = c.scard(keys.attackers()).unwrap_or(0);
    let (observations, child) = if stored > 0 {
        outln!("  {stored} observations already stored: ingest skipped");
        (stored, None)
    } else {
        (
            observations,
            Some(ingest(url, c, keys, observations, console)?),
        )
    };
    if let Some(child) = child {
        // Start-up: stop the daemon, start another over the stored state.
        child.stop();
    }
    let child = startup(url, c, keys, observations, console)?;
    if seconds == 0 {
        child.stop();
        return Ok(0);
    }
    let r = latency(c, url, keys, rate, seconds, console);
    child.stop();
    r
}

/// Sustained ingest of a backlog; returns the daemon, still running.
pub(super) fn ingest(
    url: &str,
    c: &mut redis::Connection,
    keys: &Keys,
    observations: usize,
    console: Option<u16>,
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
        payloads.push((o.uuid.to_string(), observed_payload(&o).to_string()))
    });
    for chunk in payloads.chunks(1000) {
        publish(c, keys, chunk).context("publishing the backlog")?;
    }
    outln!("  backlog of {observations} observation events published");
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
    let mut child = spawn_daemon(url, keys, console)?;
    let started = Instant::now();
    // The page is open from the daemon's start, as a person's would be.
    let poller = console.map(Poller::start);
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
    while !settled(c, keys, observations as u64) {
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
    let polled = poller.map(Poller::finish);
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
    let rate = observations as f64 / from_start.as_secs_f64();
    outln!(
        "  ingest (shipped defaults): {observations} observations ingested and clustered in {:.2} s from process start to settled → {rate:.0} events/s",
        from_start.as_secs_f64(),
    );
    outln!(
        "          {:.2} s from the daemon's first read ({:.2} s after its start) → {:.0} events/s",
        elapsed.as_secs_f64(),
        (from_start - elapsed).as_secs_f64(),
        observations as f64 / elapsed.as_secs_f64()
    );
    outln!(
        "          {:.2} Redis commands and {:.4} commit transactions per observation (server-side counts, including the daemon's reads and heartbeats)",
        cmds as f64 / observations as f64,
        txs as f64 / observations as f64
    );
    outln!(
        "          {:.4} round trips per observation on the data path ({trips} in all: reads, and two per commit)",
        trips as f64 / observations as f64
    );
    outln!(
        "          CPU: daemon {daemon_cpu:.2} s, Redis {redis_cpu:.2} s ({:.0} µs per observation in all; this machine has {} cores)",
        (daemon_cpu + redis_cpu) * 1e6 / observations as f64,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // Redis runs commands on one thread: its CPU per observation bounds
    // what any client can sustain through it, whatever the daemon does.
    let redis_per_obs = redis_cpu / observations as f64;
    if redis_per_obs > 0.0 {
        let ceiling = 1.0 / redis_per_obs;
        outln!(
            "          Redis ceiling: {:.1} µs of Redis CPU per observation → at most {ceiling:.0} events/s with Redis on a core of its own; this run reached {:.0} % of it",
            redis_per_obs * 1e6,
            100.0 * rate / ceiling
        );
    }
    outln!(
        "          memory: daemon peak {daemon_peak:.0} MiB resident, {:.1} page faults per observation; Redis {:.0} MiB resident",
        daemon_faults as f64 / observations as f64,
        redis_rss_mib(c)
    );
    if all > 0 {
        outln!(
            "          {:.0} % of the machine's CPU time was stolen by the hypervisor meanwhile (a shared host: figures vary with it)",
            100.0 * stolen as f64 / all as f64
        );
    }
    if let Some(mut r) = polled {
        outln!("          {}", r.line());
    }
    Ok(child)
}

/// Starts a daemon over the stored state and times it until its first pass
/// (load + full rebuild + reconcile + commit) is done; returns the daemon.
pub(super) fn startup(
    url: &str,
    c: &mut redis::Connection,
    keys: &Keys,
    observations: usize,
    console: Option<u16>,
) -> Result<Daemon, CliError> {
    let started = Instant::now();
    let (mut child, loaded) = spawn_logged_daemon(url, keys, console)?;
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
        // The longest identity tick seen while starting is the first pass
        // (the heartbeat shows the last tick's time, and over a large store
        // a short tick can follow the first before the campaign pass ends).
        if let Some(ms) = identity["last_tick_ms"].as_u64() {
            first_pass_ms = Some(first_pass_ms.map_or(ms, |f: u64| f.max(ms)));
        }
        health(c, "campaign-clusterer").is_some()
            && health(c, "clusterd").is_some_and(|h| h["state"] == "running")
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
    outln!(
        "  start-up: {observations} stored observations loaded, rebuilt and reconciled in {total:.2} s"
    );
    let secs =
        |ms: Option<u64>| ms.map_or("?".to_string(), |ms| format!("{:.2}", ms as f64 / 1000.0));
    let load_ms = loaded.recv_timeout(Duration::from_secs(1)).ok();
    outln!(
        "            repository load {} s, first identity pass {} s (the daemon's figures; the rest is the campaign pass, process start, lease, commits and heartbeats)",
        secs(load_ms),
        secs(first_pass_ms)
    );
    Ok(child)
}

/// Latency: publishes at `rate`, times each observation to its identity event.
pub(super) fn latency(
    c: &mut redis::Connection,
    url: &str,
    keys: &Keys,
    rate: u32,
    seconds: u64,
    console: Option<u16>,
) -> Result<i32, CliError> {
    let poller = console.map(Poller::start);
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
        o.uuid = Sym::unique(&format!("lat{}-{}", &run[..8], o.uuid));
        fresh.push((o.uuid.to_string(), observed_payload(&o).to_string()));
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
    let polled = poller.map(Poller::finish);
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
    outln!(
        "  latency at {rate} events/s for {seconds} s: {} of {} observations seen in identity events; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        sent_at.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
    if let Some(mut r) = polled {
        outln!("          {}", r.line());
    }
    Ok(0)
}
