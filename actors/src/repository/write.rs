//! Rows → write operations: how the store's rows, assignments, decisions
//! and lifecycle events are written, as a batch of operations that the
//! fenced commit (`lease.rs`) applies atomically (SPEC §2, §5). Values are
//! spelled by `codec.rs`.

use super::codec::{
    decision_field, decision_value, evidence as evidence_json, json, optional_timestamp as ts,
    timestamp as format_timestamp,
};
use super::keys::Keys;
use decnet_clusterd::evidence::{Millis, Observation};
use decnet_clusterd::identity::Decision;
use decnet_clusterd::store::{CampaignRow, IdentityRow, Journal, OutEvent, OutStream};

/// One write operation: a command name and its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub cmd: &'static str,
    pub args: Vec<String>,
}

/// An observation's internal evidence, as stored in `{p}:evidence:{uuid}`.
pub fn evidence(o: &Observation) -> String {
    evidence_json(o)
}

/// The writes of an observation (`evidence`, when given, is [`evidence`]
/// of `o`, made ahead of time): SET of its evidence key, HSET of the
/// hash's public fields (SPEC §3), and HDEL of the `evidence` field that
/// versions before the evidence key kept in the hash (a no-op on a hash
/// without it; on one with it, the write moves the evidence out). The
/// hash's values are all short, so Redis keeps it a listpack. The index
/// set `{p}:attackers` is the caller's: one [`index_op`] per commit.
pub fn observation_op(
    keys: &Keys,
    o: &Observation,
    identity: Option<&str>,
    evidence: Option<String>,
) -> [Op; 3] {
    debug_assert!(evidence.as_ref().is_none_or(|e| *e == evidence_json(o)));
    let hash = keys.attacker(&o.uuid);
    let mut args = vec![
        hash.clone(),
        "uuid".into(),
        o.uuid.to_string(),
        "ip".into(),
        o.ip().unwrap_or_default().to_string(),
        "asn".into(),
        o.asn().map(|a| a.to_string()).unwrap_or_default(),
        "first_seen".into(),
        ts(o.first_seen),
        "last_seen".into(),
        ts(o.last_seen),
    ];
    if let Some(i) = identity {
        args.extend(["identity_id".to_string(), i.to_string()]);
    }
    [
        Op {
            cmd: "SET",
            args: vec![
                keys.evidence(&o.uuid),
                evidence.unwrap_or_else(|| evidence_json(o)),
            ],
        },
        Op { cmd: "HSET", args },
        Op {
            cmd: "HDEL",
            args: vec![hash, LEGACY_EVIDENCE_FIELD.into()],
        },
    ]
}

/// The hash field versions before `{p}:evidence:{uuid}` kept the evidence
/// in; read at load when the key is absent, deleted by the next write.
pub const LEGACY_EVIDENCE_FIELD: &str = "evidence";

/// One SADD of every uuid a commit writes a row of to its index set (a
/// batch writes thousands of rows, and each command of a transaction costs
/// Redis about as much as the work it does); `None` when there are none.
pub fn index_op<'a, S: AsRef<str> + 'a>(
    set: String,
    uuids: impl IntoIterator<Item = &'a S>,
) -> Option<Op> {
    let mut args = vec![set];
    args.extend(uuids.into_iter().map(|u| u.as_ref().to_string()));
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

/// HSET of an operator decision on the sorted pair `lo`, `hi`.
pub fn decision_set_op(keys: &Keys, lo: &str, hi: &str, d: &Decision) -> Op {
    Op {
        cmd: "HSET",
        args: vec![keys.decisions(), decision_field(lo, hi), decision_value(d)],
    }
}

/// HDEL of the operator decision on the sorted pair `lo`, `hi`.
pub fn decision_del_op(keys: &Keys, lo: &str, hi: &str) -> Op {
    Op {
        cmd: "HDEL",
        args: vec![keys.decisions(), decision_field(lo, hi)],
    }
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
        assert!(index_op::<String>(keys.attackers(), &[]).is_none());
    }
}
