//! Reconciliation converges: after applying a change set, every member's
//! effective group is its component's target, distinct components have
//! distinct groups, and reconciling again changes nothing — from any stored
//! state (random assignments and merge chains) and any partition.

use decnet_clusterd::reconcile::{
    effective_group_of, reconcile, ChangeSet, Formed, Linked, Merged, StoredGroups, Unmerged,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn state() -> impl Strategy<Value = (StoredGroups, Vec<Vec<String>>)> {
    let members = 10usize;
    (
        proptest::collection::vec(proptest::option::of(0..6usize), members),
        proptest::collection::vec(proptest::option::of(0..6usize), 6),
        proptest::collection::vec(0..5usize, members),
    )
        .prop_map(move |(direct, merged, part)| {
            let mut s = StoredGroups::default();
            for g in 0..6 {
                s.groups.insert(format!("G{g}"));
            }
            for (m, g) in direct.iter().enumerate() {
                if let Some(g) = g {
                    s.direct.insert(format!("m{m}"), format!("G{g}"));
                }
            }
            // Only merge into a larger index: chains never cycle.
            for (g, into) in merged.iter().enumerate() {
                if let Some(t) = into {
                    if *t > g {
                        s.merged_into.insert(format!("G{g}"), format!("G{t}"));
                    }
                }
            }
            let mut comps = vec![Vec::new(); 5];
            for (m, p) in part.iter().enumerate() {
                comps[*p].push(format!("m{m}"));
            }
            comps.retain(|c: &Vec<String>| !c.is_empty());
            (s, comps)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn converges_and_is_idempotent((stored, comps) in state()) {
        let mut n = 0;
        let mut new_id = || { n += 1; format!("N{n}") };
        let cs = reconcile(&stored, &comps, &mut new_id);
        let mut after = stored.clone();
        cs.apply(&mut after);
        let mut seen = BTreeSet::new();
        for c in &comps {
            let groups: BTreeSet<_> = c.iter().map(|m| effective_group_of(&after, m)).collect();
            prop_assert_eq!(groups.len(), 1, "one group per component");
            let g = groups.into_iter().next().flatten();
            prop_assert!(g.is_some());
            prop_assert!(seen.insert(g), "distinct components, distinct groups");
        }
        let again = reconcile(&after, &comps, &mut new_id);
        prop_assert!(again.is_empty(), "second pass changed {:?}", again);
    }
}

/// Any stored state: merge chains may cycle, members may point at groups
/// that have no row.
fn any_state() -> impl Strategy<Value = (StoredGroups, Vec<Vec<String>>)> {
    let members = 12usize;
    (
        proptest::collection::vec(proptest::option::of(0..8usize), members),
        proptest::collection::vec(proptest::option::of(0..8usize), 7),
        proptest::collection::vec(0..6usize, members),
    )
        .prop_map(move |(direct, merged, part)| {
            let mut s = StoredGroups::default();
            for g in 0..7 {
                s.groups.insert(format!("G{g}"));
            }
            for (m, g) in direct.iter().enumerate() {
                if let Some(g) = g {
                    s.direct.insert(format!("m{m}"), format!("G{g}"));
                }
            }
            for (g, into) in merged.iter().enumerate() {
                if let Some(t) = into {
                    if *t != g {
                        s.merged_into.insert(format!("G{g}"), format!("G{t}"));
                    }
                }
            }
            let mut comps = vec![Vec::new(); 6];
            for (m, p) in part.iter().enumerate() {
                comps[*p].push(format!("m{m}"));
            }
            comps.retain(|c: &Vec<String>| !c.is_empty());
            (s, comps)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// The reconciliation gives exactly the change set of the reference
    /// (which copied the whole stored merge state on every call).
    #[test]
    fn same_change_set_as_reference((stored, comps) in any_state()) {
        let fresh = || {
            let mut n = 0;
            move || { n += 1; format!("N{n}") }
        };
        let got = reconcile(&stored, &comps, &mut fresh());
        let want = reference_reconcile(&stored, &comps, &mut fresh());
        prop_assert_eq!(got, want);
    }
}

/// The chain from a group to its root (inclusive), cycle-safe.
fn chain(stored: &StoredGroups, group: &str) -> Vec<String> {
    let mut out = vec![group.to_string()];
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    seen.insert(group);
    let mut cur = group;
    while let Some(next) = stored.merged_into.get(cur) {
        if !seen.insert(next.as_str()) {
            break;
        }
        out.push(next.clone());
        cur = next;
    }
    out
}

/// The root a group resolves to along `merged_into`.
fn effective_root(stored: &StoredGroups, group: &str) -> String {
    chain(stored, group)
        .pop()
        .unwrap_or_else(|| group.to_string())
}

/// The effective group of a member, if it has a (known) group.
#[allow(dead_code)]
fn old_effective_group_of(stored: &StoredGroups, member: &str) -> Option<String> {
    let g = stored.direct.get(member)?;
    stored.groups.contains(g).then(|| effective_root(stored, g))
}

/// The reconciliation as it was before it stopped copying the merge chains
/// (a reference the current one must match exactly).
fn reference_reconcile(
    stored: &StoredGroups,
    components: &[Vec<String>],
    new_id: &mut dyn FnMut() -> String,
) -> ChangeSet {
    let mut comps: Vec<Vec<String>> = components
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| {
            let mut c = c.clone();
            c.sort();
            c.dedup();
            c
        })
        .collect();
    comps.sort();
    let direct = |m: &str| stored.direct.get(m).filter(|g| stored.groups.contains(*g));
    let root_of = |m: &str| direct(m).map(|g| effective_root(stored, g));

    // 1. Ownership: root → (native, effective) counts per component.
    let mut counts: BTreeMap<String, BTreeMap<usize, (usize, usize)>> = BTreeMap::new();
    for (ci, comp) in comps.iter().enumerate() {
        for m in comp {
            if let (Some(d), Some(r)) = (direct(m), root_of(m)) {
                let e = counts.entry(r.clone()).or_default().entry(ci).or_default();
                e.1 += 1;
                if *d == r {
                    e.0 += 1;
                }
            }
        }
    }
    let mut owned: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (root, per) in &counts {
        // Components are sorted, so a lower index means a smaller first member.
        let best = per
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(ci, _)| *ci);
        if let Some(ci) = best {
            owned.entry(ci).or_default().push(root.clone());
        }
    }

    // 2. Targets.
    let mut out = ChangeSet::default();
    let mut target: Vec<String> = Vec::with_capacity(comps.len());
    let mut resurrected: BTreeSet<String> = BTreeSet::new();
    let mut new_merged_into: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (ci, comp) in comps.iter().enumerate() {
        if let Some(roots) = owned.get(&ci) {
            let winner = roots[0].clone(); // BTreeMap order: smallest id first
            for loser in &roots[1..] {
                let members = comp
                    .iter()
                    .filter(|m| root_of(m).as_deref() == Some(loser.as_str()))
                    .cloned()
                    .collect();
                out.merged.push(Merged {
                    winner: winner.clone(),
                    loser: loser.clone(),
                    members,
                });
                new_merged_into.insert(loser.clone(), Some(winner.clone()));
            }
            target.push(winner);
            continue;
        }
        let mut scores: BTreeMap<String, usize> = BTreeMap::new();
        for m in comp {
            if let Some(d) = direct(m) {
                let c = chain(stored, d);
                for g in &c[..c.len() - 1] {
                    if !resurrected.contains(g) {
                        *scores.entry(g.clone()).or_default() += 1;
                    }
                }
            }
        }
        let pick = scores
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(g, _)| g.clone());
        if let Some(g) = pick {
            let former = stored.merged_into.get(&g).cloned().unwrap_or_default();
            out.unmerged.push(Unmerged {
                resurrected: g.clone(),
                former_winner: former,
            });
            new_merged_into.insert(g.clone(), None);
            resurrected.insert(g.clone());
            target.push(g);
        } else {
            let g = new_id();
            out.formed.push(Formed {
                group: g.clone(),
                members: comp.clone(),
            });
            out.new_groups.push(g.clone());
            target.push(g);
        }
    }
    out.merged_into = new_merged_into.into_iter().collect();

    // 3. Links, judged on the new chains.
    let mut after = StoredGroups {
        direct: BTreeMap::new(),
        merged_into: stored.merged_into.clone(),
        groups: stored.groups.clone(),
    };
    after.groups.extend(out.new_groups.iter().cloned());
    for (g, t) in &out.merged_into {
        match t {
            Some(w) => after.merged_into.insert(g.clone(), w.clone()),
            None => after.merged_into.remove(g),
        };
    }
    let formed: BTreeSet<&str> = out.formed.iter().map(|f| f.group.as_str()).collect();
    for (comp, t) in comps.iter().zip(&target) {
        for m in comp {
            let now = direct(m).map(|d| effective_root(&after, d));
            if now.as_deref() == Some(t.as_str()) {
                continue;
            }
            let prior = root_of(m);
            out.assignments.push((m.clone(), t.clone()));
            if prior.is_some() || !formed.contains(t.as_str()) {
                out.linked.push(Linked {
                    group: t.clone(),
                    member: m.clone(),
                    prior,
                });
            }
        }
    }
    out.assignments.sort();
    out
}
