//! Pairwise identity evidence (SPEC §8, identity layer): the four tiers, the
//! tooling veto and the rarity (term-frequency) adjustment. Pure functions of
//! two observations' [`Features`] and the global carrier counts of tooling
//! values; never of time.

use super::features::{for_each_common, jaccard, Features, Vocabulary};
use crate::phase::Phase;
use serde::{Deserialize, Serialize};

/// Weights and thresholds of the identity layer (defaults from SPEC §8).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityWeights {
    /// An edge exists when the combined weight reaches this.
    pub threshold: f64,
    /// Shared ja3/ja4/hassh value (before rarity).
    pub fingerprint: f64,
    /// Shared payload hash.
    pub payload: f64,
    /// Shared C2 endpoint.
    pub c2: f64,
    /// Multiplies the best per-phase Jaccard of command sets.
    pub commands: f64,
    /// Multiplies the Jaccard of credential pairs.
    pub credentials: f64,
    /// Same ASN.
    pub asn: f64,
    /// A tooling value carried by at most this many observations counts fully.
    pub rarity_full_max: u32,
    /// A tooling value carried by at least this many observations is tooling,
    /// not identity: it counts nothing (and is not used as a blocking key).
    pub rarity_zero_at: u32,
    /// A member whose strongest tie reaches this weight adds full cohesion to
    /// its identity's confidence.
    pub confidence_saturation: f64,
}

impl Default for IdentityWeights {
    fn default() -> Self {
        IdentityWeights {
            threshold: 1.0,
            fingerprint: 1.0,
            payload: 1.0,
            c2: 1.0,
            commands: 0.6,
            credentials: 0.2,
            asn: 0.05,
            rarity_full_max: 32,
            rarity_zero_at: 100,
            confidence_saturation: 2.0,
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
            ("payload", self.payload),
            ("c2", self.c2),
            ("commands", self.commands),
            ("credentials", self.credentials),
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

    /// The rarity factor of a tooling value carried by `carriers`
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
            (zero as f64 / carriers as f64).ln() / (zero as f64 / full as f64).ln()
        }
    }

    /// Sum of the maximum weights of the medium, low and very-low tiers.
    pub fn soft_max(&self) -> f64 {
        self.commands + self.credentials + self.asn
    }
}

/// Which shared value gave the high tier its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HighSource {
    None,
    Tool { id: u32, carriers: u32, rarity: f64 },
    Payload(u32),
    C2(u32),
}

/// The score of one pair, tier by tier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairScore {
    pub high: f64,
    pub source: HighSource,
    /// Both carry tooling and every kind they both carry disagrees: shared
    /// payload/C2 contributes nothing.
    pub vetoed: bool,
    pub medium: f64,
    /// The phase whose command sets gave the best Jaccard.
    pub medium_phase: Option<u8>,
    pub low: f64,
    pub asn: f64,
    pub total: f64,
}

impl PairScore {
    pub fn is_edge(&self, w: &IdentityWeights) -> bool {
        self.total >= w.threshold
    }
}

/// Whether two observations' tooling vetoes shared payload/C2: both carry
/// tooling, they carry at least one kind in common, and they share no tooling
/// value at all (so every common kind disagrees). With no kind in common
/// there is no evidence of different tools, hence no veto.
pub fn vetoed(a: &Features, b: &Features) -> bool {
    a.kinds & b.kinds != 0 && !shares_any(&a.tools, &b.tools)
}

fn shares_any(a: &[u32], b: &[u32]) -> bool {
    let mut any = false;
    for_each_common(a, b, |_| any = true);
    any
}

/// Scores one pair. `carriers(tool_id)` is the number of observations that
/// carry that tooling value.
pub fn score(
    a: &Features,
    b: &Features,
    w: &IdentityWeights,
    carriers: impl Fn(u32) -> u32,
) -> PairScore {
    let mut high = 0.0;
    let mut source = HighSource::None;
    for_each_common(&a.tools, &b.tools, |id| {
        let n = carriers(id);
        let r = w.rarity(n);
        let s = w.fingerprint * r;
        if s > high {
            high = s;
            source = HighSource::Tool {
                id,
                carriers: n,
                rarity: r,
            };
        }
    });
    let veto = vetoed(a, b);
    if !veto {
        if w.payload > high {
            for_each_common(&a.payloads, &b.payloads, |id| {
                if w.payload > high {
                    high = w.payload;
                    source = HighSource::Payload(id);
                }
            });
        }
        if w.c2 > high {
            for_each_common(&a.c2, &b.c2, |id| {
                if w.c2 > high {
                    high = w.c2;
                    source = HighSource::C2(id);
                }
            });
        }
    }
    let mut medium = 0.0;
    let mut medium_phase = None;
    let both = a.phases & b.phases;
    if both != 0 && w.commands > 0.0 {
        for p in 0..Phase::ALL.len() as u8 {
            if both & (1 << p) == 0 {
                continue;
            }
            let j = jaccard(a.commands_in(p), b.commands_in(p));
            if j > medium {
                medium = j;
                medium_phase = Some(p);
            }
        }
        medium *= w.commands;
    }
    let low = if w.credentials > 0.0 {
        w.credentials * jaccard(&a.credentials, &b.credentials)
    } else {
        0.0
    };
    let asn = match (a.asn, b.asn) {
        (Some(x), Some(y)) if x == y => w.asn,
        _ => 0.0,
    };
    PairScore {
        high,
        source,
        vetoed: veto,
        medium,
        medium_phase,
        low,
        asn,
        total: high + medium + low + asn,
    }
}

/// A pair's score with the matching values spelled out, for operators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairExplanation {
    pub a: String,
    pub b: String,
    pub total: f64,
    pub threshold: f64,
    pub edge: bool,
    pub high: f64,
    /// What gave the high tier its score, e.g. `ja3:771,4865…` or `payload:9f86…`.
    pub high_signal: Option<String>,
    pub shared_tooling: Vec<SharedTool>,
    pub shared_payloads: Vec<String>,
    pub shared_c2: Vec<String>,
    pub vetoed: bool,
    pub medium: f64,
    pub medium_phase: Option<String>,
    pub shared_commands: Vec<String>,
    pub low: f64,
    pub shared_credentials: Vec<(String, String)>,
    pub asn: f64,
    pub same_asn: Option<u32>,
    /// Operator decision on this pair, if any (`link` or `separate`).
    pub decision: Option<String>,
}

/// One shared tooling value with its rarity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharedTool {
    pub kind: String,
    pub value: String,
    pub carriers: u32,
    pub rarity: f64,
    pub weight: f64,
}

/// Builds the explanation of a pair.
pub fn explain(
    (ua, a): (&str, &Features),
    (ub, b): (&str, &Features),
    w: &IdentityWeights,
    vocab: &Vocabulary,
    carriers: impl Fn(u32) -> u32,
) -> PairExplanation {
    let s = score(a, b, w, &carriers);
    let mut shared_tooling = Vec::new();
    for_each_common(&a.tools, &b.tools, |id| {
        let (kind, value) = vocab.tool(id);
        let n = carriers(id);
        shared_tooling.push(SharedTool {
            kind: kind.to_string(),
            value: value.to_string(),
            carriers: n,
            rarity: w.rarity(n),
            weight: w.fingerprint * w.rarity(n),
        });
    });
    let mut shared_payloads = Vec::new();
    for_each_common(&a.payloads, &b.payloads, |id| {
        shared_payloads.push(vocab.payloads.name(id).to_string())
    });
    let mut shared_c2 = Vec::new();
    for_each_common(&a.c2, &b.c2, |id| {
        shared_c2.push(vocab.c2.name(id).to_string())
    });
    let mut shared_commands = Vec::new();
    if let Some(p) = s.medium_phase {
        for_each_common(a.commands_in(p), b.commands_in(p), |(_, id)| {
            shared_commands.push(vocab.commands.name(id).to_string())
        });
    }
    let mut shared_credentials = Vec::new();
    for_each_common(&a.credentials, &b.credentials, |id| {
        let (u, p) = vocab.credential(id);
        shared_credentials.push((u.to_string(), p.to_string()));
    });
    let high_signal = match s.source {
        HighSource::None => None,
        HighSource::Tool { id, .. } => Some(vocab.tools.name(id).to_string()),
        HighSource::Payload(id) => Some(format!("payload:{}", vocab.payloads.name(id))),
        HighSource::C2(id) => Some(format!("c2:{}", vocab.c2.name(id))),
    };
    PairExplanation {
        a: ua.to_string(),
        b: ub.to_string(),
        total: s.total,
        threshold: w.threshold,
        edge: s.is_edge(w),
        high: s.high,
        high_signal,
        shared_tooling,
        shared_payloads,
        shared_c2,
        vetoed: s.vetoed,
        medium: s.medium,
        medium_phase: s
            .medium_phase
            .map(|p| Phase::ALL[p as usize].name().to_string()),
        shared_commands,
        low: s.low,
        shared_credentials,
        asn: s.asn,
        same_asn: if s.asn > 0.0 { a.asn } else { None },
        decision: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn f(tools: &[u32], kinds: u8, payloads: &[u32]) -> Features {
        Features {
            tools: tools.into(),
            kinds,
            payloads: payloads.into(),
            ..Default::default()
        }
    }

    #[test]
    fn veto_needs_a_common_kind_that_disagrees() {
        // tool ids: 0,1 are ja3 values; 2 is a hassh value (kinds bit 0 / bit 2)
        let a = f(&[0], 0b001, &[7]);
        let b = f(&[1], 0b001, &[7]);
        assert!(vetoed(&a, &b));
        let w = IdentityWeights::default();
        assert_eq!(score(&a, &b, &w, |_| 2).total, 0.0);
        let c = f(&[2], 0b100, &[7]);
        assert!(
            !vetoed(&a, &c),
            "no common kind: no evidence of different tools"
        );
        assert_eq!(score(&a, &c, &w, |_| 2).total, 1.0);
        let d = f(&[], 0, &[7]);
        assert!(!vetoed(&a, &d));
    }

    #[test]
    fn common_tooling_counts_nothing() {
        let a = f(&[0, 2], 0b101, &[]);
        let b = f(&[0, 2], 0b101, &[]);
        let w = IdentityWeights::default();
        assert_eq!(score(&a, &b, &w, |_| 150).total, 0.0);
        assert_eq!(score(&a, &b, &w, |_| 20).total, 1.0);
        // high tier takes the strongest shared value, not the sum
        assert_eq!(
            score(&a, &b, &w, |id| if id == 0 { 20 } else { 150 }).high,
            1.0
        );
    }
}
