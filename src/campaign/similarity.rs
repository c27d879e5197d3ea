//! Campaign edges (SPEC §8, campaign layer): phase hand-off (discounted by
//! how likely a follow-up on that decky is by chance), shared
//! infrastructure, temporal overlap, cohort and keystroke rhythm. Edge
//! weights depend only on differences between the two identities' times.
//!
//! **Hand-off specificity.** On decky D let `N` be the number of identities
//! whose first phase there is discovery or lateral movement (arrivals), and
//! `span` the time between the first and the last arrival. The decky's
//! arrival rate is `N / max(span, window)`, so the number of arrivals a
//! window after A's last activity should see by chance — not counting B,
//! nor A itself if A also arrived there — is
//! `μ = max(0, N − 1 − [A arrived on D]) × window / max(span, window)`,
//! and a hand-off weighs `handoff × e^(−μ)`: the probability (Poisson) that
//! no unrelated identity arrives in that window. μ is rounded to a
//! quarter-octave grid so a busy decky's weights move only when its rate
//! moves noticeably. A quiet decky (only A and
//! B) gives μ = 0 and the full weight; a decky where several unrelated
//! identities arrive per day gives almost nothing, so a crowded fleet is not
//! chained into one campaign through chance hand-offs.

use super::rollup::IdentityRollup;
use crate::evidence::Millis;
use crate::phase::Phase;
use serde::{Deserialize, Serialize};

/// Weights of the campaign layer (defaults from SPEC §8).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignWeights {
    pub threshold: f64,
    pub handoff: f64,
    /// Longest gap between A's last activity and B's first phase on a decky.
    pub handoff_window_ms: Millis,
    pub infra: f64,
    pub overlap: f64,
    pub cohort: f64,
    pub rhythm: f64,
    /// Largest Hamming distance between keystroke centroids that counts.
    pub rhythm_max_bits: u32,
    /// A member whose strongest tie reaches this adds full cohesion.
    pub confidence_saturation: f64,
}

impl Default for CampaignWeights {
    fn default() -> Self {
        CampaignWeights {
            threshold: 1.0,
            handoff: 1.0,
            handoff_window_ms: 24 * 3_600_000,
            infra: 1.0,
            overlap: 0.4,
            cohort: 0.1,
            rhythm: 0.6,
            rhythm_max_bits: 8,
            confidence_saturation: 2.0,
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

/// Whether a phase ends a stage that another actor may pick up.
pub fn is_handoff_end(p: Phase) -> bool {
    matches!(p, Phase::Persistence | Phase::CommandAndControl)
}

/// Whether a phase begins a follow-up stage.
pub fn is_handoff_start(p: Phase) -> bool {
    matches!(p, Phase::Discovery | Phase::LateralMovement)
}

/// Arrival statistics of one decky.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeckyArrivals {
    pub count: u32,
    pub first: Millis,
    pub last: Millis,
}

impl DeckyArrivals {
    /// Expected chance arrivals in a window after `a`'s last activity,
    /// rounded to a quarter-octave grid (steps of about 19 %): a decky's
    /// hand-off weights then change only when its arrival rate moves
    /// noticeably, which keeps incremental updates local on busy deckies.
    /// The rounding depends only on the current counts, so a rebuild and an
    /// incremental update agree.
    pub fn chance(&self, a_arrived: bool, window: Millis) -> f64 {
        let others = (self.count as i64 - 1 - a_arrived as i64).max(0) as f64;
        let span = (self.last - self.first).max(window) as f64;
        quantize(others * window as f64 / span)
    }

    /// Both rounded chances (A arrived or not) — what hand-off weights on
    /// this decky depend on.
    pub fn chances(&self, window: Millis) -> (f64, f64) {
        (self.chance(true, window), self.chance(false, window))
    }
}

/// Rounds a positive expectation to the nearest quarter octave.
fn quantize(mu: f64) -> f64 {
    if mu <= 0.0 || !mu.is_finite() {
        return 0.0;
    }
    ((mu.log2() * 4.0).round() / 4.0).exp2()
}

/// The hand-off behind an edge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    pub decky: String,
    /// Which of the pair handed off (`a` or `b`).
    pub from: String,
    pub from_phase: String,
    pub to_phase: String,
    pub gap_ms: Millis,
    /// Expected chance arrivals in the window (μ).
    pub chance: f64,
    pub weight: f64,
}

/// A pair's campaign evidence, signal by signal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignPairScore {
    pub handoff: f64,
    pub handoff_detail: Option<Handoff>,
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
pub fn cohort(r: &IdentityRollup) -> &[String] {
    &r.cohort
}

/// Jaccard of two sorted sequences, and the shared items when `detailed`.
fn jaccard_shared<'a, I>(a: I, b: I, detailed: bool) -> (f64, Vec<String>)
where
    I: IntoIterator<Item = &'a String>,
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
                    shared.push((*p).clone());
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

/// Calls `f(decky, a_hands_off, end phase, start phase, gap, chance,
/// weight)` for every hand-off between `a` and `b`.
#[allow(clippy::type_complexity)]
fn handoffs<'a, 'r>(
    a: &'r IdentityRollup,
    b: &'r IdentityRollup,
    w: &CampaignWeights,
    arrivals: &impl Fn(&str) -> Option<&'a DeckyArrivals>,
    mut f: impl FnMut(&'r String, bool, Phase, Phase, Millis, f64, f64),
) {
    for (decky, da) in &a.deckies {
        let Some(db) = b.decky(decky) else {
            continue;
        };
        for (a_from, x, y) in [(true, da, db), (false, db, da)] {
            let (Some((end_phase, _)), Some((start_phase, start))) = (x.last_phase, y.first_phase)
            else {
                continue;
            };
            if !is_handoff_end(end_phase) || !is_handoff_start(start_phase) {
                continue;
            }
            let gap = start - x.last_activity;
            if !(0..=w.handoff_window_ms).contains(&gap) {
                continue;
            }
            let x_arrived = x.first_phase.is_some_and(|(p, _)| is_handoff_start(p));
            let chance = arrivals(decky).map_or(0.0, |s| s.chance(x_arrived, w.handoff_window_ms));
            let weight = w.handoff * (-chance).exp();
            f(decky, a_from, end_phase, start_phase, gap, chance, weight);
        }
    }
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
    handoffs(a, b, w, &arrivals, |_, _, _, _, _, _, weight| {
        if weight > handoff {
            handoff = weight;
        }
    });
    let infra = if a.infra.is_empty() || b.infra.is_empty() {
        0.0
    } else {
        w.infra * jaccard_shared(&a.infra, &b.infra, false).0
    };
    let overlap = w.overlap * overlap_share(a, b);
    let (_, rhythm) = rhythm_term(a, b, w);
    handoff + infra + overlap + w.cohort + rhythm >= w.threshold
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
    handoffs(
        a,
        b,
        w,
        &arrivals,
        |decky, a_from, end_phase, start_phase, gap, chance, weight| {
            if weight > handoff {
                handoff = weight;
                detail = Some(Handoff {
                    decky: decky.clone(),
                    from: if a_from { ua } else { ub }.to_string(),
                    from_phase: end_phase.name().to_string(),
                    to_phase: start_phase.name().to_string(),
                    gap_ms: gap,
                    chance,
                    weight,
                });
            }
        },
    );
    let (ji, shared_infra) = jaccard_shared(&a.infra, &b.infra, detailed);
    let share = overlap_share(a, b);
    let (jc, shared_cohort) = jaccard_shared(&a.cohort, &b.cohort, detailed);
    let (hamming, rhythm) = rhythm_term(a, b, w);
    let infra = w.infra * ji;
    let overlap = w.overlap * share;
    let cohort = w.cohort * jc;
    let total = handoff + infra + overlap + cohort + rhythm;
    CampaignPairScore {
        handoff,
        handoff_detail: detail,
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
    fn chance_grows_with_the_arrival_rate() {
        let day = 86_400_000;
        let quiet = DeckyArrivals {
            count: 2,
            first: 0,
            last: 3_600_000,
        };
        assert_eq!(quiet.chance(true, day), 0.0);
        assert_eq!(quiet.chance(false, day), 1.0);
        assert!((quantize(0.5) - 0.5).abs() < 1e-12);
        assert!((quantize(0.55) - 0.5f64.powf(0.75)).abs() < 1e-12);
        let busy = DeckyArrivals {
            count: 101,
            first: 0,
            last: 10 * day,
        };
        // 100 others in ten windows: μ = 10, on the grid 2^(13/4) = 9.51.
        assert!((busy.chance(false, day) - 2f64.powf(3.25)).abs() < 1e-9);
    }

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
