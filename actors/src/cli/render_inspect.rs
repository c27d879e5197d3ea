//! How `clusterd inspect` prints a row for a person: an observation with
//! its times, fingerprints and each session's credentials, commands,
//! payloads and C2; an identity with its roll-ups (tooling, payloads, C2,
//! ASNs, first and last seen), members and edges; a campaign with its
//! identities and each edge's signals; and the merge history as lines.
//! Attacker strings are escaped and cut with an ellipsis.

use super::render::{campaign_signal, clean, handoff_sources_of};
use super::text::{count, iso, iso_str, table, Align};
use super::watch::describe;
use decnet_clusterd::campaign::CampaignPairScore;
use decnet_clusterd::evidence::Observation;
use decnet_clusterd::store::Store;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write;

fn s(v: &Value) -> String {
    clean(v.as_str().unwrap_or("-"), 80)
}

/// Escaped values joined, or `none`.
fn join<'a, S: AsRef<str> + 'a>(values: impl IntoIterator<Item = &'a S>, width: usize) -> String {
    let v: Vec<String> = values
        .into_iter()
        .map(|x| clean(x.as_ref(), width))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn history(out: &mut String, v: &Value) {
    let events = v["history"].as_array().map_or(&[][..], Vec::as_slice);
    if events.is_empty() {
        return;
    }
    let _ = writeln!(out, "  history (as far as the streams retain it):");
    for h in events {
        let topic = h["topic"].as_str().unwrap_or("");
        let _ = writeln!(
            out,
            "    {}  {}",
            iso_str(h["ts"].as_str().unwrap_or("")),
            describe(topic, &h["payload"])
        );
    }
}

fn observation(out: &mut String, v: &Value, o: &Observation) {
    let _ = writeln!(out, "observation {}", clean(&o.uuid, 80));
    let _ = writeln!(
        out,
        "  ip {}, {}",
        clean(o.ip().unwrap_or("-"), 40),
        o.asn().map_or("no ASN".into(), |a| format!("AS{a}"))
    );
    let _ = writeln!(out, "  seen {} … {}", iso(o.first_seen), iso(o.last_seen));
    let _ = writeln!(
        out,
        "  identity {}{}, campaign {}",
        s(&v["effective_identity"]),
        match (v["identity_id"].as_str(), v["effective_identity"].as_str()) {
            (Some(d), Some(e)) if d != e => format!(" (joined {}, merged since)", clean(d, 40)),
            _ => String::new(),
        },
        s(&v["effective_campaign"])
    );
    for f in o.fingerprints.iter() {
        let _ = writeln!(
            out,
            "  fingerprint {}: {}",
            clean(&f.kind, 20),
            clean(&f.value, 100)
        );
    }
    let _ = writeln!(
        out,
        "  {}:",
        count(o.sessions.len() as u64, "session", "sessions")
    );
    for sess in o.sessions.values() {
        let phase = match (sess.phase, sess.last_phase) {
            (Some(p), Some(l)) if l != p => format!("{p} → {l}"),
            (Some(p), _) => p.to_string(),
            (None, _) => "unknown".into(),
        };
        let source = if sess.phase.is_none() {
            ""
        } else if sess.phase_inferred {
            " (inferred)"
        } else {
            " (sensor)"
        };
        let _ = writeln!(
            out,
            "    {} on {}, {} → {}, phase {phase}{source}",
            clean(&sess.session_id, 40),
            clean(sess.decky_id.as_deref().unwrap_or("-"), 40),
            iso(sess.started_at),
            iso(sess.ended_at)
        );
        let creds: Vec<String> = sess
            .credentials
            .iter()
            .map(|(u, p)| format!("{}/{}", clean(u, 32), clean(p, 32)))
            .collect();
        let lines = [
            (
                "credentials",
                if creds.is_empty() {
                    "none".into()
                } else {
                    creds.join(", ")
                },
            ),
            ("commands", join(sess.commands.iter(), 80)),
            ("payloads", join(sess.extras.payload_hashes.iter(), 64)),
            ("C2", join(sess.extras.c2_endpoints.iter(), 64)),
            ("auth keys", join(sess.extras.auth_keys.iter(), 64)),
            ("planted keys", join(sess.extras.planted_keys.iter(), 64)),
        ];
        for (name, value) in lines {
            if value != "none" || matches!(name, "credentials" | "commands") {
                let _ = writeln!(out, "      {name}: {value}");
            }
        }
    }
    for d in v["decisions"].as_array().into_iter().flatten() {
        let pair: Vec<String> = d["pair"].as_array().into_iter().flatten().map(s).collect();
        let _ = writeln!(
            out,
            "  operator decision: {} {} (by {} at {})",
            s(&d["kind"]),
            pair.join(" + "),
            s(&d["requested_by"]),
            d["at"].as_i64().map_or("-".into(), |t| iso(Some(t)))
        );
    }
}

fn identity(out: &mut String, v: &Value, store: &Store) {
    let root = v["effective_identity"].as_str().unwrap_or("");
    let _ = writeln!(
        out,
        "identity {}{}",
        clean(root, 80),
        if v["followed_merges"] == true {
            format!(" (asked for {}, merged into it)", s(&v["asked"]))
        } else {
            String::new()
        }
    );
    let Some(row) = store.identities.get(root) else {
        return;
    };
    let members: Vec<&Observation> = v["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["uuid"].as_str().and_then(|u| store.observation(u)))
        .collect();
    let _ = writeln!(
        out,
        "  {}, confidence {:.2}, campaign {}",
        count(members.len() as u64, "observation", "observations"),
        row.confidence,
        s(&v["campaign"])
    );
    let _ = writeln!(
        out,
        "  first seen {}, last seen {}",
        iso(row.first_seen_at),
        iso(row.last_seen_at)
    );
    let asns: BTreeSet<String> = members
        .iter()
        .filter_map(|o| o.asn())
        .map(|a| format!("AS{a}"))
        .collect();
    let tooling: Vec<String> = row
        .ja3_hashes
        .iter()
        .map(|t| format!("ja3 {}", clean(t, 40)))
        .chain(
            row.hassh_hashes
                .iter()
                .map(|t| format!("hassh {}", clean(t, 40))),
        )
        .collect();
    let _ = writeln!(
        out,
        "  tooling: {}",
        if tooling.is_empty() {
            "none".into()
        } else {
            tooling.join(", ")
        }
    );
    let _ = writeln!(out, "  payloads: {}", join(row.payload_hashes.iter(), 64));
    let _ = writeln!(out, "  C2: {}", join(row.c2_endpoints.iter(), 64));
    let _ = writeln!(out, "  ASNs: {}", join(asns.iter(), 12));
    let merged: Vec<String> = v["merged_in"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    if !merged.is_empty() {
        let _ = writeln!(out, "  merged in: {}", merged.join(", "));
    }
    let _ = writeln!(out, "  members:");
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|o| {
            vec![
                format!("    {}", clean(&o.uuid, 64)),
                clean(o.ip().unwrap_or("-"), 40),
                o.asn().map_or("-".into(), |a| format!("AS{a}")),
                o.sessions.len().to_string(),
                iso(o.last_seen.or(o.first_seen)),
            ]
        })
        .collect();
    let (l, r) = (Align::Left, Align::Right);
    out.push_str(&table(
        &[
            ("    observation", l),
            ("ip", l),
            ("asn", l),
            ("sessions", r),
            ("last seen", l),
        ],
        &rows,
    ));
    let edges = v["edges"].as_array().map_or(&[][..], Vec::as_slice);
    if !edges.is_empty() {
        let _ = writeln!(
            out,
            "  what ties them ({}):",
            count(edges.len() as u64, "edge", "edges")
        );
    }
    for e in edges {
        let x = &e["explanation"];
        let _ = writeln!(
            out,
            "    {} — {}: weight {:.2}, {}",
            s(&x["a"]),
            s(&x["b"]),
            e["weight"].as_f64().unwrap_or(0.0),
            x["high_signal"]
                .as_str()
                .map_or("operator link or weaker evidence".into(), |h| clean(h, 80))
        );
    }
    history(out, v);
}

fn campaign(out: &mut String, v: &Value, store: &Store) {
    let ids: Vec<&str> = v["identities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let sizes: Vec<u64> = ids
        .iter()
        .map(|i| store.identities.get(*i).map_or(0, |r| r.observation_count))
        .collect();
    let r = &v["row"];
    let _ = writeln!(
        out,
        "campaign {} — {}, {}, confidence {:.2}",
        s(&v["effective_campaign"]),
        count(ids.len() as u64, "identity", "identities"),
        count(sizes.iter().sum(), "observation", "observations"),
        r["confidence"].as_f64().unwrap_or(0.0)
    );
    let _ = writeln!(
        out,
        "  first seen {}, last seen {}",
        iso(r["first_seen_at"].as_i64()),
        iso(r["last_seen_at"].as_i64())
    );
    for (i, n) in ids.iter().zip(&sizes) {
        let _ = writeln!(
            out,
            "  identity {}  {}",
            clean(i, 64),
            count(*n, "observation", "observations")
        );
    }
    let edges = v["edges"].as_array().map_or(&[][..], Vec::as_slice);
    if !edges.is_empty() {
        let _ = writeln!(
            out,
            "  what ties them ({}):",
            count(edges.len() as u64, "edge", "edges")
        );
    }
    for e in edges {
        let signals = serde_json::from_value::<CampaignPairScore>(e["evidence"].clone())
            .map(|sc| campaign_signal(&sc, handoff_sources_of(&e["evidence"])))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    {} — {} (weight {:.2}): {}",
            s(&e["a"]),
            s(&e["b"]),
            e["evidence"]["total"].as_f64().unwrap_or(0.0),
            if signals.is_empty() {
                "no signal recorded".into()
            } else {
                signals
            }
        );
    }
    history(out, v);
}

/// A readable rendering of `inspect` output (`v` as `snapshot::inspect`
/// makes it; `store` for the evidence behind it).
pub fn inspection(kind: &str, v: &Value, store: &Store) -> String {
    let mut out = String::new();
    match kind {
        "observation" => {
            if let Some(o) = v["observation"]["uuid"]
                .as_str()
                .and_then(|u| store.observations.get(u))
            {
                observation(&mut out, v, o);
            }
        }
        "identity" => identity(&mut out, v, store),
        _ => campaign(&mut out, v, store),
    }
    out
}

/// Adds `phase_source` (SPEC §4: `sensor`, `inferred`, or null without a
/// phase) next to `phase_inferred` in every session of an inspected
/// observation's JSON.
pub fn with_phase_sources(v: &mut Value) {
    let sessions = match v.pointer_mut("/observation/sessions") {
        Some(Value::Object(m)) => m.values_mut().collect::<Vec<_>>(),
        Some(Value::Array(a)) => a.iter_mut().collect(),
        _ => return,
    };
    for s in sessions {
        if let Value::Object(m) = s {
            let source = match (m.get("phase"), m.get("phase_inferred")) {
                (None | Some(Value::Null), _) => Value::Null,
                (_, Some(Value::Bool(true))) => Value::from("inferred"),
                _ => Value::from("sensor"),
            };
            m.insert("phase_source".into(), source);
        }
    }
}
