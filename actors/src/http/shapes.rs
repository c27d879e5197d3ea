//! The JSON shapes of `docs/console-api.md` built from a snapshot: a
//! campaign, an identity summary and its details, an observation, the
//! signals of a campaign edge and of an identity edge. Strings are sent as
//! stored (the console displays them as text).

use super::view::View;
use decnet_clusterd::campaign::CampaignPairScore;
use decnet_clusterd::evidence::time::format_timestamp;
use decnet_clusterd::evidence::{Millis, Observation, Sym};
use decnet_clusterd::identity::similarity::PairExplanation;
use decnet_clusterd::store::Store;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// An RFC 3339 UTC time, or `null`.
pub fn ts(ms: Option<Millis>) -> Value {
    ms.map(format_timestamp).map_or(Value::Null, Value::from)
}

/// The member observations of an effective identity.
pub fn identity_members<'a>(store: &'a Store, identity: &str) -> &'a [Sym] {
    store
        .identity_members
        .get(identity)
        .map_or(&[], |m| m.as_slice())
}

fn deckies<'a>(obs: impl Iterator<Item = &'a Observation>) -> Vec<String> {
    let set: BTreeSet<&str> = obs
        .flat_map(|o| o.sessions.values().filter_map(|s| s.decky_id.as_deref()))
        .collect();
    set.into_iter().map(String::from).collect()
}

/// The campaign signal weights and details of one edge, heaviest first.
pub fn campaign_signals(s: &CampaignPairScore) -> Vec<Value> {
    let mut out = Vec::new();
    if s.handoff > 0.0 {
        let d = s.handoff_detail.as_ref();
        out.push(
            json!({"signal": "handoff", "weight": s.handoff, "detail": d.map_or(json!({}),
            |h| json!({"decky": h.decky, "from_phase": h.from_phase, "to_phase": h.to_phase}))}),
        );
    }
    if s.planted > 0.0 {
        let d = s.planted_detail.as_ref();
        out.push(json!({"signal": "planted_key", "weight": s.planted,
            "detail": d.map_or(json!({}), |k| json!({"decky": k.decky, "values": [k.key],
                "planted_by": k.planted_by, "used_by": k.used_by, "gap_ms": k.gap_ms}))}));
    }
    if s.infra > 0.0 {
        out.push(json!({"signal": "infrastructure", "weight": s.infra, "detail": {"values": s.shared_infra}}));
    }
    if s.rhythm > 0.0 {
        out.push(json!({"signal": "rhythm", "weight": s.rhythm, "detail": {"bits": s.hamming}}));
    }
    if s.overlap > 0.0 {
        out.push(json!({"signal": "overlap", "weight": s.overlap, "detail": {}}));
    }
    if s.cohort > 0.0 {
        out.push(
            json!({"signal": "cohort", "weight": s.cohort, "detail": {"values": s.shared_cohort}}),
        );
    }
    out.sort_by(|a, b| {
        b["weight"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&a["weight"].as_f64().unwrap_or(0.0))
    });
    out
}

/// The campaign's edges (the maximum spanning tree that holds it together).
pub fn campaign_edges(snap: &View, identities: &[String]) -> Vec<Value> {
    let Some(first) = identities.first() else {
        return Vec::new();
    };
    let mut edges: Vec<Value> = snap
        .campaigns
        .graph()
        .explain_campaign(first)
        .into_iter()
        .map(|(a, b, s)| {
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            json!({"a": a, "b": b, "weight": s.total, "signals": campaign_signals(&s)})
        })
        .collect();
    edges.sort_by(|x, y| {
        (x["a"].as_str(), x["b"].as_str()).cmp(&(y["a"].as_str(), y["b"].as_str()))
    });
    edges
}

/// A Campaign (with its signal counts over `edges`).
pub fn campaign(snap: &View, uuid: &str, identities: &[String], edges: &[Value]) -> Value {
    let store = snap.store;
    let row = store.campaigns.get(uuid).cloned().unwrap_or_default();
    let obs: Vec<&Observation> = identities
        .iter()
        .flat_map(|i| identity_members(store, i))
        .filter_map(|o| store.observation(o))
        .collect();
    let mut signals = serde_json::Map::new();
    for name in [
        "handoff",
        "infrastructure",
        "rhythm",
        "planted_key",
        "overlap",
        "cohort",
    ] {
        let n = edges
            .iter()
            .filter(|e| {
                e["signals"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| s["signal"] == name)
            })
            .count();
        signals.insert(name.into(), n.into());
    }
    json!({
        "uuid": uuid, "identity_count": identities.len(), "observation_count": obs.len(),
        "confidence": row.confidence, "first_seen_at": ts(row.first_seen_at),
        "last_seen_at": ts(row.last_seen_at), "created_at": ts(Some(row.created_at)),
        "updated_at": ts(Some(row.updated_at)), "deckies": deckies(obs.into_iter()),
        "signals": signals,
    })
}

/// An IdentitySummary.
pub fn identity_summary(v: &View, uuid: &str) -> Value {
    let store = v.store;
    let row = store.identities.get(uuid).cloned().unwrap_or_default();
    let obs: Vec<&Observation> = identity_members(store, uuid)
        .iter()
        .filter_map(|o| store.observation(o))
        .collect();
    let ips: BTreeSet<&str> = obs.iter().filter_map(|o| o.ip()).collect();
    let asns: BTreeSet<u32> = obs.iter().filter_map(|o| o.asn()).collect();
    let fingerprints: BTreeSet<(&str, &str)> = obs
        .iter()
        .flat_map(|o| o.fingerprints.iter().filter(|f| f.is_tooling()))
        .map(|f| (f.kind.as_str(), f.value.as_str()))
        .collect();
    let tooling: BTreeSet<String> = fingerprints
        .iter()
        .map(|(k, val)| format!("{k}:{val}"))
        .collect();
    let labels: BTreeSet<String> = fingerprints
        .iter()
        .map(|(k, val)| {
            v.catalogue
                .library_label(k, val)
                .unwrap_or_else(|| format!("{k}:{val}"))
        })
        .collect();
    json!({
        "uuid": uuid, "observation_count": obs.len(), "confidence": row.confidence,
        "first_seen_at": ts(row.first_seen_at), "last_seen_at": ts(row.last_seen_at),
        "ips": ips.iter().take(10).collect::<Vec<_>>(), "ip_count": ips.len(),
        "asns": asns, "tooling": tooling, "tooling_labels": labels, "campaign_id": store.effective_campaign(uuid),
    })
}

/// The identity details beyond the summary.
pub fn identity_detail(view: &View, uuid: &str) -> Value {
    let store = view.store;
    let mut v = identity_summary(view, uuid);
    let row = store.identities.get(uuid).cloned().unwrap_or_default();
    let obs = identity_members(store, uuid)
        .iter()
        .filter_map(|o| store.observation(o));
    let merged_from: Vec<&Sym> = store
        .identity_groups
        .merged_into
        .iter()
        .filter(|(_, w)| *w == uuid)
        .map(|(l, _)| l)
        .collect();
    let extra = json!({
        "ja3_hashes": row.ja3_hashes, "hassh_hashes": row.hassh_hashes,
        "payload_hashes": row.payload_hashes, "c2_endpoints": row.c2_endpoints,
        "deckies": deckies(obs), "kd_digraph_simhash": row.kd_digraph_simhash,
        "merged_from": merged_from,
    });
    if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
        m.extend(e);
    }
    v
}

/// An observation's list entry.
pub fn observation_summary(store: &Store, o: &Observation) -> Value {
    let identity = store.effective_identity(&o.uuid);
    json!({
        "uuid": o.uuid, "ip": o.ip(), "asn": o.asn(),
        "first_seen": ts(o.first_seen), "last_seen": ts(o.last_seen),
        "campaign_uuid": identity.as_deref().and_then(|i| store.effective_campaign(i)),
        "identity_uuid": identity,
    })
}

/// An observation with its fingerprints and sessions.
pub fn observation_detail(store: &Store, o: &Observation) -> Value {
    let mut v = observation_summary(store, o);
    let mut sessions: Vec<Value> = o
        .sessions
        .values()
        .map(|s| {
            json!({
                "session_id": s.session_id, "decky_id": s.decky_id,
                "started_at": ts(s.started_at), "ended_at": ts(s.ended_at),
                "first_phase": s.phase.map(|p| p.to_string()),
                "last_phase": s.last_phase().map(|p| p.to_string()),
                "phase_source": s.phase_source().map(|p| p.as_str()),
                "commands": s.commands, "credentials": s.credentials,
                "payload_hashes": s.extras.payload_hashes, "c2_endpoints": s.extras.c2_endpoints,
                "auth_key": s.extras.auth_keys.iter().next(), "planted_keys": s.extras.planted_keys,
            })
        })
        .collect();
    sessions.sort_by(|a, b| a["started_at"].as_str().cmp(&b["started_at"].as_str()));
    let fingerprints: Vec<Value> = o
        .fingerprints
        .iter()
        .map(|f| json!({"kind": f.kind, "value": f.value}))
        .collect();
    v["fingerprints"] = fingerprints.into();
    v["sessions"] = sessions.into();
    v
}

/// The identity-level signals of a pair, heaviest first.
pub fn identity_signals(e: &PairExplanation) -> Vec<Value> {
    let mut out = Vec::new();
    if e.high > 0.0 {
        let name = e
            .high_signal
            .as_deref()
            .and_then(|h| h.split(':').next())
            .unwrap_or("high");
        let values: Vec<String> = match name {
            "payload" => e.shared_payloads.clone(),
            "c2" => e.shared_c2.clone(),
            "key" => e
                .shared_keys
                .iter()
                .map(|k| format!("{}:{}", k.kind, k.value))
                .collect(),
            "credential" => e
                .credential_rarity
                .iter()
                .filter(|c| c.rarity > 0.0)
                .map(|c| c.value.clone())
                .collect(),
            kind => e
                .shared_tooling
                .iter()
                .filter(|t| t.kind == kind)
                .map(|t| t.value.clone())
                .collect(),
        };
        out.push(json!({"signal": name, "weight": e.high, "values": values}));
    }
    if e.medium > 0.0 {
        out.push(json!({"signal": "commands", "weight": e.medium, "values": e.shared_commands}));
    }
    if e.low > 0.0 {
        let creds: Vec<String> = e
            .shared_credentials
            .iter()
            .map(|(u, p)| format!("{u}:{p}"))
            .collect();
        out.push(json!({"signal": "credentials", "weight": e.low, "values": creds}));
    }
    if e.asn > 0.0 {
        let asn: Vec<String> = e.same_asn.iter().map(|a| format!("AS{a}")).collect();
        out.push(json!({"signal": "asn", "weight": e.asn, "values": asn}));
    }
    out.sort_by(|a, b| {
        b["weight"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&a["weight"].as_f64().unwrap_or(0.0))
    });
    out
}

/// The verdict and notes of an identity-level pair, in words.
pub fn identity_verdict(e: &PairExplanation) -> (&'static str, Vec<String>) {
    let mut notes = Vec::new();
    for t in &e.shared_tooling {
        if let Some(lib) = &t.library {
            notes.push(format!(
                "{} {} is a known client library ({lib}): tooling, weighed 0",
                t.kind, t.value
            ));
        } else if t.rarity < 1.0 {
            notes.push(format!(
                "{} {} is shared by {} observations: weighed {:.2}",
                t.kind, t.value, t.carriers, t.weight
            ));
        }
    }
    if e.vetoed {
        notes.push("their tooling disagrees: the pair is vetoed".into());
    }
    let verdict = match e.decision.as_deref() {
        Some("separate") => "separated by an operator",
        Some("link") => "linked by an operator",
        _ if e.vetoed => "vetoed",
        _ if e.edge => "linked",
        _ => "below threshold",
    };
    if let Some(d) = &e.decision {
        notes.push(format!("operator decision: {d}"));
    }
    (verdict, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use decnet_clusterd::harness::quality::{run, QualityConfig};
    use decnet_clusterd::scenario::builtin;

    #[test]
    fn a_planted_key_edge_names_its_signal_key_and_decky() {
        let g = builtin("planted_key_handoff").unwrap().generate();
        let out = run(&g, &QualityConfig::default()).unwrap();
        let graph = out.campaigns.graph();
        let ids: Vec<&String> = out.store.identities.keys().collect();
        let mut found = None;
        for a in &ids {
            for b in &ids {
                if let Some(s) = graph.explain(a, b).filter(|s| s.planted > 0.0) {
                    found = Some(s);
                }
            }
        }
        let s = found.expect("the scenario has a planted-key edge");
        let signals = campaign_signals(&s);
        let planted = signals
            .iter()
            .find(|v| v["signal"] == "planted_key")
            .unwrap_or_else(|| panic!("no planted_key signal in {signals:?}"));
        let d = s.planted_detail.as_ref().unwrap();
        assert_eq!(planted["weight"], s.planted);
        assert_eq!(planted["detail"]["decky"], d.decky.as_str());
        assert_eq!(planted["detail"]["values"][0], d.key.as_str());
    }
}
