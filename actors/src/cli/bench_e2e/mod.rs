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
//!
//! `--console` runs every daemon with the console on a free loopback port
//! and a poller beside it that does what an open page does (`console.rs`),
//! reporting its requests, errors and latency beside the phase's figures.

use crate::cli::out::outln;
mod console;
mod phases;
mod probes;
mod process;

use super::error::CliError;
use crate::repository::Keys;
use anyhow::Context;
use phases::measure;
use redis::Commands;

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
pub fn run(
    url: &str,
    observations: usize,
    rate: u32,
    seconds: u64,
    console: bool,
) -> Result<i32, CliError> {
    let reuse = Reuse::from_env();
    let console = match console {
        true => Some(console::free_port().context("finding a free port for the console")?),
        false => None,
    };
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
        measure(url, &mut c, &keys, observations, rate, seconds, console)
    }));
    if !reuse.keep {
        delete_prefix(&mut c, &prefix);
    } else if outcome.is_ok() {
        outln!("  keys of prefix {prefix} kept");
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
