//! Which identities each campaign holds, and the campaigns ranked
//! ([`Members`]), built in slices and kept for a while ([`MembersCache`]).
//!
//! The store maps identity → campaign, not the reverse, so a campaign's
//! members cost a look at every identity: over 100,000 observations about
//! 50 ms, which held the engine in one piece made every event waiting
//! behind it that much later (p99 event → identity rose from 40 to over
//! 100 ms with the console open). So the index is built [`SLICE`]
//! identities at a time, each slice holding the state for a few ms and
//! letting ingest in between, and the grouping and ranking run after, with
//! nothing held. It is rebuilt at most every [`cache::keep_for`] of its
//! build time (0.75 s, or ten times as long as it took, at most 30 s).
//! Answers read the live rows of the members it names
//! ([`current_members`]): a campaign page is never wrong about a member it
//! shows, and an identity that joined since appears at the next rebuild.
//! (Slices see the store at different moments; an identity that moved
//! between campaigns meanwhile may be listed under the old one until the
//! next rebuild, and is then filtered out of that campaign's pages.)

use super::cache;
use super::view::read_view;
use super::State;
use actix_web::HttpResponse;
use decnet_clusterd::evidence::Millis;
use decnet_clusterd::reconcile::effective_root;
use decnet_clusterd::store::Store;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::ops::Bound::{Excluded, Unbounded};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Identity → campaign assignments one slice of the build looks at while
/// it holds the state.
pub const SLICE: usize = 4096;

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
    /// The whole index in one go (what the slices add up to on a store
    /// that does not move).
    pub fn build(store: &Store) -> Members {
        let mut p = Partial::default();
        while !p.step(store, SLICE) {}
        p.finish()
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

/// An index being built: what the slices so far found.
#[derive(Default)]
pub struct Partial {
    /// (effective campaign, identity) of every live assigned identity seen.
    pairs: Vec<(String, String)>,
    /// Direct campaign → its effective campaign (`None`: no campaign row
    /// group), resolved once.
    roots: HashMap<String, Option<String>>,
    /// Effective campaign → its row's last_seen_at, for those with a row.
    seen: HashMap<String, Option<Millis>>,
    /// The last identity looked at.
    cursor: Option<String>,
}

impl Partial {
    /// Looks at up to `n` assignments after the last one looked at, walking
    /// the identity rows beside them (both ordered by identity uuid, so
    /// without a lookup per identity). True when all have been seen.
    pub fn step(&mut self, store: &Store, n: usize) -> bool {
        let groups = &store.campaign_groups;
        let after = self.cursor.as_deref();
        let (direct, rows) = match after {
            Some(c) => (
                groups.direct.range::<str, _>((Excluded(c), Unbounded)),
                store.identities.range::<str, _>((Excluded(c), Unbounded)),
            ),
            None => (
                groups.direct.range::<str, _>(..),
                store.identities.range::<str, _>(..),
            ),
        };
        let mut rows = rows.peekable();
        let mut last = None;
        let mut done = true;
        for (taken, (id, campaign)) in direct.enumerate() {
            if taken == n {
                done = false;
                break;
            }
            last = Some(id);
            while rows.next_if(|(r, _)| r.as_str() < id.as_str()).is_some() {}
            let Some((_, row)) = rows.next_if(|(r, _)| *r == id) else {
                continue; // an assignment without an identity row
            };
            if row.merged_into_uuid.is_some() || store.identity_groups.merged_into.contains_key(id)
            {
                continue;
            }
            let root = self.roots.entry(campaign.to_string()).or_insert_with(|| {
                groups
                    .groups
                    .contains(campaign)
                    .then(|| effective_root(groups, campaign))
            });
            let Some(root) = root.clone() else {
                continue; // assigned to a campaign with no row
            };
            if !self.seen.contains_key(&root) {
                if let Some(c) = store.campaigns.get(&root) {
                    self.seen.insert(root.clone(), c.last_seen_at);
                }
            }
            self.pairs.push((root, id.to_string()));
        }
        if let Some(id) = last {
            self.cursor = Some(id.to_string());
        }
        done
    }

    /// Groups and ranks what the slices found (nothing is held meanwhile).
    pub fn finish(self) -> Members {
        let mut by_campaign: HashMap<String, Vec<String>> = HashMap::new();
        for (root, id) in self.pairs {
            by_campaign.entry(root).or_default().push(id);
        }
        for ids in by_campaign.values_mut() {
            ids.sort_unstable();
            ids.dedup();
        }
        let mut keyed: Vec<_> = by_campaign
            .iter()
            .filter_map(|(c, ids)| {
                let last_seen = self.seen.get(c)?;
                Some((Reverse(ids.len()), Reverse(*last_seen), c.as_str()))
            })
            .collect();
        keyed.sort_unstable();
        let ranked = keyed.into_iter().map(|(_, _, c)| c.to_string()).collect();
        Members {
            by_campaign,
            ranked,
        }
    }
}

struct Built {
    at: Instant,
    took: Duration,
    members: Arc<Members>,
}

/// The index, rebuilt when it is older than its keep time; one build at a
/// time (other requests wait for it).
#[derive(Default)]
pub struct MembersCache(tokio::sync::Mutex<Option<Built>>);

impl MembersCache {
    /// The index; `Err` is the error answer when the state cannot be read.
    pub async fn get(&self, state: &State) -> Result<Arc<Members>, HttpResponse> {
        let mut slot = self.0.lock().await;
        if let Some(b) = slot.as_ref() {
            if b.at.elapsed() < cache::keep_for(b.took) {
                return Ok(b.members.clone());
            }
        }
        let t = Instant::now();
        let mut partial = Partial::default();
        while !read_view(state, |v| partial.step(v.store, SLICE)).await? {
            tokio::task::yield_now().await;
        }
        let members = Arc::new(partial.finish());
        *slot = Some(Built {
            at: Instant::now(),
            took: t.elapsed(),
            members: members.clone(),
        });
        Ok(members)
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
        // The same index as asking every identity for its campaign.
        let mut plain: HashMap<String, Vec<String>> = HashMap::new();
        for (id, row) in &store.identities {
            if row.merged_into_uuid.is_none() {
                if let Some(c) = store.effective_campaign(id) {
                    plain.entry(c).or_default().push(id.clone());
                }
            }
        }
        assert_eq!(index.by_campaign, plain);
        let mut sliced = Partial::default();
        let mut steps = 1;
        while !sliced.step(store, 1) {
            steps += 1;
        }
        assert!(
            steps >= 2,
            "the scenario needs several slices of one: {steps} for {} assignments, {} identities",
            store.campaign_groups.direct.len(),
            store.identities.len()
        );
        assert_eq!(sliced.finish(), index);
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
