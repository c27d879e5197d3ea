//! `clusterd simulate`: publishes a scenario's events into the input
//! stream, with the delivery options (rate, shuffle, duplicates).

use super::config::settings;
use super::error::CliError;
use super::score::load_scenario;
use crate::cli::out::outln;
use crate::repository::stream::publish;
use crate::repository::Keys;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

/// `clusterd simulate`.
pub fn simulate(
    name: &str,
    rate: Option<u32>,
    shuffle: bool,
    duplicate: Option<f64>,
    config: Option<&Path>,
) -> Result<i32, CliError> {
    let s = settings(config)?;
    let mut scenario = load_scenario(name)?;
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
            publish(&mut conn, &keys, &generated.events, rate, |n| {
                bar.set_position(n as u64)
            })
            .await
        })
        .with_context(|| format!("publishing to {}", keys.input()))?;
    bar.finish_and_clear();
    outln!(
        "published {} events of `{}` ({} observations) to {}",
        generated.events.len(),
        generated.name,
        generated.truth.identity.len(),
        keys.input()
    );
    Ok(0)
}
