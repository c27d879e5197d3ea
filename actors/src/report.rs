//! Human-readable rendering for the terminal. Attacker-supplied strings are
//! escaped (control characters, quotes) and shortened before printing.

use decnet_clusterd::identity::IdentityGraph;
use decnet_clusterd::metrics::{format_table, Scores};
use decnet_clusterd::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Escapes and shortens an attacker-supplied string for a terminal.
pub fn clean(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).flat_map(char::escape_debug).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// The demo summary.
pub fn summary(
    store: &Store,
    graph: &IdentityGraph,
    events: usize,
    quality: &Scores,
    top: usize,
) -> String {
    let mut by_identity: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for o in store.observations.keys() {
        if let Some(i) = store.effective_identity(o) {
            by_identity.entry(i).or_default().push(o);
        }
    }
    let multi = by_identity.values().filter(|m| m.len() > 1).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{events} events → {} observations → {} identities ({multi} of them span several IPs; the rest are lone scanners)\n",
        store.observations.len(),
        by_identity.len()
    );
    let mut largest: Vec<(&String, &Vec<&str>)> = by_identity.iter().collect();
    largest.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let _ = writeln!(out, "Largest identities:");
    for (id, members) in largest.into_iter().take(top) {
        let obs: Vec<_> = members
            .iter()
            .filter_map(|m| store.observations.get(*m))
            .collect();
        let asns: BTreeSet<u32> = obs.iter().filter_map(|o| o.asn()).collect();
        // Phases in kill-chain order (Phase's Ord), not alphabetical.
        let phases: BTreeSet<decnet_clusterd::phase::Phase> = obs
            .iter()
            .flat_map(|o| o.sessions.values().filter_map(|s| s.phase))
            .collect();
        let conf = store.identities.get(id).map_or(0.0, |r| r.confidence);
        let _ = writeln!(
            out,
            "  {id}  {} IPs  confidence {conf:.2}\n      ASNs {}\n      phases {}",
            members.len(),
            asns.iter()
                .map(|a| format!("AS{a}"))
                .collect::<Vec<_>>()
                .join(" "),
            phases
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(" → ")
        );
        let mut signals: BTreeMap<String, usize> = BTreeMap::new();
        for e in graph.explain_identity(members[0]).unwrap_or_default() {
            let key = e
                .explanation
                .high_signal
                .clone()
                .unwrap_or_else(|| "operator link".into());
            *signals.entry(key).or_default() += 1;
        }
        let mut signals: Vec<_> = signals.into_iter().collect();
        signals.sort_by_key(|s| std::cmp::Reverse(s.1));
        for (signal, n) in signals.into_iter().take(3) {
            let _ = writeln!(out, "      tied by {} ({n} links)", clean(&signal, 60));
        }
    }
    let _ = writeln!(
        out,
        "\nQuality against the scenario's truth labels (identity level):\n"
    );
    out.push_str(&format_table(&[("all_with_noise".to_string(), *quality)]));
    let _ = writeln!(
        out,
        "\nNext: `clusterd score` scores every built-in scenario, `clusterd score --list` lists them,\n`clusterd bench` measures clustering of 1,000,000 observations."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacker_strings_are_escaped() {
        assert_eq!(clean("a\nb\"c\u{1b}[31m", 40), "a\\nb\\\"c\\u{1b}[31m");
        assert_eq!(clean("abcdef", 3), "abc…");
    }
}
