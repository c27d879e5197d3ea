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

/// A cheap fingerprint of the repository's state: the newest entry id of
/// the input and both output streams, and the sizes of the index sets.
/// When it is unchanged, a snapshot built earlier still describes the data.
pub async fn state_version<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
) -> Result<String, redis::RedisError> {
    let newest = |stream: String| {
        let mut c = redis::cmd("XREVRANGE");
        c.arg(stream).arg("+").arg("-").arg("COUNT").arg(1);
        c
    };
    let (input, identity, campaign, obs, ids, camps): (
        redis::streams::StreamRangeReply,
        redis::streams::StreamRangeReply,
        redis::streams::StreamRangeReply,
        u64,
        u64,
        u64,
    ) = redis::pipe()
        .add_command(newest(keys.input()))
        .add_command(newest(keys.identity_stream()))
        .add_command(newest(keys.campaign_stream()))
        .scard(keys.attackers())
        .scard(keys.identities())
        .scard(keys.campaigns())
        .query_async(conn)
        .await?;
    let id = |r: &redis::streams::StreamRangeReply| {
        r.ids.first().map(|e| e.id.clone()).unwrap_or_default()
    };
    Ok(format!(
        "{}|{}|{}|{obs}|{ids}|{camps}",
        id(&input),
        id(&identity),
        id(&campaign)
    ))
}
