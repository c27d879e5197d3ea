//! Reconciliation (SPEC §8), shared by both layers: a pure function from the
//! stored groups (direct assignments and merge chains) and the freshly
//! computed components to a change set. In the identity layer members are
//! observations and groups identities; in the campaign layer members are
//! effective identities and groups campaigns.
//!
//! Rules, decided on the original state and then applied:
//! 1. **Ownership.** Each root group is owned by the component holding most
//!    of its *native* members (whose direct group is the root itself), then
//!    most of its effective members, then the component with the smallest
//!    member id. A merged-out loser's members drifting away never take the
//!    winner's name; for a group without merges this is "the largest part
//!    keeps the identity".
//! 2. **Per component** (in order of smallest member id): if it owns roots,
//!    the smallest owned id is its target and the other owned roots are
//!    soft-merged into it (`Merged`). Otherwise it resurrects the merged-out
//!    group on its members' chains that most of them pass through
//!    (`Unmerged`), or else gets a new group (`Formed`).
//! 3. **Links.** Every member whose effective group (after merges and
//!    resurrections) is not its component's target is re-pointed at it
//!    (`Linked`, with the prior effective group). Members of a formed group
//!    that had no group before are covered by the `Formed` event.
//!
//! Applying the change set and reconciling again gives an empty change set.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// What is stored about groups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredGroups {
    /// member → its direct group.
    pub direct: BTreeMap<String, String>,
    /// merged-out group → the group it was merged into.
    pub merged_into: BTreeMap<String, String>,
    /// every group row.
    pub groups: BTreeSet<String>,
}

/// A new group and its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Formed {
    pub group: String,
    pub members: Vec<String>,
}

/// A member (re-)pointed at a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linked {
    pub group: String,
    pub member: String,
    pub prior: Option<String>,
}

/// A root soft-merged into another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merged {
    pub winner: String,
    pub loser: String,
    /// Members of the component whose effective group was the loser.
    pub members: Vec<String>,
}

/// A merged-out group made a root again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmerged {
    pub resurrected: String,
    pub former_winner: String,
}

/// Events and row writes of one reconciliation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub formed: Vec<Formed>,
    pub merged: Vec<Merged>,
    pub unmerged: Vec<Unmerged>,
    pub linked: Vec<Linked>,
    /// (member, new direct group), sorted by member.
    pub assignments: Vec<(String, String)>,
    /// (group, Some(winner)) to merge, (group, None) to resurrect.
    pub merged_into: Vec<(String, Option<String>)>,
    /// Group rows to create.
    pub new_groups: Vec<String>,
}

impl ChangeSet {
    pub fn is_empty(&self) -> bool {
        self.assignments.is_empty() && self.merged_into.is_empty() && self.new_groups.is_empty()
    }

    /// Applies the row writes to a stored state.
    pub fn apply(&self, stored: &mut StoredGroups) {
        stored.groups.extend(self.new_groups.iter().cloned());
        for (group, target) in &self.merged_into {
            match target {
                Some(w) => stored.merged_into.insert(group.clone(), w.clone()),
                None => stored.merged_into.remove(group),
            };
        }
        for (member, group) in &self.assignments {
            stored.direct.insert(member.clone(), group.clone());
        }
    }
}

/// Walks a merge chain from `group` along `next`, calling `visit` on every
/// group (the start included) until the chain ends or would revisit a
/// group; returns the last group visited (the root). Cycle-safe; allocates
/// only for chains longer than a few links.
fn walk<'a>(
    group: &'a str,
    next: impl Fn(&str) -> Option<&'a str>,
    mut visit: impl FnMut(&'a str),
) -> &'a str {
    visit(group);
    let mut cur = group;
    let mut seen: Vec<&'a str> = Vec::new();
    while let Some(n) = next(cur) {
        if n == group || seen.contains(&n) {
            break;
        }
        seen.push(n);
        visit(n);
        cur = n;
    }
    cur
}

/// The root a group resolves to along `merged_into`.
pub fn effective_root(stored: &StoredGroups, group: &str) -> String {
    root_in(stored, group).to_string()
}

fn root_in<'a>(stored: &'a StoredGroups, group: &'a str) -> &'a str {
    walk(
        group,
        |g| stored.merged_into.get(g).map(String::as_str),
        |_| {},
    )
}

/// The effective group of a member, if it has a (known) group.
pub fn effective_group_of(stored: &StoredGroups, member: &str) -> Option<String> {
    let g = stored.direct.get(member)?;
    stored.groups.contains(g).then(|| effective_root(stored, g))
}

/// Reconciles `components` (a partition of the members in scope) with the
/// stored state; see the module doc for the rules.
pub fn reconcile(
    stored: &StoredGroups,
    components: &[Vec<String>],
    new_id: &mut dyn FnMut() -> String,
) -> ChangeSet {
    // Sorted, deduplicated components; already canonical ones are borrowed.
    let mut comps: Vec<Cow<'_, [String]>> = components
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| {
            if c.windows(2).all(|w| w[0] < w[1]) {
                Cow::Borrowed(&c[..])
            } else {
                let mut c = c.clone();
                c.sort();
                c.dedup();
                Cow::Owned(c)
            }
        })
        .collect();
    comps.sort();
    let direct = |m: &str| {
        stored
            .direct
            .get(m)
            .map(String::as_str)
            .filter(|g| stored.groups.contains(*g))
    };
    let root_of = |m: &str| direct(m).map(|g| root_in(stored, g));

    // 1. Ownership: root → (native, effective) counts per component.
    let mut counts: BTreeMap<&str, BTreeMap<usize, (usize, usize)>> = BTreeMap::new();
    for (ci, comp) in comps.iter().enumerate() {
        for m in comp.iter() {
            if let Some(d) = direct(m) {
                let r = root_in(stored, d);
                let e = counts.entry(r).or_default().entry(ci).or_default();
                e.1 += 1;
                if d == r {
                    e.0 += 1;
                }
            }
        }
    }
    let mut owned: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (root, per) in &counts {
        // Components are sorted, so a lower index means a smaller first member.
        let best = per
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(ci, _)| *ci);
        if let Some(ci) = best {
            owned.entry(ci).or_default().push(root);
        }
    }

    // 2. Targets.
    let mut out = ChangeSet::default();
    let mut target: Vec<String> = Vec::with_capacity(comps.len());
    let mut resurrected: BTreeSet<String> = BTreeSet::new();
    let mut new_merged_into: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (ci, comp) in comps.iter().enumerate() {
        if let Some(roots) = owned.get(&ci) {
            let winner = roots[0].to_string(); // BTreeMap order: smallest id first
            for &loser in &roots[1..] {
                let members = comp
                    .iter()
                    .filter(|m| root_of(m) == Some(loser))
                    .cloned()
                    .collect();
                out.merged.push(Merged {
                    winner: winner.clone(),
                    loser: loser.to_string(),
                    members,
                });
                new_merged_into.insert(loser.to_string(), Some(winner.clone()));
            }
            target.push(winner);
            continue;
        }
        let mut scores: BTreeMap<&str, usize> = BTreeMap::new();
        for m in comp.iter() {
            if let Some(d) = direct(m) {
                // Every group on the chain but its root.
                let mut prev: Option<&str> = None;
                walk(
                    d,
                    |g| stored.merged_into.get(g).map(String::as_str),
                    |g| {
                        if let Some(p) = prev.replace(g) {
                            if !resurrected.contains(p) {
                                *scores.entry(p).or_default() += 1;
                            }
                        }
                    },
                );
            }
        }
        let pick = scores
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(g, _)| g.to_string());
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
                members: comp.to_vec(),
            });
            out.new_groups.push(g.clone());
            target.push(g);
        }
    }

    // 3. Links, judged on the new chains: the stored merge chains with this
    // change set's merges and resurrections laid over them (never copied).
    let after = |g: &str| match new_merged_into.get(g) {
        Some(w) => w.as_deref(),
        None => stored.merged_into.get(g).map(String::as_str),
    };
    let formed: BTreeSet<&str> = out.formed.iter().map(|f| f.group.as_str()).collect();
    let mut linked = Vec::new();
    for (comp, t) in comps.iter().zip(&target) {
        for m in comp.iter() {
            let now = direct(m).map(|d| walk(d, after, |_| {}));
            if now == Some(t.as_str()) {
                continue;
            }
            let prior = root_of(m).map(str::to_string);
            out.assignments.push((m.clone(), t.clone()));
            if prior.is_some() || !formed.contains(t.as_str()) {
                linked.push(Linked {
                    group: t.clone(),
                    member: m.clone(),
                    prior,
                });
            }
        }
    }
    out.linked = linked;
    out.merged_into = new_merged_into.into_iter().collect();
    out.assignments.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fresh ids, unique across the whole test binary.
    fn ids() -> impl FnMut() -> String {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(1000);
        || format!("g{}", NEXT.fetch_add(1, Ordering::Relaxed))
    }

    fn comps(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter()
            .map(|c| c.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    fn settle(stored: &mut StoredGroups, c: &[Vec<String>]) -> ChangeSet {
        let mut id = ids();
        let cs = reconcile(stored, c, &mut id);
        cs.apply(stored);
        let mut id2 = ids();
        assert!(reconcile(stored, c, &mut id2).is_empty(), "not idempotent");
        cs
    }

    #[test]
    fn formed_then_linked() {
        let mut s = StoredGroups::default();
        let cs = settle(&mut s, &comps(&[&["a", "b"], &["c"]]));
        assert_eq!(cs.formed.len(), 2);
        assert!(cs.linked.is_empty());
        let ab = s.direct["a"].clone();
        let cs = settle(&mut s, &comps(&[&["a", "b", "d"], &["c"]]));
        assert_eq!(
            cs.linked,
            vec![Linked {
                group: ab,
                member: "d".into(),
                prior: None
            }]
        );
    }

    #[test]
    fn merged_keeps_smallest_and_unmerge_resurrects() {
        let mut s = StoredGroups::default();
        settle(&mut s, &comps(&[&["a", "b"], &["c", "d"]]));
        let (ab, cd) = (s.direct["a"].clone(), s.direct["c"].clone());
        assert!(ab < cd);
        let cs = settle(&mut s, &comps(&[&["a", "b", "c", "d"]]));
        assert_eq!(cs.merged.len(), 1);
        assert_eq!(cs.merged[0].winner, ab);
        assert_eq!(cs.merged[0].loser, cd);
        assert_eq!(cs.merged[0].members, vec!["c", "d"]);
        assert_eq!(s.direct["c"], cd, "a loser keeps its members");
        assert_eq!(effective_group_of(&s, "c").as_ref(), Some(&ab));
        let cs = settle(&mut s, &comps(&[&["a", "b"], &["c", "d"]]));
        assert_eq!(
            cs.unmerged,
            vec![Unmerged {
                resurrected: cd,
                former_winner: ab
            }]
        );
        assert!(cs.linked.is_empty() && cs.formed.is_empty());
    }

    #[test]
    fn split_keeps_largest_part() {
        let mut s = StoredGroups::default();
        settle(&mut s, &comps(&[&["a", "b", "c"]]));
        let abc = s.direct["a"].clone();
        let cs = settle(&mut s, &comps(&[&["a"], &["b", "c"]]));
        assert_eq!(cs.formed.len(), 1);
        assert_eq!(cs.formed[0].members, vec!["a"]);
        assert_eq!(effective_group_of(&s, "b").as_ref(), Some(&abc));
        assert_eq!(
            cs.linked,
            vec![Linked {
                group: cs.formed[0].group.clone(),
                member: "a".into(),
                prior: Some(abc)
            }]
        );
    }

    #[test]
    fn chain_resurrects_the_middle() {
        // L → W → W2: L's and W's members split from W2's.
        let mut s = StoredGroups::default();
        for (m, g) in [("l", "L"), ("w", "W"), ("x", "X")] {
            s.direct.insert(m.into(), g.into());
            s.groups.insert(g.into());
        }
        s.merged_into.insert("L".into(), "W".into());
        s.merged_into.insert("W".into(), "X".into());
        let cs = settle(&mut s, &comps(&[&["l", "w"], &["x"]]));
        assert_eq!(
            cs.unmerged,
            vec![Unmerged {
                resurrected: "W".into(),
                former_winner: "X".into()
            }]
        );
        assert_eq!(s.merged_into.get("L").map(String::as_str), Some("W"));
        assert_eq!(effective_group_of(&s, "l").as_deref(), Some("W"));
        assert_eq!(effective_group_of(&s, "x").as_deref(), Some("X"));
    }

    #[test]
    fn cycles_do_not_hang() {
        let mut s = StoredGroups::default();
        s.groups.extend(["A".to_string(), "B".to_string()]);
        s.merged_into.insert("A".into(), "B".into());
        s.merged_into.insert("B".into(), "A".into());
        s.direct.insert("m".into(), "A".into());
        let root = effective_root(&s, "A");
        assert_eq!(root, "B");
        let mut id = ids();
        let cs = reconcile(&s, &comps(&[&["m"]]), &mut id);
        let mut s2 = s.clone();
        cs.apply(&mut s2);
        assert!(effective_group_of(&s2, "m").is_some());
    }

    #[test]
    fn input_order_does_not_matter() {
        let mut s = StoredGroups::default();
        settle(&mut s, &comps(&[&["a", "b"], &["c", "d"], &["e"]]));
        let fixed = || {
            let mut n = 0;
            move || {
                n += 1;
                format!("fixed-{n}")
            }
        };
        let a = reconcile(&s, &comps(&[&["e", "a"], &["d", "b", "c"]]), &mut fixed());
        let b = reconcile(&s, &comps(&[&["c", "b", "d"], &["a", "e"]]), &mut fixed());
        assert_eq!(a, b);
    }
}
