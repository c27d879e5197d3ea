//! Compact per-observation features for the identity layer: every string an
//! attacker sent is interned once into a dense `u32` id, and an observation
//! becomes a handful of sorted id slices. Similarity (`similarity.rs`) and the
//! candidate index (`index.rs`) work only on these.

use super::catalogue::{password_strength, CatalogueRef};
use super::similarity::IdentityWeights;
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

/// Every namespace of interned evidence values, with what the catalogues
/// (`super::catalogue`) say about each value, decided once when it is first
/// seen.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    /// `kind:value` of tooling fingerprints.
    pub tools: Interner,
    /// Tooling kind index (position in [`TOOLING_KINDS`]) of each tool id.
    pub tool_kind: Vec<u8>,
    /// Per tool id: the catalogued library label (`paramiko 3.5.1`), if any.
    pub tool_library: Vec<Option<Box<str>>>,
    pub payloads: Interner,
    pub c2: Interner,
    pub commands: Interner,
    /// Per command id: whether the behaviour catalogue lists it as stock.
    pub command_stock: Vec<bool>,
    /// `user\u{0}password`.
    pub credentials: Interner,
    /// Per credential id: how much identity evidence the pair can carry
    /// before counting (0 for a catalogued or guessable pair, up to 1 for a
    /// strong password; see [`password_strength`]).
    pub credential_prior: Vec<f32>,
    /// SSH keys: `login\u{0}SHA256:…` (a key the client authenticated with,
    /// `ssh_pubkey` or `auth_key`) and `planted\u{0}SHA256:…` (a key it
    /// added to an `authorized_keys` file). Login keys are compared with
    /// login keys and planted with planted: a key one observation planted
    /// and another logged in with is a campaign hand-off, not one hand.
    pub keys: Interner,
    /// Distinct tooling profiles (the exact set of tool ids), so that the
    /// veto between two observations can be decided once per profile pair.
    pub profiles: FxHashMap<Box<[u32]>, u32>,
    /// What judges values when they are first seen.
    catalogue: CatalogueRef,
    /// `password_weak_bits`, `password_strong_bits`.
    strength_bits: (f64, f64),
}

/// Which kind of SSH key a key id is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    Login,
    Planted,
}

impl KeyUse {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUse::Login => "login",
            KeyUse::Planted => "planted",
        }
    }
}

impl Vocabulary {
    /// An empty vocabulary judging values with the weights' catalogue and
    /// password-strength bounds.
    pub fn new(weights: &IdentityWeights) -> Vocabulary {
        Vocabulary {
            tools: Interner::default(),
            tool_kind: Vec::new(),
            tool_library: Vec::new(),
            payloads: Interner::default(),
            c2: Interner::default(),
            commands: Interner::default(),
            command_stock: Vec::new(),
            credentials: Interner::default(),
            credential_prior: Vec::new(),
            keys: Interner::default(),
            profiles: FxHashMap::default(),
            catalogue: weights.catalogue.clone(),
            strength_bits: (weights.password_weak_bits, weights.password_strong_bits),
        }
    }

    fn tool_id(&mut self, kind_index: usize, value: &str) -> u32 {
        let kind = TOOLING_KINDS[kind_index];
        let key = format!("{kind}:{value}");
        let id = self.tools.intern(&key);
        if id as usize == self.tool_kind.len() {
            self.tool_kind.push(kind_index as u8);
            let label = self.catalogue.library(kind, value).map(|libs| {
                libs.iter()
                    .map(|l| l.label())
                    .collect::<Vec<_>>()
                    .join(", ")
                    .into_boxed_str()
            });
            self.tool_library.push(label);
        }
        id
    }

    fn command_id(&mut self, command: &str) -> u32 {
        let id = self.commands.intern(command);
        if id as usize == self.command_stock.len() {
            self.command_stock
                .push(self.catalogue.stock_command(command));
        }
        id
    }

    fn credential_id(&mut self, key: &str, user: &str, password: &str) -> u32 {
        let id = self.credentials.intern(key);
        if id as usize == self.credential_prior.len() {
            let (weak, strong) = self.strength_bits;
            let prior = if self.catalogue.stock_credential(user, password) {
                0.0
            } else {
                password_strength(user, password, weak, strong)
            };
            self.credential_prior.push(prior as f32);
        }
        id
    }

    fn key_id(&mut self, key_use: KeyUse, fingerprint: &str) -> u32 {
        self.keys
            .intern(&format!("{}\u{0}{fingerprint}", key_use.as_str()))
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

    /// The use and `SHA256:` fingerprint behind a key id.
    pub fn key(&self, id: u32) -> (KeyUse, &str) {
        let s = self.keys.name(id);
        match s.split_once('\u{0}') {
            Some(("planted", k)) => (KeyUse::Planted, k),
            Some((_, k)) => (KeyUse::Login, k),
            None => (KeyUse::Login, s),
        }
    }
}

/// One observation as the identity layer sees it. All slices are sorted and
/// deduplicated.
///
/// The six id lists are kept one after another in one allocation (the
/// graph holds one `Features` per observation: six boxed slices were 96
/// bytes and up to six allocations each); read them through
/// [`Features::tools`] and the other accessors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// tools, payloads, c2, commands, credentials, keys, in that order.
    ids: Box<[u32]>,
    /// Where each list ends in `ids`.
    ends: [u32; 6],
    /// Bit i set when the observation carries tooling kind i.
    pub kinds: u8,
    pub asn: Option<u32>,
    /// Interned tooling profile (the set `tools`).
    pub profile: u32,
}

fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v.dedup();
    v
}

impl Features {
    fn part(&self, i: usize) -> &[u32] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.ids[start..self.ends[i] as usize]
    }

    /// Tooling fingerprint ids.
    pub fn tools(&self) -> &[u32] {
        self.part(0)
    }

    pub fn payloads(&self) -> &[u32] {
        self.part(1)
    }

    pub fn c2(&self) -> &[u32] {
        self.part(2)
    }

    /// Command ids, whatever the phase of the session that ran them.
    pub fn commands(&self) -> &[u32] {
        self.part(3)
    }

    pub fn credentials(&self) -> &[u32] {
        self.part(4)
    }

    /// SSH key ids (see [`Vocabulary::keys`]).
    pub fn keys(&self) -> &[u32] {
        self.part(5)
    }
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
        let tools = sorted(tools).into_boxed_slice();
        let mut payloads = Vec::new();
        let mut c2 = Vec::new();
        let mut commands = Vec::new();
        let mut credentials = Vec::new();
        let mut keys = Vec::new();
        for fp in &obs.fingerprints {
            if fp.kind == "ssh_pubkey" {
                keys.push(vocab.key_id(KeyUse::Login, &fp.value));
            }
        }
        let mut key = String::new();
        for s in obs.sessions.values() {
            payloads.extend(
                s.extras
                    .payload_hashes
                    .iter()
                    .map(|p| vocab.payloads.intern(p)),
            );
            c2.extend(s.extras.c2_endpoints.iter().map(|c| vocab.c2.intern(c)));
            for (u, p) in &s.credentials {
                key.clear();
                key.push_str(u);
                key.push('\u{0}');
                key.push_str(p);
                credentials.push(vocab.credential_id(&key, u, p));
            }
            commands.extend(s.commands.iter().map(|c| vocab.command_id(c)));
            keys.extend(
                s.extras
                    .auth_keys
                    .iter()
                    .map(|k| vocab.key_id(KeyUse::Login, k)),
            );
            keys.extend(
                s.extras
                    .planted_keys
                    .iter()
                    .map(|k| vocab.key_id(KeyUse::Planted, k)),
            );
        }
        let next = vocab.profiles.len() as u32;
        let profile = *vocab.profiles.entry(tools.clone()).or_insert(next);
        let parts = [
            sorted(payloads),
            sorted(c2),
            sorted(commands),
            sorted(credentials),
            sorted(keys),
        ];
        let mut ids = Vec::with_capacity(tools.len() + parts.iter().map(Vec::len).sum::<usize>());
        let mut ends = [0u32; 6];
        ids.extend_from_slice(&tools);
        ends[0] = ids.len() as u32;
        for (i, p) in parts.iter().enumerate() {
            ids.extend_from_slice(p);
            ends[i + 1] = ids.len() as u32;
        }
        Features {
            ids: ids.into_boxed_slice(),
            ends,
            kinds,
            asn: obs.asn(),
            profile,
        }
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
