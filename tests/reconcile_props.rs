//! Reconciliation converges: after applying a change set, every member's
//! effective group is its component's target, distinct components have
//! distinct groups, and reconciling again changes nothing — from any stored
//! state (random assignments and merge chains) and any partition.

use decnet_clusterd::reconcile::{effective_group_of, reconcile, StoredGroups};
use proptest::prelude::*;
use std::collections::BTreeSet;

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
