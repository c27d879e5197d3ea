//! The Redis-facing verbs: `run` (the daemon, with logging and signal
//! handling) and `simulate` (publish a scenario).

use crate::cli::CliError;
use crate::keys::Keys;
use crate::settings::Settings;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

fn settings(config: Option<&Path>) -> Result<Settings, CliError> {
    Settings::load(config, std::env::vars())
        .map_err(|e| CliError::Usage(format!("configuration: {e}")))
}

fn init_logging(s: &Settings) -> Result<(), CliError> {
    let filter = tracing_subscriber::EnvFilter::try_new(&s.log.level)
        .map_err(|e| CliError::Usage(format!("configuration: log.level: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let r = if s.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    r.map_err(|e| CliError::Runtime(anyhow::anyhow!("logging: {e}")))
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}

/// `clusterd run`.
pub fn run(config: Option<&Path>) -> Result<i32, CliError> {
    let s = settings(config)?;
    init_logging(&s)?;
    tracing::info!(prefix = %s.redis.key_prefix, "starting clusterd");
    let system = actix_rt::System::new();
    system
        .block_on(crate::daemon::run(s, shutdown_signal()))
        .context("the daemon failed")?;
    Ok(0)
}

/// `clusterd simulate`.
pub fn simulate(
    name: &str,
    rate: Option<u32>,
    shuffle: bool,
    duplicate: Option<f64>,
    config: Option<&Path>,
) -> Result<i32, CliError> {
    let s = settings(config)?;
    let mut scenario = crate::offline::load_scenario(name)?;
    scenario.delivery.shuffle |= shuffle;
    if let Some(d) = duplicate {
        if !(0.0..=1.0).contains(&d) {
            return Err(CliError::Usage(format!(
                "--duplicate must be between 0 and 1, got {d}"
            )));
        }
        scenario.delivery.duplicate = d;
    }
    let generated = scenario.generate();
    let keys = Keys::new(&s.redis.key_prefix);
    let bar = ProgressBar::new(generated.events.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("publishing {bar:40} {pos}/{len} events ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let system = actix_rt::System::new();
    system
        .block_on(async {
            let client = redis::Client::open(s.redis.url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            crate::bus::publish(&mut conn, &keys, &generated.events, rate, |n| {
                bar.set_position(n as u64)
            })
            .await
        })
        .with_context(|| format!("publishing to {}", keys.input()))?;
    bar.finish_and_clear();
    println!(
        "published {} events of `{}` ({} observations) to {}",
        generated.events.len(),
        generated.name,
        generated.truth.identity.len(),
        keys.input()
    );
    Ok(0)
}

/// `clusterd ctl`: publish one command, wait for its reply, print it.
pub fn ctl(
    action: &str,
    observations: &[String],
    target: &str,
    by: &str,
    json: bool,
    timeout: u64,
    config: Option<&Path>,
) -> Result<i32, CliError> {
    use futures_util::StreamExt;
    let s = settings(config)?;
    let keys = Keys::new(&s.redis.key_prefix);
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut command = serde_json::json!({
        "action": action, "target": target, "request_id": request_id, "requested_by": by,
    });
    if !observations.is_empty() {
        command["observation_uuids"] = serde_json::json!(observations);
    }
    let system = actix_rt::System::new();
    let reply: Option<serde_json::Value> = system
        .block_on(async {
            let client = redis::Client::open(s.redis.url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            // Subscribe before publishing so the reply cannot be missed.
            pubsub.subscribe(keys.control_reply()).await?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            let receivers: i64 = redis::cmd("PUBLISH")
                .arg(keys.control())
                .arg(command.to_string())
                .query_async(&mut conn)
                .await?;
            if receivers == 0 {
                return Ok::<_, redis::RedisError>(None);
            }
            let mut messages = pubsub.on_message();
            let wait = async {
                while let Some(m) = messages.next().await {
                    if let Ok(v) =
                        serde_json::from_slice::<serde_json::Value>(m.get_payload_bytes())
                    {
                        if v["request_id"] == request_id.as_str() {
                            return Some(v);
                        }
                    }
                }
                None
            };
            Ok(
                tokio::time::timeout(std::time::Duration::from_secs(timeout), wait)
                    .await
                    .ok()
                    .flatten(),
            )
        })
        .with_context(|| format!("talking to Redis at the {} prefix", keys.prefix()))?;
    let Some(reply) = reply else {
        return Err(CliError::Runtime(anyhow::anyhow!(
            "no reply within {timeout} s: is `clusterd run` running with prefix `{}`?",
            keys.prefix()
        )));
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reply).unwrap_or_default()
        );
    } else if reply["ok"] == true {
        print!("{}", crate::report::control_reply(action, &reply["result"]));
    } else {
        eprintln!(
            "clusterd: {action} refused: {}",
            reply["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(if reply["ok"] == true { 0 } else { 1 })
}

fn with_snapshot<T>(
    config: Option<&Path>,
    f: impl FnOnce(&crate::inspect::Snapshot) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let s = settings(config)?;
    let system = actix_rt::System::new();
    let snap = system
        .block_on(crate::inspect::snapshot(&s))
        .context("reading the repository")?;
    f(&snap)
}

/// `clusterd inspect`.
pub fn inspect(kind: &str, uuid: &str, json: bool, config: Option<&Path>) -> Result<i32, CliError> {
    with_snapshot(config, |snap| {
        let v = crate::inspect::inspect(snap, kind, uuid).map_err(CliError::Usage)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            print!("{}", crate::report::inspection(kind, &v));
        }
        Ok(0)
    })
}

/// `clusterd explain`.
pub fn explain(a: &str, b: &str, json: bool, config: Option<&Path>) -> Result<i32, CliError> {
    with_snapshot(config, |snap| {
        let e = snap.identities.graph().explain_pair(a, b).ok_or_else(|| {
            CliError::Usage(format!(
                "unknown observation: `{}` or `{}` is not in the repository",
                crate::report::clean(a, 64),
                crate::report::clean(b, 64)
            ))
        })?;
        if json {
            println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
        } else {
            print!("{}", crate::report::pair(&e));
        }
        Ok(0)
    })
}

/// `clusterd export`.
pub fn export(
    format: &str,
    campaign: Option<&str>,
    config: Option<&Path>,
) -> Result<i32, CliError> {
    with_snapshot(config, |snap| {
        match format {
            "dot" => print!("{}", crate::inspect::export_dot(snap, campaign)),
            _ => println!(
                "{}",
                serde_json::to_string_pretty(&crate::inspect::export_json(snap, campaign))
                    .unwrap_or_default()
            ),
        }
        Ok(0)
    })
}
