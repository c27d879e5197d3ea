//! Compact per-observation features for the identity layer: every string an
//! attacker sent is interned once into a dense `u32` id, and an observation
//! becomes a handful of sorted id slices. Similarity (`similarity.rs`) and the
//! candidate index (`index.rs`) work only on these.

use crate::evidence::{Observation, TOOLING_KINDS};
use rustc_hash::FxHashMap;

/// Interns strings of one namespace into dense ids (0, 1, 2, …).
#[derive(Default, Debug, Clone)]
pub struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The id of `s`, allocating one if it is new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    /// The id of `s` if it was ever interned.
    pub fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// The string behind an id.
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Every namespace of interned evidence values.
#[derive(Default, Debug, Clone)]
pub struct Vocabulary {
    /// `kind:value` of tooling fingerprints.
    pub tools: Interner,
    /// Tooling kind index (position in [`TOOLING_KINDS`]) of each tool id.
    pub tool_kind: Vec<u8>,
    pub payloads: Interner,
    pub c2: Interner,
    pub commands: Interner,
    /// `user\u{0}password`.
    pub credentials: Interner,
    /// Distinct tooling profiles (the exact set of tool ids), so that the
    /// veto between two observations can be decided once per profile pair.
    pub profiles: FxHashMap<Box<[u32]>, u32>,
}

impl Vocabulary {
    fn tool_id(&mut self, kind_index: usize, value: &str) -> u32 {
        let key = format!("{}:{}", TOOLING_KINDS[kind_index], value);
        let id = self.tools.intern(&key);
        if id as usize == self.tool_kind.len() {
            self.tool_kind.push(kind_index as u8);
        }
        id
    }

    /// Splits an interned tool key back into (kind, value).
    pub fn tool(&self, id: u32) -> (&str, &str) {
        let s = self.tools.name(id);
        s.split_once(':').unwrap_or(("", s))
    }

    /// The credential pair behind an id.
    pub fn credential(&self, id: u32) -> (&str, &str) {
        let s = self.credentials.name(id);
        s.split_once('\u{0}').unwrap_or((s, ""))
    }
}

/// One observation as the identity layer sees it. All slices are sorted and
/// deduplicated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub tools: Box<[u32]>,
    /// Bit i set when the observation carries tooling kind i.
    pub kinds: u8,
    pub payloads: Box<[u32]>,
    pub c2: Box<[u32]>,
    /// Bit p set when a session of phase p was seen (phase-based signals
    /// compare only phases both observations were seen in).
    pub phases: u32,
    /// `(phase index, command id)` pairs, sorted.
    pub commands: Box<[(u8, u32)]>,
    pub credentials: Box<[u32]>,
    pub asn: Option<u32>,
    /// Interned tooling profile (the set `tools`).
    pub profile: u32,
}

fn sorted(mut v: Vec<u32>) -> Box<[u32]> {
    v.sort_unstable();
    v.dedup();
    v.into_boxed_slice()
}

impl Features {
    /// Extracts (and interns) the features of an observation.
    pub fn extract(obs: &Observation, vocab: &mut Vocabulary) -> Features {
        let mut tools = Vec::new();
        let mut kinds = 0u8;
        for fp in &obs.fingerprints {
            if let Some(k) = TOOLING_KINDS.iter().position(|k| *k == fp.kind) {
                tools.push(vocab.tool_id(k, &fp.value));
                kinds |= 1 << k;
            }
        }
        let tools = sorted(tools);
        let mut payloads = Vec::new();
        let mut c2 = Vec::new();
        let mut commands = Vec::new();
        let mut credentials = Vec::new();
        let mut phases = 0u32;
        let mut key = String::new();
        for s in obs.sessions.values() {
            payloads.extend(s.payload_hashes.iter().map(|p| vocab.payloads.intern(p)));
            c2.extend(s.c2_endpoints.iter().map(|c| vocab.c2.intern(c)));
            for (u, p) in &s.credentials {
                key.clear();
                key.push_str(u);
                key.push('\u{0}');
                key.push_str(p);
                credentials.push(vocab.credentials.intern(&key));
            }
            if let Some(phase) = s.phase {
                let p = phase.index() as u8;
                phases |= 1 << p;
                commands.extend(s.commands.iter().map(|c| (p, vocab.commands.intern(c))));
            }
        }
        commands.sort_unstable();
        commands.dedup();
        let next = vocab.profiles.len() as u32;
        let profile = *vocab.profiles.entry(tools.clone()).or_insert(next);
        Features {
            tools,
            kinds,
            payloads: sorted(payloads),
            c2: sorted(c2),
            phases,
            commands: commands.into_boxed_slice(),
            credentials: sorted(credentials),
            asn: obs.asn(),
            profile,
        }
    }

    /// The command ids seen in one phase (a sub-slice of `commands`).
    pub fn commands_in(&self, phase: u8) -> &[(u8, u32)] {
        let start = self.commands.partition_point(|c| c.0 < phase);
        let end = self.commands.partition_point(|c| c.0 <= phase);
        &self.commands[start..end]
    }
}

/// Number of common elements of two sorted slices.
pub fn intersection_len<T: Ord>(a: &[T], b: &[T]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// Jaccard index of two sorted, deduplicated slices (0 when both are empty).
pub fn jaccard<T: Ord>(a: &[T], b: &[T]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let inter = intersection_len(a, b);
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// Calls `f` for each common element of two sorted slices.
pub fn for_each_common<T: Ord + Copy>(a: &[T], b: &[T], mut f: impl FnMut(T)) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                f(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaccard_hand_worked() {
        assert_eq!(jaccard(&[1, 2, 3], &[2, 3, 4]), 0.5);
        assert_eq!(jaccard::<u32>(&[], &[]), 0.0);
        assert_eq!(jaccard(&[1], &[1]), 1.0);
        assert_eq!(intersection_len(&[1, 5, 9], &[2, 5, 9, 11]), 2);
    }

    #[test]
    fn interner_is_dense_and_stable() {
        let mut i = Interner::default();
        assert_eq!(i.intern("a"), 0);
        assert_eq!(i.intern("b"), 1);
        assert_eq!(i.intern("a"), 0);
        assert_eq!(i.name(1), "b");
        assert_eq!(i.get("c"), None);
    }
}
