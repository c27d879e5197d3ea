//! Connections to Redis and waiting for it: the pool for short commands,
//! dedicated connections with their own response timeout for long work,
//! the capped exponential backoff every retry loop uses, and waiting until
//! Redis answers (where a restarted actor waits rather than failing again).

use crate::repository::health::ping;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use std::time::Duration;
use tracing::info;

/// How long connecting to Redis may take before it counts as down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Response timeout of the dedicated (long-running work) connections.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// First wait between reconnection attempts.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The redis pool for short ordinary commands (heartbeats, replies, status,
/// lease renewal). Its connections keep redis-rs's 500 ms response timeout,
/// so long work (blocking reads, commits, loading) uses dedicated
/// connections made by [`connect`].
pub type Pool = bb8::Pool<bb8_redis::RedisConnectionManager>;

/// A dedicated multiplexed connection with its own response timeout.
pub async fn connect(
    client: &redis::Client,
    response: Duration,
) -> Result<MultiplexedConnection, redis::RedisError> {
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response));
    client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
}

/// A capped exponential backoff: 100 ms, doubling up to [`MAX_BACKOFF`].
#[derive(Clone, Copy, Debug)]
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff(FIRST_BACKOFF)
    }
}

impl Backoff {
    /// The wait now; the next one is twice as long (capped).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        wait
    }

    /// The wait the next failure would get.
    pub fn current(&self) -> Duration {
        self.0
    }

    /// Back to the first wait (after a success).
    pub fn reset(&mut self) {
        self.0 = FIRST_BACKOFF;
    }
}

/// Waits until Redis answers a PING on a fresh connection, retrying with a
/// capped exponential backoff: a restarted actor waits here rather than
/// failing (and spending its budget) over and over while Redis is down.
pub async fn wait_for_redis(client: &redis::Client) {
    let mut backoff = Backoff::default();
    let mut announced = false;
    loop {
        let ok = async {
            let mut c = connect(client, CONNECT_TIMEOUT).await?;
            ping(&mut c).await
        }
        .await;
        match ok {
            Ok(()) => {
                if announced {
                    info!("Redis answers again");
                }
                return;
            }
            Err(e) => {
                if !announced {
                    tracing::warn!(error = %e, "waiting for Redis");
                    announced = true;
                }
                tokio::time::sleep(backoff.next_wait()).await;
            }
        }
    }
}

/// When `e` is a Redis Cluster node refusing clusterd's keys, one line
/// that says why and what to change; `None` for any other error. clusterd
/// speaks to one node (docs/scaling.md): its fenced commit is one MULTI/EXEC
/// and a transaction must stay in one hash slot, so every key must share
/// the slot of a hash-tagged prefix, and `redis.url` must name that slot's
/// owner.
pub fn cluster_misfit(e: &redis::RedisError, prefix: &str, url: &str) -> Option<String> {
    use redis::{ErrorKind, ServerErrorKind};
    let tagged = prefix.contains('{');
    let advice = if tagged {
        String::new()
    } else {
        format!(", and set redis.key_prefix to a hash tag such as {{{prefix}}} so every key shares one slot")
    };
    match e.kind() {
        ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask) => {
            let (owner, slot) = e.redirect_node()?;
            Some(format!(
                "Redis at {url} is a cluster node that does not serve slot {slot} of prefix {prefix}: \
                 its owner is {owner}; clusterd speaks to one node, so point redis.url at redis://{owner}{advice}"
            ))
        }
        ErrorKind::Server(ServerErrorKind::CrossSlot) => Some(format!(
            "Redis at {url} is a cluster node and the keys of prefix {prefix} fall in different hash slots, \
             which its fenced transactions cannot span: set redis.key_prefix to a hash tag such as \
             {{{}}} and point redis.url at the node that owns its slot (CLUSTER KEYSLOT {})",
            prefix.trim_matches(|c| c == '{' || c == '}'),
            prefix.trim_matches(|c| c == '{' || c == '}'),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_refusals_name_the_owner_and_the_hash_tag() {
        let moved = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::Moved),
            "moved",
            "11162 127.0.0.1:7003".to_string(),
        ));
        let m = cluster_misfit(&moved, "{decnet}", "redis://127.0.0.1:7001").unwrap();
        assert!(
            m.contains("slot 11162") && m.contains("redis://127.0.0.1:7003"),
            "{m}"
        );
        assert!(!m.contains("hash tag"), "{m}");
        let m = cluster_misfit(&moved, "decnet", "redis://127.0.0.1:7001").unwrap();
        assert!(m.contains("{decnet}"), "{m}");
        let cross = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::CrossSlot),
            "cross",
        ));
        let m = cluster_misfit(&cross, "decnet", "redis://127.0.0.1:7001").unwrap();
        assert!(
            m.contains("{decnet}") && m.contains("CLUSTER KEYSLOT decnet"),
            "{m}"
        );
        let other = redis::RedisError::from((redis::ErrorKind::Io, "down"));
        assert_eq!(cluster_misfit(&other, "decnet", "redis://x"), None);
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..8).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.current(), Duration::from_millis(100));
    }
}
