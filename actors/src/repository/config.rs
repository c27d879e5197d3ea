//! `{p}:config` (SPEC §3): the running leader's effective configuration,
//! one JSON string, written when an instance becomes leader and read by
//! `explain` and the console.

use super::keys::Keys;
use redis::aio::ConnectionLike;
use redis::RedisError;
use serde_json::Value;

/// Writes the effective configuration document.
pub async fn write_config<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    document: &Value,
) -> Result<(), RedisError> {
    redis::cmd("SET")
        .arg(keys.config())
        .arg(document.to_string())
        .query_async(conn)
        .await
}

/// The effective configuration document as written, if any.
pub async fn read_config<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
) -> Result<Option<String>, RedisError> {
    redis::cmd("GET").arg(keys.config()).query_async(conn).await
}
