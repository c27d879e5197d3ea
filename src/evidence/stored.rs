//! How an observation's evidence is stored (the internal `evidence` field of
//! its hash, SPEC §3), both ways. The daemon writes the compact form; the
//! read takes both it and the form every earlier version wrote.
//!
//! - **Compact (version 2)**: `~2` then a JSON object with one- and
//!   two-letter keys, nothing written that holds its default (no empty
//!   sets, no `null`s, no `false`), sessions as an array (an earlier form
//!   wrote each session's id twice, as its map key and inside it), stamped
//!   values as `[at, value]` pairs, and every timestamp but `first_seen`
//!   written relative to `first_seen` (when there is one), so most take a
//!   few digits instead of thirteen. About a third of the size of the
//!   earlier form on the benchmark corpus, and the hash holding it about
//!   half of its Redis memory.
//! - **Earlier (version 1)**: the serde form of [`Observation`], a JSON
//!   object (it starts with `{`). Stores written before the compact form
//!   hold it; it loads as before (`tests/store_v1.rs` holds one such store).
//!
//! Relative times use wrapping arithmetic, so any `i64` a hostile source
//! managed to store reads back exactly as it was.

use super::{
    Extras, Fingerprint, Millis, Observation, Session, SessionExtras, Sessions, Stamped, Sym,
};
use crate::phase::Phase;
use crate::set::SortedSet;
use serde::{Deserialize, Serialize};

/// What a compact evidence field starts with. JSON never starts with `~`,
/// so this tells the forms apart without parsing.
pub const COMPACT_TAG: &[u8] = b"~2";

/// Why a stored evidence field cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StoredEvidenceError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("neither a JSON object nor compact evidence (`~2…`)")]
    Unknown,
}

/// The compact evidence of `o`.
pub fn encode(o: &Observation) -> String {
    let base = o.first_seen.unwrap_or(0);
    let rel = |t: Millis| t.wrapping_sub(base);
    let sessions: Vec<SessionOut<'_>> = o
        .sessions
        .values()
        .map(|s| SessionOut {
            id: &s.session_id,
            decky: s.decky_id.as_deref(),
            started: s.started_at.map(rel),
            ended: s.ended_at.map(rel),
            phase: s.phase,
            last_phase: s.last_phase,
            inferred: s.phase_inferred,
            commands: &s.commands,
            credentials: &s.credentials,
            payloads: &s.extras.payload_hashes,
            c2: &s.extras.c2_endpoints,
            simhash: s.kd_digraph_simhash,
            auth_keys: &s.extras.auth_keys,
            planted_keys: &s.extras.planted_keys,
        })
        .collect();
    let out = ObservationOut {
        uuid: &o.uuid,
        ip: o.ip.as_ref().map(|s| (rel(s.at), s.value.as_str())),
        asn: o.asn.as_ref().map(|s| (rel(s.at), s.value)),
        first_seen: o.first_seen,
        last_seen: o.last_seen.map(rel),
        fingerprints: o
            .fingerprints
            .iter()
            .map(|f| (f.kind.as_str(), f.value.as_str()))
            .collect(),
        sessions,
    };
    let mut s = String::with_capacity(256);
    s.push_str("~2");
    // Serializing these borrowed structs into a String cannot fail: every
    // key is a string and every value plain data.
    s.push_str(&serde_json::to_string(&out).unwrap_or_default());
    s
}

/// A stored evidence field read back, in either form.
pub fn decode(raw: &[u8]) -> Result<Observation, StoredEvidenceError> {
    if let Some(compact) = raw.strip_prefix(COMPACT_TAG) {
        let c: ObservationIn = serde_json::from_slice(compact)?;
        return Ok(c.into_observation());
    }
    if raw.first() == Some(&b'{') {
        return Ok(serde_json::from_slice(raw)?);
    }
    Err(StoredEvidenceError::Unknown)
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct ObservationOut<'a> {
    #[serde(rename = "u")]
    uuid: &'a str,
    #[serde(rename = "i", skip_serializing_if = "Option::is_none")]
    ip: Option<(Millis, &'a str)>,
    #[serde(rename = "a", skip_serializing_if = "Option::is_none")]
    asn: Option<(Millis, u32)>,
    #[serde(rename = "f", skip_serializing_if = "Option::is_none")]
    first_seen: Option<Millis>,
    #[serde(rename = "l", skip_serializing_if = "Option::is_none")]
    last_seen: Option<Millis>,
    #[serde(rename = "p", skip_serializing_if = "Vec::is_empty")]
    fingerprints: Vec<(&'a str, &'a str)>,
    #[serde(rename = "s", skip_serializing_if = "Vec::is_empty")]
    sessions: Vec<SessionOut<'a>>,
}

#[derive(Serialize)]
struct SessionOut<'a> {
    #[serde(rename = "i")]
    id: &'a str,
    #[serde(rename = "d", skip_serializing_if = "Option::is_none")]
    decky: Option<&'a str>,
    #[serde(rename = "b", skip_serializing_if = "Option::is_none")]
    started: Option<Millis>,
    #[serde(rename = "e", skip_serializing_if = "Option::is_none")]
    ended: Option<Millis>,
    #[serde(rename = "p", skip_serializing_if = "Option::is_none")]
    phase: Option<Phase>,
    #[serde(rename = "q", skip_serializing_if = "Option::is_none")]
    last_phase: Option<Phase>,
    #[serde(rename = "n", skip_serializing_if = "is_false")]
    inferred: bool,
    #[serde(rename = "c", skip_serializing_if = "SortedSet::is_empty")]
    commands: &'a SortedSet<Sym>,
    #[serde(rename = "r", skip_serializing_if = "SortedSet::is_empty")]
    credentials: &'a SortedSet<(Sym, Sym)>,
    #[serde(rename = "h", skip_serializing_if = "SortedSet::is_empty")]
    payloads: &'a SortedSet<Sym>,
    #[serde(rename = "x", skip_serializing_if = "SortedSet::is_empty")]
    c2: &'a SortedSet<Sym>,
    #[serde(rename = "k", skip_serializing_if = "Option::is_none")]
    simhash: Option<u64>,
    #[serde(rename = "ak", skip_serializing_if = "SortedSet::is_empty")]
    auth_keys: &'a SortedSet<Sym>,
    #[serde(rename = "pk", skip_serializing_if = "SortedSet::is_empty")]
    planted_keys: &'a SortedSet<Sym>,
}

#[derive(Deserialize)]
struct ObservationIn {
    #[serde(rename = "u")]
    uuid: String,
    #[serde(rename = "i", default)]
    ip: Option<(Millis, String)>,
    #[serde(rename = "a", default)]
    asn: Option<(Millis, u32)>,
    #[serde(rename = "f", default)]
    first_seen: Option<Millis>,
    #[serde(rename = "l", default)]
    last_seen: Option<Millis>,
    #[serde(rename = "p", default)]
    fingerprints: Vec<(Sym, Sym)>,
    #[serde(rename = "s", default)]
    sessions: Vec<SessionIn>,
}

#[derive(Deserialize)]
struct SessionIn {
    #[serde(rename = "i")]
    id: Box<str>,
    #[serde(rename = "d", default)]
    decky: Option<Sym>,
    #[serde(rename = "b", default)]
    started: Option<Millis>,
    #[serde(rename = "e", default)]
    ended: Option<Millis>,
    #[serde(rename = "p", default)]
    phase: Option<Phase>,
    #[serde(rename = "q", default)]
    last_phase: Option<Phase>,
    #[serde(rename = "n", default)]
    inferred: bool,
    #[serde(rename = "c", default)]
    commands: SortedSet<Sym>,
    #[serde(rename = "r", default)]
    credentials: SortedSet<(Sym, Sym)>,
    #[serde(rename = "h", default)]
    payloads: SortedSet<Sym>,
    #[serde(rename = "x", default)]
    c2: SortedSet<Sym>,
    #[serde(rename = "k", default)]
    simhash: Option<u64>,
    #[serde(rename = "ak", default)]
    auth_keys: SortedSet<Sym>,
    #[serde(rename = "pk", default)]
    planted_keys: SortedSet<Sym>,
}

impl ObservationIn {
    fn into_observation(self) -> Observation {
        let base = self.first_seen.unwrap_or(0);
        let abs = |t: Millis| t.wrapping_add(base);
        let mut sessions = Sessions::default();
        for s in self.sessions {
            // Two entries of one id (not written by this code) are joined,
            // as the earlier form's reader joins them.
            sessions.join(Session {
                session_id: s.id,
                decky_id: s.decky,
                started_at: s.started.map(abs),
                ended_at: s.ended.map(abs),
                phase: s.phase,
                last_phase: s.last_phase,
                phase_inferred: s.inferred,
                commands: s.commands,
                credentials: s.credentials,
                kd_digraph_simhash: s.simhash,
                extras: Extras::new(SessionExtras {
                    payload_hashes: s.payloads,
                    c2_endpoints: s.c2,
                    auth_keys: s.auth_keys,
                    planted_keys: s.planted_keys,
                }),
            });
        }
        Observation {
            uuid: Sym::unique(&self.uuid),
            ip: self.ip.map(|(at, value)| Stamped {
                at: abs(at),
                value: Sym::unique(&value),
            }),
            asn: self.asn.map(|(at, value)| Stamped { at: abs(at), value }),
            first_seen: self.first_seen,
            last_seen: self.last_seen.map(abs),
            fingerprints: self
                .fingerprints
                .into_iter()
                .map(|(kind, value)| Fingerprint { kind, value })
                .collect(),
            sessions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rich() -> Observation {
        let mut o = Observation::new("obs-\"1\"");
        o.ip = Some(Stamped {
            at: 1_771_734_415_999,
            value: "2001:db8::7".into(),
        });
        o.asn = Some(Stamped {
            at: i64::MIN,
            value: u32::MAX,
        });
        o.first_seen = Some(i64::MAX);
        o.last_seen = Some(i64::MIN);
        o.fingerprints = SortedSet::from([
            Fingerprint {
                kind: "ja3".into(),
                value: "x\"y\\z\u{e9}".into(),
            },
            Fingerprint {
                kind: "hassh".into(),
                value: Sym::default(),
            },
        ]);
        o.sessions.join(Session {
            session_id: "s1".into(),
            decky_id: Some("decky-1".into()),
            started_at: Some(0),
            ended_at: Some(-5),
            phase: Some(Phase::Discovery),
            last_phase: Some(Phase::Persistence),
            phase_inferred: true,
            commands: SortedSet::from(["uname -a\n".into()]),
            credentials: SortedSet::from([("root".into(), Sym::default())]),
            kd_digraph_simhash: Some(u64::MAX),
            extras: SessionExtras {
                payload_hashes: SortedSet::from(["p".into()]),
                c2_endpoints: SortedSet::from(["c2:443".into()]),
                auth_keys: SortedSet::from(["SHA256:a".into()]),
                planted_keys: SortedSet::from(["SHA256:b".into()]),
            }
            .into(),
        });
        o.sessions.join(Session {
            session_id: "s0".into(),
            ..Default::default()
        });
        o
    }

    #[test]
    fn both_forms_read_back_as_written() {
        for o in [rich(), Observation::new("bare"), Observation::default()] {
            let compact = encode(&o);
            assert!(compact.as_bytes().starts_with(COMPACT_TAG));
            assert_eq!(decode(compact.as_bytes()).unwrap(), o);
            let earlier = serde_json::to_string(&o).unwrap();
            assert_eq!(decode(earlier.as_bytes()).unwrap(), o);
        }
    }

    #[test]
    fn the_compact_form_leaves_defaults_out() {
        assert_eq!(encode(&Observation::new("u")), r#"~2{"u":"u"}"#);
        let mut o = Observation::new("u");
        o.first_seen = Some(1_000_000);
        o.last_seen = Some(1_000_120);
        o.sessions.join(Session {
            session_id: "s".into(),
            started_at: Some(1_000_000),
            ..Default::default()
        });
        assert_eq!(
            encode(&o),
            r#"~2{"u":"u","f":1000000,"l":120,"s":[{"i":"s","b":0}]}"#
        );
    }

    #[test]
    fn what_is_neither_form_is_refused_with_a_reason() {
        for bad in [
            &b""[..],
            b"[]",
            b"~1{}",
            b"~2",
            b"~2{}",
            b"~2{\"u\":7}",
            b"~2{\"u\":\"x\",\"i\":[1]}",
            b"~2{\"u\":\"x\",\"s\":[{\"i\":\"s\",\"p\":\"no-such-phase\"}]}",
            b"\xff\xfe",
        ] {
            let e = decode(bad).unwrap_err().to_string();
            assert!(!e.is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn duplicate_sessions_in_the_compact_form_are_joined() {
        let raw = br#"~2{"u":"x","s":[{"i":"s","c":["a"]},{"i":"s","c":["b"]}]}"#;
        let o = decode(raw).unwrap();
        assert_eq!(o.sessions.len(), 1);
        assert_eq!(o.sessions.get("s").unwrap().commands.len(), 2);
    }
}
