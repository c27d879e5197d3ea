//! `clusterd watch`: follows the identity and campaign output streams
//! (SPEC §5) as readable lines — time, topic, who (short uuids and sizes),
//! why — or as one JSON object per line (`--json`), from now or from a
//! stream id or an RFC 3339 time (`--from`). Ends with status 0 on SIGINT
//! or when its reader goes away (a closed pipe).

use super::config::settings;
use super::error::CliError;
use super::render::clean;
use super::text::{count, iso_str, number, short};
use crate::repository::events::{newest_ids, read_after, Followed};
use crate::repository::Keys;
use anyhow::Context;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// How long one XREAD waits for new entries.
const BLOCK_MS: u64 = 1_000;
/// Entries per read.
const BATCH: usize = 500;

fn who(v: &Value) -> String {
    v.as_str().map_or("-".into(), short)
}

fn len(v: &Value) -> u64 {
    v.as_array().map_or(0, |a| a.len() as u64)
}

fn was(v: &Value, what: &str) -> String {
    match v.as_str() {
        Some(p) if !p.is_empty() => format!(" (was {what} {})", short(p)),
        _ => String::new(),
    }
}

/// One event as a person reads it: who changed and why.
pub fn describe(topic: &str, p: &Value) -> String {
    match topic {
        "identity.formed" => format!(
            "identity {} formed from {}, confidence {}",
            who(&p["identity_uuid"]),
            count(len(&p["observation_uuids"]), "observation", "observations"),
            number(&p["confidence"])
        ),
        "identity.observation.linked" => format!(
            "observation {} joined identity {}{}, confidence now {}",
            who(&p["observation_uuid"]),
            who(&p["identity_uuid"]),
            was(&p["prior_identity_uuid"], "in"),
            number(&p["confidence_after"])
        ),
        "identity.merged" => format!(
            "identity {} merged into {} ({} moved), confidence now {}",
            who(&p["loser_uuid"]),
            who(&p["winner_uuid"]),
            count(len(&p["observation_uuids"]), "observation", "observations"),
            number(&p["confidence_after"])
        ),
        "identity.unmerged" | "campaign.unmerged" => format!(
            "{} {} split off from {} again",
            topic.split('.').next().unwrap_or("row"),
            who(&p["resurrected_uuid"]),
            who(&p["former_winner_uuid"])
        ),
        "identity.campaign.assigned" | "campaign.identity.assigned" => format!(
            "identity {} assigned to campaign {}{}",
            who(&p["identity_uuid"]),
            who(&p["campaign_uuid"]),
            was(&p["prior_campaign_uuid"], "in")
        ),
        "campaign.formed" => {
            let ids: Vec<String> = p["identity_uuids"]
                .as_array()
                .into_iter()
                .flatten()
                .take(5)
                .map(who)
                .collect();
            let n = len(&p["identity_uuids"]);
            format!(
                "campaign {} formed from {}: {}{}",
                who(&p["campaign_uuid"]),
                count(n, "identity", "identities"),
                ids.join(", "),
                if n > 5 { ", …" } else { "" }
            )
        }
        "campaign.merged" => format!(
            "campaign {} merged into {}",
            who(&p["loser_uuid"]),
            who(&p["winner_uuid"])
        ),
        other => format!("{} {}", clean(other, 40), clean(&p.to_string(), 120)),
    }
}

/// One event as a line of text.
pub fn line(e: &Followed) -> String {
    format!(
        "{}  {:<27}  {}",
        iso_str(&e.ts),
        clean(&e.topic, 40),
        describe(&e.topic, &e.payload_value())
    )
}

/// The entry id just before `from` (a stream id, or an RFC 3339 time), so
/// that reading "after" it starts at `from` itself.
pub fn start_before(from: &str) -> Result<String, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--from `{}`: give a stream id (1767236400000-0) or an RFC 3339 time (2026-01-01T03:00:00Z)",
            clean(from, 40)
        ))
    };
    let (ms, seq) = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(from) {
        (u64::try_from(t.timestamp_millis()).map_err(|_| bad())?, 0)
    } else {
        let (a, b) = from.split_once('-').unwrap_or((from, "0"));
        (
            a.parse::<u64>().map_err(|_| bad())?,
            b.parse::<u64>().map_err(|_| bad())?,
        )
    };
    Ok(match (ms, seq) {
        (0, 0) => "0-0".into(),
        (ms, 0) => format!("{}-{}", ms - 1, u64::MAX),
        (ms, seq) => format!("{ms}-{}", seq - 1),
    })
}

/// `clusterd watch`.
pub fn watch(from: Option<&str>, json: bool, config: Option<&Path>) -> Result<i32, CliError> {
    let s = settings(config)?;
    let start = from.map(start_before).transpose()?;
    let keys = Keys::new(&s.redis.key_prefix);
    let system = actix_rt::System::new();
    system
        .block_on(async {
            let client = redis::Client::open(s.redis.url.as_str())?;
            // A blocking read outlasts the client's default reply timeout.
            let cfg = redis::AsyncConnectionConfig::new()
                .set_response_timeout(Some(Duration::from_millis(BLOCK_MS + 5_000)));
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await?;
            let mut after = match start {
                Some(id) => [id.clone(), id],
                None => newest_ids(&mut conn, &keys).await?,
            };
            let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
            let stdout = std::io::stdout();
            loop {
                let read = read_after(&mut conn, &keys, &mut after, BLOCK_MS, BATCH);
                let events = tokio::select! {
                    _ = &mut interrupted => return Ok(()),
                    r = read => r?,
                };
                let mut out = stdout.lock();
                for e in &events {
                    let text = if json {
                        json!({"stream": e.stream, "id": e.id, "ts": e.ts, "topic": e.topic, "payload": e.payload_value()})
                            .to_string()
                    } else {
                        line(e)
                    };
                    if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
                        // The reader went away (`| head`): done.
                        return Ok(());
                    }
                }
            }
        })
        .map_err(|e: anyhow::Error| e)
        .with_context(|| format!("following the output streams of prefix `{}`", keys.prefix()))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_points_start_just_before_themselves() {
        assert_eq!(start_before("0").unwrap(), "0-0");
        assert_eq!(start_before("5-3").unwrap(), "5-2");
        assert_eq!(start_before("5-0").unwrap(), format!("4-{}", u64::MAX));
        assert_eq!(
            start_before("1970-01-01T00:00:01Z").unwrap(),
            format!("999-{}", u64::MAX)
        );
        assert!(start_before("yesterday").is_err());
    }

    #[test]
    fn events_read_as_sentences() {
        let p = json!({"identity_uuid": "0123456789ab", "observation_uuids": ["a"], "confidence": 0.876});
        assert_eq!(
            describe("identity.formed", &p),
            "identity 01234567 formed from 1 observation, confidence 0.88"
        );
        let p = json!({"campaign_uuid": "c", "identity_uuid": "i", "prior_campaign_uuid": null});
        assert_eq!(
            describe("campaign.identity.assigned", &p),
            "identity i assigned to campaign c"
        );
    }
}
