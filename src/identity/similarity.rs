//! Pairwise identity evidence (SPEC §8, identity layer): the tiers, the
//! tooling veto and rarity. Pure functions of two observations' [`Features`]
//! and of how many observations carry each value; never of time.
//!
//! Rarity is decided per value, the same way for every kind of evidence:
//! what the catalogues say first (a catalogued library fingerprint, a stock
//! command, a wordlist password weighs nothing however few carry it; a
//! password's strength bounds what it can weigh), then the count rule (a
//! value on many observations is tooling or background, not identity; in
//! [`super::weights`]).

use super::features::{for_each_common, Features, Vocabulary};

pub use super::explanation::{explain, PairExplanation, SharedTool, SharedValue};
pub use super::weights::{IdentityWeights, WeightError};

/// How many observations carry each value (the postings' lengths).
pub trait Carriers {
    fn tool(&self, id: u32) -> u32;
    fn key(&self, id: u32) -> u32;
    fn credential(&self, id: u32) -> u32;
    fn command(&self, id: u32) -> u32;
}

/// The rarity of every value: the catalogues' verdict (kept in the
/// vocabulary) combined with the count rule over the carriers.
pub struct Rarity<'a> {
    pub weights: &'a IdentityWeights,
    pub vocab: &'a Vocabulary,
    pub carriers: &'a dyn Carriers,
}

impl Rarity<'_> {
    /// A tooling value: 0 when catalogued, else the count rule.
    pub fn tool(&self, id: u32) -> f64 {
        if self.vocab.tool_library[id as usize].is_some() {
            0.0
        } else {
            self.weights.rarity(self.carriers.tool(id))
        }
    }

    /// Whether a tooling value says anything about who (neither catalogued
    /// nor common): only such values can veto.
    pub fn distinctive(&self, id: u32) -> bool {
        self.tool(id) > 0.0
    }

    pub fn key(&self, id: u32) -> f64 {
        self.weights.rarity(self.carriers.key(id))
    }

    /// A credential pair: its prior (catalogue, password strength) capped by
    /// the count rule.
    pub fn credential(&self, id: u32) -> f64 {
        let prior = self.vocab.credential_prior[id as usize] as f64;
        if prior == 0.0 {
            return 0.0;
        }
        prior.min(self.weights.rarity(self.carriers.credential(id)))
    }

    /// A command line: 0 when stock, else the count rule.
    pub fn command(&self, id: u32) -> f64 {
        if self.vocab.command_stock[id as usize] {
            0.0
        } else {
            self.weights.rarity(self.carriers.command(id))
        }
    }
}

/// Jaccard of two sorted sets with each element weighted by `weight`
/// (0 when neither holds any weight): common stock values add nothing to
/// either side, so two scanners that share only a wordlist score 0.
pub fn weighted_jaccard(a: &[u32], b: &[u32], weight: impl Fn(u32) -> f64) -> f64 {
    let (mut i, mut j) = (0, 0);
    let (mut inter, mut union) = (0.0, 0.0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x == y => {
                let w = weight(x);
                inter += w;
                union += w;
                i += 1;
                j += 1;
            }
            (Some(&x), Some(&y)) if x < y => {
                union += weight(x);
                i += 1;
            }
            (Some(&x), None) => {
                union += weight(x);
                i += 1;
            }
            (_, Some(&y)) => {
                union += weight(y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Which shared value gave the high tier its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HighSource {
    None,
    Tool { id: u32, rarity: f64 },
    Key { id: u32, rarity: f64 },
    Payload(u32),
    C2(u32),
    Credential { id: u32, rarity: f64 },
}

/// The score of one pair, tier by tier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairScore {
    pub high: f64,
    pub source: HighSource,
    /// Both carry distinctive tooling and every kind they both carry
    /// disagrees: shared payload/C2 and behaviour contribute nothing.
    pub vetoed: bool,
    pub medium: f64,
    pub low: f64,
    pub asn: f64,
    pub total: f64,
}

impl PairScore {
    pub fn is_edge(&self, w: &IdentityWeights) -> bool {
        self.total >= w.threshold
    }
}

/// Whether two observations' tooling vetoes shared payload/C2 and
/// behaviour: among the tooling values that say anything about who (not
/// catalogued libraries, not common by count), they carry a kind in common
/// and share no value. Two stock libraries disagreeing (one operator on
/// asyncssh here and paramiko there) is no evidence of two operators; with
/// no distinctive kind in common there is no evidence either, hence no veto.
pub fn vetoed(a: &Features, b: &Features, r: &Rarity<'_>) -> bool {
    if a.kinds & b.kinds == 0 {
        return false;
    }
    let kinds = |f: &Features| {
        f.tools()
            .iter()
            .filter(|&&t| r.distinctive(t))
            .fold(0u8, |k, &t| k | 1 << r.vocab.tool_kind[t as usize])
    };
    if kinds(a) & kinds(b) == 0 {
        return false;
    }
    let mut shared = false;
    for_each_common(a.tools(), b.tools(), |t| shared |= r.distinctive(t));
    !shared
}

/// Raises `best` to the strongest value `a` and `b` share, each weighing
/// `weight × rarity(id)`; `source` names it.
fn strongest(
    best: &mut (f64, HighSource),
    (a, b): (&[u32], &[u32]),
    weight: f64,
    rarity: impl Fn(u32) -> f64,
    source: impl Fn(u32, f64) -> HighSource,
) {
    if weight <= best.0 {
        return;
    }
    for_each_common(a, b, |id| {
        let r = rarity(id);
        if weight * r > best.0 {
            *best = (weight * r, source(id, r));
        }
    });
}

/// Scores one pair.
pub fn score(a: &Features, b: &Features, r: &Rarity<'_>) -> PairScore {
    let w = r.weights;
    let mut best = (0.0, HighSource::None);
    strongest(
        &mut best,
        (a.tools(), b.tools()),
        w.fingerprint,
        |id| r.tool(id),
        |id, rarity| HighSource::Tool { id, rarity },
    );
    strongest(
        &mut best,
        (a.keys(), b.keys()),
        w.keys,
        |id| r.key(id),
        |id, rarity| HighSource::Key { id, rarity },
    );
    let veto = vetoed(a, b, r);
    let (mut medium, mut low) = (0.0, 0.0);
    if !veto {
        strongest(
            &mut best,
            (a.payloads(), b.payloads()),
            w.payload,
            |_| 1.0,
            |id, _| HighSource::Payload(id),
        );
        strongest(
            &mut best,
            (a.c2(), b.c2()),
            w.c2,
            |_| 1.0,
            |id, _| HighSource::C2(id),
        );
        strongest(
            &mut best,
            (a.credentials(), b.credentials()),
            w.rare_credential,
            |id| r.credential(id),
            |id, rarity| HighSource::Credential { id, rarity },
        );
        if w.commands > 0.0 {
            medium = w.commands * weighted_jaccard(a.commands(), b.commands(), |c| r.command(c));
        }
        if w.credentials > 0.0 {
            low = w.credentials
                * weighted_jaccard(a.credentials(), b.credentials(), |c| r.credential(c));
        }
    }
    let asn = match (a.asn, b.asn) {
        (Some(x), Some(y)) if x == y => w.asn,
        _ => 0.0,
    };
    let (high, source) = best;
    PairScore {
        high,
        source,
        vetoed: veto,
        medium,
        low,
        asn,
        total: high + medium + low + asn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value carried by `n` observations.
    struct Flat(u32);
    impl Carriers for Flat {
        fn tool(&self, _: u32) -> u32 {
            self.0
        }
        fn key(&self, _: u32) -> u32 {
            self.0
        }
        fn credential(&self, _: u32) -> u32 {
            self.0
        }
        fn command(&self, _: u32) -> u32 {
            self.0
        }
    }

    fn obs(uuid: &str, json: &str) -> crate::evidence::Observation {
        let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["uuid"] = uuid.into();
        let payload = v.to_string();
        let fields = [
            ("topic", "attacker.observed"),
            ("payload", payload.as_str()),
        ];
        crate::evidence::event::parse_entry(&fields, &Default::default())
            .unwrap()
            .observation
    }

    fn pair(a: &str, b: &str, carriers: u32) -> PairScore {
        let w = IdentityWeights::default();
        let mut vocab = Vocabulary::new(&w);
        let fa = Features::extract(&obs("a", a), &mut vocab);
        let fb = Features::extract(&obs("b", b), &mut vocab);
        let r = Rarity {
            weights: &w,
            vocab: &vocab,
            carriers: &Flat(carriers),
        };
        score(&fa, &fb, &r)
    }

    const PARAMIKO: &str = "4c94058d5e9e31659879f79fd5b46084";
    const ASYNCSSH: &str = "c70169683f416ecb6afc5aed972ec23c";

    #[test]
    fn a_catalogued_library_weighs_nothing_however_few_carry_it() {
        let a = format!(r#"{{"fingerprints":[{{"kind":"hassh","value":"{PARAMIKO}"}}]}}"#);
        assert_eq!(pair(&a, &a, 2).total, 0.0);
        let rare =
            r#"{"fingerprints":[{"kind":"hassh","value":"0123456789abcdef0123456789abcdef"}]}"#;
        assert_eq!(
            pair(rare, rare, 2).total,
            1.0,
            "an unknown value on two observations"
        );
        assert_eq!(pair(rare, rare, 150).total, 0.0, "an unknown value on 150");
    }

    #[test]
    fn stock_behaviour_weighs_nothing_and_a_strong_password_is_an_edge() {
        let s = |creds: &str, cmds: &str| {
            format!(
                r#"{{"sessions":[{{"session_id":"s","credentials":{creds},"commands":{cmds}}}]}}"#
            )
        };
        let scanner = s(
            r#"[["root","123456"],["admin","admin"]]"#,
            r#"["uname -a","free -m"]"#,
        );
        assert_eq!(pair(&scanner, &scanner, 2).total, 0.0);
        let op = s(
            r#"[["root","Vx!9qLm#2026-kx"]]"#,
            r#"["echo a7f3c9e1","uname -a"]"#,
        );
        let p = pair(&op, &op, 4);
        assert_eq!(p.high, 1.0);
        assert!(matches!(p.source, HighSource::Credential { .. }));
        assert_eq!(
            p.medium, 0.6,
            "the stock command adds nothing to either side"
        );
        assert_eq!(
            pair(&op, &op, 150).total,
            0.0,
            "a password on 150 observations is a list's"
        );
    }

    #[test]
    fn login_keys_match_login_keys_and_planted_planted() {
        let k = "SHA256:k7KTfvLRoma8FqC21j5U0Gy50Qrb1dSQ54+XnVpUuSk";
        let login = format!(r#"{{"sessions":[{{"session_id":"s","auth_key":"{k}"}}]}}"#);
        let planted = format!(r#"{{"sessions":[{{"session_id":"s","planted_keys":["{k}"]}}]}}"#);
        let pubkey = format!(r#"{{"fingerprints":[{{"kind":"ssh_pubkey","value":"{k}"}}]}}"#);
        assert_eq!(pair(&login, &login, 2).high, 1.0);
        assert_eq!(pair(&planted, &planted, 2).high, 1.0);
        assert_eq!(
            pair(&login, &pubkey, 2).high,
            1.0,
            "ssh_pubkey is a login key"
        );
        assert_eq!(
            pair(&login, &planted, 2).total,
            0.0,
            "planted by one, used by the other: a hand-off"
        );
    }

    #[test]
    fn the_veto_needs_distinctive_tooling_on_both_sides() {
        let with = |hassh: &str| {
            format!(
                r#"{{"fingerprints":[{{"kind":"hassh","value":"{hassh}"}}],"sessions":[{{"session_id":"s","payload_hash":"p1","credentials":[["root","Vx!9qLm#2026-kx"]]}}]}}"#
            )
        };
        // Two stock libraries: one operator may use both.
        let p = pair(&with(PARAMIKO), &with(ASYNCSSH), 2);
        assert!(!p.vetoed);
        assert_eq!(p.high, 1.0);
        // Two distinctive tools of one kind that disagree: two operators.
        let p = pair(&with("aaaa"), &with("bbbb"), 2);
        assert!(p.vetoed);
        assert_eq!(p.total, 0.0, "payload and behaviour vetoed");
        // A distinctive tool against a stock library: no common distinctive kind.
        assert!(!pair(&with("aaaa"), &with(PARAMIKO), 2).vetoed);
    }

    #[test]
    fn weighted_jaccard_ignores_weightless_values() {
        let w = |x: u32| if x < 10 { 0.0 } else { 1.0 };
        assert_eq!(weighted_jaccard(&[1, 2, 20], &[1, 2, 20, 21], w), 0.5);
        assert_eq!(weighted_jaccard(&[1, 2], &[1, 2], w), 0.0);
        assert_eq!(weighted_jaccard(&[], &[], w), 0.0);
    }
}
