//! The outbound side of the input format: the `attacker.observed` payload
//! that carries all of an observation's evidence (the inverse of parsing,
//! for publishers, the end-to-end benchmark and tests). Its timestamps are
//! written by the codec in [`super::time`].

use super::time::format_timestamp;
use super::Observation;
use serde_json::{Map, Value};

/// The `attacker.observed` payload that carries all of an observation's
/// evidence (the inverse of parsing, for publishers and benchmarks).
pub fn observed_payload(o: &Observation) -> Value {
    let mut p = Map::new();
    p.insert("uuid".into(), Value::from(o.uuid.as_str()));
    if let Some(ip) = o.ip() {
        p.insert("ip".into(), Value::from(ip));
    }
    if let Some(asn) = o.asn() {
        p.insert("asn".into(), Value::from(asn));
    }
    if let Some(t) = o.first_seen {
        p.insert("first_seen".into(), Value::from(format_timestamp(t)));
    }
    if let Some(t) = o.last_seen {
        p.insert("last_seen".into(), Value::from(format_timestamp(t)));
    }
    let fps: Vec<Value> = o
        .fingerprints
        .iter()
        .map(|f| serde_json::json!({"kind": f.kind, "value": f.value}))
        .collect();
    p.insert("fingerprints".into(), Value::from(fps));
    let mut sessions = Vec::new();
    for s in o.sessions.values() {
        // One report per payload/C2/auth-key value keeps the wire's
        // singular fields.
        let n = s
            .extras
            .payload_hashes
            .len()
            .max(s.extras.c2_endpoints.len())
            .max(s.extras.auth_keys.len())
            .max(1);
        let (payloads, c2s): (Vec<_>, Vec<_>) = (
            s.extras.payload_hashes.iter().collect(),
            s.extras.c2_endpoints.iter().collect(),
        );
        for i in 0..n {
            let mut v = Map::new();
            v.insert("session_id".into(), Value::from(&*s.session_id));
            if let Some(d) = &s.decky_id {
                v.insert("decky_id".into(), Value::from(d.as_str()));
            }
            if let Some(t) = s.started_at {
                v.insert("started_at".into(), Value::from(format_timestamp(t)));
            }
            if let Some(t) = s.ended_at {
                v.insert("ended_at".into(), Value::from(format_timestamp(t)));
            }
            // Only a sensor's phase is sent: an inferred one is the
            // daemon's own reading of the commands and is inferred again.
            if let (Some(ph), false) = (s.phase, s.phase_inferred) {
                v.insert("phase".into(), Value::from(ph.name()));
            }
            if i == 0 && !s.extras.planted_keys.is_empty() {
                v.insert(
                    "planted_keys".into(),
                    serde_json::json!(s.extras.planted_keys),
                );
            }
            if let Some(k) = s.extras.auth_keys.iter().nth(i) {
                v.insert("auth_key".into(), Value::from(k.as_str()));
            }
            v.insert("commands".into(), serde_json::json!(s.commands));
            v.insert("credentials".into(), serde_json::json!(s.credentials));
            if let Some(p) = payloads.get(i) {
                v.insert("payload_hash".into(), Value::from(p.as_str()));
            }
            if let Some(c) = c2s.get(i) {
                v.insert("c2_callback".into(), Value::from(c.as_str()));
            }
            if let Some(h) = s.kd_digraph_simhash {
                v.insert(
                    "kd_digraph_simhash".into(),
                    Value::from(format!("{h:016x}")),
                );
            }
            sessions.push(Value::Object(v));
        }
    }
    p.insert("sessions".into(), Value::from(sessions));
    Value::Object(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::event::{parse_entry, Limits};
    use crate::evidence::Stamped;

    #[test]
    fn observed_payload_round_trips() {
        let (corpus, _) = crate::scenario::corpus::large_corpus(300, 5);
        for o in corpus {
            let fields = [
                ("topic", "attacker.observed".to_string()),
                ("payload", observed_payload(&o).to_string()),
            ];
            let mut back = parse_entry(&fields, &Limits::default())
                .unwrap()
                .observation;
            // ip/asn stamps come from last_seen on the wire.
            back.ip = back.ip.map(|s| Stamped {
                at: o.ip.as_ref().map_or(0, |x| x.at),
                ..s
            });
            back.asn = back.asn.map(|s| Stamped {
                at: o.asn.as_ref().map_or(0, |x| x.at),
                ..s
            });
            assert_eq!(back, o);
        }
    }
}
