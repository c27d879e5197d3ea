//! The planted-artifact signal (SPEC §8): B authenticates on decky D with a
//! key A planted on D, in a session that starts after A's planting session
//! started. It is specific evidence — a key is a secret the two share — so
//! it is never discounted for chance, and like every campaign edge it
//! depends only on the difference of the two times.

use super::rollup::IdentityRollup;
use crate::evidence::{Millis, Sym};
use serde::{Deserialize, Serialize};

/// The planted key behind an edge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlantedKey {
    pub decky: String,
    /// The `SHA256:` fingerprint.
    pub key: String,
    /// Which of the pair planted it; the other authenticated with it.
    pub planted_by: String,
    pub used_by: String,
    /// From the start of the (first) planting session to the start of the
    /// latest session that used it.
    pub gap_ms: Millis,
}

/// One use of a planted key found between two roll-ups.
pub(crate) struct Found<'r> {
    pub decky: &'r Sym,
    pub key: &'r Sym,
    /// Whether the first roll-up planted the key.
    pub first_planted: bool,
    pub gap: Millis,
}

/// Calls `f` for every key one of `a`, `b` planted on a decky and the other
/// later authenticated with there (deckies and keys in sorted order).
pub(crate) fn uses<'r>(a: &'r IdentityRollup, b: &'r IdentityRollup, mut f: impl FnMut(Found<'r>)) {
    for (decky, da) in &a.deckies {
        let Some(db) = b.decky(decky) else {
            continue;
        };
        for (first_planted, x, y) in [(true, da, db), (false, db, da)] {
            let (mut i, mut j) = (0, 0);
            while i < x.planted.len() && j < y.auth.len() {
                let ((pk, planted_at), (ak, used_at)) = (&x.planted[i], &y.auth[j]);
                match pk.cmp(ak) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Greater => j += 1,
                    std::cmp::Ordering::Equal => {
                        // `auth` keeps the latest use: a later use exists
                        // exactly when the latest one is later.
                        if used_at > planted_at {
                            f(Found {
                                decky,
                                key: pk,
                                first_planted,
                                gap: used_at - planted_at,
                            });
                        }
                        i += 1;
                        j += 1;
                    }
                }
            }
        }
    }
}
