//! `clusterd demo`: the daemon on a built-in scenario, end to end. It finds
//! a Redis (`REDIS_URL` if it answers; otherwise a private `redis-server` on
//! a free port with no persistence, if one is on the PATH), runs the daemon
//! in-process on a fresh key prefix, publishes the built-in mix with a
//! progress bar, waits until everything is acked and clustered, and prints
//! what it found from the stored state, with the quality scores against the
//! scenario's truth. `--keep` leaves the data for `inspect`, `explain`,
//! `export` and a `clusterd run` + `ctl` session.

use super::error::CliError;
use super::render;
use super::score::quality_config;
use crate::cli::out::{out, outln};
use crate::repository::stream::{publish, settled};
use crate::repository::Keys;
use crate::settings::Settings;
use anyhow::Context;
use decnet_clusterd::harness::quality::run;
use decnet_clusterd::metrics::score;
use decnet_clusterd::scenario::builtin;
use indicatif::{ProgressBar, ProgressStyle};
use redis::Commands;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HOW_TO_GET_REDIS: &str = "No Redis answered and no `redis-server` is on the PATH. \
The demo needs a Redis server (6.2 or newer): install one from your distribution \
(`apt-get install redis-server`, `dnf install redis`, `brew install redis`), start it \
(`redis-server --daemonize yes`), or point REDIS_URL at one you have \
(`REDIS_URL=redis://host:6379 clusterd demo`). Meanwhile, the same clustering runs \
in-process without Redis below.";

/// A private redis-server, stopped on drop.
struct PrivateRedis(Child);

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

fn answers(url: &str) -> bool {
    redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok()
}

fn private_redis() -> Option<(String, PrivateRedis)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let guard = PrivateRedis(child);
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !answers(&url) {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((url, guard))
}

/// `clusterd demo`.
pub fn demo(top: usize, keep: bool, offline: bool) -> Result<i32, CliError> {
    if offline {
        return in_process(top);
    }
    let wanted =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let mut private = None;
    let url = if answers(&wanted) {
        outln!(
            "Using the Redis at {}.",
            wanted.rsplit('@').next().unwrap_or(&wanted)
        );
        wanted
    } else if let Some((url, guard)) = private_redis() {
        outln!("No Redis answered at {}; started a private redis-server at {url} (no persistence; stopped when the demo ends).", wanted.rsplit('@').next().unwrap_or(&wanted));
        private = Some(guard);
        url
    } else {
        outln!("{HOW_TO_GET_REDIS}\n");
        return in_process(top);
    };
    if keep && private.is_some() {
        outln!("(--keep: the data lives in the private server, which stops with the demo; set REDIS_URL to keep it for real.)");
    }
    let prefix = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let keys = Keys::new(&prefix);
    let mut settings = Settings::load(
        None,
        [
            ("REDIS_URL".to_string(), url.clone()),
            ("CLUSTERD_KEY_PREFIX".to_string(), prefix.clone()),
        ],
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    settings.heartbeat.interval_ms = 200;
    settings.ingest.block_ms = 100;
    settings.log.level = "warn".into();
    let scenario = builtin("all_with_noise")
        .ok_or_else(|| CliError::Runtime(anyhow::anyhow!("built-in scenario missing")))?;
    let generated = scenario.generate();
    outln!("Daemon running in-process on key prefix `{prefix}`. Publishing the `all_with_noise` scenario:\n{}\n", scenario.description);
    let system = actix_rt::System::new();
    let result: anyhow::Result<(String, String)> = system.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let daemon = actix_rt::spawn(crate::daemon::run(settings.clone(), async move {
            let _ = stop_rx.await;
        }));
        let client = redis::Client::open(url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let bar = ProgressBar::new(generated.events.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("publishing {bar:40} {pos}/{len} events")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        publish(&mut conn, &keys, &generated.events, None, |n| {
            bar.set_position(n as u64)
        })
        .await?;
        bar.finish_and_clear();
        let spinner = ProgressBar::new_spinner();
        spinner.set_message("waiting until every event is acked and clustered");
        spinner.enable_steady_tick(Duration::from_millis(120));
        let mut sync = client.get_connection()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while !settled(&mut sync, &keys, generated.events.len() as u64) {
            if Instant::now() > deadline || daemon.is_finished() {
                anyhow::bail!(
                    "the daemon did not settle (is another clusterd leading this prefix?)"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        spinner.finish_and_clear();
        let snap = super::snapshot::snapshot(&settings).await?;
        let _ = stop_tx.send(());
        daemon
            .await
            .context("joining the daemon")?
            .context("the daemon failed")?;
        let (ids, camps) = (
            decnet_clusterd::harness::quality::identity_predictions(&snap.store),
            decnet_clusterd::harness::quality::campaign_predictions(&snap.store),
        );
        let quality = [
            (
                "identity level".to_string(),
                score(&generated.truth.identity, &ids),
            ),
            (
                "campaign level".to_string(),
                score(&generated.truth.campaign, &camps),
            ),
        ];
        let next = super::demo_next::next_steps(&prefix, &snap.store);
        Ok((
            render::summary(
                &snap.store,
                snap.identities.graph(),
                snap.campaigns.graph(),
                generated.events.len(),
                &quality,
                top,
            ),
            next,
        ))
    });
    let (summary, next) = result.context("the demo failed")?;
    out!("{summary}");
    if keep && private.is_none() {
        out!("\nThe data is kept under `{prefix}`. Next:\n{next}");
    } else {
        let mut c = redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .context("cleaning up")?;
        let stale: Vec<String> = c
            .scan_match::<_, String>(format!("{prefix}:*"))
            .map(|i| i.filter_map(Result::ok).collect())
            .unwrap_or_default();
        for chunk in stale.chunks(500) {
            let _: redis::RedisResult<()> = c.del(chunk);
        }
        outln!("\nThe demo's keys were removed. Run `clusterd demo --keep` to keep them and explore with `ctl status`, `inspect`, `explain` and `export`.");
    }
    drop(private);
    Ok(0)
}

/// `clusterd demo --offline` (or with no Redis to be had): in-process.
fn in_process(top: usize) -> Result<i32, CliError> {
    let scenario = builtin("all_with_noise")
        .ok_or_else(|| CliError::Runtime(anyhow::anyhow!("built-in scenario missing")))?;
    let generated = scenario.generate();
    outln!(
        "decnet-clusterd demo: the `all_with_noise` scenario, clustered in-process.\n{}\n",
        scenario.description
    );
    let cfg = quality_config()?;
    let outcome = run(&generated, &cfg).context("clustering failed")?;
    let store = &outcome.store;
    let quality = [
        ("identity level".to_string(), outcome.report.identity),
        ("campaign level".to_string(), outcome.report.campaign),
    ];
    out!(
        "{}",
        render::summary(
            store,
            outcome.identities.graph(),
            outcome.campaigns.graph(),
            generated.events.len(),
            &quality,
            top
        )
    );
    Ok(0)
}
