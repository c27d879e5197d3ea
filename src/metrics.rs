//! Clustering quality against ground truth (SPEC §11), from first
//! principles: adjusted Rand index (Hubert & Arabie), homogeneity and
//! completeness (Rosenberg & Hirschberg's entropy-based measures: no false
//! merges, no false splits) and singleton recall (share of true singletons —
//! lone scanners — kept alone).

use std::collections::BTreeMap;

/// The four scores, each in 0..=1 (ARI may dip below 0 for worse-than-chance).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    pub ari: f64,
    pub homogeneity: f64,
    pub completeness: f64,
    pub singleton_recall: f64,
}

impl Scores {
    /// Whether every score is 1 (to rounding).
    pub fn perfect(&self) -> bool {
        [
            self.ari,
            self.homogeneity,
            self.completeness,
            self.singleton_recall,
        ]
        .iter()
        .all(|s| (s - 1.0).abs() < 1e-9)
    }
}

fn comb2(n: u64) -> f64 {
    (n as f64) * (n.saturating_sub(1) as f64) / 2.0
}

/// Scores `predicted` against `truth` (items are the keys of `truth`; an item
/// missing from `predicted` is its own singleton cluster).
pub fn score(truth: &BTreeMap<String, String>, predicted: &BTreeMap<String, String>) -> Scores {
    let n = truth.len() as u64;
    if n == 0 {
        return Scores {
            ari: 1.0,
            homogeneity: 1.0,
            completeness: 1.0,
            singleton_recall: 1.0,
        };
    }
    let mut contingency: BTreeMap<(&str, String), u64> = BTreeMap::new();
    let mut class_sizes: BTreeMap<&str, u64> = BTreeMap::new();
    let mut cluster_sizes: BTreeMap<String, u64> = BTreeMap::new();
    for (item, class) in truth {
        let cluster = predicted
            .get(item)
            .cloned()
            .unwrap_or_else(|| format!("\u{0}missing:{item}"));
        *contingency
            .entry((class.as_str(), cluster.clone()))
            .or_default() += 1;
        *class_sizes.entry(class.as_str()).or_default() += 1;
        *cluster_sizes.entry(cluster).or_default() += 1;
    }
    // Adjusted Rand index.
    let index: f64 = contingency.values().map(|&c| comb2(c)).sum();
    let sum_a: f64 = class_sizes.values().map(|&c| comb2(c)).sum();
    let sum_b: f64 = cluster_sizes.values().map(|&c| comb2(c)).sum();
    let expected = sum_a * sum_b / comb2(n).max(f64::MIN_POSITIVE);
    let max_index = (sum_a + sum_b) / 2.0;
    let ari = if (max_index - expected).abs() < 1e-12 {
        1.0
    } else {
        (index - expected) / (max_index - expected)
    };
    // Entropies.
    let nf = n as f64;
    let entropy = |sizes: &mut dyn Iterator<Item = u64>| -> f64 {
        sizes
            .map(|c| c as f64 / nf)
            .filter(|p| *p > 0.0)
            .map(|p| -p * p.ln())
            .sum()
    };
    let h_class = entropy(&mut class_sizes.values().copied());
    let h_cluster = entropy(&mut cluster_sizes.values().copied());
    let mut h_class_given_cluster = 0.0;
    let mut h_cluster_given_class = 0.0;
    for ((class, cluster), &c) in &contingency {
        let c = c as f64;
        h_class_given_cluster -= c / nf * (c / cluster_sizes[cluster] as f64).ln();
        h_cluster_given_class -= c / nf * (c / class_sizes[class] as f64).ln();
    }
    let homogeneity = if h_class == 0.0 {
        1.0
    } else {
        1.0 - h_class_given_cluster / h_class
    };
    let completeness = if h_cluster == 0.0 {
        1.0
    } else {
        1.0 - h_cluster_given_class / h_cluster
    };
    // Singleton recall.
    let singletons: Vec<&str> = class_sizes
        .iter()
        .filter(|(_, &s)| s == 1)
        .map(|(c, _)| *c)
        .collect();
    let singleton_recall = if singletons.is_empty() {
        1.0
    } else {
        let kept = contingency
            .iter()
            .filter(|((class, cluster), _)| class_sizes[class] == 1 && cluster_sizes[cluster] == 1)
            .count();
        kept as f64 / singletons.len() as f64
    };
    Scores {
        ari,
        homogeneity,
        completeness,
        singleton_recall,
    }
}

/// A fixed-width table of scores, one row per (label, scores).
pub fn format_table(rows: &[(String, Scores)]) -> String {
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(8).max(8);
    let mut out = format!(
        "{:<width$}  {:>6}  {:>11}  {:>12}  {:>16}\n",
        "scenario", "ARI", "homogeneity", "completeness", "singleton recall"
    );
    for (label, s) in rows {
        out.push_str(&format!(
            "{:<width$}  {:>6.3}  {:>11.3}  {:>12.3}  {:>16.3}\n",
            label, s.ari, s.homogeneity, s.completeness, s.singleton_recall
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &[(&str, &str)]) -> BTreeMap<String, String> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn perfect_prediction_scores_one() {
        let t = labels(&[("1", "A"), ("2", "A"), ("3", "B")]);
        let p = labels(&[("1", "x"), ("2", "x"), ("3", "y")]);
        assert!(score(&t, &p).perfect());
    }

    #[test]
    fn false_merge_hurts_homogeneity_only() {
        // truth {1,2}{3}, predicted {1,2,3}.
        // H(C) = -(2/3 ln 2/3 + 1/3 ln 1/3) = 0.6365; H(C|K) = H(C) → h = 0.
        // H(K) = 0 → completeness 1. ARI: index 1, sum_a 1, sum_b 3,
        // expected 1*3/3 = 1, max 2 → (1-1)/(2-1) = 0. Singleton {3} merged → 0.
        let t = labels(&[("1", "A"), ("2", "A"), ("3", "B")]);
        let p = labels(&[("1", "x"), ("2", "x"), ("3", "x")]);
        let s = score(&t, &p);
        assert!(s.homogeneity.abs() < 1e-12);
        assert_eq!(s.completeness, 1.0);
        assert!(s.ari.abs() < 1e-12);
        assert_eq!(s.singleton_recall, 0.0);
    }

    #[test]
    fn false_split_hurts_completeness_only() {
        // truth {1,2,3,4}, predicted {1,2}{3,4}: h = 1, H(K) = ln 2,
        // H(K|C) = ln 2 → c = 0. ARI: index 2, sum_a 6, sum_b 2, expected 2,
        // max 4 → 0.
        let t = labels(&[("1", "A"), ("2", "A"), ("3", "A"), ("4", "A")]);
        let p = labels(&[("1", "x"), ("2", "x"), ("3", "y"), ("4", "y")]);
        let s = score(&t, &p);
        assert_eq!(s.homogeneity, 1.0);
        assert!(s.completeness.abs() < 1e-12);
        assert!(s.ari.abs() < 1e-12);
        assert_eq!(s.singleton_recall, 1.0);
    }

    #[test]
    fn hand_worked_ari() {
        // truth {1,2,3}{4,5,6}; predicted {1,2}{3,4}{5,6}.
        // index = 1+0+0+1 = 2 (pairs 12, 56); sum_a = 3+3 = 6; sum_b = 3;
        // expected = 6*3/15 = 1.2; max = 4.5; ARI = 0.8/3.3 = 0.242424…
        let t = labels(&[
            ("1", "A"),
            ("2", "A"),
            ("3", "A"),
            ("4", "B"),
            ("5", "B"),
            ("6", "B"),
        ]);
        let p = labels(&[
            ("1", "x"),
            ("2", "x"),
            ("3", "y"),
            ("4", "y"),
            ("5", "z"),
            ("6", "z"),
        ]);
        assert!((score(&t, &p).ari - 0.8 / 3.3).abs() < 1e-12);
    }

    #[test]
    fn missing_predictions_are_singletons() {
        let t = labels(&[("1", "A"), ("2", "B")]);
        let s = score(&t, &BTreeMap::new());
        assert!(s.perfect());
    }
}
