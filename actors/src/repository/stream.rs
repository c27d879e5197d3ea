//! The input stream `{p}:stream:attacker` and its consumer group (SPEC
//! §3, §4): creating the group, the blocking XREADGROUP and its reply,
//! XAUTOCLAIM of a dead consumer's entries, XPENDING delivery counts and
//! lag, the ack and the dead-letter XADD that a batch commits (trimming
//! what every group acked is `trim.rs`); and
//! publishing into the stream (what `clusterd simulate`, the demo and the
//! benchmark do), with telling when the daemon has consumed and clustered
//! everything published.

use super::keys::{Keys, CONSUMER_GROUP};
use super::write::Op;
use crate::daemon::workers;
use decnet_clusterd::scenario::GeneratedEvent;
use redis::aio::MultiplexedConnection;
use redis::RedisError;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tracing::info;

/// Creates the consumer group (and the stream) unless it exists.
pub async fn ensure_group(conn: &mut MultiplexedConnection, keys: &Keys) -> Result<(), RedisError> {
    let r: Result<String, _> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(keys.input())
        .arg(CONSUMER_GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Takes over entries another consumer (a crashed instance) read but never
/// acked, once they have been idle for `idle_ms`; returns how many.
pub async fn claim_stale(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    consumer: &str,
    idle_ms: u64,
    count: usize,
) -> Result<usize, RedisError> {
    let mut cursor = "0-0".to_string();
    let mut claimed = 0;
    for _ in 0..1000 {
        let reply: redis::Value = redis::cmd("XAUTOCLAIM")
            .arg(keys.input())
            .arg(CONSUMER_GROUP)
            .arg(consumer)
            .arg(idle_ms)
            .arg(&cursor)
            .arg("COUNT")
            .arg(count)
            .arg("JUSTID")
            .query_async(conn)
            .await?;
        let redis::Value::Array(parts) = reply else {
            break;
        };
        let next = parts
            .first()
            .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
            .unwrap_or_else(|| "0-0".into());
        claimed += parts.get(1).map_or(0, |v| match v {
            redis::Value::Array(ids) => ids.len(),
            _ => 0,
        });
        if next == "0-0" {
            break;
        }
        cursor = next;
    }
    if claimed > 0 {
        info!(claimed, "took over pending entries of a dead consumer");
    }
    Ok(claimed)
}

/// Delivery counts of `consumer`'s first `count` pending entries.
pub async fn delivery_counts(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    consumer: &str,
    count: usize,
) -> Result<HashMap<String, u64>, RedisError> {
    let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(keys.input())
        .arg(CONSUMER_GROUP)
        .arg("-")
        .arg("+")
        .arg(count)
        .arg(consumer)
        .query_async(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, _, _, count)| (id, count))
        .collect())
}

/// Entries not yet delivered to the consumer group (XINFO GROUPS lag).
pub async fn group_lag(conn: &mut MultiplexedConnection, keys: &Keys) -> Option<i64> {
    let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(keys.input())
        .query_async(conn)
        .await
        .ok()?;
    groups
        .into_iter()
        .find_map(|g| match (g.get("name"), g.get("lag")) {
            (Some(redis::Value::BulkString(n)), Some(redis::Value::Int(l)))
                if n.as_slice() == CONSUMER_GROUP.as_bytes() =>
            {
                Some(*l)
            }
            _ => None,
        })
}

/// Entries of the consumer group still pending (read and not acked).
pub async fn pending_count(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
) -> Result<i64, RedisError> {
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(keys.input())
        .arg(CONSUMER_GROUP)
        .query_async(conn)
        .await?;
    Ok(match pending {
        redis::Value::Array(v) => match v.first() {
            Some(redis::Value::Int(n)) => *n,
            _ => 0,
        },
        _ => 0,
    })
}

/// Reads up to `count` entries for `consumer`, blocking up to `block_ms`:
/// its own pending entries (`from_pending`) or new ones.
pub async fn read_group(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    consumer: &str,
    count: usize,
    block_ms: u64,
    from_pending: bool,
) -> Result<Vec<RawEntry>, RedisError> {
    let from = if from_pending { "0" } else { ">" };
    // A read that times out replies nil.
    let reply: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(CONSUMER_GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("BLOCK")
        .arg(block_ms)
        .arg("STREAMS")
        .arg(keys.input())
        .arg(from)
        .query_async(conn)
        .await?;
    stream_entries(reply)
}

/// The ack of `ids` in the consumer group, as a write of the commit.
pub fn ack_op(keys: &Keys, ids: Vec<String>) -> Op {
    let mut args = vec![keys.input(), CONSUMER_GROUP.to_string()];
    args.extend(ids);
    Op { cmd: "XACK", args }
}

/// Fields of an invalid entry copied into its dead letter.
pub const MAX_DEAD_LETTER_FIELDS: usize = 1000;

/// The dead letter of entry `id`, with its original fields (at most
/// [`MAX_DEAD_LETTER_FIELDS`], the rest counted) and the reason.
pub fn dead_letter_op(
    keys: &Keys,
    id: &str,
    fields: &[(Vec<u8>, Vec<u8>)],
    reason: String,
    maxlen: u64,
) -> Op {
    let mut args = vec![
        keys.deadletter(),
        "MAXLEN".into(),
        "~".into(),
        maxlen.to_string(),
        "*".into(),
    ];
    // An entry may carry thousands of tiny fields: the dead letter keeps the
    // first ones and counts the rest, so a hostile entry cannot make its
    // dead letter (and the commit that carries it) arbitrarily wide.
    for (k, v) in fields.iter().take(MAX_DEAD_LETTER_FIELDS) {
        args.push(format!("orig_{}", String::from_utf8_lossy(k)));
        args.push(String::from_utf8_lossy(v).into_owned());
    }
    if fields.len() > MAX_DEAD_LETTER_FIELDS {
        args.push("orig_fields_dropped".to_string());
        args.push((fields.len() - MAX_DEAD_LETTER_FIELDS).to_string());
    }
    args.extend([
        "entry_id".to_string(),
        id.to_string(),
        "reason".to_string(),
        reason,
    ]);
    Op { cmd: "XADD", args }
}

/// One input entry as read: its id and its fields, raw bytes, in order.
pub type RawEntry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// The entries of an XREADGROUP reply (RESP2 arrays or RESP3 maps; nil when
/// the read timed out), moved out of the reply rather than copied. Field
/// names stay bytes like the values: a name that is not UTF-8 is a problem
/// of its entry, never of the read (which would stall ingest behind it).
pub fn stream_entries(reply: redis::Value) -> Result<Vec<RawEntry>, redis::RedisError> {
    use redis::Value;
    let unexpected = |what: &str| {
        redis::RedisError::from((
            redis::ErrorKind::Parse,
            "unexpected XREADGROUP reply",
            what.to_string(),
        ))
    };
    let bytes = |v: Value| match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        other => Err(unexpected(&format!("a field of kind {other:?}"))),
    };
    let streams: Vec<Value> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams,
        Value::Map(streams) => streams
            .into_iter()
            .map(|(name, entries)| Value::Array(vec![name, entries]))
            .collect(),
        _ => return Err(unexpected("not a list of streams")),
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(mut parts) = stream else {
            return Err(unexpected("a stream that is not a [name, entries] pair"));
        };
        let entries = match parts.pop() {
            Some(Value::Array(entries)) if parts.len() == 1 => entries,
            _ => return Err(unexpected("a stream that is not a [name, entries] pair")),
        };
        out.reserve(entries.len());
        for entry in entries {
            let Value::Array(mut e) = entry else {
                return Err(unexpected("an entry that is not an [id, fields] pair"));
            };
            let (fields, id) = match (e.pop(), e.pop()) {
                (Some(fields), Some(id)) if e.is_empty() => (fields, id),
                _ => return Err(unexpected("an entry that is not an [id, fields] pair")),
            };
            let id = String::from_utf8(bytes(id)?).map_err(|_| unexpected("a non-UTF-8 id"))?;
            let fields = match fields {
                // A pending entry deleted from the stream since.
                Value::Nil => Vec::new(),
                Value::Array(flat) => {
                    let mut pairs = Vec::with_capacity(flat.len() / 2);
                    let mut it = flat.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((bytes(k)?, bytes(v)?));
                    }
                    pairs
                }
                Value::Map(m) => m
                    .into_iter()
                    .map(|(k, v)| Ok((bytes(k)?, bytes(v)?)))
                    .collect::<Result<_, redis::RedisError>>()?,
                _ => return Err(unexpected("entry fields that are not a list")),
            };
            out.push((id, fields));
        }
    }
    Ok(out)
}

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
    let layers = match (health(workers::IDENTITY), health(workers::CAMPAIGN)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn bulk(b: &[u8]) -> Value {
        Value::BulkString(b.to_vec())
    }

    #[test]
    fn stream_replies_of_both_protocols_give_entries_in_order_with_raw_names() {
        let entry = |id: &[u8], fields: Value| Value::Array(vec![bulk(id), fields]);
        let entries = Value::Array(vec![
            entry(
                b"1-0",
                Value::Array(vec![bulk(b"topic"), bulk(b"t"), bulk(&[0xff]), bulk(b"x")]),
            ),
            // Deleted from the stream while pending.
            entry(b"2-0", Value::Nil),
        ]);
        let want: Vec<RawEntry> = vec![
            (
                "1-0".into(),
                vec![
                    (b"topic".to_vec(), b"t".to_vec()),
                    (vec![0xff], b"x".to_vec()),
                ],
            ),
            ("2-0".into(), vec![]),
        ];
        let resp2 = Value::Array(vec![Value::Array(vec![bulk(b"s"), entries.clone()])]);
        assert_eq!(stream_entries(resp2).unwrap(), want);
        let resp3 = Value::Map(vec![(bulk(b"s"), entries)]);
        assert_eq!(stream_entries(resp3).unwrap(), want);
        assert!(stream_entries(Value::Nil).unwrap().is_empty());
        // A shape Redis never sends is an error, not a silent skip (skipped
        // entries would stay pending forever).
        let odd = Value::Array(vec![Value::Array(vec![bulk(b"s"), Value::Int(3)])]);
        assert!(stream_entries(odd).is_err());
        let odd = Value::Array(vec![Value::Array(vec![
            bulk(b"s"),
            Value::Array(vec![Value::Array(vec![bulk(b"1-0")])]),
        ])]);
        assert!(stream_entries(odd).is_err());
    }

    #[test]
    fn a_dead_letter_keeps_the_first_fields_and_counts_the_rest() {
        let keys = Keys::new("t");
        let fields: Vec<(Vec<u8>, Vec<u8>)> = (0..MAX_DEAD_LETTER_FIELDS + 3)
            .map(|i| (format!("f{i}").into_bytes(), vec![0xff]))
            .collect();
        let op = dead_letter_op(&keys, "7-0", &fields, "why".into(), 50);
        assert_eq!(op.cmd, "XADD");
        assert_eq!(
            op.args[..5],
            ["t:stream:deadletter", "MAXLEN", "~", "50", "*"]
        );
        assert_eq!(op.args[5..7], ["orig_f0", "\u{fffd}"]);
        let tail = &op.args[op.args.len() - 6..];
        assert_eq!(
            tail,
            [
                "orig_fields_dropped",
                "3",
                "entry_id",
                "7-0",
                "reason",
                "why"
            ]
        );
        assert_eq!(op.args.len(), 5 + 2 * MAX_DEAD_LETTER_FIELDS + 6);
        let ack = ack_op(&keys, vec!["1-0".into(), "2-0".into()]);
        assert_eq!(ack.args, ["t:stream:attacker", "clusterd", "1-0", "2-0"]);
    }
}
