//! Reconciliation (SPEC §8), shared by both layers: a pure function from the
//! stored groups (direct assignments and merge chains) and the freshly
//! computed components to a change set. In the identity layer members are
//! observations and groups identities; in the campaign layer members are
//! effective identities and groups campaigns.
//!
//! Rules, decided on the original state and then applied:
//! 1. **Keeping rows.** Every group row, merged-out rows included, is kept by
//!    the component holding most of its *native* members (whose direct group
//!    is that row), then most of the members whose merge chain passes
//!    through it, then the component with the smallest member id. So a split
//!    goes to the largest part row by row: a merged-out row stays with the
//!    part holding most of its own members, wherever its winner went.
//! 2. **Tops.** Within a component, a kept row's merge chain is followed
//!    while it stays on rows the component keeps; where it stops is one of
//!    the component's *tops*. A top's size is the number of the component's
//!    members whose direct row leads to it.
//! 3. **Target.** A component with no top gets a new group (`Formed`).
//!    Otherwise its target is the top with the most members, then the oldest
//!    `created_at`, then the smallest id: names are stable, a newer, smaller
//!    group never renames an older, larger one. A merged-out target is made a
//!    root again (`Unmerged`); every other top is pointed at the target, a
//!    `Merged` when that changes the group its members resolve to.
//! 4. **Links.** Every member whose effective group (after the merges and
//!    resurrections) is not its component's target is re-pointed at it
//!    (`Linked`), its prior being the row that held it (never the target).
//!    Members of a formed group that had no group before are covered by the
//!    `Formed` event.
//!
//! Applying the change set and reconciling again gives an empty change set;
//! a stored state that already matches the components (one effective group
//! per component, no merge cycles) reconciles to an empty one.

use crate::evidence::{Millis, Sym};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// What is stored about groups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredGroups {
    /// member → its direct group.
    /// Interned (as every uuid the store holds): a member's uuid shares
    /// one allocation with its observation, a group's with its row's
    /// other holders.
    pub direct: BTreeMap<Sym, Sym>,
    /// merged-out group → the group it was merged into.
    pub merged_into: BTreeMap<Sym, Sym>,
    /// every group row.
    pub groups: BTreeSet<Sym>,
}

/// A new group and its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Formed {
    pub group: Sym,
    pub members: Vec<Sym>,
}

/// A member (re-)pointed at a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linked {
    pub group: Sym,
    pub member: Sym,
    pub prior: Option<Sym>,
}

/// A root soft-merged into another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merged {
    pub winner: Sym,
    pub loser: Sym,
    /// Members of the component whose effective group was the loser.
    pub members: Vec<Sym>,
}

/// A merged-out group made a root again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmerged {
    pub resurrected: Sym,
    pub former_winner: Sym,
}

/// Events and row writes of one reconciliation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub formed: Vec<Formed>,
    pub merged: Vec<Merged>,
    pub unmerged: Vec<Unmerged>,
    pub linked: Vec<Linked>,
    /// (member, new direct group), sorted by member.
    pub assignments: Vec<(Sym, Sym)>,
    /// (group, Some(winner)) to merge, (group, None) to resurrect.
    pub merged_into: Vec<(Sym, Option<Sym>)>,
    /// Group rows to create.
    pub new_groups: Vec<Sym>,
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
        |g| stored.merged_into.get(g).map(Sym::as_str),
        |_| {},
    )
}

/// The effective group of a member, if it has a (known) group.
pub fn effective_group_of(stored: &StoredGroups, member: &str) -> Option<String> {
    let g = stored.direct.get(member)?;
    stored.groups.contains(g).then(|| effective_root(stored, g))
}

/// Reconciles `components` (a partition of the members in scope) with the
/// stored state; `created_at` gives a group row's creation time (the
/// tie-break between tops of equal size). See the module doc for the rules.
pub fn reconcile<'s>(
    stored: &'s StoredGroups,
    components: &[Vec<Sym>],
    created_at: &dyn Fn(&str) -> Option<Millis>,
    new_id: &mut dyn FnMut() -> String,
) -> ChangeSet {
    // Sorted, deduplicated components; already canonical ones are borrowed.
    let mut comps: Vec<Cow<'_, [Sym]>> = components
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
    // A row's merge target, as the stored `Sym` (a clone is a count) and
    // as text.
    let next_sym = |g: &str| stored.merged_into.get(g);
    let next = |g: &str| next_sym(g).map(Sym::as_str);
    // Every member's direct row, looked up once: searching the stored maps
    // (an ordered map of every observation, compared as text) three times
    // per member was most of a full pass's reconcile. Consecutive members
    // of one row share its check that the row exists.
    let directs: Vec<Vec<Option<&'s Sym>>> = comps
        .iter()
        .map(|comp| {
            let mut last: Option<(&'s Sym, bool)> = None;
            comp.iter()
                .map(|m| {
                    let g = stored.direct.get(m)?;
                    let exists = match last {
                        Some((l, exists)) if Sym::ptr_eq(l, g) => exists,
                        _ => {
                            let exists = stored.groups.contains(g.as_str());
                            last = Some((g, exists));
                            exists
                        }
                    };
                    exists.then_some(g)
                })
                .collect()
        })
        .collect();

    // 1. Keeping rows: row → component → (native, passing through). Hashed
    // by text: only looked up, never walked in order.
    let mut counts: FxHashMap<&str, BTreeMap<usize, (usize, usize)>> = FxHashMap::default();
    for (ci, ds) in directs.iter().enumerate() {
        for d in ds.iter().flatten() {
            counts.entry(d).or_default().entry(ci).or_default().0 += 1;
            walk(d, next, |g| {
                counts.entry(g).or_default().entry(ci).or_default().1 += 1;
            });
        }
    }
    // Components are sorted, so a lower index means a smaller first member.
    let keeper: FxHashMap<&str, usize> = counts
        .iter()
        .filter_map(|(&row, per)| {
            per.iter()
                .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .map(|(&ci, _)| (row, ci))
        })
        .collect();
    // 2. The top of a row component `ci` keeps: its chain followed while the
    // next row is kept by `ci` too (every row on an in-scope chain is kept
    // by some component). Cycle-safe.
    let top_of = |ci: usize, d: &'s Sym| -> &'s Sym {
        let mut top = d;
        let mut seen: Vec<&Sym> = Vec::new();
        while let Some(n) = next_sym(top) {
            if n == d || seen.contains(&n) || keeper.get(n.as_str()) != Some(&ci) {
                break;
            }
            seen.push(n);
            top = n;
        }
        top
    };
    // Older first, unknown creation times last.
    let age = |g: &str| created_at(g).map_or((1, 0), |t| (0, t));

    // 3. Targets.
    let mut out = ChangeSet::default();
    let mut target: Vec<Sym> = Vec::with_capacity(comps.len());
    let mut new_merged_into: BTreeMap<Sym, Option<Sym>> = BTreeMap::new();
    for (ci, comp) in comps.iter().enumerate() {
        // The top each member's direct row leads to, if `ci` keeps that row.
        let tops_of: Vec<Option<&Sym>> = directs[ci]
            .iter()
            .map(|d| {
                d.filter(|d| keeper.get(d.as_str()) == Some(&ci))
                    .map(|d| top_of(ci, d))
            })
            .collect();
        let mut size: BTreeMap<&Sym, usize> = BTreeMap::new();
        for &t in tops_of.iter().flatten() {
            *size.entry(t).or_default() += 1;
        }
        let best = size.iter().min_by(|a, b| {
            b.1.cmp(a.1)
                .then_with(|| age(a.0).cmp(&age(b.0)))
                .then_with(|| a.0.cmp(b.0))
        });
        let Some((&winner, _)) = best else {
            let g = Sym::from(new_id());
            out.formed.push(Formed {
                group: g.clone(),
                members: comp.to_vec(),
            });
            out.new_groups.push(g.clone());
            target.push(g);
            continue;
        };
        if let Some(former) = next_sym(winner) {
            out.unmerged.push(Unmerged {
                resurrected: winner.clone(),
                former_winner: former.clone(),
            });
            new_merged_into.insert(winner.clone(), None);
        }
        for &top in size.keys().filter(|&&t| t != winner) {
            if next_sym(top) == Some(winner) {
                continue;
            }
            new_merged_into.insert(top.clone(), Some(winner.clone()));
            // Re-pointing a top whose chain already ended at the winner
            // changes no member's group: no event.
            if root_in(stored, top) != winner.as_str() {
                let members = comp
                    .iter()
                    .zip(&tops_of)
                    .filter(|(_, t)| **t == Some(top))
                    .map(|(m, _)| m.clone())
                    .collect();
                out.merged.push(Merged {
                    winner: winner.clone(),
                    loser: top.clone(),
                    members,
                });
            }
        }
        target.push(winner.clone());
    }

    // 4. Links, judged on the new chains: the stored merge chains with this
    // change set's merges and resurrections laid over them (never copied).
    let after = |g: &str| match new_merged_into.get(g) {
        Some(w) => w.as_deref(),
        None => next(g),
    };
    let formed: BTreeSet<&str> = out.formed.iter().map(|f| f.group.as_str()).collect();
    let mut linked = Vec::new();
    for ((comp, ds), t) in comps.iter().zip(&directs).zip(&target) {
        for (m, &prior) in comp.iter().zip(ds) {
            if prior.map(|d| walk(d, after, |_| {})) == Some(t.as_str()) {
                continue;
            }
            out.assignments.push((m.clone(), t.clone()));
            if prior.is_some() || !formed.contains(t.as_str()) {
                linked.push(Linked {
                    group: t.clone(),
                    member: m.clone(),
                    prior: prior.cloned(),
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

    fn comps(v: &[&[&str]]) -> Vec<Vec<Sym>> {
        v.iter()
            .map(|c| c.iter().map(|s| Sym::new(s)).collect())
            .collect()
    }

    fn settle(stored: &mut StoredGroups, c: &[Vec<Sym>]) -> ChangeSet {
        let mut id = ids();
        let cs = reconcile(stored, c, &|_| None, &mut id);
        cs.apply(stored);
        let mut id2 = ids();
        assert!(
            reconcile(stored, c, &|_| None, &mut id2).is_empty(),
            "not idempotent"
        );
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
    fn equal_sizes_keep_smallest_and_unmerge_resurrects() {
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
        assert_eq!(effective_group_of(&s, "c").as_deref(), Some(ab.as_str()));
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
        assert_eq!(effective_group_of(&s, "b").as_deref(), Some(abc.as_str()));
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
        assert_eq!(s.merged_into.get("L").map(Sym::as_str), Some("W"));
        assert_eq!(effective_group_of(&s, "l").as_deref(), Some("W"));
        assert_eq!(effective_group_of(&s, "x").as_deref(), Some("X"));
    }

    #[test]
    fn cycles_do_not_hang() {
        let mut s = StoredGroups::default();
        s.groups.extend([Sym::new("A"), Sym::new("B")]);
        s.merged_into.insert("A".into(), "B".into());
        s.merged_into.insert("B".into(), "A".into());
        s.direct.insert("m".into(), "A".into());
        let root = effective_root(&s, "A");
        assert_eq!(root, "B");
        let mut id = ids();
        let cs = reconcile(&s, &comps(&[&["m"]]), &|_| None, &mut id);
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
        let a = reconcile(
            &s,
            &comps(&[&["e", "a"], &["d", "b", "c"]]),
            &|_| None,
            &mut fixed(),
        );
        let b = reconcile(
            &s,
            &comps(&[&["c", "b", "d"], &["a", "e"]]),
            &|_| None,
            &mut fixed(),
        );
        assert_eq!(a, b);
    }
}
