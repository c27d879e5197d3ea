//! A store written by an earlier version still loads: `tests/data/store-v1.jsonl`
//! holds the writes (one `{cmd, args}` per line) of a store of 402
//! observations as the daemon wrote them before the compact evidence
//! encoding (uuid-keyed JSON evidence), clustered into identities and
//! campaigns by that version. Written into the real Redis under a test
//! prefix, it must load without a quarantined row, every observation's
//! evidence must read back to exactly what was written, and a full
//! clustering pass over it must find the same identities and campaigns:
//! nothing created, renamed, merged or rewritten.

mod common;

use clusterd::repository::{load_checked, Keys};
use common::{conn, Prefix, URL};
use decnet_clusterd::campaign::clusterer::{CampaignClusterer, CampaignComponents};
use decnet_clusterd::campaign::CampaignWeights;
use decnet_clusterd::identity::clusterer::{Clusterer, ConnectedComponents, TickContext};
use decnet_clusterd::identity::IdentityWeights;
use decnet_clusterd::store::IdentityRow;
use std::collections::BTreeMap;

const FIXTURE: &str = include_str!("../../tests/data/store-v1.jsonl");
/// The prefix the fixture was written under.
const FIXTURE_PREFIX: &str = "v1fixture:";

/// The fixture's writes, re-addressed to `prefix`.
fn fixture_ops(prefix: &str) -> Vec<(String, Vec<String>)> {
    FIXTURE
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a fixture line");
            let cmd = v["cmd"].as_str().expect("cmd").to_string();
            let mut args: Vec<String> = v["args"]
                .as_array()
                .expect("args")
                .iter()
                .map(|a| a.as_str().expect("a string argument").to_string())
                .collect();
            let key = args[0]
                .strip_prefix(FIXTURE_PREFIX)
                .expect("every key under the fixture prefix");
            args[0] = format!("{prefix}:{key}");
            (cmd, args)
        })
        .collect()
}

#[tokio::test]
async fn a_store_written_by_the_previous_version_loads_and_clusters_the_same() {
    let prefix = Prefix::new("store-v1");
    let keys = Keys::new(&prefix.0);
    let ops = fixture_ops(&prefix.0);
    let mut c = conn();
    let mut pipe = redis::pipe();
    for (cmd, args) in &ops {
        pipe.cmd(cmd).arg(args).ignore();
    }
    let () = pipe.query(&mut c).expect("writing the fixture");

    // What the old version wrote: every observation's evidence, and its
    // direct identity.
    let mut written_evidence = BTreeMap::new();
    let mut written_identity = BTreeMap::new();
    for (cmd, args) in &ops {
        let Some(uuid) = args[0].strip_prefix(&format!("{}:attacker:", prefix.0)) else {
            continue;
        };
        assert_eq!(cmd, "HSET");
        for pair in args[1..].chunks(2) {
            match pair[0].as_str() {
                "evidence" => written_evidence.insert(uuid.to_string(), pair[1].clone()),
                "identity_id" => written_identity.insert(uuid.to_string(), pair[1].clone()),
                _ => None,
            };
        }
    }
    assert_eq!(written_evidence.len(), 402);

    let mut aconn = redis::Client::open(URL)
        .expect("a Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis must answer on 127.0.0.1:6379");
    let (mut store, quarantined) = load_checked(&mut aconn, &keys, |_, _| {})
        .await
        .expect("the old store loads");
    assert!(quarantined.is_empty(), "{quarantined:?}");
    assert_eq!(store.observations.len(), written_evidence.len());
    for (uuid, written) in &written_evidence {
        let o = &store.observations[uuid.as_str()];
        // The old encoding is the serde form of the evidence model.
        assert_eq!(&serde_json::to_string(o).unwrap(), written, "{uuid}");
    }
    let direct: BTreeMap<String, String> = store
        .identity_groups
        .direct
        .iter()
        .map(|(o, i)| (o.to_string(), i.to_string()))
        .collect();
    assert_eq!(direct, written_identity);
    assert!(!store.identities.is_empty() && !store.campaigns.is_empty());
    let identities_before = store.identities.clone();
    let campaigns_before = store.campaigns.clone();

    // A full first pass of both layers, as at start-up.
    let mut minted = 0u32;
    let mut new_id = || {
        minted += 1;
        format!("minted-{minted}")
    };
    let mut ctx = TickContext {
        now: 1_771_900_000_000,
        new_id: &mut new_id,
    };
    ConnectedComponents::new(IdentityWeights::default())
        .unwrap()
        .tick(&mut store, &mut ctx)
        .unwrap();
    CampaignComponents::new(CampaignWeights::default())
        .unwrap()
        .tick(&mut store, &mut ctx)
        .unwrap();
    let journal = store.take_journal();
    // Nothing is renamed, re-linked or re-formed. The fixture's confidences
    // were computed by the previous version's rules (behaviour rarity and
    // keys changed them since), so a pass may rewrite an identity row's
    // confidence (and its updated_at), and nothing else about it.
    assert!(
        journal.observation_identity.is_empty()
            && journal.identity_campaigns.is_empty()
            && journal.campaigns.is_empty()
            && journal.events.is_empty(),
        "the pass changed the old store: {journal:?}"
    );
    let without_confidence = |rows: &BTreeMap<String, IdentityRow>| {
        rows.iter()
            .map(|(k, r)| {
                (
                    k.clone(),
                    IdentityRow {
                        confidence: 0.0,
                        updated_at: 0,
                        ..r.clone()
                    },
                )
            })
            .collect::<Vec<_>>()
    };
    for (uuid, row) in &journal.identities {
        let before = &identities_before[uuid];
        assert_eq!(
            IdentityRow {
                confidence: before.confidence,
                updated_at: before.updated_at,
                ..row.clone()
            },
            *before,
            "{uuid}: only the confidence (and so updated_at) may change"
        );
    }
    assert_eq!(minted, 0, "the pass minted new ids");
    assert_eq!(
        without_confidence(&store.identities),
        without_confidence(&identities_before)
    );
    assert_eq!(store.campaigns, campaigns_before);
    for uuid in written_evidence.keys() {
        assert!(
            store.effective_identity(uuid).is_some(),
            "{uuid} has no identity"
        );
    }
}
