//! The repository's state version and the live feed of both output streams
//! (`{p}:stream:identity`, `{p}:stream:campaign`) as the HTTP server uses them:
//! a cheap fingerprint that tells the console's cache when to rebuild, and
//! a blocking read of new entries for server-sent events.

use super::keys::Keys;
use serde_json::Value;

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

/// One entry of an output stream, as the event feed sends it.
#[derive(Debug, Clone)]
pub struct StreamEvent {
    /// `identity` or `campaign`.
    pub stream: &'static str,
    pub id: String,
    pub ts: String,
    pub topic: String,
    pub payload: Value,
}

/// Blocks up to `block_ms` for entries after `last` (identity, campaign;
/// `$` means "from now") on both output streams, and moves `last` on.
/// Entries come back by stream entry id.
pub async fn read_new(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
    last: &mut [String; 2],
    block_ms: u64,
) -> Result<Vec<StreamEvent>, redis::RedisError> {
    let names = [keys.identity_stream(), keys.campaign_stream()];
    if last.iter().any(|l| l == "$") {
        // Pin "now" to real ids so a later read misses nothing.
        for (i, name) in names.iter().enumerate() {
            if last[i] == "$" {
                let r: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                    .arg(name)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(conn)
                    .await?;
                last[i] = r.ids.first().map_or("0-0".to_string(), |e| e.id.clone());
            }
        }
    }
    let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(100)
        .arg("BLOCK")
        .arg(block_ms)
        .arg("STREAMS")
        .arg(&names[0])
        .arg(&names[1])
        .arg(&last[0])
        .arg(&last[1])
        .query_async(conn)
        .await?;
    let mut out = Vec::new();
    for key in reply.map(|r| r.keys).unwrap_or_default() {
        let (slot, stream) = if key.key == names[0] {
            (0, "identity")
        } else {
            (1, "campaign")
        };
        for e in key.ids {
            let field = |k: &str| e.get::<String>(k).unwrap_or_default();
            out.push(StreamEvent {
                stream,
                ts: field("ts"),
                topic: field("topic"),
                payload: serde_json::from_str(&field("payload")).unwrap_or(Value::Null),
                id: e.id.clone(),
            });
            last[slot] = e.id;
        }
    }
    out.sort_by_key(|e| entry_order(&e.id));
    Ok(out)
}

/// A stream entry id (`ms-seq`) as numbers, for ordering entries of two
/// streams together (unparsable ids sort first).
pub fn entry_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}
