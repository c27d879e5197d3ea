//! Loading the whole store back from Redis at start (and after a failure):
//! pipelined HMGETs of every observation, identity and campaign hash (and
//! MGETs of the observations' evidence keys, in the same pipelines), and
//! the operator decisions. Values are decoded by `codec.rs`. A row that
//! cannot be read (evidence that is not an observation, a field of the
//! wrong type, a uuid that does not match its key) is left out of the store
//! and reported as [`Quarantined`] with its key and the reason; the row
//! itself stays in Redis, untouched.

use super::codec::{parse_decision_field, parse_decision_value};
use super::keys::Keys;
use super::rows::{
    campaign_row, identity_row, observation_row, Fields, Parsed, CAMPAIGN_FIELDS, IDENTITY_FIELDS,
    OBSERVATION_FIELDS,
};
use decnet_clusterd::evidence::Sym;
use decnet_clusterd::identity::Decisions;
use decnet_clusterd::store::Store;
use redis::aio::MultiplexedConnection;
use std::collections::BTreeMap;
use tracing::debug;

/// A problem reading the repository back.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// A stored row left out of the load, with why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quarantined {
    pub key: String,
    pub reason: String,
}

/// Keys per pipeline when loading.
const CHUNK: usize = 1000;
/// Pipelines in flight at once when loading: while Redis answers one, the
/// replies of the others are parsed on blocking threads.
const IN_FLIGHT: usize = 4;

/// One kind of stored row: its hash's key and the fields read from it, an
/// optional string key beside the hash whose value is read too, and the
/// parser of the two.
struct Kind<F> {
    hash: fn(&Keys, &str) -> String,
    fields: &'static [&'static str],
    beside: Option<fn(&Keys, &str) -> String>,
    parse: F,
}

/// Reads the rows of every uuid with pipelined HMGETs of `kind.fields`
/// (and, when the kind has a key beside its hash, one MGET of those keys
/// per pipeline, its values appended to the fields with [`Fields::with`]),
/// [`IN_FLIGHT`] pipelines of [`CHUNK`] rows at a time on the multiplexed
/// connection, and turns each reply into rows with `kind.parse` on a
/// blocking thread (so a large load neither leaves Redis idle while parsing
/// nor blocks the runtime, whose other tasks — the lease keeper — must keep
/// running). Rows come back in the order of `uuids`; `parse` returns `None`
/// for a hash to skip and an error for one that cannot be read, which is
/// quarantined under its hash's key. `progress` gets the number of rows
/// read so far.
async fn fetch<T, F>(
    conn: &MultiplexedConnection,
    keys: &Keys,
    uuids: Vec<String>,
    kind: Kind<F>,
    mut progress: impl FnMut(usize),
    quarantine: &mut Vec<Quarantined>,
) -> Result<Vec<T>, LoadError>
where
    T: Send + 'static,
    F: Fn(&str, Fields) -> Parsed<T> + Copy + Send + 'static,
{
    use futures_util::{StreamExt, TryStreamExt};
    let total = uuids.len();
    let mut chunks = Vec::with_capacity(total.div_ceil(CHUNK));
    let mut uuids = uuids.into_iter();
    loop {
        let chunk: Vec<String> = uuids.by_ref().take(CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let Kind {
        hash,
        fields,
        beside,
        parse,
    } = kind;
    let mut parsed = futures_util::stream::iter(chunks)
        .map(|chunk| {
            let mut conn = conn.clone();
            async move {
                let hashes: Vec<String> = chunk.iter().map(|u| hash(keys, u)).collect();
                let mut pipe = redis::pipe();
                for k in &hashes {
                    pipe.cmd("HMGET").arg(k).arg(fields);
                }
                if let Some(beside) = beside {
                    let mget = pipe.cmd("MGET");
                    for u in &chunk {
                        mget.arg(beside(keys, u));
                    }
                }
                drop(chunk);
                let mut replies: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
                let mut besides = Vec::new();
                if beside.is_some() {
                    if let Some(redis::Value::Array(values)) = replies.pop() {
                        besides = values;
                    }
                }
                let read = hashes.len();
                let rows = tokio::task::spawn_blocking(move || {
                    let mut rows = Vec::with_capacity(hashes.len());
                    let mut bad = Vec::new();
                    let mut besides = besides.into_iter();
                    for (k, v) in hashes.iter().zip(replies) {
                        let mut h = Fields::from_reply(v);
                        if beside.is_some() {
                            let value = match besides.next() {
                                Some(redis::Value::BulkString(b)) => Some(b),
                                _ => None,
                            };
                            h = h.with(fields.len(), value);
                        }
                        match parse(k, h) {
                            Ok(Some(row)) => rows.push(row),
                            Ok(None) => {}
                            Err(reason) => bad.push(Quarantined {
                                key: k.clone(),
                                reason,
                            }),
                        }
                    }
                    (rows, bad)
                })
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                Ok::<_, LoadError>((read, rows))
            }
        })
        .buffered(IN_FLIGHT);
    let mut out = Vec::with_capacity(total);
    let mut read = 0;
    while let Some((n, (rows, bad))) = parsed.try_next().await? {
        out.extend(rows);
        quarantine.extend(bad);
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

/// Loads the whole stored state (observations, identities, campaigns,
/// decisions) into a store, leaving out the rows that cannot be read.
pub async fn load(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    progress: impl FnMut(&str, usize),
) -> Result<Store, LoadError> {
    Ok(load_checked(conn, keys, progress).await?.0)
}

/// [`load`], also naming every row it left out (sorted by key).
pub async fn load_checked(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    mut progress: impl FnMut(&str, usize),
) -> Result<(Store, Vec<Quarantined>), LoadError> {
    let mut bad = Vec::new();
    let t = std::time::Instant::now();
    let mut store = Store::default();
    let uuids = members(conn, keys.attackers()).await?;
    debug!(
        members = uuids.len(),
        elapsed_ms = t.elapsed().as_millis() as u64,
        "observation uuids read"
    );
    let observations = Kind {
        hash: Keys::attacker,
        fields: OBSERVATION_FIELDS,
        beside: Some(Keys::evidence),
        parse: observation_row,
    };
    let rows = fetch(
        conn,
        keys,
        uuids,
        observations,
        |n| progress("observations", n),
        &mut bad,
    )
    .await?;
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
                direct.push((o.uuid.clone(), Sym::from(i)));
            }
            (o.uuid.clone(), Box::new(o))
        })
        .collect();
    store.identity_groups.direct = direct.into_iter().collect();
    debug!(
        elapsed_ms = t.elapsed().as_millis() as u64,
        "observations indexed"
    );
    let ids = members(conn, keys.identities()).await?;
    let identities = Kind {
        hash: Keys::identity,
        fields: IDENTITY_FIELDS,
        beside: None,
        parse: identity_row,
    };
    let rows = fetch(
        conn,
        keys,
        ids,
        identities,
        |n| progress("identities", n),
        &mut bad,
    )
    .await?;
    let mut merged = Vec::new();
    let mut campaign_of = Vec::new();
    let mut groups = Vec::with_capacity(rows.len());
    store.identities = rows
        .into_iter()
        .map(|row| {
            // Interned once: every member's `identity_id` shares it.
            let uuid = Sym::new(&row.uuid);
            if let Some(w) = &row.merged_into_uuid {
                merged.push((uuid.clone(), Sym::new(w)));
            }
            if let Some(c) = &row.campaign_id {
                campaign_of.push((uuid.clone(), Sym::new(c)));
            }
            groups.push(uuid);
            (row.uuid.clone(), row)
        })
        .collect();
    store.identity_groups.groups = groups.into_iter().collect();
    store.identity_groups.merged_into = merged.into_iter().collect();
    store.campaign_groups.direct = campaign_of.into_iter().collect();
    debug!(
        elapsed_ms = t.elapsed().as_millis() as u64,
        "identities read"
    );
    let camps = members(conn, keys.campaigns()).await?;
    let campaigns = Kind {
        hash: Keys::campaign,
        fields: CAMPAIGN_FIELDS,
        beside: None,
        parse: campaign_row,
    };
    let rows = fetch(
        conn,
        keys,
        camps,
        campaigns,
        |n| progress("campaigns", n),
        &mut bad,
    )
    .await?;
    let mut merged = Vec::new();
    let mut groups = Vec::with_capacity(rows.len());
    store.campaigns = rows
        .into_iter()
        .map(|row| {
            let uuid = Sym::new(&row.uuid);
            if let Some(w) = &row.merged_into_uuid {
                merged.push((uuid.clone(), Sym::new(w)));
            }
            groups.push(uuid);
            (row.uuid.clone(), row)
        })
        .collect();
    store.campaign_groups.groups = groups.into_iter().collect();
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
    bad.sort();
    Ok((store, bad))
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

/// Names each quarantined row in `{p}:stream:quarantine` (fields `key`,
/// `reason`, `ts`); the rows themselves are left as they are.
pub async fn report_quarantined(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    rows: &[Quarantined],
) -> Result<(), redis::RedisError> {
    if rows.is_empty() {
        return Ok(());
    }
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut pipe = redis::pipe();
    for q in rows {
        pipe.cmd("XADD")
            .arg(keys.quarantine())
            .arg("*")
            .arg("key")
            .arg(&q.key)
            .arg("reason")
            .arg(&q.reason)
            .arg("ts")
            .arg(&ts)
            .ignore();
    }
    pipe.query_async::<()>(conn).await
}
