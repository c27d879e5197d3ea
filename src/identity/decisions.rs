//! Operator decisions (SPEC §7, §8): `link` (these observations are one
//! identity) and `separate` (never one identity). They always win over
//! computed evidence. Stored here keyed by the unordered pair; the daemon
//! persists them in Redis with who and when.

use crate::evidence::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the operator said about a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Link,
    Separate,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Link => "link",
            DecisionKind::Separate => "separate",
        }
    }
}

/// One decision with its provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub kind: DecisionKind,
    pub requested_by: String,
    pub at: Millis,
}

/// Every decision in force, keyed by the ordered pair `(min, max)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decisions {
    pairs: BTreeMap<(String, String), Decision>,
}

/// The canonical key of an unordered pair.
pub fn pair_key(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

impl Decisions {
    /// Records a decision, replacing any earlier one on the same pair. A pair
    /// of one observation with itself is meaningless and ignored.
    pub fn set(&mut self, a: &str, b: &str, decision: Decision) -> bool {
        if a == b {
            return false;
        }
        self.pairs.insert(pair_key(a, b), decision);
        true
    }

    /// Removes the decision on a pair; returns it if there was one.
    pub fn forget(&mut self, a: &str, b: &str) -> Option<Decision> {
        self.pairs.remove(&pair_key(a, b))
    }

    pub fn get(&self, a: &str, b: &str) -> Option<&Decision> {
        self.pairs.get(&pair_key(a, b))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&(String, String), &Decision)> {
        self.pairs.iter()
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Pairs whose decision differs between `self` and `other` (added,
    /// removed or changed), so a graph can re-examine just those.
    pub fn changed_pairs(&self, other: &Decisions) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (k, d) in &self.pairs {
            if other.pairs.get(k).map(|o| o.kind) != Some(d.kind) {
                out.push(k.clone());
            }
        }
        for k in other.pairs.keys() {
            if !self.pairs.contains_key(k) {
                out.push(k.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(kind: DecisionKind) -> Decision {
        Decision {
            kind,
            requested_by: "analyst".into(),
            at: 1,
        }
    }

    #[test]
    fn pairs_are_unordered_and_replaced() {
        let mut ds = Decisions::default();
        assert!(ds.set("b", "a", d(DecisionKind::Link)));
        assert_eq!(ds.get("a", "b").map(|x| x.kind), Some(DecisionKind::Link));
        ds.set("a", "b", d(DecisionKind::Separate));
        assert_eq!(ds.len(), 1);
        assert_eq!(
            ds.get("b", "a").map(|x| x.kind),
            Some(DecisionKind::Separate)
        );
        assert!(!ds.set("a", "a", d(DecisionKind::Link)));
        let before = ds.clone();
        assert!(ds.forget("b", "a").is_some());
        assert_eq!(
            ds.changed_pairs(&before),
            vec![("a".to_string(), "b".to_string())]
        );
    }
}
