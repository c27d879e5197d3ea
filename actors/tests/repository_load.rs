//! `repository::load` against the real Redis at 127.0.0.1:6379: rows written
//! the way the daemon writes them (several load chunks' worth, so replies
//! come back from concurrent pipelines) load back equal and in full, and a
//! corrupt evidence (in its key, or in the hash field of an earlier version)
//! is quarantined by the hash's key, the rest loaded. Each test uses its own
//! key prefix and deletes its keys at the end.

mod common;

use clusterd::repository::Keys;
use clusterd::repository::{
    index_op, journal_ops, load, load_checked, observation_op, LoadError, Op,
};
use common::{conn, Prefix, URL};
use decnet_clusterd::evidence::{Observation, Sym};
use decnet_clusterd::scenario::corpus::stream_corpus;
use decnet_clusterd::set::SortedSet;
use decnet_clusterd::store::{CampaignRow, IdentityRow, Journal};
use redis::Commands;
use std::collections::BTreeMap;

fn conn_members(keys: &Keys) -> usize {
    conn().scard(keys.attackers()).unwrap_or(0)
}

fn apply(c: &mut redis::Connection, ops: &[Op]) {
    for chunk in ops.chunks(1000) {
        let mut pipe = redis::pipe();
        for op in chunk {
            pipe.cmd(op.cmd).arg(&op.args).ignore();
        }
        let () = pipe.query(c).expect("writing the rows");
    }
}

async fn load_prefix(keys: &Keys) -> Result<decnet_clusterd::store::Store, LoadError> {
    let mut conn = redis::Client::open(URL)
        .expect("a Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis must answer on 127.0.0.1:6379");
    let mut seen = BTreeMap::new();
    let store = load(&mut conn, keys, |what, n| {
        seen.insert(what.to_string(), n);
    })
    .await?;
    // Progress counts the hashes read, skipped ones included.
    let members: usize = conn_members(keys);
    if members > 0 {
        assert_eq!(seen.get("observations"), Some(&members));
    }
    Ok(store)
}

#[tokio::test]
async fn stored_rows_load_back_equal() {
    let prefix = Prefix::new("load");
    let keys = Keys::new(&prefix.0);
    let mut c = conn();

    // 2,500 observations: three load chunks, the last one partial. Every
    // third has an identity; one has an empty identity_id (unresolved).
    let mut observations: Vec<Observation> = Vec::new();
    stream_corpus(2_500, 3, |o, _, _| observations.push(o));
    let mut ops = Vec::new();
    let mut direct = BTreeMap::new();
    for (i, o) in observations.iter().enumerate() {
        let identity = (i % 3 == 0).then(|| format!("id-{}", i % 50));
        if let Some(id) = &identity {
            direct.insert(o.uuid.clone(), Sym::new(id));
        }
        ops.extend(observation_op(&keys, o, identity.as_deref(), None));
    }
    ops.extend(index_op(
        keys.attackers(),
        observations.iter().map(|o| &o.uuid),
    ));
    let unresolved = &observations[1].uuid;
    ops.push(Op {
        cmd: "HSET",
        args: vec![keys.attacker(unresolved), "identity_id".into(), "".into()],
    });
    // A member whose hash has no evidence is skipped, as before.
    ops.push(Op {
        cmd: "SADD",
        args: vec![keys.attackers(), "no-evidence".into()],
    });
    ops.push(Op {
        cmd: "HSET",
        args: vec![
            keys.attacker("no-evidence"),
            "ip".into(),
            "192.0.2.1".into(),
        ],
    });

    let mut journal = Journal::default();
    for i in 0..50 {
        let uuid = format!("id-{i}");
        let row = IdentityRow {
            uuid: uuid.clone(),
            schema_version: 1,
            campaign_id: (i % 2 == 0).then(|| format!("camp-{}", i % 7)),
            merged_into_uuid: (i == 7).then(|| "id-8".to_string()),
            observation_count: i as u64 * 3,
            first_seen_at: (i != 3).then_some(1_771_734_415_250 + i as i64),
            last_seen_at: Some(1_771_734_715_250),
            created_at: 1_771_734_000_000,
            updated_at: 1_771_734_999_001,
            confidence: 0.1 + i as f64 / 70.0,
            ja3_hashes: SortedSet::from([Sym::from(format!("ja3-{i}"))]),
            hassh_hashes: SortedSet::new(),
            payload_hashes: SortedSet::from([Sym::new("p1"), Sym::new("p2")]),
            c2_endpoints: SortedSet::from([Sym::new("198.51.100.7:443")]),
            kd_digraph_simhash: (i % 5 == 0).then(|| "00ff00ff00ff00ff".to_string()),
            notes: if i == 4 {
                "a \"note\"\nover lines".into()
            } else {
                String::new()
            },
        };
        journal.identities.insert(uuid, row);
    }
    for i in 0..7 {
        let uuid = format!("camp-{i}");
        let row = CampaignRow {
            uuid: uuid.clone(),
            schema_version: 1,
            merged_into_uuid: (i == 6).then(|| "camp-0".to_string()),
            identity_count: i as u64,
            first_seen_at: Some(1_771_734_415_250),
            last_seen_at: (i != 2).then_some(1_771_734_715_250),
            created_at: 1_771_734_000_000,
            updated_at: 1_771_734_999_002,
            confidence: i as f64 / 7.0,
        };
        journal.campaigns.insert(uuid, row);
    }
    ops.extend(journal_ops(&keys, &journal, 1000, 0));
    apply(&mut c, &ops);

    let store = load_prefix(&keys).await.expect("the rows load");
    let expected: BTreeMap<Sym, Box<Observation>> = observations
        .iter()
        .map(|o| (o.uuid.clone(), Box::new(o.clone())))
        .collect();
    assert_eq!(store.observations.len(), 2_500);
    assert_eq!(store.observations, expected);
    assert_eq!(store.identity_groups.direct, direct);
    assert!(!store.identity_groups.direct.contains_key(unresolved));
    assert_eq!(store.identities, journal.identities);
    assert_eq!(store.campaigns, journal.campaigns);
    assert_eq!(
        store.identity_groups.groups,
        journal.identities.keys().map(Sym::from).collect()
    );
    assert_eq!(
        store.identity_groups.merged_into,
        BTreeMap::from([(Sym::new("id-7"), Sym::new("id-8"))])
    );
    let campaign_of: BTreeMap<Sym, Sym> = journal
        .identities
        .values()
        .filter_map(|r| Some((Sym::new(&r.uuid), Sym::new(r.campaign_id.as_ref()?))))
        .collect();
    assert_eq!(store.campaign_groups.direct, campaign_of);
    assert_eq!(
        store.campaign_groups.merged_into,
        BTreeMap::from([(Sym::new("camp-6"), Sym::new("camp-0"))])
    );
    assert!(store.changed_observations.is_empty() && store.changed_identities.is_empty());
}

#[tokio::test]
async fn corrupt_evidence_is_quarantined_by_key() {
    let prefix = Prefix::new("load-corrupt");
    let keys = Keys::new(&prefix.0);
    let mut c = conn();
    let mut observations: Vec<Observation> = Vec::new();
    stream_corpus(1_200, 4, |o, _, _| observations.push(o));
    let mut ops = Vec::new();
    for o in &observations {
        ops.extend(observation_op(&keys, o, None, None));
    }
    ops.extend(index_op(
        keys.attackers(),
        observations.iter().map(|o| &o.uuid),
    ));
    // Corrupt evidence in its key, and in the hash field of an earlier
    // version (read in preference to the key).
    let bad = keys.attacker(&observations[1_100].uuid);
    ops.push(Op {
        cmd: "SET",
        args: vec![keys.evidence(&observations[1_100].uuid), "{not json".into()],
    });
    let old = keys.attacker(&observations[5].uuid);
    ops.push(Op {
        cmd: "HSET",
        args: vec![old.clone(), "evidence".into(), "{not json".into()],
    });
    apply(&mut c, &ops);
    let client = redis::Client::open(URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (store, quarantined) = load_checked(&mut conn, &keys, |_, _| {})
        .await
        .expect("corrupt rows do not fail the load");
    assert_eq!(quarantined.len(), 2, "{quarantined:?}");
    let named: BTreeMap<&str, &str> = quarantined
        .iter()
        .map(|q| (q.key.as_str(), q.reason.as_str()))
        .collect();
    assert!(
        named[bad.as_str()].contains("evidence key is not valid"),
        "{quarantined:?}"
    );
    assert!(
        named[old.as_str()].contains("`evidence` is not valid"),
        "{quarantined:?}"
    );
    assert_eq!(store.observations.len(), observations.len() - 2);
    assert!(!store.observations.contains_key(&observations[1_100].uuid));
    assert!(!store.observations.contains_key(&observations[5].uuid));
}

#[tokio::test]
async fn an_empty_prefix_loads_an_empty_store() {
    let prefix = Prefix::new("load-empty");
    let keys = Keys::new(&prefix.0);
    let store = load_prefix(&keys).await.expect("an empty store loads");
    assert!(store.observations.is_empty());
    assert!(store.identities.is_empty());
    assert!(store.campaigns.is_empty());
}
