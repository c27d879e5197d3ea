//! The evidence model: what one observation (one attacker source IP seen by
//! the fleet) has accumulated. Input events (SPEC §4) are parsed in
//! [`event`] into *partial* observations, and every partial observation is
//! folded into the stored one with [`Observation::merge`]. Beside the
//! parser: [`time`] (the timestamp codec, both ways) and [`publish`] (an
//! observation written back out as an input payload).
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
pub mod time;

use crate::phase::Phase;
use crate::set::SortedSet;
use serde::{Deserialize, Serialize};
pub use sessions::Sessions;

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
    pub kind: String,
    pub value: String,
}

impl Fingerprint {
    /// Whether this fingerprint describes client tooling (ja3/ja4/hassh).
    pub fn is_tooling(&self) -> bool {
        TOOLING_KINDS.contains(&self.kind.as_str())
    }
}

/// One interactive session on one decky, keyed by `session_id` within its
/// observation. Reports of the same session are merged field by field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub session_id: String,
    pub decky_id: Option<String>,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    /// UKC phase, from `phase` or mapped from the ATT&CK `tactic`.
    pub phase: Option<Phase>,
    /// Commands typed, as a set (clustering compares sets; order is not
    /// evidence that survives partial, reordered reports).
    pub commands: SortedSet<String>,
    /// Credential pairs tried, `(username, password)`.
    pub credentials: SortedSet<(String, String)>,
    pub payload_hashes: SortedSet<String>,
    pub c2_endpoints: SortedSet<String>,
    /// 64-bit keystroke digraph SimHash.
    pub kd_digraph_simhash: Option<u64>,
}

/// Everything known about one observation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub uuid: String,
    pub ip: Option<Stamped<String>>,
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
        c |= join_max(&mut self.phase, &other.phase);
        c |= join_max(&mut self.kd_digraph_simhash, &other.kd_digraph_simhash);
        c |= self.commands.union_with(&other.commands);
        c |= self.credentials.union_with(&other.credentials);
        c |= self.payload_hashes.union_with(&other.payload_hashes);
        c |= self.c2_endpoints.union_with(&other.c2_endpoints);
        c
    }
}

impl Observation {
    /// An observation that knows nothing but its uuid.
    pub fn new(uuid: impl Into<String>) -> Self {
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
