//! Pairwise identity evidence (SPEC §8, identity layer): the tiers, the
//! tooling veto and rarity. Pure functions of two observations' [`Features`]
//! and of how many observations carry each value; never of time.
//!
//! Rarity is decided per value, the same way for every kind of evidence:
//! what the catalogues say first (a catalogued library fingerprint, a stock
//! command, a wordlist password weighs nothing however few carry it; a
//! password's strength bounds what it can weigh), then the count rule (a
//! value on many observations is tooling or background, not identity).

use super::catalogue::CatalogueRef;
use super::features::{for_each_common, Features, Vocabulary};
use serde::{Deserialize, Serialize};

pub use super::explanation::{explain, PairExplanation, SharedTool, SharedValue};

/// Weights and thresholds of the identity layer (defaults from SPEC §8).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityWeights {
    /// An edge exists when the combined weight reaches this.
    pub threshold: f64,
    /// Shared ja3/ja4/hassh value (before rarity).
    pub fingerprint: f64,
    /// Shared SSH key, login with login or planted with planted (before
    /// rarity).
    pub keys: f64,
    /// Shared payload hash.
    pub payload: f64,
    /// Shared C2 endpoint.
    pub c2: f64,
    /// Multiplies the rarity-weighted Jaccard of command sets (whatever the
    /// phase).
    pub commands: f64,
    /// Multiplies the rarity-weighted Jaccard of credential pairs.
    pub credentials: f64,
    /// A shared credential pair (before rarity): a password nobody else
    /// uses is as telling as a fingerprint.
    pub rare_credential: f64,
    /// A password of at most this brute-force strength (bits) is guessable:
    /// it carries no identity evidence…
    pub password_weak_bits: f64,
    /// …and one of at least this many bits can carry all of it.
    pub password_strong_bits: f64,
    /// Same ASN.
    pub asn: f64,
    /// A value (fingerprint, key, credential, command) carried by at most
    /// this many observations counts fully, unless a catalogue says it is
    /// tooling or stock.
    pub rarity_full_max: u32,
    /// A value carried by at least this many observations is tooling or
    /// background, not identity: it counts nothing (and is not used as a
    /// blocking key).
    pub rarity_zero_at: u32,
    /// A member whose strongest tie reaches this weight adds full cohesion to
    /// its identity's confidence.
    pub confidence_saturation: f64,
    /// A fingerprint catalogue laid over the shipped `config/tooling.toml`
    /// (read by the daemon's settings; empty: the shipped one alone).
    pub tooling_file: String,
    /// A behaviour catalogue laid over the shipped `config/behaviour.toml`.
    pub behaviour_file: String,
    /// The catalogues in force (the shipped ones unless the settings loaded
    /// the files above).
    #[serde(skip)]
    pub catalogue: CatalogueRef,
}

impl Default for IdentityWeights {
    fn default() -> Self {
        IdentityWeights {
            threshold: 1.0,
            fingerprint: 1.0,
            keys: 1.0,
            payload: 1.0,
            c2: 1.0,
            commands: 0.6,
            credentials: 0.2,
            rare_credential: 1.0,
            password_weak_bits: 40.0,
            password_strong_bits: 60.0,
            asn: 0.05,
            rarity_full_max: 32,
            rarity_zero_at: 100,
            confidence_saturation: 2.0,
            tooling_file: String::new(),
            behaviour_file: String::new(),
            catalogue: CatalogueRef::default(),
        }
    }
}

/// A weight outside its domain, named by key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct WeightError {
    pub key: &'static str,
    pub problem: String,
}

impl IdentityWeights {
    /// Checks every weight; the error names the bad key.
    pub fn validate(&self) -> Result<(), WeightError> {
        let finite = [
            ("threshold", self.threshold),
            ("fingerprint", self.fingerprint),
            ("keys", self.keys),
            ("payload", self.payload),
            ("c2", self.c2),
            ("commands", self.commands),
            ("credentials", self.credentials),
            ("rare_credential", self.rare_credential),
            ("password_weak_bits", self.password_weak_bits),
            ("password_strong_bits", self.password_strong_bits),
            ("asn", self.asn),
            ("confidence_saturation", self.confidence_saturation),
        ];
        for (key, v) in finite {
            if !v.is_finite() || v < 0.0 {
                return Err(WeightError {
                    key,
                    problem: format!("must be a finite number >= 0, got {v}"),
                });
            }
        }
        if self.threshold <= 0.0 {
            return Err(WeightError {
                key: "threshold",
                problem: "must be > 0".into(),
            });
        }
        if self.confidence_saturation <= 0.0 {
            return Err(WeightError {
                key: "confidence_saturation",
                problem: "must be > 0".into(),
            });
        }
        if self.password_strong_bits <= self.password_weak_bits {
            return Err(WeightError {
                key: "password_strong_bits",
                problem: format!("must be > password_weak_bits ({})", self.password_weak_bits),
            });
        }
        if self.rarity_full_max < 2 {
            return Err(WeightError {
                key: "rarity_full_max",
                problem: "must be >= 2 (a shared value has two carriers)".into(),
            });
        }
        if self.rarity_zero_at <= self.rarity_full_max {
            return Err(WeightError {
                key: "rarity_zero_at",
                problem: format!("must be > rarity_full_max ({})", self.rarity_full_max),
            });
        }
        Ok(())
    }

    /// The count rule: the rarity factor of a value carried by `carriers`
    /// observations: 1 up to `rarity_full_max`, 0 from `rarity_zero_at`, and
    /// in between the inverse document frequency `ln(zero_at / n)` scaled to
    /// reach 1 at `full_max` — a term-frequency adjustment in the manner of
    /// record linkage: agreement on a value weighs by how unlikely two
    /// unrelated observations are to share it.
    pub fn rarity(&self, carriers: u32) -> f64 {
        let (full, zero) = (self.rarity_full_max, self.rarity_zero_at);
        if carriers <= full {
            1.0
        } else if carriers >= zero {
            0.0
        } else {
            rarity_between(full, zero, carriers)
        }
    }

    /// Sum of the maximum weights of the tiers without postings of their
    /// own by default: commands and ASN (see `index::BlockingPlan`).
    pub fn soft_max(&self) -> f64 {
        self.commands + self.credentials + self.rare_credential + self.asn
    }
}

/// The count rule strictly between `full` and `zero` carriers. Both
/// logarithms were a twentieth of a first pass's time (every candidate pair
/// asks for the rarity of every value it shares), so the quotients of the
/// range one weight set spans are kept per thread, computed by the same
/// expression (the same bits), and rebuilt when another weight set asks.
fn rarity_between(full: u32, zero: u32, carriers: u32) -> f64 {
    fn quotient(full: u32, zero: u32, carriers: u32) -> f64 {
        (zero as f64 / carriers as f64).ln() / (zero as f64 / full as f64).ln()
    }
    /// Ranges wider than this (`rarity_zero_at` set very high) are computed
    /// on every call instead.
    const MEMO_SPAN: u32 = 4096;
    type Memo = (u32, u32, Vec<f64>);
    thread_local! {
        static MEMO: std::cell::RefCell<Memo> = const { std::cell::RefCell::new((0, 0, Vec::new())) };
    }
    if zero - full > MEMO_SPAN {
        return quotient(full, zero, carriers);
    }
    MEMO.with_borrow_mut(|(f, z, table)| {
        if (*f, *z) != (full, zero) || table.is_empty() {
            *table = (full + 1..zero).map(|n| quotient(full, zero, n)).collect();
            (*f, *z) = (full, zero);
        }
        table[(carriers - full - 1) as usize]
    })
}

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

    #[test]
    fn the_memoised_count_rule_is_the_formula_bit_for_bit() {
        let formula = |full: u32, zero: u32, n: u32| {
            (zero as f64 / n as f64).ln() / (zero as f64 / full as f64).ln()
        };
        for (full, zero) in [(32, 100), (2, 3), (5, 50), (32, 100), (10, 100_000)] {
            let w = IdentityWeights {
                rarity_full_max: full,
                rarity_zero_at: zero,
                ..IdentityWeights::default()
            };
            for n in [
                0,
                1,
                full,
                full + 1,
                (full + zero) / 2,
                zero - 1,
                zero,
                zero + 7,
            ] {
                let want = if n <= full {
                    1.0
                } else if n >= zero {
                    0.0
                } else {
                    formula(full, zero, n)
                };
                assert_eq!(w.rarity(n).to_bits(), want.to_bits(), "{full} {zero} {n}");
            }
        }
    }

    #[test]
    fn rarity_ends_and_monotone() {
        let w = IdentityWeights::default();
        assert_eq!(w.rarity(2), 1.0);
        assert_eq!(w.rarity(32), 1.0);
        assert_eq!(w.rarity(100), 0.0);
        assert_eq!(w.rarity(100_000), 0.0);
        let mut last = 1.0;
        for n in 33..100 {
            let r = w.rarity(n);
            assert!(r < last && r > 0.0, "n={n} r={r}");
            last = r;
        }
        // ln(100/64)/ln(100/32) = 0.3917
        assert!((w.rarity(64) - 0.3917).abs() < 1e-3);
    }

    #[test]
    fn validation_names_the_key() {
        let w = IdentityWeights {
            rarity_zero_at: 10,
            ..Default::default()
        };
        assert_eq!(w.validate().unwrap_err().key, "rarity_zero_at");
        let w = IdentityWeights {
            commands: f64::NAN,
            ..Default::default()
        };
        assert_eq!(w.validate().unwrap_err().key, "commands");
        assert!(IdentityWeights::default().validate().is_ok());
    }

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
