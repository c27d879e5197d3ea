//! The phase hand-off signal (SPEC §8): which identities arrive on a decky,
//! how likely a follow-up there is by chance, and the hand-offs between two
//! roll-ups with their discounted weights.
//!
//! **Arrivals.** An identity *arrives* on decky D when its first phase
//! there is discovery or lateral movement and its sessions there ran at
//! least `comparable_min_commands` distinct commands that are not stock
//! (default 1; stock commands are the behaviour catalogue's, `uname -a`,
//! `cat /proc/cpuinfo` and the like). A login-only visit or a scanner's
//! stock probe is background traffic: it is neither a follow-up nor a rival
//! of one, so a honeypot's scanner noise neither forms hand-offs nor
//! discounts them.
//!
//! **Rivals.** The arrivals that could be a chance follow-up are the
//! comparable arrivals that did not log in with an SSH key on D (a keyed
//! visit is judged by the planted-artifact signal, and is no chance
//! arrival).
//!
//! **Chance.** Let `N` be the number of rivals on D and `span` the time
//! between the first and the last. The decky's arrival rate is
//! `N / max(span, window)`, so a window after A's last activity should see,
//! by chance — not counting A or B where they are rivals themselves —
//! `μ = max(0, N − [A a rival] − [B a rival]) × window / max(span, window)`
//! arrivals, and a hand-off weighs `handoff × e^(−μ)`: the probability
//! (Poisson) that no unrelated identity arrives in that window. μ is
//! rounded to a quarter-octave grid so a busy decky's weights move only
//! when its rate moves noticeably. A quiet decky (only A and B) gives μ = 0
//! and the full weight; a decky where several unrelated identities arrive
//! per day gives almost nothing, so a crowded fleet is not chained into one
//! campaign through chance hand-offs.

use super::rollup::{DeckyActivity, IdentityRollup};
use super::similarity::CampaignWeights;
use crate::evidence::{Millis, Sym};
use crate::phase::Phase;
use serde::{Deserialize, Serialize};

/// Whether a phase ends a stage that another actor may pick up.
pub fn is_handoff_end(p: Phase) -> bool {
    matches!(p, Phase::Persistence | Phase::CommandAndControl)
}

/// Whether a phase begins a follow-up stage.
pub fn is_handoff_start(p: Phase) -> bool {
    matches!(p, Phase::Discovery | Phase::LateralMovement)
}

/// When the identity arrived on the decky (the start of its first phase),
/// if it is a comparable arrival there (see the module documentation).
pub fn arrival(act: &DeckyActivity, w: &CampaignWeights) -> Option<Millis> {
    act.first_phase
        .filter(|(p, _)| is_handoff_start(*p) && act.commands >= w.comparable_min_commands)
        .map(|(_, t)| t)
}

/// When the identity arrived on the decky as a possible *rival* follow-up:
/// a comparable arrival that did not log in with an SSH key there. A key
/// login is a keyed visit — whoever holds a key authorised on the host came
/// for it, and the planted-artifact signal judges it — not a chance arrival
/// that makes another identity's hand-off less telling.
pub fn rival(act: &DeckyActivity, w: &CampaignWeights) -> Option<Millis> {
    arrival(act, w).filter(|_| act.auth.is_empty())
}

/// When the identity's stage on the decky ended (its last activity there),
/// if its last phase there is one another actor may pick up.
pub fn ending(act: &DeckyActivity) -> Option<Millis> {
    act.last_phase
        .filter(|(p, _)| is_handoff_end(*p))
        .map(|_| act.last_activity)
}

/// Arrival statistics of one decky.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeckyArrivals {
    pub count: u32,
    pub first: Millis,
    pub last: Millis,
}

impl DeckyArrivals {
    /// The statistics of these arrival times (any order).
    pub fn of(times: impl IntoIterator<Item = Millis>) -> DeckyArrivals {
        let mut s = DeckyArrivals::default();
        for t in times {
            if s.count == 0 {
                (s.first, s.last) = (t, t);
            }
            s.count += 1;
            s.first = s.first.min(t);
            s.last = s.last.max(t);
        }
        s
    }

    /// Expected chance arrivals in a window after `a`'s last activity, not
    /// counting `a` or `b` themselves where they are among the rivals,
    /// rounded to a quarter-octave grid (steps of about 19 %): a decky's
    /// hand-off weights then change only when its arrival rate moves
    /// noticeably, which keeps incremental updates local on busy deckies.
    /// The rounding depends only on the current counts, so a rebuild and an
    /// incremental update agree.
    pub fn chance(&self, a_rival: bool, b_rival: bool, window: Millis) -> f64 {
        let others = (self.count as i64 - a_rival as i64 - b_rival as i64).max(0) as f64;
        let span = (self.last - self.first).max(window) as f64;
        quantize(others * window as f64 / span)
    }

    /// The rounded chances with none, one or both of the pair among the
    /// rivals — what hand-off weights on this decky depend on.
    pub fn chances(&self, window: Millis) -> [f64; 3] {
        [
            self.chance(true, true, window),
            self.chance(true, false, window),
            self.chance(false, false, window),
        ]
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
    /// The chance of no unrelated arrival, e^(−μ).
    #[serde(default)]
    pub discount: f64,
    pub weight: f64,
}

/// One hand-off found between two roll-ups.
pub(crate) struct Found<'r> {
    pub decky: &'r Sym,
    /// Whether the first roll-up handed off.
    pub first_hands_off: bool,
    pub end_phase: Phase,
    pub start_phase: Phase,
    pub gap: Millis,
    pub chance: f64,
    pub weight: f64,
}

/// Calls `f` for every hand-off between `a` and `b`.
pub(crate) fn handoffs<'a, 'r>(
    a: &'r IdentityRollup,
    b: &'r IdentityRollup,
    w: &CampaignWeights,
    arrivals: &impl Fn(&str) -> Option<&'a DeckyArrivals>,
    mut f: impl FnMut(Found<'r>),
) {
    for (decky, da) in &a.deckies {
        let Some(db) = b.decky(decky) else {
            continue;
        };
        for (first_hands_off, x, y) in [(true, da, db), (false, db, da)] {
            let (Some(end), Some(start)) = (ending(x), arrival(y, w)) else {
                continue;
            };
            let gap = start - end;
            if !(0..=w.handoff_window_ms).contains(&gap) {
                continue;
            }
            let (x_rival, y_rival) = (rival(x, w).is_some(), rival(y, w).is_some());
            let chance =
                arrivals(decky).map_or(0.0, |s| s.chance(x_rival, y_rival, w.handoff_window_ms));
            let (Some((end_phase, _)), Some((start_phase, _))) = (x.last_phase, y.first_phase)
            else {
                continue;
            };
            f(Found {
                decky,
                first_hands_off,
                end_phase,
                start_phase,
                gap,
                chance,
                weight: w.handoff * (-chance).exp(),
            });
        }
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
        assert_eq!(quiet.chance(true, true, day), 0.0);
        assert_eq!(quiet.chance(false, true, day), 1.0);
        assert_eq!(quiet.chance(false, false, day), 2.0);
        assert!((quantize(0.5) - 0.5).abs() < 1e-12);
        assert!((quantize(0.55) - 0.5f64.powf(0.75)).abs() < 1e-12);
        let busy = DeckyArrivals {
            count: 101,
            first: 0,
            last: 10 * day,
        };
        // 100 others in ten windows: μ = 10, on the grid 2^(13/4) = 9.51.
        assert!((busy.chance(false, true, day) - 2f64.powf(3.25)).abs() < 1e-9);
        assert_eq!(
            DeckyArrivals::of([5, 1, 9]),
            DeckyArrivals {
                count: 3,
                first: 1,
                last: 9
            }
        );
        assert_eq!(DeckyArrivals::of([]), DeckyArrivals::default());
    }

    fn act(phase: Phase, commands: u32) -> DeckyActivity {
        DeckyActivity {
            first_phase: Some((phase, 0)),
            last_phase: Some((phase, 0)),
            last_activity: 10,
            commands,
            planted: Box::default(),
            auth: Box::default(),
        }
    }

    #[test]
    fn an_arrival_is_comparable_only_with_enough_commands() {
        let w = CampaignWeights::default();
        // `commands` counts non-stock commands only (the roll-up's).
        assert_eq!(arrival(&act(Phase::Discovery, 1), &w), Some(0));
        assert_eq!(arrival(&act(Phase::Discovery, 0), &w), None);
        let two = CampaignWeights {
            comparable_min_commands: 2,
            ..w.clone()
        };
        assert_eq!(arrival(&act(Phase::Discovery, 1), &two), None);
        assert_eq!(arrival(&act(Phase::Persistence, 5), &w), None);
        let every = CampaignWeights {
            comparable_min_commands: 0,
            ..w
        };
        assert_eq!(arrival(&act(Phase::LateralMovement, 0), &every), Some(0));
        assert_eq!(ending(&act(Phase::Persistence, 0)), Some(10));
        assert_eq!(ending(&act(Phase::Discovery, 9)), None);
    }
}
