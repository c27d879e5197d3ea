//! Identity roll-ups: what the campaign layer needs to know about one
//! identity, derived from its member observations. A roll-up is a pure
//! function of the member set, so an identity that gains or loses a member
//! or evidence simply gets its roll-up recomputed from its members (only
//! changed identities are recomputed).

use crate::evidence::{Millis, Observation, Sym};
use crate::identity::catalogue::Catalogue;
use crate::identity::clusterer::simhash_centroid;
use crate::phase::Phase;
use crate::set::SortedSet;
use rustc_hash::FxHashMap;
use std::cell::RefCell;

/// Tokens a roll-up makes of interned values, each once per thread: a
/// roll-up is rebuilt whenever its identity changes, and formatting and
/// interning `kind:value` for every label of every rebuild was a tenth of
/// the daemon's time over a 1,000,000 backlog. Keyed by the values'
/// allocations, which the entry holds so that they cannot be freed and
/// reused under the key; cleared when it holds [`TOKEN_MEMO`] entries.
const TOKEN_MEMO: usize = 1 << 16;

/// (tag, first value's address, second value's address) → (the values,
/// held, and the token); `asn:AS…` tokens are keyed by the number.
type TokenMemo<K> = FxHashMap<K, (Option<(Sym, Sym)>, Sym)>;

thread_local! {
    static TOKENS: RefCell<TokenMemo<(u8, usize, usize)>> = RefCell::new(FxHashMap::default());
    static ASNS: RefCell<TokenMemo<u32>> = RefCell::new(FxHashMap::default());
}

/// The memoised token of `key`, else `make()` interned and kept with the
/// values `held` (see [`TOKEN_MEMO`]).
fn memoised<K: std::hash::Hash + Eq>(
    memo: &'static std::thread::LocalKey<RefCell<TokenMemo<K>>>,
    key: K,
    held: Option<(&Sym, &Sym)>,
    make: impl FnOnce() -> String,
) -> Sym {
    memo.with(|t| {
        let mut t = t.borrow_mut();
        if let Some((_, tok)) = t.get(&key) {
            return tok.clone();
        }
        if t.len() >= TOKEN_MEMO {
            t.clear();
        }
        let tok = Sym::from(make());
        let held = held.map(|(a, b)| (a.clone(), b.clone()));
        t.insert(key, (held, tok.clone()));
        tok
    })
}

/// The token `make()` spells for (`tag`, `a`, `b`), interned.
fn token(tag: u8, a: &Sym, b: &Sym, make: impl FnOnce() -> String) -> Sym {
    memoised(&TOKENS, (tag, a.addr(), b.addr()), Some((a, b)), make)
}

/// The `asn:AS…` token, interned.
fn asn_token(asn: u32) -> Sym {
    memoised(&ASNS, asn, None, || format!("asn:AS{asn}"))
}

/// What an identity did on one decky: the first phase of its first phased
/// session and the last phase of its last one (a session's own first and
/// last phase, so an inferred session that runs discovery then persistence
/// ends in persistence), how many distinct non-stock commands it ran there
/// (stock commands per the behaviour catalogue are what every scanner
/// runs), and the
/// SSH keys it planted and authenticated with there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeckyActivity {
    pub first_phase: Option<(Phase, Millis)>,
    pub last_phase: Option<(Phase, Millis)>,
    /// End of the identity's last activity on this decky.
    pub last_activity: Millis,
    /// Distinct commands over all its sessions on this decky, stock ones
    /// (`config/behaviour.toml`) not counted.
    pub commands: u32,
    /// (fingerprint, start of the first session that planted it), by key.
    pub planted: Box<[(Sym, Millis)]>,
    /// (fingerprint, start of the last session that authenticated with
    /// it), by key.
    pub auth: Box<[(Sym, Millis)]>,
}

/// One timed session on a decky, as the roll-up reads it.
struct DeckySession<'a> {
    decky: &'a Sym,
    start: Millis,
    end: Millis,
    first: Option<Phase>,
    last: Option<Phase>,
    session: &'a crate::evidence::Session,
}

/// Everything the campaign layer compares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityRollup {
    pub observation_count: usize,
    /// Interned strings throughout (`Sym`): most of a roll-up's values
    /// (fingerprints, labels, decky ids, cohort tokens) are shared by
    /// thousands of identities.
    pub ja3: SortedSet<Sym>,
    pub ja4: SortedSet<Sym>,
    pub hassh: SortedSet<Sym>,
    pub other_fingerprints: SortedSet<Sym>,
    /// Payload hashes and C2 endpoints, prefixed `payload:` / `c2:`.
    pub infra: SortedSet<Sym>,
    pub asns: SortedSet<u32>,
    pub ips: SortedSet<Sym>,
    /// Activity per decky, sorted by decky (a roll-up is built once and
    /// never edited, so a vector of exactly its deckies; see [`Self::decky`]).
    pub deckies: Vec<(Sym, DeckyActivity)>,
    /// Merged, sorted session windows `[start, end]`.
    pub windows: Vec<(Millis, Millis)>,
    /// `kind:value` of every tooling fingerprint.
    pub tool_labels: SortedSet<Sym>,
    pub first_seen: Option<Millis>,
    pub last_seen: Option<Millis>,
    /// Bitwise majority of the sessions' digraph SimHashes.
    pub keystroke_centroid: Option<u64>,
    /// Cohort tokens (`asn:AS…`, tooling labels, `decky:…`), sorted.
    pub cohort: Vec<Sym>,
}

impl IdentityRollup {
    /// The roll-up of an identity with these member observations.
    pub fn from_observations<'a>(
        members: impl IntoIterator<Item = &'a Observation>,
        stock: &Catalogue,
    ) -> IdentityRollup {
        let mut r = IdentityRollup::default();
        let mut hashes = Vec::new();
        let mut windows = Vec::new();
        // Every timed session with a decky.
        let mut sessions: Vec<DeckySession> = Vec::new();
        // Borrowed values first, deduplicated, so each distinct string is
        // allocated once however many members share it.
        let mut ips: Vec<&Sym> = Vec::new();
        let mut fps: [Vec<&Sym>; 4] = Default::default();
        let mut tools: Vec<(&Sym, &Sym)> = Vec::new();
        let mut infra: Vec<(bool, &Sym)> = Vec::new();
        for o in members {
            r.observation_count += 1;
            r.asns.extend(o.asn());
            ips.extend(o.ip.as_ref().map(|s| &s.value));
            for fp in &o.fingerprints {
                let slot = match fp.kind.as_str() {
                    "ja3" => 0,
                    "ja4" => 1,
                    "hassh" => 2,
                    _ => 3,
                };
                fps[slot].push(&fp.value);
                if fp.is_tooling() {
                    tools.push((&fp.kind, &fp.value));
                }
            }
            r.first_seen = r.first_seen.into_iter().chain(o.first_seen).min();
            r.last_seen = r.last_seen.into_iter().chain(o.last_seen).max();
            for s in o.sessions.values() {
                infra.extend(s.extras.payload_hashes.iter().map(|p| (false, p)));
                infra.extend(s.extras.c2_endpoints.iter().map(|c| (true, c)));
                hashes.extend(s.kd_digraph_simhash);
                let start = s.started_at.or(s.ended_at);
                let end = s.ended_at.or(s.started_at);
                if let (Some(a), Some(b)) = (start, end) {
                    let (a, b) = (a.min(b), a.max(b));
                    windows.push((a, b));
                    r.first_seen = r.first_seen.into_iter().chain(Some(a)).min();
                    r.last_seen = r.last_seen.into_iter().chain(Some(b)).max();
                    if let Some(d) = &s.decky_id {
                        sessions.push(DeckySession {
                            decky: d,
                            start: a,
                            end: b,
                            first: s.first_phase(),
                            last: s.last_phase(),
                            session: s,
                        });
                    }
                }
            }
        }
        r.ips = SortedSet::from_syms(ips);
        let [ja3, ja4, hassh, other] = fps;
        r.ja3 = SortedSet::from_syms(ja3);
        r.ja4 = SortedSet::from_syms(ja4);
        r.hassh = SortedSet::from_syms(hassh);
        r.other_fingerprints = SortedSet::from_syms(other);
        tools.sort_unstable();
        tools.dedup();
        r.tool_labels = tools
            .into_iter()
            .map(|(kind, value)| token(0, kind, value, || format!("{kind}:{value}")))
            .collect();
        infra.sort_unstable();
        infra.dedup();
        r.infra = infra
            .into_iter()
            .map(|(c2, v)| {
                if c2 {
                    token(1, v, v, || format!("c2:{v}"))
                } else {
                    token(2, v, v, || format!("payload:{v}"))
                }
            })
            .collect();
        windows.sort_unstable();
        for (a, b) in windows {
            match r.windows.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => r.windows.push((a, b)),
            }
        }
        // Phase order on a decky is session time order; ties by phase.
        sessions.sort_by(|x, y| {
            (x.decky, x.start, x.first, x.last).cmp(&(y.decky, y.start, y.first, y.last))
        });
        for group in sessions.chunk_by(|x, y| x.decky == y.decky) {
            r.deckies
                .push((group[0].decky.clone(), decky_activity(group, stock)));
        }
        debug_assert!(r.deckies.windows(2).all(|w| w[0].0 < w[1].0));
        let mut cohort: Vec<Sym> = r.asns.iter().map(|&a| asn_token(a)).collect();
        cohort.extend(r.tool_labels.iter().cloned());
        cohort.extend(
            r.deckies
                .iter()
                .map(|(d, _)| token(3, d, d, || format!("decky:{d}"))),
        );
        cohort.sort_unstable();
        cohort.dedup();
        r.cohort = cohort;
        r.keystroke_centroid =
            simhash_centroid(hashes).and_then(|h| u64::from_str_radix(&h, 16).ok());
        r
    }

    /// The activity on this decky.
    pub fn decky(&self, decky: &str) -> Option<&DeckyActivity> {
        self.deckies
            .binary_search_by(|(d, _)| d.as_str().cmp(decky))
            .ok()
            .map(|i| &self.deckies[i].1)
    }

    /// Total session time.
    pub fn active_ms(&self) -> Millis {
        self.windows.iter().map(|w| w.1 - w.0).sum()
    }

    /// Shifts every timestamp by `offset` (for shift-invariance tests).
    pub fn shifted(&self, offset: Millis) -> IdentityRollup {
        let mut r = self.clone();
        r.windows
            .iter_mut()
            .for_each(|w| *w = (w.0 + offset, w.1 + offset));
        r.first_seen = r.first_seen.map(|t| t + offset);
        r.last_seen = r.last_seen.map(|t| t + offset);
        for (_, d) in r.deckies.iter_mut() {
            d.first_phase = d.first_phase.map(|(p, t)| (p, t + offset));
            d.last_phase = d.last_phase.map(|(p, t)| (p, t + offset));
            d.last_activity += offset;
            d.planted.iter_mut().for_each(|k| k.1 += offset);
            d.auth.iter_mut().for_each(|k| k.1 += offset);
        }
        r
    }
}

/// The activity of one decky's sessions (sorted by start).
fn decky_activity(group: &[DeckySession], stock: &Catalogue) -> DeckyActivity {
    let mut act = DeckyActivity {
        first_phase: None,
        last_phase: None,
        last_activity: group[0].end,
        commands: 0,
        planted: Box::default(),
        auth: Box::default(),
    };
    let mut commands: Vec<&str> = Vec::new();
    let mut planted: Vec<(&Sym, Millis)> = Vec::new();
    let mut auth: Vec<(&Sym, Millis)> = Vec::new();
    for s in group {
        act.last_activity = act.last_activity.max(s.end);
        if let Some(p) = s.first {
            if act.first_phase.is_none() {
                act.first_phase = Some((p, s.start));
            }
            act.last_phase = Some((s.last.unwrap_or(p), s.start));
        }
        commands.extend(
            s.session
                .commands
                .iter()
                .map(Sym::as_str)
                .filter(|c| !stock.stock_command(c)),
        );
        planted.extend(s.session.extras.planted_keys.iter().map(|k| (k, s.start)));
        auth.extend(s.session.extras.auth_keys.iter().map(|k| (k, s.start)));
    }
    commands.sort_unstable();
    commands.dedup();
    act.commands = commands.len().min(u32::MAX as usize) as u32;
    // The earliest planting of each key, the latest use of each key.
    planted.sort_unstable();
    planted.dedup_by(|later, first| later.0 == first.0);
    auth.sort_unstable_by(|x, y| x.0.cmp(y.0).then(y.1.cmp(&x.1)));
    auth.dedup_by(|later, first| later.0 == first.0);
    act.planted = planted.into_iter().map(|(k, t)| (k.clone(), t)).collect();
    act.auth = auth.into_iter().map(|(k, t)| (k.clone(), t)).collect();
    act
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{Fingerprint, Session, SessionExtras};

    fn observation(tag: &str, payloads: usize) -> Observation {
        let mut o = Observation::new(Sym::unique(&format!("obs-{tag}")));
        for (kind, value) in [
            ("ja3", format!("ja3-{tag}")),
            ("hassh", format!("hassh-{tag}")),
        ] {
            o.fingerprints.insert(Fingerprint {
                kind: Sym::new(kind),
                value: Sym::from(value),
            });
        }
        o.asn = Some(crate::evidence::Stamped {
            at: 0,
            value: 64_500,
        });
        o.sessions.join(Session {
            session_id: format!("s-{tag}").into(),
            decky_id: Some(Sym::from(format!("decky-{tag}"))),
            started_at: Some(1_000),
            ended_at: Some(2_000),
            extras: SessionExtras {
                payload_hashes: (0..payloads)
                    .map(|i| Sym::from(format!("p-{tag}-{i}")))
                    .collect(),
                c2_endpoints: [Sym::from(format!("c2-{tag}"))].into_iter().collect(),
                ..Default::default()
            }
            .into(),
            ..Default::default()
        });
        o
    }

    /// The tokens as the roll-up spelled them before they were memoised.
    fn spelled(o: &Observation) -> (Vec<String>, Vec<String>, Vec<String>) {
        let mut labels: Vec<String> = o
            .fingerprints
            .iter()
            .map(|f| format!("{}:{}", f.kind, f.value))
            .collect();
        labels.sort();
        let s = o.sessions.values().next().unwrap();
        let mut infra: Vec<String> = s
            .extras
            .payload_hashes
            .iter()
            .map(|p| format!("payload:{p}"))
            .collect();
        infra.extend(s.extras.c2_endpoints.iter().map(|c| format!("c2:{c}")));
        infra.sort();
        let mut cohort = labels.clone();
        cohort.push("asn:AS64500".into());
        cohort.push(format!("decky:{}", s.decky_id.as_ref().unwrap()));
        cohort.sort();
        (labels, infra, cohort)
    }

    fn texts<'a>(v: impl IntoIterator<Item = &'a Sym>) -> Vec<String> {
        v.into_iter().map(Sym::to_string).collect()
    }

    #[test]
    fn memoised_tokens_spell_their_values_even_after_the_values_are_gone() {
        let stock = Catalogue::default();
        // More tokens than the memo holds, so it is cleared on the way;
        // then new values, allocated after the old ones were freed.
        for (tag, payloads) in [("a", TOKEN_MEMO + 10), ("b", 3), ("c", 3)] {
            let o = observation(tag, payloads);
            let r = IdentityRollup::from_observations([&o], &stock);
            let (labels, infra, cohort) = spelled(&o);
            assert_eq!(texts(&r.tool_labels), labels, "{tag}");
            assert_eq!(texts(&r.infra), infra, "{tag}");
            assert_eq!(texts(&r.cohort), cohort, "{tag}");
            // The same roll-up again, from the memo.
            assert_eq!(IdentityRollup::from_observations([&o], &stock), r);
        }
    }
}
