//! Loading the whole store back from Redis at start (and after a failure):
//! pipelined HMGETs of every observation, identity and campaign hash, and
//! the operator decisions. A corrupt row is reported with its key. Values
//! are decoded by `codec.rs`.

use super::codec::{
    parse_decision_field, parse_decision_value, parse_evidence, parse_stored_timestamp,
};
use super::keys::Keys;
use decnet_clusterd::evidence::{Millis, Observation};
use decnet_clusterd::identity::Decisions;
use decnet_clusterd::set::SortedSet;
use decnet_clusterd::store::{CampaignRow, IdentityRow, Store};
use redis::aio::MultiplexedConnection;
use std::collections::BTreeMap;
use tracing::debug;

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
        self.get(i).and_then(parse_stored_timestamp)
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
    let o = parse_evidence(evidence).map_err(|e| LoadError::Corrupt {
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
        let (Some((a, b)), Some(decision)) =
            (parse_decision_field(&pair), parse_decision_value(&v))
        else {
            continue;
        };
        d.set(a, b, decision);
    }
    Ok(d)
}
