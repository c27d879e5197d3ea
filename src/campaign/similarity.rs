//! Campaign edges (SPEC §8, campaign layer): phase hand-off (discounted by
//! how likely a follow-up on that decky is by chance; see [`super::handoff`]),
//! planted artifact ([`super::planted`]), shared infrastructure, temporal
//! overlap, cohort and keystroke rhythm. Edge weights depend only on
//! differences between the two identities' times.

use super::handoff::{self, DeckyArrivals, Handoff};
use super::planted::{self, PlantedKey};
use super::rollup::IdentityRollup;
use crate::evidence::{Millis, Sym};
use crate::identity::catalogue::CatalogueRef;
use serde::{Deserialize, Serialize};

pub use super::handoff::{is_handoff_end, is_handoff_start};

/// Weights of the campaign layer (defaults from SPEC §8).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignWeights {
    pub threshold: f64,
    pub handoff: f64,
    /// Longest gap between A's last activity and B's first phase on a decky.
    pub handoff_window_ms: Millis,
    /// An arrival is comparable (a possible follow-up, and a rival of one)
    /// when its sessions on the decky ran at least this many distinct
    /// commands that are not stock (the behaviour catalogue's).
    pub comparable_min_commands: u32,
    /// B authenticates on a decky with a key A planted there.
    pub planted: f64,
    pub infra: f64,
    pub overlap: f64,
    pub cohort: f64,
    pub rhythm: f64,
    /// Largest Hamming distance between keystroke centroids that counts.
    pub rhythm_max_bits: u32,
    /// A member whose strongest tie reaches this adds full cohesion.
    pub confidence_saturation: f64,
    /// The catalogue that says which commands are stock (the identity
    /// layer's, set by the daemon's settings).
    #[serde(skip)]
    pub catalogue: CatalogueRef,
}

impl Default for CampaignWeights {
    fn default() -> Self {
        CampaignWeights {
            threshold: 1.0,
            handoff: 1.0,
            handoff_window_ms: 24 * 3_600_000,
            comparable_min_commands: 1,
            planted: 1.0,
            infra: 1.0,
            overlap: 0.4,
            cohort: 0.1,
            rhythm: 0.6,
            rhythm_max_bits: 8,
            confidence_saturation: 2.0,
            catalogue: CatalogueRef::default(),
        }
    }
}

/// A weight outside its domain, named by key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct CampaignWeightError {
    pub key: &'static str,
    pub problem: String,
}

impl CampaignWeights {
    pub fn validate(&self) -> Result<(), CampaignWeightError> {
        for (key, v) in [
            ("threshold", self.threshold),
            ("handoff", self.handoff),
            ("planted", self.planted),
            ("infra", self.infra),
            ("overlap", self.overlap),
            ("cohort", self.cohort),
            ("rhythm", self.rhythm),
            ("confidence_saturation", self.confidence_saturation),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(CampaignWeightError {
                    key,
                    problem: format!("must be a finite number >= 0, got {v}"),
                });
            }
        }
        if self.threshold <= 0.0 || self.confidence_saturation <= 0.0 {
            let key = if self.threshold <= 0.0 {
                "threshold"
            } else {
                "confidence_saturation"
            };
            return Err(CampaignWeightError {
                key,
                problem: "must be > 0".into(),
            });
        }
        if self.handoff_window_ms <= 0 {
            return Err(CampaignWeightError {
                key: "handoff_window_ms",
                problem: "must be > 0".into(),
            });
        }
        if self.rhythm_max_bits > 64 {
            return Err(CampaignWeightError {
                key: "rhythm_max_bits",
                problem: "must be <= 64".into(),
            });
        }
        Ok(())
    }
}

/// A pair's campaign evidence, signal by signal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignPairScore {
    pub handoff: f64,
    pub handoff_detail: Option<Handoff>,
    pub planted: f64,
    pub planted_detail: Option<PlantedKey>,
    pub infra: f64,
    pub shared_infra: Vec<String>,
    pub overlap: f64,
    pub overlap_share: f64,
    pub cohort: f64,
    pub shared_cohort: Vec<String>,
    pub rhythm: f64,
    pub hamming: Option<u32>,
    pub total: f64,
    pub threshold: f64,
    pub edge: bool,
}

/// Cohort tokens: ASNs, tooling labels and deckies.
pub fn cohort(r: &IdentityRollup) -> &[Sym] {
    &r.cohort
}

/// Jaccard of two sorted sequences, and the shared items when `detailed`.
fn jaccard_shared<'a, I>(a: I, b: I, detailed: bool) -> (f64, Vec<String>)
where
    I: IntoIterator<Item = &'a Sym>,
    I::IntoIter: Clone,
{
    let (a, b) = (a.into_iter(), b.into_iter());
    let (na, nb) = (a.clone().count(), b.clone().count());
    let mut shared = Vec::new();
    let mut inter = 0usize;
    let (mut x, mut y) = (a.peekable(), b.peekable());
    while let (Some(p), Some(q)) = (x.peek(), y.peek()) {
        match p.cmp(q) {
            std::cmp::Ordering::Less => {
                x.next();
            }
            std::cmp::Ordering::Greater => {
                y.next();
            }
            std::cmp::Ordering::Equal => {
                inter += 1;
                if detailed {
                    shared.push(p.to_string());
                }
                x.next();
                y.next();
            }
        }
    }
    if na == 0 || nb == 0 {
        return (0.0, shared);
    }
    (inter as f64 / (na + nb - inter) as f64, shared)
}

/// Length of the intersection of two sorted, merged window lists.
pub fn overlap_ms(a: &[(Millis, Millis)], b: &[(Millis, Millis)]) -> Millis {
    let (mut i, mut j, mut total) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if hi > lo {
            total += hi - lo;
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    total
}

/// The larger share of either identity's session time the two overlap.
fn overlap_share(a: &IdentityRollup, b: &IdentityRollup) -> f64 {
    let (aa, ab) = (a.active_ms(), b.active_ms());
    let both = overlap_ms(&a.windows, &b.windows);
    [(both, aa), (both, ab)]
        .iter()
        .filter(|(_, t)| *t > 0)
        .map(|(o, t)| *o as f64 / *t as f64)
        .fold(0.0, f64::max)
}

/// Hamming distance of the keystroke centroids and the rhythm term.
fn rhythm_term(a: &IdentityRollup, b: &IdentityRollup, w: &CampaignWeights) -> (Option<u32>, f64) {
    let hamming = match (a.keystroke_centroid, b.keystroke_centroid) {
        (Some(x), Some(y)) => Some((x ^ y).count_ones()),
        _ => None,
    };
    let rhythm = match hamming {
        Some(d) if d <= w.rhythm_max_bits => {
            if w.rhythm_max_bits == 0 {
                w.rhythm
            } else {
                w.rhythm * (1.0 - d as f64 / w.rhythm_max_bits as f64)
            }
        }
        _ => 0.0,
    };
    (hamming, rhythm)
}

/// Whether the pair can be an edge: its total with the cohort term (string
/// sets, the costly part) replaced by its maximum, the cohort weight. Never
/// false when [`score`] gives an edge (every other term is computed exactly
/// as there, and the sum is taken in the same order).
pub fn may_be_edge<'a>(
    a: &IdentityRollup,
    b: &IdentityRollup,
    w: &CampaignWeights,
    arrivals: impl Fn(&str) -> Option<&'a DeckyArrivals>,
) -> bool {
    let mut handoff = 0.0;
    handoff::handoffs(a, b, w, &arrivals, |h| {
        if h.weight > handoff {
            handoff = h.weight;
        }
    });
    let mut planted = 0.0;
    planted::uses(a, b, |_| planted = w.planted);
    let infra = if a.infra.is_empty() || b.infra.is_empty() {
        0.0
    } else {
        w.infra * jaccard_shared(&a.infra, &b.infra, false).0
    };
    let overlap = w.overlap * overlap_share(a, b);
    let (_, rhythm) = rhythm_term(a, b, w);
    handoff + planted + infra + overlap + w.cohort + rhythm >= w.threshold
}

/// Scores a pair of identities. `arrivals(decky)` gives the decky's
/// arrival statistics; `detailed` also lists the shared values.
pub fn score<'a>(
    (ua, a): (&str, &IdentityRollup),
    (ub, b): (&str, &IdentityRollup),
    w: &CampaignWeights,
    arrivals: impl Fn(&str) -> Option<&'a DeckyArrivals>,
    detailed: bool,
) -> CampaignPairScore {
    let mut handoff = 0.0;
    let mut detail = None;
    handoff::handoffs(a, b, w, &arrivals, |h| {
        if h.weight > handoff {
            handoff = h.weight;
            detail = Some(Handoff {
                decky: h.decky.to_string(),
                from: if h.first_hands_off { ua } else { ub }.to_string(),
                from_phase: h.end_phase.name().to_string(),
                to_phase: h.start_phase.name().to_string(),
                gap_ms: h.gap,
                chance: h.chance,
                discount: (-h.chance).exp(),
                weight: h.weight,
            });
        }
    });
    let mut planted_detail = None;
    planted::uses(a, b, |p| {
        if planted_detail.is_none() {
            let (by, to) = if p.first_planted { (ua, ub) } else { (ub, ua) };
            planted_detail = Some(PlantedKey {
                decky: p.decky.to_string(),
                key: p.key.to_string(),
                planted_by: by.to_string(),
                used_by: to.to_string(),
                gap_ms: p.gap,
            });
        }
    });
    let planted = if planted_detail.is_some() {
        w.planted
    } else {
        0.0
    };
    let (ji, shared_infra) = jaccard_shared(&a.infra, &b.infra, detailed);
    let share = overlap_share(a, b);
    let (jc, shared_cohort) = jaccard_shared(&a.cohort, &b.cohort, detailed);
    let (hamming, rhythm) = rhythm_term(a, b, w);
    let infra = w.infra * ji;
    let overlap = w.overlap * share;
    let cohort = w.cohort * jc;
    let total = handoff + planted + infra + overlap + cohort + rhythm;
    CampaignPairScore {
        handoff,
        handoff_detail: detail,
        planted,
        planted_detail,
        infra,
        shared_infra,
        overlap,
        overlap_share: share,
        cohort,
        shared_cohort,
        rhythm,
        hamming,
        total,
        threshold: w.threshold,
        edge: total >= w.threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_of_windows() {
        assert_eq!(overlap_ms(&[(0, 10), (20, 30)], &[(5, 25)]), 10);
        assert_eq!(overlap_ms(&[(0, 10)], &[(10, 20)]), 0);
    }

    #[test]
    fn validation_names_the_key() {
        let w = CampaignWeights {
            handoff_window_ms: 0,
            ..Default::default()
        };
        assert_eq!(w.validate().unwrap_err().key, "handoff_window_ms");
        assert!(CampaignWeights::default().validate().is_ok());
    }
}
