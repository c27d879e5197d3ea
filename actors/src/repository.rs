//! The Redis repository: how the store's rows are written (as a batch of
//! write operations that the fenced commit applies atomically, SPEC
//! §2, §5) and how the whole store is loaded back at start.

use crate::keys::Keys;
use decnet_clusterd::evidence::time::{format_timestamp, parse_timestamp};
use decnet_clusterd::evidence::{Millis, Observation};
use decnet_clusterd::identity::{Decision, Decisions};
use decnet_clusterd::set::SortedSet;
use decnet_clusterd::store::{CampaignRow, IdentityRow, Journal, OutEvent, OutStream, Store};
use redis::aio::MultiplexedConnection;
use std::collections::BTreeMap;
use tracing::debug;

/// One write operation: a command name and its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub cmd: &'static str,
    pub args: Vec<String>,
}

fn ts(t: Option<Millis>) -> String {
    t.map(format_timestamp).unwrap_or_default()
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// The internal `evidence` field of an observation's hash.
pub fn evidence(o: &Observation) -> String {
    json(o)
}

/// HSET of an observation: public fields plus the internal `evidence`
/// (`evidence`, when given, is [`evidence`] of `o`, made ahead of time).
/// The index set `{p}:attackers` is the caller's: one [`index_op`] per
/// commit.
pub fn observation_op(
    keys: &Keys,
    o: &Observation,
    identity: Option<&str>,
    evidence: Option<String>,
) -> Op {
    debug_assert!(evidence.as_ref().is_none_or(|e| *e == json(o)));
    let mut args = vec![
        keys.attacker(&o.uuid),
        "uuid".into(),
        o.uuid.clone(),
        "ip".into(),
        o.ip().unwrap_or_default().to_string(),
        "asn".into(),
        o.asn().map(|a| a.to_string()).unwrap_or_default(),
        "first_seen".into(),
        ts(o.first_seen),
        "last_seen".into(),
        ts(o.last_seen),
        "evidence".into(),
        evidence.unwrap_or_else(|| json(o)),
    ];
    if let Some(i) = identity {
        args.extend(["identity_id".to_string(), i.to_string()]);
    }
    Op { cmd: "HSET", args }
}

/// One SADD of every uuid a commit writes a row of to its index set (a
/// batch writes thousands of rows, and each command of a transaction costs
/// Redis about as much as the work it does); `None` when there are none.
pub fn index_op<'a>(set: String, uuids: impl IntoIterator<Item = &'a String>) -> Option<Op> {
    let mut args = vec![set];
    args.extend(uuids.into_iter().cloned());
    (args.len() > 1).then_some(Op { cmd: "SADD", args })
}

fn identity_fields(r: &IdentityRow) -> Vec<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        ("uuid", r.uuid.clone()),
        ("schema_version", r.schema_version.to_string()),
        ("campaign_id", opt(&r.campaign_id)),
        ("merged_into_uuid", opt(&r.merged_into_uuid)),
        ("observation_count", r.observation_count.to_string()),
        ("first_seen_at", ts(r.first_seen_at)),
        ("last_seen_at", ts(r.last_seen_at)),
        ("created_at", format_timestamp(r.created_at)),
        ("updated_at", format_timestamp(r.updated_at)),
        ("confidence", r.confidence.to_string()),
        ("ja3_hashes", json(&r.ja3_hashes)),
        ("hassh_hashes", json(&r.hassh_hashes)),
        ("payload_hashes", json(&r.payload_hashes)),
        ("c2_endpoints", json(&r.c2_endpoints)),
        ("kd_digraph_simhash", opt(&r.kd_digraph_simhash)),
        ("notes", r.notes.clone()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect()
}

fn campaign_fields(r: &CampaignRow) -> Vec<String> {
    [
        ("uuid", r.uuid.clone()),
        ("schema_version", r.schema_version.to_string()),
        (
            "merged_into_uuid",
            r.merged_into_uuid.clone().unwrap_or_default(),
        ),
        ("identity_count", r.identity_count.to_string()),
        ("first_seen_at", ts(r.first_seen_at)),
        ("last_seen_at", ts(r.last_seen_at)),
        ("created_at", format_timestamp(r.created_at)),
        ("updated_at", format_timestamp(r.updated_at)),
        ("confidence", r.confidence.to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect()
}

/// XADD of one lifecycle event (approximately trimmed).
pub fn event_op(keys: &Keys, e: &OutEvent, maxlen: u64, now: Millis) -> Op {
    let stream = match e.stream {
        OutStream::Identity => keys.identity_stream(),
        OutStream::Campaign => keys.campaign_stream(),
    };
    Op {
        cmd: "XADD",
        args: vec![
            stream,
            "MAXLEN".into(),
            "~".into(),
            maxlen.to_string(),
            "*".into(),
            "topic".into(),
            e.topic.clone(),
            "event_id".into(),
            uuid::Uuid::new_v4().to_string(),
            "ts".into(),
            format_timestamp(now),
            "payload".into(),
            e.payload.to_string(),
        ],
    }
}

/// Every write of a journal: rows, assignments and events.
pub fn journal_ops(keys: &Keys, j: &Journal, maxlen: u64, now: Millis) -> Vec<Op> {
    let mut ops = Vec::new();
    for (obs, identity) in &j.observation_identity {
        ops.push(Op {
            cmd: "HSET",
            args: vec![keys.attacker(obs), "identity_id".into(), identity.clone()],
        });
    }
    for r in j.identities.values() {
        let mut args = vec![keys.identity(&r.uuid)];
        args.extend(identity_fields(r));
        ops.push(Op { cmd: "HSET", args });
    }
    ops.extend(index_op(keys.identities(), j.identities.keys()));
    for (identity, (campaign, at)) in &j.identity_campaigns {
        ops.push(Op {
            cmd: "HSET",
            args: vec![
                keys.identity(identity),
                "campaign_id".into(),
                campaign.clone(),
                "updated_at".into(),
                format_timestamp(*at),
            ],
        });
    }
    for r in j.campaigns.values() {
        let mut args = vec![keys.campaign(&r.uuid)];
        args.extend(campaign_fields(r));
        ops.push(Op { cmd: "HSET", args });
    }
    ops.extend(index_op(keys.campaigns(), j.campaigns.keys()));
    ops.extend(j.events.iter().map(|e| event_op(keys, e, maxlen, now)));
    ops
}

/// A problem reading the repository back.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{key}: {problem}")]
    Corrupt { key: String, problem: String },
}

/// Keys per pipeline when loading.
const CHUNK: usize = 1000;
/// Pipelines in flight at once when loading: while Redis answers one, the
/// replies of the others are parsed on blocking threads.
const IN_FLIGHT: usize = 4;

/// One hash read back by HMGET: the values of the requested fields, in
/// order, `None` when absent.
struct Fields(Vec<Option<Vec<u8>>>);

impl Fields {
    fn from_reply(v: redis::Value) -> Fields {
        let redis::Value::Array(items) = v else {
            return Fields(Vec::new());
        };
        Fields(
            items
                .into_iter()
                .map(|v| match v {
                    redis::Value::BulkString(b) => Some(b),
                    redis::Value::SimpleString(s) => Some(s.into_bytes()),
                    _ => None,
                })
                .collect(),
        )
    }

    /// Field `i` as bytes, `None` when absent or empty.
    fn bytes(&self, i: usize) -> Option<&[u8]> {
        self.0
            .get(i)
            .and_then(Option::as_deref)
            .filter(|v| !v.is_empty())
    }

    /// Field `i` as text, `None` when absent, empty or not UTF-8.
    fn get(&self, i: usize) -> Option<&str> {
        self.bytes(i).and_then(|v| std::str::from_utf8(v).ok())
    }

    fn string(&self, i: usize) -> Option<String> {
        self.get(i).map(str::to_string)
    }

    fn time(&self, i: usize) -> Option<Millis> {
        self.get(i)
            .and_then(|v| parse_timestamp(&serde_json::Value::String(v.to_string())).ok())
    }

    fn set(&self, i: usize) -> SortedSet<String> {
        self.bytes(i)
            .and_then(|v| serde_json::from_slice(v).ok())
            .unwrap_or_default()
    }

    fn parse<T: std::str::FromStr>(&self, i: usize) -> Option<T> {
        self.get(i).and_then(|v| v.parse().ok())
    }
}

/// Reads `fields` of every key with pipelined HMGETs, [`IN_FLIGHT`]
/// pipelines of [`CHUNK`] keys at a time on the multiplexed connection, and
/// turns each reply into rows with `parse` on a blocking thread (so a large
/// load neither leaves Redis idle while parsing nor blocks the runtime, whose
/// other tasks — the lease keeper — must keep running). Rows come back in the
/// order of `keys`; `parse` returns `None` for a hash to skip. `progress`
/// gets the number of hashes read so far.
async fn fetch<T, F>(
    conn: &MultiplexedConnection,
    keys: Vec<String>,
    fields: &'static [&'static str],
    parse: F,
    mut progress: impl FnMut(usize),
) -> Result<Vec<T>, LoadError>
where
    T: Send + 'static,
    F: Fn(&str, Fields) -> Result<Option<T>, LoadError> + Copy + Send + 'static,
{
    use futures_util::{StreamExt, TryStreamExt};
    let total = keys.len();
    let mut chunks = Vec::with_capacity(total.div_ceil(CHUNK));
    let mut keys = keys.into_iter();
    loop {
        let chunk: Vec<String> = keys.by_ref().take(CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let mut parsed = futures_util::stream::iter(chunks)
        .map(|chunk| {
            let mut conn = conn.clone();
            async move {
                let mut pipe = redis::pipe();
                for k in &chunk {
                    pipe.cmd("HMGET").arg(k).arg(fields);
                }
                let replies: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
                let read = chunk.len();
                let rows = tokio::task::spawn_blocking(move || {
                    let mut rows = Vec::with_capacity(chunk.len());
                    for (k, v) in chunk.iter().zip(replies) {
                        if let Some(row) = parse(k, Fields::from_reply(v))? {
                            rows.push(row);
                        }
                    }
                    Ok::<_, LoadError>(rows)
                })
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
                Ok::<_, LoadError>((read, rows))
            }
        })
        .buffered(IN_FLIGHT);
    let mut out = Vec::with_capacity(total);
    let mut read = 0;
    while let Some((n, rows)) = parsed.try_next().await? {
        out.extend(rows);
        read += n;
        progress(read);
    }
    Ok(out)
}

/// The members of a set, sorted (so the maps built from them are built in
/// order).
async fn members(conn: &mut MultiplexedConnection, set: String) -> Result<Vec<String>, LoadError> {
    let mut m: Vec<String> = redis::cmd("SMEMBERS").arg(set).query_async(conn).await?;
    m.sort_unstable();
    Ok(m)
}

const OBSERVATION_FIELDS: &[&str] = &["evidence", "identity_id"];

/// An observation and its direct identity, from its hash.
fn observation_row(
    key: &str,
    h: Fields,
) -> Result<Option<(Observation, Option<String>)>, LoadError> {
    let Some(evidence) = h.bytes(0) else {
        return Ok(None);
    };
    let o: Observation = serde_json::from_slice(evidence).map_err(|e| LoadError::Corrupt {
        key: key.to_string(),
        problem: format!("evidence is not valid: {e}"),
    })?;
    Ok(Some((o, h.string(1))))
}

const IDENTITY_FIELDS: &[&str] = &[
    "uuid",
    "schema_version",
    "campaign_id",
    "merged_into_uuid",
    "observation_count",
    "first_seen_at",
    "last_seen_at",
    "created_at",
    "updated_at",
    "confidence",
    "ja3_hashes",
    "hassh_hashes",
    "payload_hashes",
    "c2_endpoints",
    "kd_digraph_simhash",
    "notes",
];

fn identity_row(_key: &str, h: Fields) -> Result<Option<IdentityRow>, LoadError> {
    let Some(uuid) = h.string(0) else {
        return Ok(None);
    };
    Ok(Some(IdentityRow {
        uuid,
        schema_version: h.parse(1).unwrap_or(1),
        campaign_id: h.string(2),
        merged_into_uuid: h.string(3),
        observation_count: h.parse(4).unwrap_or(0),
        first_seen_at: h.time(5),
        last_seen_at: h.time(6),
        created_at: h.time(7).unwrap_or(0),
        updated_at: h.time(8).unwrap_or(0),
        confidence: h.parse(9).unwrap_or(0.0),
        ja3_hashes: h.set(10),
        hassh_hashes: h.set(11),
        payload_hashes: h.set(12),
        c2_endpoints: h.set(13),
        kd_digraph_simhash: h.string(14),
        notes: h
            .0
            .get(15)
            .and_then(Option::as_deref)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default(),
    }))
}

const CAMPAIGN_FIELDS: &[&str] = &[
    "uuid",
    "schema_version",
    "merged_into_uuid",
    "identity_count",
    "first_seen_at",
    "last_seen_at",
    "created_at",
    "updated_at",
    "confidence",
];

fn campaign_row(_key: &str, h: Fields) -> Result<Option<CampaignRow>, LoadError> {
    let Some(uuid) = h.string(0) else {
        return Ok(None);
    };
    Ok(Some(CampaignRow {
        uuid,
        schema_version: h.parse(1).unwrap_or(1),
        merged_into_uuid: h.string(2),
        identity_count: h.parse(3).unwrap_or(0),
        first_seen_at: h.time(4),
        last_seen_at: h.time(5),
        created_at: h.time(6).unwrap_or(0),
        updated_at: h.time(7).unwrap_or(0),
        confidence: h.parse(8).unwrap_or(0.0),
    }))
}

/// Loads the whole stored state (observations, identities, campaigns,
/// decisions) into a store.
pub async fn load(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    mut progress: impl FnMut(&str, usize),
) -> Result<Store, LoadError> {
    let t = std::time::Instant::now();
    let mut store = Store::default();
    let uuids = members(conn, keys.attackers()).await?;
    debug!(
        members = uuids.len(),
        elapsed_ms = t.elapsed().as_millis() as u64,
        "observation uuids read"
    );
    let rows = fetch(
        conn,
        uuids.iter().map(|u| keys.attacker(u)).collect(),
        OBSERVATION_FIELDS,
        observation_row,
        |n| progress("observations", n),
    )
    .await?;
    drop(uuids);
    debug!(
        elapsed_ms = t.elapsed().as_millis() as u64,
        "observations read"
    );
    // The rows come in uuid order, so the maps are built in bulk, in order.
    let mut direct = Vec::new();
    store.observations = rows
        .into_iter()
        .map(|(o, identity)| {
            if let Some(i) = identity {
                direct.push((o.uuid.clone(), i));
            }
            (o.uuid.clone(), o)
        })
        .collect();
    store.identity_groups.direct = direct.into_iter().collect();
    debug!(
        elapsed_ms = t.elapsed().as_millis() as u64,
        "observations indexed"
    );
    let ids = members(conn, keys.identities()).await?;
    let rows = fetch(
        conn,
        ids.iter().map(|u| keys.identity(u)).collect(),
        IDENTITY_FIELDS,
        identity_row,
        |n| progress("identities", n),
    )
    .await?;
    let mut merged = Vec::new();
    let mut campaign_of = Vec::new();
    store.identity_groups.groups = rows.iter().map(|r| r.uuid.clone()).collect();
    store.identities = rows
        .into_iter()
        .map(|row| {
            if let Some(w) = &row.merged_into_uuid {
                merged.push((row.uuid.clone(), w.clone()));
            }
            if let Some(c) = &row.campaign_id {
                campaign_of.push((row.uuid.clone(), c.clone()));
            }
            (row.uuid.clone(), row)
        })
        .collect();
    store.identity_groups.merged_into = merged.into_iter().collect();
    store.campaign_groups.direct = campaign_of.into_iter().collect();
    debug!(
        elapsed_ms = t.elapsed().as_millis() as u64,
        "identities read"
    );
    let camps = members(conn, keys.campaigns()).await?;
    let rows = fetch(
        conn,
        camps.iter().map(|u| keys.campaign(u)).collect(),
        CAMPAIGN_FIELDS,
        campaign_row,
        |n| progress("campaigns", n),
    )
    .await?;
    let mut merged = Vec::new();
    store.campaign_groups.groups = rows.iter().map(|r| r.uuid.clone()).collect();
    store.campaigns = rows
        .into_iter()
        .map(|row| {
            if let Some(w) = &row.merged_into_uuid {
                merged.push((row.uuid.clone(), w.clone()));
            }
            (row.uuid.clone(), row)
        })
        .collect();
    store.campaign_groups.merged_into = merged.into_iter().collect();
    debug!(
        elapsed_ms = t.elapsed().as_millis() as u64,
        "campaigns read"
    );
    store.decisions = load_decisions(conn, keys).await?;
    // Everything loaded is already stored: nothing is pending.
    store.changed_observations.clear();
    store.changed_identities.clear();
    store.decisions_changed = false;
    Ok(store)
}

/// Loads operator decisions (`{p}:decisions`); malformed entries are skipped.
pub async fn load_decisions(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
) -> Result<Decisions, redis::RedisError> {
    let raw: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(keys.decisions())
        .query_async(conn)
        .await?;
    let mut d = Decisions::default();
    for (pair, v) in raw {
        let (Some((a, b)), Ok(decision)) =
            (pair.split_once('|'), serde_json::from_str::<Decision>(&v))
        else {
            continue;
        };
        d.set(a, b, decision);
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(cmd: &'static str, args: &[&str]) -> Op {
        Op {
            cmd,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn a_campaign_assignment_alone_writes_two_fields_and_a_whole_row_follows_it() {
        let keys = Keys::new("t");
        let mut j = Journal::default();
        j.identity_campaigns
            .insert("id-1".into(), ("camp-1".into(), 1_700_000_000_000));
        let row = IdentityRow {
            uuid: "id-2".into(),
            campaign_id: Some("camp-2".into()),
            ..Default::default()
        };
        j.identities.insert("id-2".into(), row);
        let ops = journal_ops(&keys, &j, 100, 0);
        let assigned: Vec<&Op> = ops
            .iter()
            .filter(|o| o.args.first().is_some_and(|k| *k == keys.identity("id-1")))
            .collect();
        assert_eq!(
            assigned,
            vec![&op(
                "HSET",
                &[
                    "t:identity:id-1",
                    "campaign_id",
                    "camp-1",
                    "updated_at",
                    "2023-11-14T22:13:20.000Z"
                ]
            )]
        );
        let whole = ops
            .iter()
            .find(|o| o.cmd == "HSET" && o.args[0] == keys.identity("id-2"))
            .unwrap();
        assert!(whole
            .args
            .windows(2)
            .any(|w| w == ["campaign_id", "camp-2"]));
        assert!(whole.args.iter().any(|a| a == "observation_count"));
    }

    #[test]
    fn a_commit_adds_to_each_index_set_in_one_call() {
        let keys = Keys::new("t");
        let mut j = Journal::default();
        for id in ["i1", "i2", "i3"] {
            let row = IdentityRow {
                uuid: id.into(),
                ..Default::default()
            };
            j.identities.insert(id.into(), row);
        }
        for id in ["c1", "c2"] {
            let row = CampaignRow {
                uuid: id.into(),
                ..Default::default()
            };
            j.campaigns.insert(id.into(), row);
        }
        let ops = journal_ops(&keys, &j, 100, 0);
        let adds: Vec<&Op> = ops.iter().filter(|o| o.cmd == "SADD").collect();
        assert_eq!(
            adds,
            vec![
                &op("SADD", &["t:identities", "i1", "i2", "i3"]),
                &op("SADD", &["t:campaigns", "c1", "c2"]),
            ]
        );
        // Nothing to index, no call.
        assert!(index_op(keys.attackers(), &[]).is_none());
    }
}
