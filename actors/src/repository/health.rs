//! The heartbeat keys `{p}:health:{worker}` (SPEC §6) and the figures
//! `status` reports: writing the heartbeats of the leader (and, only where
//! no leader's is present, those of a standby), deleting them at a clean
//! stop, reading them back, the leader, queue lengths and row counts; and the
//! leader's rendered metrics `{p}:metrics`, written with its heartbeats
//! (same TTL) for a `clusterd serve` in another process.

use super::keys::Keys;
use redis::aio::ConnectionLike;
use redis::RedisError;
use serde_json::Value;

/// Writes each `(worker, payload)` heartbeat with a TTL of `ttl_ms`, in one
/// pipeline. With `only_if_absent`, a key that exists is left alone (a
/// standby never overwrites the leader's heartbeat).
pub async fn write_heartbeats<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    beats: Vec<(&str, Value)>,
    ttl_ms: u64,
    only_if_absent: bool,
) -> Result<(), RedisError> {
    let mut pipe = redis::pipe();
    for (worker, payload) in beats {
        let cmd = pipe
            .cmd("SET")
            .arg(keys.health(worker))
            .arg(payload.to_string())
            .arg("PX")
            .arg(ttl_ms);
        if only_if_absent {
            cmd.arg("NX");
        }
        cmd.ignore();
    }
    pipe.query_async(conn).await
}

/// Writes the leader's rendered metrics with a TTL of `ttl_ms`.
pub async fn write_metrics<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    text: &str,
    ttl_ms: u64,
) -> Result<(), RedisError> {
    redis::cmd("SET")
        .arg(keys.metrics())
        .arg(text)
        .arg("PX")
        .arg(ttl_ms)
        .query_async(conn)
        .await
}

/// The leader's last rendered metrics, if it wrote them within their TTL.
pub async fn read_metrics<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
) -> Result<Option<String>, RedisError> {
    redis::cmd("GET")
        .arg(keys.metrics())
        .query_async(conn)
        .await
}

/// Deletes the leader's rendered metrics (a clean stop).
pub async fn delete_metrics<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
) -> Result<(), RedisError> {
    redis::cmd("DEL")
        .arg(keys.metrics())
        .query_async(conn)
        .await
}

/// Deletes the heartbeats of `workers`.
pub async fn delete_heartbeats<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    workers: &[&str],
) -> Result<(), RedisError> {
    let keys: Vec<String> = workers.iter().map(|w| keys.health(w)).collect();
    redis::cmd("DEL").arg(keys).query_async(conn).await
}

/// The heartbeat of `worker`, if present and JSON.
pub async fn read_heartbeat<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    worker: &str,
) -> Result<Option<Value>, RedisError> {
    let raw: Option<String> = redis::cmd("GET")
        .arg(keys.health(worker))
        .query_async(conn)
        .await?;
    Ok(raw.and_then(|r| serde_json::from_str::<Value>(&r).ok()))
}

/// The lease holder, and the lengths of the input and dead-letter streams.
pub async fn leader_and_queues<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
) -> Result<(Option<String>, u64, u64), RedisError> {
    redis::pipe()
        .get(keys.leader())
        .xlen(keys.input())
        .xlen(keys.deadletter())
        .query_async(conn)
        .await
}

/// The sizes of the row sets: observations, identities and campaigns
/// stored (merged-out rows included).
pub async fn row_counts<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
) -> Result<(u64, u64, u64), RedisError> {
    redis::pipe()
        .scard(keys.attackers())
        .scard(keys.identities())
        .scard(keys.campaigns())
        .query_async(conn)
        .await
}

/// PING on `conn`: whether Redis answers.
pub async fn ping<C: ConnectionLike>(conn: &mut C) -> Result<(), RedisError> {
    redis::cmd("PING")
        .query_async::<String>(conn)
        .await
        .map(drop)
}

/// What the console's overview strip shows, read in one pipeline.
#[derive(Debug, Default)]
pub struct Overview {
    /// Stored rows in the index sets (merged-out identities and campaigns
    /// included: their rows remain).
    pub observations: u64,
    pub identities: u64,
    pub campaigns: u64,
    pub leader: Option<String>,
    /// The heartbeat payloads of `workers` whose keys exist, sorted by worker.
    pub heartbeats: Vec<Value>,
}

/// The index-set sizes, the leader and the present heartbeats of `workers`.
pub async fn worker_heartbeats<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    workers: &[&str],
) -> Result<Overview, RedisError> {
    let beat_keys: Vec<String> = workers.iter().map(|w| keys.health(w)).collect();
    let (observations, identities, campaigns, leader, raw): (
        u64,
        u64,
        u64,
        Option<String>,
        Vec<Option<String>>,
    ) = redis::pipe()
        .scard(keys.attackers())
        .scard(keys.identities())
        .scard(keys.campaigns())
        .get(keys.leader())
        .cmd("MGET")
        .arg(beat_keys)
        .query_async(conn)
        .await?;
    let mut heartbeats: Vec<Value> = raw
        .into_iter()
        .flatten()
        .filter_map(|r| serde_json::from_str::<Value>(&r).ok())
        .collect();
    heartbeats.sort_by(|a, b| a["worker"].as_str().cmp(&b["worker"].as_str()));
    Ok(Overview {
        observations,
        identities,
        campaigns,
        leader,
        heartbeats,
    })
}
