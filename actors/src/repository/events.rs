//! The lifecycle events of both output streams (`{p}:stream:identity`,
//! `{p}:stream:campaign`, SPEC §5) read back: all of them for `inspect`'s
//! merge history, and those after a point, as they arrive, for `watch`.

use super::keys::Keys;
use serde_json::value::RawValue;
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

/// One output event as `watch` follows it.
#[derive(Clone, Debug)]
pub struct Followed {
    /// `identity` or `campaign`: the stream it came from.
    pub stream: &'static str,
    /// The stream entry id.
    pub id: String,
    pub ts: String,
    pub topic: String,
    /// The payload as stored (JSON; `null` when the entry's was not), kept
    /// as text: the console's event stream sends it on without parsing it.
    pub payload: Box<RawValue>,
}

impl PartialEq for Followed {
    fn eq(&self, o: &Followed) -> bool {
        (
            self.stream,
            &self.id,
            &self.ts,
            &self.topic,
            self.payload.get(),
        ) == (o.stream, &o.id, &o.ts, &o.topic, o.payload.get())
    }
}

impl Followed {
    /// The payload parsed.
    pub fn payload_value(&self) -> Value {
        serde_json::from_str(self.payload.get()).unwrap_or(Value::Null)
    }
}

/// `text` as a raw JSON value, or `null` when it is not JSON.
pub fn raw_json(text: String) -> Box<RawValue> {
    RawValue::from_string(text)
        .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
}

/// The id of the newest entry of each output stream (identity, campaign),
/// `0-0` for an empty or absent stream: the point "from now" starts after.
pub async fn newest_ids(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
) -> Result<[String; 2], redis::RedisError> {
    let mut out = [String::from("0-0"), String::from("0-0")];
    for (slot, stream) in out
        .iter_mut()
        .zip([keys.identity_stream(), keys.campaign_stream()])
    {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await?;
        if let Some(e) = reply.ids.first() {
            *slot = e.id.clone();
        }
    }
    Ok(out)
}

/// The events of both output streams after `after` (identity, campaign
/// entry ids), waiting up to `block_ms` for the first; advances `after`
/// past what it returns. Events come back in entry-id order across both
/// streams.
pub async fn read_after(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
    after: &mut [String; 2],
    block_ms: u64,
    count: usize,
) -> Result<Vec<Followed>, redis::RedisError> {
    let names = [keys.identity_stream(), keys.campaign_stream()];
    let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(count)
        .arg("BLOCK")
        .arg(block_ms)
        .arg("STREAMS")
        .arg(&names[0])
        .arg(&names[1])
        .arg(&after[0])
        .arg(&after[1])
        .query_async(conn)
        .await?;
    let mut out = Vec::new();
    for key in reply.map(|r| r.keys).unwrap_or_default() {
        let Some(slot) = names.iter().position(|n| *n == key.key) else {
            continue;
        };
        let stream = ["identity", "campaign"][slot];
        for e in key.ids {
            let field = |k: &str| e.get::<String>(k).unwrap_or_default();
            let payload = raw_json(field("payload"));
            after[slot] = e.id.clone();
            out.push(Followed {
                stream,
                id: e.id.clone(),
                ts: field("ts"),
                topic: field("topic"),
                payload,
            });
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
