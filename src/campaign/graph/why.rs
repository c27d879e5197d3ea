//! Why two identities are (or are not) one campaign, for `explain`: the
//! pair's score signal by signal plus, decky by decky, what the hand-off and
//! planted-key rules saw — and, when there is no edge, how much was missing
//! and what stood in the way (a follow-up outside the window, an arrival
//! that was background traffic, a key used before it was planted, a
//! discount for a busy decky).

use super::CampaignGraph;
use crate::campaign::handoff::{arrival, ending, is_handoff_start, rival};
use crate::campaign::rollup::{DeckyActivity, IdentityRollup};
use crate::campaign::similarity::{CampaignPairScore, CampaignWeights};
use crate::evidence::Millis;
use serde::Serialize;

/// A pair's campaign evidence with the reasons behind it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CampaignWhy {
    pub a: String,
    pub b: String,
    pub score: CampaignPairScore,
    /// `threshold − total` when there is no edge, else 0.
    pub missing: f64,
    /// What the hand-off and planted-key rules saw on the deckies both
    /// identities visited, in decky order.
    pub notes: Vec<String>,
}

fn hours(ms: Millis) -> String {
    format!("{:.1} h", ms as f64 / 3_600_000.0)
}

impl CampaignGraph {
    /// The evidence between two identities, with the reasons behind it.
    pub fn why(&self, a: &str, b: &str) -> Option<CampaignWhy> {
        let score = self.explain(a, b)?;
        let (ra, rb) = (
            &self.nodes[self.index_of[a] as usize].rollup,
            &self.nodes[self.index_of[b] as usize].rollup,
        );
        let mut notes = Vec::new();
        let mut shared = 0;
        for (decky, da) in &ra.deckies {
            let Some(db) = rb.decky(decky) else {
                continue;
            };
            shared += 1;
            for ((x, dx), (y, dy)) in [((a, da), (b, db)), ((b, db), (a, da))] {
                notes.extend(self.handoff_note(decky, (x, dx), (y, dy)));
                notes.extend(planted_notes(decky, (x, dx), (y, dy)));
            }
        }
        if shared == 0 {
            notes.push("no decky both visited: no hand-off or planted key is possible".into());
        }
        notes.extend(unshared_keys(ra, rb, a, b));
        let missing = if score.edge {
            0.0
        } else {
            (score.threshold - score.total).max(0.0)
        };
        Some(CampaignWhy {
            a: a.to_string(),
            b: b.to_string(),
            score,
            missing,
            notes,
        })
    }

    /// What the hand-off rule saw from `x` (ending) to `y` (arriving) on a
    /// decky, when `x` ended a stage there.
    fn handoff_note(
        &self,
        decky: &str,
        (x, dx): (&str, &DeckyActivity),
        (y, dy): (&str, &DeckyActivity),
    ) -> Option<String> {
        let w: &CampaignWeights = &self.weights;
        let end = ending(dx)?;
        let (end_phase, _) = dx.last_phase?;
        let Some((start_phase, start)) = dy.first_phase else {
            return Some(format!(
                "{decky}: {x} ended in {}, {y} has no phase there",
                end_phase.name()
            ));
        };
        if !is_handoff_start(start_phase) {
            return Some(format!(
                "{decky}: {x} ended in {}, but the first phase of {y} there is {}, not discovery or lateral_movement",
                end_phase.name(),
                start_phase.name()
            ));
        }
        if arrival(dy, w).is_none() {
            return Some(format!(
                "{decky}: {y} began {} but ran {} distinct non-stock command(s) there (fewer than {}): background traffic, not a follow-up",
                start_phase.name(),
                dy.commands,
                w.comparable_min_commands
            ));
        }
        let gap = start - end;
        if gap < 0 {
            return Some(format!(
                "{decky}: {y} began {} {} before the {} of {x} ended: not a follow-up",
                start_phase.name(),
                hours(-gap),
                end_phase.name()
            ));
        }
        if gap > w.handoff_window_ms {
            return Some(format!(
                "{decky}: {y} began {} {} after the {} of {x} ended, outside the {} window",
                start_phase.name(),
                hours(gap),
                end_phase.name(),
                hours(w.handoff_window_ms)
            ));
        }
        let stats = self
            .deckies
            .get(decky)
            .map(|d| d.stats.clone())
            .unwrap_or_default();
        let mu = stats.chance(
            rival(dx, w).is_some(),
            rival(dy, w).is_some(),
            w.handoff_window_ms,
        );
        Some(format!(
            "{decky}: hand-off {x} {} → {y} {} {} later; {} rival arrival(s) there over {} (comparable, not a key login): μ = {mu:.2}, e^-μ = {:.2}, weight {:.2}",
            end_phase.name(),
            start_phase.name(),
            hours(gap),
            stats.count,
            hours(stats.last - stats.first),
            (-mu).exp(),
            w.handoff * (-mu).exp()
        ))
    }
}

/// Keys `x` planted on a decky that `y` authenticated with there.
fn planted_notes(
    decky: &str,
    (x, dx): (&str, &DeckyActivity),
    (y, dy): (&str, &DeckyActivity),
) -> Vec<String> {
    let mut out = Vec::new();
    for (key, planted_at) in &dx.planted {
        let Ok(i) = dy.auth.binary_search_by(|(k, _)| k.cmp(key)) else {
            continue;
        };
        let used_at = dy.auth[i].1;
        if used_at > *planted_at {
            out.push(format!(
                "{decky}: {y} authenticated with {key}, which {x} planted there {} earlier",
                hours(used_at - planted_at)
            ));
        } else {
            out.push(format!(
                "{decky}: {y} authenticated with {key} before {x} planted it there: not a planted artifact"
            ));
        }
    }
    out
}

/// Keys one planted and the other used, but on different deckies.
fn unshared_keys(ra: &IdentityRollup, rb: &IdentityRollup, a: &str, b: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (x, rx, y, ry) in [(a, ra, b, rb), (b, rb, a, ra)] {
        for (dp, act) in &rx.deckies {
            for (key, _) in &act.planted {
                for (du, used) in &ry.deckies {
                    if du != dp && used.auth.iter().any(|(k, _)| k == key) {
                        out.push(format!(
                            "{y} authenticated with {key} on {du}, but {x} planted it on {dp}: a planted artifact needs the same decky"
                        ));
                    }
                }
            }
        }
    }
    out
}
