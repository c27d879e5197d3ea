//! The lifecycle events of both output streams (`{p}:stream:identity`,
//! `{p}:stream:campaign`, SPEC §4) read back, for `inspect`'s merge
//! history.

use super::keys::Keys;
use serde_json::Value;

/// Every retained event, oldest first: (stream entry id, ts, topic,
/// payload).
pub async fn read_events(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
) -> Result<Vec<(String, String, String, Value)>, redis::RedisError> {
    let mut out = Vec::new();
    for stream in [keys.identity_stream(), keys.campaign_stream()] {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&stream)
            .arg("-")
            .arg("+")
            .query_async(conn)
            .await?;
        for e in reply.ids {
            let field = |k: &str| e.get::<String>(k).unwrap_or_default();
            let payload = serde_json::from_str(&field("payload")).unwrap_or(Value::Null);
            out.push((e.id.clone(), field("ts"), field("topic"), payload));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    Ok(out)
}
