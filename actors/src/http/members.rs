//! Which identities each campaign holds, and the campaigns ranked, built in
//! one pass over every identity and kept for a while ([`MembersCache`]).
//!
//! The store maps identity → campaign, not the reverse, so a campaign's
//! members cost a look at every identity: over 1,000,000 observations that
//! is tens of milliseconds, spent holding the engine (ingest waits). The
//! console asks for the ranking and a campaign's members every second, so
//! the index is rebuilt at most every [`cache::keep_for`] of its build time
//! (0.75 s, or ten times as long as it took, at most 30 s) and answers in
//! between read the live rows of the members it names
//! ([`current_members`]): a campaign page is never wrong about a member it
//! shows, and an identity that joined since appears at the next rebuild.

use super::cache;
use super::view::View;
use decnet_clusterd::reconcile::effective_root;
use decnet_clusterd::store::Store;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The index.
#[derive(Debug, Default, PartialEq)]
pub struct Members {
    /// Effective campaign → its live identities, sorted.
    pub by_campaign: HashMap<String, Vec<String>>,
    /// Campaigns with a row: most identities first, then the most recently
    /// seen, then by uuid.
    pub ranked: Vec<String>,
}

impl Members {
    pub fn build(store: &Store) -> Members {
        let mut by_campaign: HashMap<String, Vec<String>> = HashMap::new();
        for (id, row) in &store.identities {
            if row.merged_into_uuid.is_none() {
                if let Some(c) = store.effective_campaign(id) {
                    by_campaign.entry(c).or_default().push(id.clone());
                }
            }
        }
        // Identities come in key order, so each list is already sorted.
        let mut keyed: Vec<_> = by_campaign
            .iter()
            .filter_map(|(c, ids)| {
                let row = store.campaigns.get(c)?;
                Some((Reverse(ids.len()), Reverse(row.last_seen_at), c.as_str()))
            })
            .collect();
        keyed.sort_unstable();
        let ranked = keyed.into_iter().map(|(_, _, c)| c.to_string()).collect();
        Members {
            by_campaign,
            ranked,
        }
    }

    /// The members of effective campaign `root` as the index saw them.
    pub fn of(&self, root: &str) -> &[String] {
        self.by_campaign.get(root).map_or(&[], Vec::as_slice)
    }
}

/// The members of `root` the index names that are still live identities
/// of it now.
pub fn current_members(store: &Store, root: &str, indexed: &[String]) -> Vec<String> {
    indexed
        .iter()
        .filter(|i| {
            store
                .identities
                .get(*i)
                .is_some_and(|r| r.merged_into_uuid.is_none())
                && store.effective_campaign(i).as_deref() == Some(root)
        })
        .cloned()
        .collect()
}

/// Whether `campaign` is still an effective campaign with a row.
pub fn still_ranked(store: &Store, campaign: &str) -> bool {
    store.campaigns.contains_key(campaign)
        && effective_root(&store.campaign_groups, campaign) == campaign
}

struct Built {
    at: Instant,
    took: Duration,
    members: Arc<Members>,
}

/// The index, rebuilt when it is older than its keep time.
#[derive(Default)]
pub struct MembersCache(Mutex<Option<Built>>);

impl MembersCache {
    pub fn get(&self, view: &View) -> Arc<Members> {
        let mut slot = match self.0.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(b) = slot.as_ref() {
            if b.at.elapsed() < cache::keep_for(b.took) {
                return b.members.clone();
            }
        }
        let t = Instant::now();
        let members = Arc::new(Members::build(view.store));
        *slot = Some(Built {
            at: Instant::now(),
            took: t.elapsed(),
            members: members.clone(),
        });
        members
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use decnet_clusterd::harness::quality::{run, QualityConfig};
    use decnet_clusterd::scenario::builtin;

    #[test]
    fn the_index_holds_every_live_identity_once_and_ranks_by_size() {
        let g = builtin("multi_operator").unwrap().generate();
        let out = run(&g, &QualityConfig::default()).unwrap();
        let store = &out.store;
        let index = Members::build(store);
        // Every live identity with a campaign is in its campaign's list, once.
        let mut seen = 0;
        for (id, row) in &store.identities {
            if row.merged_into_uuid.is_some() {
                continue;
            }
            let c = store
                .effective_campaign(id)
                .expect("every identity has a campaign");
            assert_eq!(index.of(&c).iter().filter(|i| *i == id).count(), 1, "{id}");
            seen += 1;
        }
        assert_eq!(
            index.by_campaign.values().map(Vec::len).sum::<usize>(),
            seen
        );
        // Ranked by size, then recency, then uuid; each campaign once.
        assert_eq!(index.ranked.len(), index.by_campaign.len());
        for w in index.ranked.windows(2) {
            let key = |c: &str| {
                (
                    Reverse(index.of(c).len()),
                    Reverse(store.campaigns[c].last_seen_at),
                    c.to_string(),
                )
            };
            assert!(key(&w[0]) < key(&w[1]), "{w:?}");
        }
        assert!(
            index.of(&index.ranked[0]).len() >= 2,
            "the scenario has a multi-identity campaign"
        );
        // The live filter keeps what is still true and drops the rest.
        let top = &index.ranked[0];
        assert_eq!(current_members(store, top, index.of(top)), index.of(top));
        let mut stale = index.of(top).to_vec();
        stale.push("no-such-identity".into());
        assert_eq!(current_members(store, top, &stale), index.of(top));
        assert!(still_ranked(store, top));
        assert!(!still_ranked(store, "no-such-campaign"));
    }
}
