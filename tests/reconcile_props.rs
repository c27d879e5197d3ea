//! Reconciliation converges: after applying a change set, every member's
//! effective group is its component's target, distinct components have
//! distinct groups, and reconciling again changes nothing — from any stored
//! state (random assignments and merge chains, cycles included) and any
//! partition. On histories of merges followed by splits, the part holding
//! most of a row's own members keeps it (merged-out rows too), no member is
//! linked to its own prior, a merge's winner is never the smaller side, and
//! every member whose effective group changed is named by an event.

use decnet_clusterd::evidence::Sym;
use decnet_clusterd::reconcile::{effective_group_of, reconcile, ChangeSet, StoredGroups};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn state() -> impl Strategy<Value = (StoredGroups, Vec<Vec<Sym>>)> {
    let members = 10usize;
    (
        proptest::collection::vec(proptest::option::of(0..6usize), members),
        proptest::collection::vec(proptest::option::of(0..6usize), 6),
        proptest::collection::vec(0..5usize, members),
    )
        .prop_map(move |(direct, merged, part)| {
            let mut s = StoredGroups::default();
            for g in 0..6 {
                s.groups.insert(Sym::from(format!("G{g}")));
            }
            for (m, g) in direct.iter().enumerate() {
                if let Some(g) = g {
                    s.direct
                        .insert(Sym::from(format!("m{m}")), Sym::from(format!("G{g}")));
                }
            }
            // Only merge into a larger index: chains never cycle.
            for (g, into) in merged.iter().enumerate() {
                if let Some(t) = into {
                    if *t > g {
                        s.merged_into
                            .insert(Sym::from(format!("G{g}")), Sym::from(format!("G{t}")));
                    }
                }
            }
            let mut comps = vec![Vec::new(); 5];
            for (m, p) in part.iter().enumerate() {
                comps[*p].push(Sym::from(format!("m{m}")));
            }
            comps.retain(|c: &Vec<Sym>| !c.is_empty());
            (s, comps)
        })
}

/// Reconciles, applies, and checks the result converged: one group per
/// component, distinct groups for distinct components, nothing left to do.
fn settle(
    stored: &StoredGroups,
    comps: &[Vec<Sym>],
    created_at: &dyn Fn(&str) -> Option<i64>,
    new_id: &mut dyn FnMut() -> String,
) -> Result<(ChangeSet, StoredGroups), TestCaseError> {
    let cs = reconcile(stored, comps, created_at, new_id);
    let mut after = stored.clone();
    cs.apply(&mut after);
    let mut seen = BTreeSet::new();
    for c in comps {
        let groups: BTreeSet<_> = c.iter().map(|m| effective_group_of(&after, m)).collect();
        prop_assert_eq!(groups.len(), 1, "one group per component");
        let g = groups.into_iter().next().flatten();
        prop_assert!(g.is_some());
        prop_assert!(seen.insert(g), "distinct components, distinct groups");
    }
    let again = reconcile(&after, comps, created_at, new_id);
    prop_assert!(again.is_empty(), "second pass changed {:?}", again);
    for l in &cs.linked {
        prop_assert!(l.prior.as_deref() != Some(l.group.as_str()), "{:?}", l);
    }
    Ok((cs, after))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn converges_and_is_idempotent((stored, comps) in state()) {
        let mut n = 0;
        let mut new_id = || { n += 1; format!("N{n}") };
        settle(&stored, &comps, &|_| None, &mut new_id)?;
    }

    /// Merge chains that cycle still converge, and never hang.
    #[test]
    fn converges_from_cyclic_chains((stored, comps) in cyclic_state()) {
        let mut n = 0;
        let mut new_id = || { n += 1; format!("N{n}") };
        let age = |g: &str| g[1..].parse::<i64>().ok().map(|i| (i * 7) % 5);
        settle(&stored, &comps, &age, &mut new_id)?;
    }
}

/// Random stored state whose merge chains may cycle (every group has a row).
fn cyclic_state() -> impl Strategy<Value = (StoredGroups, Vec<Vec<Sym>>)> {
    let members = 12usize;
    (
        proptest::collection::vec(proptest::option::of(0..7usize), members),
        proptest::collection::vec(proptest::option::of(0..7usize), 7),
        proptest::collection::vec(0..6usize, members),
    )
        .prop_map(move |(direct, merged, part)| {
            let mut s = StoredGroups::default();
            for g in 0..7 {
                s.groups.insert(Sym::from(format!("G{g}")));
            }
            for (m, g) in direct.iter().enumerate() {
                if let Some(g) = g {
                    s.direct
                        .insert(Sym::from(format!("m{m}")), Sym::from(format!("G{g}")));
                }
            }
            for (g, into) in merged.iter().enumerate() {
                if let Some(t) = into {
                    if *t != g {
                        s.merged_into
                            .insert(Sym::from(format!("G{g}")), Sym::from(format!("G{t}")));
                    }
                }
            }
            (s, partition(&part, 6))
        })
}

/// Members `m0…` grouped by label.
fn partition(labels: &[usize], n: usize) -> Vec<Vec<Sym>> {
    let mut comps = vec![Vec::new(); n];
    for (m, p) in labels.iter().enumerate() {
        comps[*p].push(Sym::from(format!("m{m}")));
    }
    comps.retain(|c: &Vec<Sym>| !c.is_empty());
    comps
}

const MEMBERS: usize = 14;

/// One step of a history: labels of the members, as a function of the
/// previous step's labels.
#[derive(Clone, Debug)]
enum Step {
    /// Groups of labels joined (label → one of fewer labels).
    Merge(Vec<usize>),
    /// Every group cut in two by a bit per member.
    Split(Vec<bool>),
}

/// A first partition, then merges, then splits (each step a partition of
/// the same members).
fn history() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (
        proptest::collection::vec(0..7usize, MEMBERS),
        proptest::collection::vec(proptest::collection::vec(0..3usize, 16), 1..3),
        proptest::collection::vec(proptest::collection::vec(any::<bool>(), MEMBERS), 1..4),
    )
        .prop_map(|(first, merges, splits)| {
            let steps = merges
                .into_iter()
                .map(Step::Merge)
                .chain(splits.into_iter().map(Step::Split));
            let mut out = vec![first];
            for step in steps {
                let prev = out.last().cloned().unwrap_or_default();
                let next: Vec<usize> = match step {
                    Step::Merge(map) => prev.iter().map(|&l| map[l % map.len()]).collect(),
                    Step::Split(bits) => prev
                        .iter()
                        .zip(&bits)
                        .map(|(&l, &b)| 2 * l + usize::from(b))
                        .collect(),
                };
                out.push(next);
            }
            out
        })
}

/// Members of a component whose direct row is `row`.
fn natives<'a>(stored: &'a StoredGroups, comp: &'a [Sym], row: &'a str) -> usize {
    comp.iter()
        .filter(|m| stored.direct.get(m.as_str()).map(Sym::as_str) == Some(row))
        .count()
}

/// The part holding strictly the most of a row's own members keeps it:
/// they stay on the row, and the row resolves to that part's group.
fn largest_part_keeps_each_row(
    before: &StoredGroups,
    after: &StoredGroups,
    comps: &[Vec<Sym>],
) -> Result<(), TestCaseError> {
    for row in &before.groups {
        let per: Vec<usize> = comps.iter().map(|c| natives(before, c, row)).collect();
        let Some(&most) = per.iter().max() else {
            continue;
        };
        if most == 0 || per.iter().filter(|&&n| n == most).count() > 1 {
            continue;
        }
        let (ci, _) = per.iter().enumerate().find(|(_, &n)| n == most).unwrap();
        let target = effective_group_of(after, &comps[ci][0]);
        for m in &comps[ci] {
            if before.direct.get(m.as_str()) == Some(row) {
                prop_assert_eq!(
                    after.direct.get(m.as_str()),
                    Some(row),
                    "{} left its row {}",
                    m,
                    row
                );
            }
        }
        prop_assert_eq!(
            Some(decnet_clusterd::reconcile::effective_root(after, row)),
            target,
            "row {} does not resolve to the part holding most of its members",
            row
        );
    }
    Ok(())
}

/// Every member whose effective group changed is named by an event: linked
/// to, formed in, merged with its loser, or on a resurrected row's chain.
fn every_change_has_an_event(
    before: &StoredGroups,
    after: &StoredGroups,
    cs: &ChangeSet,
    comps: &[Vec<Sym>],
) -> Result<(), TestCaseError> {
    for m in comps.iter().flatten() {
        let (was, now) = (effective_group_of(before, m), effective_group_of(after, m));
        if was == now {
            continue;
        }
        let now = now.unwrap_or_default();
        let on_chain = |g: &str| {
            let mut cur = before.direct.get(m.as_str()).cloned();
            while let Some(c) = cur {
                if c == g {
                    return true;
                }
                cur = before.merged_into.get(&c).cloned();
            }
            false
        };
        let said = cs.linked.iter().any(|l| &l.member == m && l.group == now)
            || cs
                .formed
                .iter()
                .any(|f| f.group == now && f.members.contains(m))
            || cs
                .merged
                .iter()
                .any(|g| g.winner == now && g.members.contains(m))
            || cs
                .unmerged
                .iter()
                .any(|u| u.resurrected == now && on_chain(&u.resurrected));
        prop_assert!(said, "{} moved {:?} -> {} silently: {:?}", m, was, now, cs);
    }
    Ok(())
}

/// A merge's winner holds at least as many of the component's members as
/// the loser (ties: older, then smaller id).
fn winners_are_never_smaller(
    after: &StoredGroups,
    cs: &ChangeSet,
    comps: &[Vec<Sym>],
    age: &dyn Fn(&str) -> Option<i64>,
) -> Result<(), TestCaseError> {
    let moved: BTreeSet<&Sym> = cs
        .merged
        .iter()
        .flat_map(|g| &g.members)
        .chain(cs.linked.iter().map(|l| &l.member))
        .collect();
    for g in &cs.merged {
        prop_assert!(g.winner != g.loser);
        let comp = comps.iter().find(|c| c.contains(&g.members[0])).unwrap();
        let stayed = comp
            .iter()
            .filter(|m| !moved.contains(m))
            .filter(|m| effective_group_of(after, m).as_deref() == Some(g.winner.as_str()))
            .count();
        let key = |id: &str, n: usize| (std::cmp::Reverse(n), age(id).map_or((1, 0), |t| (0, t)));
        prop_assert!(
            (key(&g.winner, stayed), &g.winner) <= (key(&g.loser, g.members.len()), &g.loser),
            "{:?} won with {} members",
            g,
            stayed
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn histories_of_merges_then_splits(steps in history()) {
        let mut stored = StoredGroups::default();
        let created: std::cell::RefCell<BTreeMap<String, i64>> = Default::default();
        let mut n = 0;
        for (t, labels) in steps.iter().enumerate() {
            let comps = partition(labels, 64);
            let mut new_id = || {
                n += 1;
                // Descending ids: a newer group has a smaller id.
                format!("N{:04}", 9_999 - n)
            };
            let age = |g: &str| created.borrow().get(g).copied();
            let (cs, after) = settle(&stored, &comps, &age, &mut new_id)?;
            largest_part_keeps_each_row(&stored, &after, &comps)?;
            every_change_has_an_event(&stored, &after, &cs, &comps)?;
            winners_are_never_smaller(&after, &cs, &comps, &age)?;
            for g in &cs.new_groups {
                created.borrow_mut().insert(g.to_string(), t as i64);
            }
            stored = after;
        }
    }
}

/// A store the previous rule (smallest uuid wins) settled: an old
/// 400-member identity merged into a newer singleton with a smaller uuid.
/// It already matches its component, so the new rule renames nothing.
#[test]
fn a_store_settled_by_the_previous_rule_renames_nothing() {
    let mut stored = StoredGroups::default();
    stored.groups.extend([Sym::new("a-new"), Sym::new("z-old")]);
    stored.merged_into.insert("z-old".into(), "a-new".into());
    stored.direct.insert("s".into(), "a-new".into());
    let mut comp = vec![Sym::new("s")];
    for i in 0..400 {
        let m = Sym::from(format!("x{i:03}"));
        stored.direct.insert(m.clone(), "z-old".into());
        comp.push(m);
    }
    let age = |g: &str| Some(if g == "z-old" { 0 } else { 60_000 });
    let mut new_id = || "fresh".to_string();
    let cs = reconcile(&stored, &[comp.clone()], &age, &mut new_id);
    assert!(
        cs.is_empty() && cs.merged.is_empty() && cs.unmerged.is_empty(),
        "{cs:?}"
    );
    // The same rows not yet merged are a component spanning two identities:
    // now the larger, older one wins.
    stored.merged_into.clear();
    let cs = reconcile(&stored, &[comp], &age, &mut new_id);
    assert_eq!(cs.merged.len(), 1);
    assert_eq!(
        (cs.merged[0].winner.as_str(), cs.merged[0].loser.as_str()),
        ("z-old", "a-new")
    );
    assert_eq!(cs.merged[0].members, vec!["s"]);
}
