//! Publishing into the input stream (what `clusterd simulate`, the demo and
//! the benchmark do) and telling when the daemon has consumed and clustered
//! everything published.

use crate::keys::Keys;
use decnet_clusterd::scenario::GeneratedEvent;
use redis::aio::MultiplexedConnection;
use std::time::{Duration, Instant};

/// Appends events to `{p}:stream:attacker` in pipelined chunks, at most
/// `rate` events per second when given; calls `progress` after each chunk.
pub async fn publish(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    events: &[GeneratedEvent],
    rate: Option<u32>,
    mut progress: impl FnMut(usize),
) -> Result<(), redis::RedisError> {
    let chunk = rate.map_or(500, |r| (r as usize / 10).clamp(1, 500));
    let started = Instant::now();
    let mut sent = 0usize;
    for part in events.chunks(chunk) {
        let mut pipe = redis::pipe();
        for e in part {
            pipe.cmd("XADD").arg(keys.input()).arg("*");
            for (k, v) in e.fields() {
                pipe.arg(k).arg(v);
            }
            pipe.ignore();
        }
        let _: () = pipe.query_async(conn).await?;
        sent += part.len();
        progress(sent);
        if let Some(r) = rate.filter(|r| *r > 0) {
            let due = Duration::from_secs_f64(sent as f64 / r as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    Ok(())
}

/// Every published entry was consumed (the daemon's counters say so, which
/// rules out a heartbeat written before the batch), nothing is pending or
/// unread, and nothing is left to cluster: no changed observation waits for
/// (or is in) an identity pass, and the campaign layer has committed a pass
/// after the identity layer's latest.
pub fn settled(c: &mut redis::Connection, keys: &Keys, published: u64) -> bool {
    use redis::Commands;
    let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(keys.input())
        .query(c)
        .unwrap_or_default();
    let drained = groups.iter().any(|g| {
        matches!(g.get("lag"), Some(redis::Value::Int(0)))
            && matches!(g.get("pending"), Some(redis::Value::Int(0)))
    });
    let mut health = |worker: &str| -> Option<serde_json::Value> {
        let h: String = c.get(keys.health(worker)).ok()?;
        serde_json::from_str(&h).ok()
    };
    let count = |h: &serde_json::Value, k: &str| h[k].as_u64().unwrap_or(0);
    let layers = match (health(IDENTITY_WORKER), health(CAMPAIGN_WORKER)) {
        (Some(i), Some(c)) => {
            i["dirty"] == 0 && c["dirty"] == 0 && count(&c, "identity_ticks") >= count(&i, "ticks")
        }
        _ => false,
    };
    drained
        && layers
        && health("clusterd").is_some_and(|h| {
            h["state"] == "running"
                && count(&h, "ingested") + count(&h, "dead_lettered") + count(&h, "unknown_topics")
                    >= published
        })
}

/// The heartbeat keys of the two clustering layers (SPEC §6 worker names).
const IDENTITY_WORKER: &str = crate::actor::identity_clusterer::WORKER;
const CAMPAIGN_WORKER: &str = crate::actor::campaign_clusterer::WORKER;
