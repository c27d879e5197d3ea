//! The identity layer's weights and thresholds (SPEC §8, the
//! `[identity]` settings), their validation, and the count rule: the
//! rarity factor of a value from how many observations carry it.

use super::catalogue::CatalogueRef;
use serde::{Deserialize, Serialize};

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
}
