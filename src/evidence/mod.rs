//! The evidence model: what one observation (one attacker source IP seen by
//! the fleet) has accumulated. Input events (SPEC §4) are parsed in
//! [`event`] into *partial* observations, and every partial observation is
//! folded into the stored one with [`Observation::merge`]. Beside the
//! parser: [`time`] (the timestamp codec, both ways), [`publish`] (an
//! observation written back out as an input payload) and [`stored`] (how
//! the evidence is stored, both ways).
//!
//! `merge` is a join on a semilattice: commutative, associative and
//! idempotent, so replaying any events, in any order, any number of times,
//! gives the same observation (property-tested in `tests/evidence_props.rs`).
//! Every field is either a set (union), a min, a max, or a value stamped with
//! the time it was reported (the greater stamp wins; equal stamps fall back to
//! the greater value so that the result never depends on arrival order).

pub mod event;
pub mod json;
pub mod publish;
pub mod sessions;
pub mod stored;
pub mod sym;
pub mod time;

use crate::phase::Phase;
use crate::set::SortedSet;
use serde::{Deserialize, Serialize};
pub use sessions::Sessions;
pub use sym::Sym;

/// Unix time in milliseconds (UTC). Every timestamp in the core is one.
pub type Millis = i64;

/// Fingerprint kinds that describe the client tooling. Only these take part
/// in the identity layer's tooling signals and veto; other kinds are stored
/// and rolled up.
pub const TOOLING_KINDS: [&str; 3] = ["ja3", "ja4", "hassh"];

/// A value together with the time it was reported, for "latest value" fields
/// (`ip`, `asn`). Ordered by stamp first, then value, so `max` is the merge.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamped<T> {
    pub at: Millis,
    pub value: T,
}

/// One client fingerprint (`ja3`, `hassh`, `jarm`, ...).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    pub kind: Sym,
    pub value: Sym,
}

impl Fingerprint {
    /// Whether this fingerprint describes client tooling (ja3/ja4/hassh).
    pub fn is_tooling(&self) -> bool {
        TOOLING_KINDS.contains(&self.kind.as_str())
    }
}

/// One interactive session on one decky, keyed by `session_id` within its
/// observation. Reports of the same session are merged field by field.
///
/// The evidence few sessions carry (payloads, C2 endpoints, SSH keys) is
/// in [`Session::extras`], boxed only when there is some: a session is 120
/// bytes instead of 176, and an observation holds 2.65 of them on the
/// benchmark corpus. Its JSON is the flat object it
/// always was ([`SessionRepr`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "SessionRepr")]
pub struct Session {
    /// Not interned: ids are mostly unique (a boxed `str`, 16 bytes).
    pub session_id: Box<str>,
    pub decky_id: Option<Sym>,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    /// The session's (first) UKC phase: from the sensor's `phase` or mapped
    /// from its ATT&CK `tactic`, or inferred from the commands (SPEC §12).
    pub phase: Option<Phase>,
    /// The last phase, when it differs from the first (a session that ran
    /// commands of several phases; SPEC §12). `None` means "same as
    /// `phase`". Read it through [`Session::last_phase`].
    pub last_phase: Option<Phase>,
    /// Whether `phase`/`last_phase` were inferred from the commands rather
    /// than given by the sensor. Stores written before inference existed
    /// have no such field: their phases came from sensors.
    pub phase_inferred: bool,
    /// Commands typed, as a set (clustering compares sets; order is not
    /// evidence that survives partial, reordered reports).
    pub commands: SortedSet<Sym>,
    /// Credential pairs tried, `(username, password)`.
    pub credentials: SortedSet<(Sym, Sym)>,
    /// 64-bit keystroke digraph SimHash.
    pub kd_digraph_simhash: Option<u64>,
    /// Payloads, C2 endpoints and keys: read as
    /// `s.extras.payload_hashes`; a write (`s.extras.payload_hashes.insert`)
    /// boxes them first.
    pub extras: Extras,
}

/// A session's rarely filled evidence (few real Cowrie sessions download a
/// payload or carry a key; a third of the benchmark corpus's sessions
/// carry a payload and a C2 endpoint). The keystroke hash stays in the
/// session: every scripted actor's session of the corpus has one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionExtras {
    pub payload_hashes: SortedSet<Sym>,
    pub c2_endpoints: SortedSet<Sym>,
    /// `SHA256:` fingerprints of the public keys the session authenticated
    /// with on its decky (SPEC §4 `auth_key`; a set, so reports merge).
    pub auth_keys: SortedSet<Sym>,
    /// `SHA256:` fingerprints of public keys the session added to an
    /// `authorized_keys` file on its decky (SPEC §4 `planted_keys`).
    pub planted_keys: SortedSet<Sym>,
}

impl SessionExtras {
    /// Whether nothing is held (the state an unboxed [`Extras`] reads as).
    pub fn is_empty(&self) -> bool {
        self.payload_hashes.is_empty()
            && self.c2_endpoints.is_empty()
            && self.auth_keys.is_empty()
            && self.planted_keys.is_empty()
    }

    /// Joins another report's extras (sets by union, the hash by maximum).
    fn merge(&mut self, other: &SessionExtras) -> bool {
        let mut c = self.payload_hashes.union_with(&other.payload_hashes);
        c |= self.c2_endpoints.union_with(&other.c2_endpoints);
        c |= self.auth_keys.union_with(&other.auth_keys);
        c |= self.planted_keys.union_with(&other.planted_keys);
        c
    }
}

/// [`SessionExtras`] behind one pointer that is null while they are empty.
/// Reads go through `Deref` (an empty box reads as the shared empty
/// extras); a mutable access boxes them. Equality is the extras', so an
/// emptied box equals none.
#[derive(Clone, Default)]
pub struct Extras(Option<Box<SessionExtras>>);

impl Extras {
    /// Boxes `extras` when they hold anything.
    pub fn new(extras: SessionExtras) -> Extras {
        match extras.is_empty() {
            true => Extras(None),
            false => Extras(Some(Box::new(extras))),
        }
    }

    /// Whether the extras hold an allocation (they may, emptied, and still
    /// equal none).
    pub fn is_boxed(&self) -> bool {
        self.0.is_some()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(SessionExtras::is_empty)
    }
}

impl From<SessionExtras> for Extras {
    fn from(extras: SessionExtras) -> Extras {
        Extras::new(extras)
    }
}

impl std::ops::Deref for Extras {
    type Target = SessionExtras;

    fn deref(&self) -> &SessionExtras {
        static EMPTY: std::sync::OnceLock<SessionExtras> = std::sync::OnceLock::new();
        self.0
            .as_deref()
            .unwrap_or_else(|| EMPTY.get_or_init(SessionExtras::default))
    }
}

impl std::ops::DerefMut for Extras {
    fn deref_mut(&mut self) -> &mut SessionExtras {
        self.0.get_or_insert_with(Box::default)
    }
}

impl PartialEq for Extras {
    fn eq(&self, other: &Extras) -> bool {
        **self == **other
    }
}

impl Eq for Extras {}

impl std::fmt::Debug for Extras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// A session's JSON (the serde form of earlier stores and of every reader
/// of the flat object): every field at the top level, in this order.
#[derive(Deserialize)]
struct SessionRepr {
    session_id: Box<str>,
    decky_id: Option<Sym>,
    started_at: Option<Millis>,
    ended_at: Option<Millis>,
    phase: Option<Phase>,
    #[serde(default)]
    last_phase: Option<Phase>,
    #[serde(default)]
    phase_inferred: bool,
    commands: SortedSet<Sym>,
    credentials: SortedSet<(Sym, Sym)>,
    payload_hashes: SortedSet<Sym>,
    c2_endpoints: SortedSet<Sym>,
    kd_digraph_simhash: Option<u64>,
    #[serde(default)]
    auth_keys: SortedSet<Sym>,
    #[serde(default)]
    planted_keys: SortedSet<Sym>,
}

/// [`SessionRepr`] borrowed, for writing without a copy.
#[derive(Serialize)]
struct SessionReprRef<'a> {
    session_id: &'a str,
    decky_id: &'a Option<Sym>,
    started_at: Option<Millis>,
    ended_at: Option<Millis>,
    phase: Option<Phase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_phase: Option<Phase>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    phase_inferred: bool,
    commands: &'a SortedSet<Sym>,
    credentials: &'a SortedSet<(Sym, Sym)>,
    payload_hashes: &'a SortedSet<Sym>,
    c2_endpoints: &'a SortedSet<Sym>,
    kd_digraph_simhash: Option<u64>,
    #[serde(skip_serializing_if = "SortedSet::is_empty")]
    auth_keys: &'a SortedSet<Sym>,
    #[serde(skip_serializing_if = "SortedSet::is_empty")]
    planted_keys: &'a SortedSet<Sym>,
}

impl From<SessionRepr> for Session {
    fn from(r: SessionRepr) -> Session {
        Session {
            session_id: r.session_id,
            decky_id: r.decky_id,
            started_at: r.started_at,
            ended_at: r.ended_at,
            phase: r.phase,
            last_phase: r.last_phase,
            phase_inferred: r.phase_inferred,
            commands: r.commands,
            credentials: r.credentials,
            kd_digraph_simhash: r.kd_digraph_simhash,
            extras: Extras::new(SessionExtras {
                payload_hashes: r.payload_hashes,
                c2_endpoints: r.c2_endpoints,
                auth_keys: r.auth_keys,
                planted_keys: r.planted_keys,
            }),
        }
    }
}

impl Serialize for Session {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = &*self.extras;
        SessionReprRef {
            session_id: &self.session_id,
            decky_id: &self.decky_id,
            started_at: self.started_at,
            ended_at: self.ended_at,
            phase: self.phase,
            last_phase: self.last_phase,
            phase_inferred: self.phase_inferred,
            commands: &self.commands,
            credentials: &self.credentials,
            payload_hashes: &x.payload_hashes,
            c2_endpoints: &x.c2_endpoints,
            kd_digraph_simhash: self.kd_digraph_simhash,
            auth_keys: &x.auth_keys,
            planted_keys: &x.planted_keys,
        }
        .serialize(s)
    }
}

/// Where a session's phase came from, as shown wherever the phase is shown
/// (`phase_source` in SPEC §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhaseSource {
    Sensor,
    Inferred,
}

impl PhaseSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseSource::Sensor => "sensor",
            PhaseSource::Inferred => "inferred",
        }
    }
}

/// Everything known about one observation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// One allocation shared by the store's map, the identity groups,
    /// member lists and the identity graph, which clone it (read with
    /// [`Sym::unique`]: not entered in the interner's table).
    pub uuid: Sym,
    /// A `Sym` of its own (`Sym::unique`: addresses rarely repeat), which
    /// the roll-ups clone.
    pub ip: Option<Stamped<Sym>>,
    pub asn: Option<Stamped<u32>>,
    pub first_seen: Option<Millis>,
    pub last_seen: Option<Millis>,
    pub fingerprints: SortedSet<Fingerprint>,
    /// Sessions by id.
    pub sessions: Sessions,
}

/// Joins by minimum; true when `a` changed.
fn join_min(a: &mut Option<Millis>, b: Option<Millis>) -> bool {
    let joined = match (*a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    let changed = joined != *a;
    *a = joined;
    changed
}

/// Joins by maximum; true when `a` changed.
fn join_max<T: Ord + Clone>(a: &mut Option<T>, b: &Option<T>) -> bool {
    if b > a {
        a.clone_from(b);
        return true;
    }
    false
}

impl Session {
    /// Joins another report of the same session into this one. Scalars take
    /// the earliest start, the latest end, and otherwise the greater value,
    /// so that the result is independent of report order. Returns whether
    /// anything changed.
    pub fn merge(&mut self, other: &Session) -> bool {
        debug_assert_eq!(self.session_id, other.session_id);
        let mut c = join_max(&mut self.decky_id, &other.decky_id);
        c |= join_min(&mut self.started_at, other.started_at);
        c |= join_max(&mut self.ended_at, &other.ended_at);
        c |= self.merge_phases(other);
        c |= self.commands.union_with(&other.commands);
        c |= self.credentials.union_with(&other.credentials);
        c |= join_max(&mut self.kd_digraph_simhash, &other.kd_digraph_simhash);
        if !other.extras.is_empty() {
            c |= self.extras.merge(&other.extras);
        }
        c
    }

    /// The first phase (sensor-given or inferred).
    pub fn first_phase(&self) -> Option<Phase> {
        self.phase
    }

    /// The last phase: `last_phase`, or the first when there is no other.
    pub fn last_phase(&self) -> Option<Phase> {
        self.last_phase.or(self.phase)
    }

    /// Where the phase came from; `None` when the session has no phase.
    pub fn phase_source(&self) -> Option<PhaseSource> {
        self.phase.map(|_| {
            if self.phase_inferred {
                PhaseSource::Inferred
            } else {
                PhaseSource::Sensor
            }
        })
    }

    /// How much the phase fields are worth: a sensor's phase beats an
    /// inferred one, which beats none.
    fn phase_rank(&self) -> u8 {
        match self.phase_source() {
            None => 0,
            Some(PhaseSource::Inferred) => 1,
            Some(PhaseSource::Sensor) => 2,
        }
    }

    /// Joins the phase fields: the report of the higher rank wins whole;
    /// equal ranks join field by field by maximum (the later phase in chain
    /// order), so the result never depends on report order.
    fn merge_phases(&mut self, other: &Session) -> bool {
        let (mine, theirs) = (self.phase_rank(), other.phase_rank());
        if theirs > mine {
            self.phase = other.phase;
            self.last_phase = other.last_phase;
            self.phase_inferred = other.phase_inferred;
            return true;
        }
        if theirs < mine || theirs == 0 {
            return false;
        }
        let before = (self.phase, self.last_phase());
        let last = self.last_phase().max(other.last_phase());
        self.phase = self.phase.max(other.phase);
        self.last_phase = if last == self.phase { None } else { last };
        before != (self.phase, self.last_phase())
    }
}

impl Observation {
    /// An observation that knows nothing but its uuid.
    pub fn new(uuid: impl Into<Sym>) -> Self {
        Observation {
            uuid: uuid.into(),
            ..Default::default()
        }
    }

    /// Folds another (partial) observation of the same uuid into this one.
    /// Returns whether anything changed (without cloning to compare).
    pub fn merge(&mut self, other: &Observation) -> bool {
        debug_assert_eq!(self.uuid, other.uuid);
        let mut c = join_max(&mut self.ip, &other.ip);
        c |= join_max(&mut self.asn, &other.asn);
        c |= join_min(&mut self.first_seen, other.first_seen);
        c |= join_max(&mut self.last_seen, &other.last_seen);
        c |= self.fingerprints.union_with(&other.fingerprints);
        for session in &other.sessions {
            c |= self.sessions.join_ref(session);
        }
        c
    }

    /// Tooling fingerprints (ja3/ja4/hassh) only.
    pub fn tooling(&self) -> impl Iterator<Item = &Fingerprint> {
        self.fingerprints.iter().filter(|f| f.is_tooling())
    }

    /// Latest known ASN.
    pub fn asn(&self) -> Option<u32> {
        self.asn.as_ref().map(|s| s.value)
    }

    /// Latest known IP.
    pub fn ip(&self) -> Option<&str> {
        self.ip.as_ref().map(|s| s.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(phase: Option<Phase>, last: Option<Phase>, inferred: bool) -> Session {
        Session {
            session_id: "s".into(),
            phase,
            last_phase: last,
            phase_inferred: inferred,
            ..Default::default()
        }
    }

    #[test]
    fn a_sessions_json_is_the_flat_object_with_or_without_extras() {
        let mut s = session(Some(Phase::Discovery), None, false);
        s.kd_digraph_simhash = Some(7);
        assert!(!s.extras.is_boxed(), "nothing rare: nothing boxed");
        let bare = serde_json::to_string(&s).unwrap();
        assert_eq!(
            bare,
            r#"{"session_id":"s","decky_id":null,"started_at":null,"ended_at":null,"phase":"discovery","commands":[],"credentials":[],"payload_hashes":[],"c2_endpoints":[],"kd_digraph_simhash":7}"#
        );
        assert_eq!(serde_json::from_str::<Session>(&bare).unwrap(), s);
        s.extras.c2_endpoints.insert("c2:443".into());
        s.extras.planted_keys.insert("SHA256:k".into());
        let full = serde_json::to_string(&s).unwrap();
        assert_eq!(
            full,
            r#"{"session_id":"s","decky_id":null,"started_at":null,"ended_at":null,"phase":"discovery","commands":[],"credentials":[],"payload_hashes":[],"c2_endpoints":["c2:443"],"kd_digraph_simhash":7,"planted_keys":["SHA256:k"]}"#
        );
        let back: Session = serde_json::from_str(&full).unwrap();
        assert_eq!(back, s);
        assert!(back.extras.is_boxed());
        let read: Session = serde_json::from_str(&bare).unwrap();
        assert!(!read.extras.is_boxed(), "empty extras read unboxed");
    }

    #[test]
    fn emptied_extras_equal_none_and_merging_nothing_boxes_nothing() {
        let plain = session(None, None, false);
        let mut emptied = plain.clone();
        emptied.extras.payload_hashes = SortedSet::new();
        assert!(emptied.extras.is_boxed());
        assert_eq!(emptied, plain);
        let mut m = plain.clone();
        assert!(!m.merge(&emptied));
        assert!(!m.extras.is_boxed());
        let mut rich = plain.clone();
        rich.extras.auth_keys.insert("SHA256:a".into());
        assert!(m.merge(&rich));
        assert_eq!(m, rich);
        assert!(!m.merge(&rich), "merging again changes nothing");
    }

    #[test]
    fn a_sensor_phase_beats_an_inferred_one_in_either_order() {
        let sensor = session(Some(Phase::Discovery), None, false);
        let inferred = session(Some(Phase::Discovery), Some(Phase::Persistence), true);
        for (a, b) in [(&sensor, &inferred), (&inferred, &sensor)] {
            let mut m = a.clone();
            m.merge(b);
            assert_eq!(m, sensor);
            assert_eq!(m.phase_source(), Some(PhaseSource::Sensor));
        }
        let mut none = session(None, None, false);
        assert!(none.merge(&inferred));
        assert_eq!(none.phase_source(), Some(PhaseSource::Inferred));
        assert_eq!(none.last_phase(), Some(Phase::Persistence));
        assert!(!none.merge(&inferred), "merging again changes nothing");
    }

    #[test]
    fn phase_merge_is_commutative_associative_and_idempotent() {
        let phases = [None, Some(Phase::Discovery), Some(Phase::Persistence)];
        let mut all = Vec::new();
        for p in phases {
            for l in phases {
                for inf in [false, true] {
                    let mut s = session(p, None, inf);
                    // Normalised as producers write it: last only when it differs.
                    s.last_phase = l.filter(|l| Some(*l) != p && p.is_some());
                    s.phase_inferred = inf && p.is_some();
                    all.push(s);
                }
            }
        }
        let join = |a: &Session, b: &Session| {
            let mut m = a.clone();
            m.merge(b);
            m
        };
        for a in &all {
            assert_eq!(&join(a, a), a);
            for b in &all {
                assert_eq!(join(a, b), join(b, a), "{a:?} {b:?}");
                for c in &all {
                    assert_eq!(join(&join(a, b), c), join(a, &join(b, c)));
                }
            }
        }
    }
}
