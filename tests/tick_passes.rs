//! The daemon's steady state, end to end in the core: a store settled by
//! both clusterers, then passes over batches of new and changed
//! observations (the pass benchmark's generator). Incremental passes end in
//! the identities and campaigns a full first pass over the final
//! observations gives; a pass over unchanged evidence writes nothing; the
//! same input gives the same result.

use decnet_clusterd::campaign::clusterer::{CampaignClusterer, CampaignComponents};
use decnet_clusterd::campaign::CampaignWeights;
use decnet_clusterd::evidence::Sym;
use decnet_clusterd::harness::benchmark::SettledStore;
use decnet_clusterd::identity::clusterer::{Clusterer, ConnectedComponents, TickContext};
use decnet_clusterd::identity::IdentityWeights;
use decnet_clusterd::set::SortedSet;
use decnet_clusterd::store::Store;
use std::collections::{BTreeMap, BTreeSet};

type Partitions = (BTreeSet<Vec<Sym>>, BTreeSet<BTreeSet<Vec<Sym>>>);

/// Identities as member lists, campaigns as sets of member lists: what the
/// clustering decided, independent of the uuids it minted.
fn partitions(store: &Store) -> Partitions {
    let identities: BTreeSet<Vec<Sym>> = store.identity_members.values().cloned().collect();
    let mut campaigns: BTreeMap<String, BTreeSet<Vec<Sym>>> = BTreeMap::new();
    for (id, members) in &store.identity_members {
        let c = store
            .effective_campaign(id)
            .unwrap_or_else(|| panic!("identity {id} has no campaign"));
        campaigns.entry(c).or_default().insert(members.clone());
    }
    (identities, campaigns.into_values().collect())
}

/// One full first pass of fresh clusterers over these observations (at
/// `now`), with `between` run on the store between the two layers.
fn first_passes(
    observations: &BTreeMap<Sym, Box<decnet_clusterd::evidence::Observation>>,
    now: i64,
    between: impl FnOnce(&mut Store),
) -> Store {
    let mut fresh = Store {
        observations: observations.clone(),
        ..Default::default()
    };
    let mut n = 0u64;
    let mut new_id = || {
        n += 1;
        format!("full-{n:08}")
    };
    let mut ctx = TickContext {
        now,
        new_id: &mut new_id,
    };
    ConnectedComponents::new(IdentityWeights::default())
        .unwrap()
        .tick(&mut fresh, &mut ctx)
        .unwrap();
    between(&mut fresh);
    CampaignComponents::new(CampaignWeights::default())
        .unwrap()
        .tick(&mut fresh, &mut ctx)
        .unwrap();
    fresh
}

/// One full first pass of fresh clusterers over these observations.
fn full_pass(store: &Store) -> Store {
    first_passes(&store.observations, 0, |_| {})
}

#[test]
fn passes_equal_a_full_pass_and_unchanged_evidence_writes_nothing() {
    let mut s = SettledStore::new(4_000, 11);
    for n in [50, 400, 1, 200] {
        let batch = s.batch(n);
        let sample = s.pass(&batch);
        assert!(sample.events > 0, "a batch of {n} changed nothing");
        // The same batch again: the evidence is already merged.
        let again = s.pass(&batch);
        assert_eq!(
            (again.events, again.identity_rows, again.campaign_rows),
            (0, 0, 0),
            "re-merging a batch wrote something"
        );
        assert!(s.store.journal.is_empty());
    }
    let empty = s.pass(&[]);
    assert_eq!(
        (empty.events, empty.identity_rows, empty.campaign_rows),
        (0, 0, 0)
    );
    assert_eq!(partitions(&s.store), partitions(&full_pass(&s.store)));
}

#[test]
fn same_input_same_result() {
    let run = || {
        let mut s = SettledStore::new(2_000, 5);
        for n in [100, 300] {
            s.next_pass(n);
        }
        (
            s.store.identity_groups.clone(),
            s.store.campaign_groups.clone(),
            s.store.identities.clone(),
        )
    };
    assert_eq!(run(), run());
}

/// The evidence an identity row carries, without uuids and bookkeeping.
type RowEvidence = (
    u64,
    Option<i64>,
    Option<i64>,
    u64,
    Vec<SortedSet<Sym>>,
    Option<String>,
);

/// Each effective identity's row evidence, keyed by its member list.
fn row_evidence(store: &Store) -> BTreeMap<Vec<Sym>, RowEvidence> {
    store
        .identity_members
        .iter()
        .map(|(id, members)| {
            let r = &store.identities[id];
            assert_eq!(r.merged_into_uuid, None, "effective identity {id} merged");
            let e = (
                r.observation_count,
                r.first_seen_at,
                r.last_seen_at,
                r.confidence.to_bits(),
                vec![
                    r.ja3_hashes.clone(),
                    r.hassh_hashes.clone(),
                    r.payload_hashes.clone(),
                    r.c2_endpoints.clone(),
                ],
                r.kd_digraph_simhash.clone(),
            );
            (members.clone(), e)
        })
        .collect()
}

/// Every row after incremental passes holds what a full pass builds from
/// scratch: rows kept from an earlier pass (members and evidence unchanged,
/// only the confidence refreshed), and rows of identities whose members got
/// new evidence that moved no edge (a new session with the same tooling
/// still moves first/last seen).
#[test]
fn rows_after_passes_equal_rows_of_a_full_pass() {
    let mut s = SettledStore::new(3_000, 23);
    for n in [300, 30, 600, 1, 150] {
        let batch = s.batch(n);
        s.pass(&batch);
        let (a, b) = (row_evidence(&s.store), row_evidence(&full_pass(&s.store)));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "identities after a batch of {n}"
        );
        for (members, row) in &a {
            assert_eq!(
                Some(row),
                b.get(members),
                "{members:?} after a batch of {n}"
            );
        }
    }
}

#[test]
fn a_campaign_pass_journals_assignments_alone_unless_the_whole_row_is_pending() {
    let settled = SettledStore::new(1_000, 5);
    let observations = &settled.store.observations;
    let run = |take_between: bool| {
        first_passes(observations, 7, |store| {
            if take_between {
                store.take_journal();
            }
        })
    };
    // Identity rows already committed: the campaign pass journals only the
    // assignments, and they match the rows in memory.
    let mut store = run(true);
    let journal = store.take_journal();
    assert!(journal.identities.is_empty());
    assert!(!journal.identity_campaigns.is_empty());
    for (identity, (campaign, at)) in &journal.identity_campaigns {
        let row = &store.identities[identity];
        assert_eq!(row.campaign_id.as_ref(), Some(campaign));
        assert_eq!(row.updated_at, *at);
    }
    // Identity rows still pending: they are written whole, campaign included.
    let mut store = run(false);
    let journal = store.take_journal();
    assert!(journal.identity_campaigns.is_empty());
    assert!(!journal.identities.is_empty());
    for (identity, row) in &journal.identities {
        assert_eq!(row, &store.identities[identity]);
    }
}
