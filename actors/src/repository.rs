//! The Redis repository: how the store's rows are written (as a batch of
//! write operations that the fenced commit script applies atomically, SPEC
//! §2, §5) and how the whole store is loaded back at start.

use crate::keys::Keys;
use decnet_clusterd::evidence::event::{format_timestamp, parse_timestamp};
use decnet_clusterd::evidence::{Millis, Observation};
use decnet_clusterd::identity::{Decision, Decisions};
use decnet_clusterd::store::{CampaignRow, IdentityRow, Journal, OutEvent, OutStream, Store};
use redis::aio::MultiplexedConnection;
use std::collections::{BTreeMap, BTreeSet};

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

/// HSET of an observation: public fields plus the internal `evidence`.
pub fn observation_op(keys: &Keys, o: &Observation, identity: Option<&str>) -> Vec<Op> {
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
        json(o),
    ];
    if let Some(i) = identity {
        args.extend(["identity_id".to_string(), i.to_string()]);
    }
    vec![
        Op { cmd: "HSET", args },
        Op {
            cmd: "SADD",
            args: vec![keys.attackers(), o.uuid.clone()],
        },
    ]
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
        ops.push(Op {
            cmd: "SADD",
            args: vec![keys.identities(), r.uuid.clone()],
        });
    }
    for r in j.campaigns.values() {
        let mut args = vec![keys.campaign(&r.uuid)];
        args.extend(campaign_fields(r));
        ops.push(Op { cmd: "HSET", args });
        ops.push(Op {
            cmd: "SADD",
            args: vec![keys.campaigns(), r.uuid.clone()],
        });
    }
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

fn field<'a>(h: &'a BTreeMap<String, String>, k: &str) -> Option<&'a str> {
    h.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

fn time_field(h: &BTreeMap<String, String>, k: &str) -> Option<Millis> {
    field(h, k).and_then(|v| parse_timestamp(&serde_json::Value::String(v.to_string())).ok())
}

fn set_field(h: &BTreeMap<String, String>, k: &str) -> BTreeSet<String> {
    field(h, k)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

async fn hashes(
    conn: &mut MultiplexedConnection,
    keys: Vec<String>,
    mut progress: impl FnMut(usize),
) -> Result<Vec<(String, BTreeMap<String, String>)>, redis::RedisError> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(1000) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.hgetall(k);
        }
        let rows: Vec<BTreeMap<String, String>> = pipe.query_async(conn).await?;
        out.extend(chunk.iter().cloned().zip(rows));
        progress(out.len());
    }
    Ok(out)
}

/// Loads the whole stored state (observations, identities, campaigns,
/// decisions) into a store.
pub async fn load(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    mut progress: impl FnMut(&str, usize),
) -> Result<Store, LoadError> {
    let mut store = Store::default();
    let uuids: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.attackers())
        .query_async(conn)
        .await?;
    let rows = hashes(
        conn,
        uuids.iter().map(|u| keys.attacker(u)).collect(),
        |n| progress("observations", n),
    )
    .await?;
    for (key, h) in rows {
        let Some(evidence) = field(&h, "evidence") else {
            continue;
        };
        let o: Observation = serde_json::from_str(evidence).map_err(|e| LoadError::Corrupt {
            key: key.clone(),
            problem: format!("evidence is not valid: {e}"),
        })?;
        if let Some(i) = field(&h, "identity_id") {
            store
                .identity_groups
                .direct
                .insert(o.uuid.clone(), i.to_string());
        }
        store.observations.insert(o.uuid.clone(), o);
    }
    let ids: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.identities())
        .query_async(conn)
        .await?;
    for (_, h) in hashes(conn, ids.iter().map(|u| keys.identity(u)).collect(), |n| {
        progress("identities", n)
    })
    .await?
    {
        let Some(uuid) = field(&h, "uuid").map(str::to_string) else {
            continue;
        };
        let row = IdentityRow {
            uuid: uuid.clone(),
            schema_version: field(&h, "schema_version")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            campaign_id: field(&h, "campaign_id").map(str::to_string),
            merged_into_uuid: field(&h, "merged_into_uuid").map(str::to_string),
            observation_count: field(&h, "observation_count")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            first_seen_at: time_field(&h, "first_seen_at"),
            last_seen_at: time_field(&h, "last_seen_at"),
            created_at: time_field(&h, "created_at").unwrap_or(0),
            updated_at: time_field(&h, "updated_at").unwrap_or(0),
            confidence: field(&h, "confidence")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0),
            ja3_hashes: set_field(&h, "ja3_hashes"),
            hassh_hashes: set_field(&h, "hassh_hashes"),
            payload_hashes: set_field(&h, "payload_hashes"),
            c2_endpoints: set_field(&h, "c2_endpoints"),
            kd_digraph_simhash: field(&h, "kd_digraph_simhash").map(str::to_string),
            notes: h.get("notes").cloned().unwrap_or_default(),
        };
        store.identity_groups.groups.insert(uuid.clone());
        if let Some(w) = &row.merged_into_uuid {
            store
                .identity_groups
                .merged_into
                .insert(uuid.clone(), w.clone());
        }
        if let Some(c) = &row.campaign_id {
            store.campaign_groups.direct.insert(uuid.clone(), c.clone());
        }
        store.identities.insert(uuid, row);
    }
    let camps: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.campaigns())
        .query_async(conn)
        .await?;
    for (_, h) in hashes(
        conn,
        camps.iter().map(|u| keys.campaign(u)).collect(),
        |n| progress("campaigns", n),
    )
    .await?
    {
        let Some(uuid) = field(&h, "uuid").map(str::to_string) else {
            continue;
        };
        let row = CampaignRow {
            uuid: uuid.clone(),
            schema_version: field(&h, "schema_version")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            merged_into_uuid: field(&h, "merged_into_uuid").map(str::to_string),
            identity_count: field(&h, "identity_count")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            first_seen_at: time_field(&h, "first_seen_at"),
            last_seen_at: time_field(&h, "last_seen_at"),
            created_at: time_field(&h, "created_at").unwrap_or(0),
            updated_at: time_field(&h, "updated_at").unwrap_or(0),
            confidence: field(&h, "confidence")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0),
        };
        store.campaign_groups.groups.insert(uuid.clone());
        if let Some(w) = &row.merged_into_uuid {
            store
                .campaign_groups
                .merged_into
                .insert(uuid.clone(), w.clone());
        }
        store.campaigns.insert(uuid, row);
    }
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
