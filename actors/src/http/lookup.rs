//! Finding rows: `/api/observations?ip=&asn=&fingerprint=&decky=`,
//! `/api/observations/{uuid}`, `/api/search?q=` (IP, uuid or prefix,
//! fingerprint or other evidence value, ASN) and `/api/explain?a=&b=` (two
//! observations: identity level; two identities: campaign level).

use super::api::param;
use super::members;
use super::shapes::{self, identity_members};
use super::view::with_view;
use super::{error, State};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use decnet_clusterd::evidence::Observation;
use decnet_clusterd::reconcile::effective_root;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Largest answer of `/api/observations`.
pub const MAX_OBSERVATIONS: usize = 1000;
/// Most matches of `/api/search`.
pub const MAX_MATCHES: usize = 50;

fn parse_asn(s: &str) -> Option<u32> {
    let t = s.trim();
    let t = t
        .strip_prefix("AS")
        .or_else(|| t.strip_prefix("as"))
        .unwrap_or(t);
    t.parse().ok()
}

/// Whether `o` carries `value` as a fingerprint or session evidence value.
fn carries(o: &Observation, value: &str) -> bool {
    o.fingerprints.iter().any(|f| f.value == value)
        || o.sessions.values().any(|s| {
            s.extras.payload_hashes.contains(value)
                || s.extras.c2_endpoints.contains(value)
                || s.extras.auth_keys.contains(value)
                || s.extras.planted_keys.contains(value)
        })
}

fn by_recency(mut obs: Vec<&Observation>) -> Vec<&Observation> {
    obs.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.uuid.cmp(&b.uuid)));
    obs
}

/// `GET /api/observations?ip=&asn=&fingerprint=&decky=&limit=`.
pub async fn observations(
    state: web::Data<State>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let limit = match param(&q, "limit", 100) {
        Ok(l) if (1..=MAX_OBSERVATIONS).contains(&l) => l,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("limit must be between 1 and {MAX_OBSERVATIONS}"),
            )
        }
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let get = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let (ip, fp, decky) = (get("ip"), get("fingerprint"), get("decky"));
    let asn = match get("asn").map(|a| parse_asn(&a)) {
        Some(None) => return error(StatusCode::BAD_REQUEST, "asn must be an integer"),
        Some(Some(a)) => Some(a),
        None => None,
    };
    if ip.is_none() && asn.is_none() && fp.is_none() && decky.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "give at least one of ip, asn, fingerprint, decky",
        );
    }
    with_view(&state, |snap| {
        let store = snap.store;
        let hits: Vec<&Observation> = store
            .observations
            .values()
            .map(|o| &**o)
            .filter(|o| ip.as_deref().is_none_or(|ip| o.ip() == Some(ip)))
            .filter(|o| asn.is_none_or(|a| o.asn() == Some(a)))
            .filter(|o| {
                fp.as_deref()
                    .is_none_or(|v| o.fingerprints.iter().any(|f| f.value == v))
            })
            .filter(|o| {
                decky.as_deref().is_none_or(|d| {
                    o.sessions
                        .values()
                        .any(|s| s.decky_id.as_deref() == Some(d))
                })
            })
            .collect();
        let items: Vec<Value> = by_recency(hits)
            .into_iter()
            .take(limit)
            .map(|o| shapes::observation_summary(store, o))
            .collect();
        HttpResponse::Ok().json(json!({"items": items}))
    })
    .await
}

/// `GET /api/observations/{uuid}`.
pub async fn observation(state: web::Data<State>, uuid: web::Path<String>) -> HttpResponse {
    with_view(&state, |snap| {
        match snap.store.observations.get(uuid.as_str()) {
            Some(o) => HttpResponse::Ok()
                .json(json!({"observation": shapes::observation_detail(snap.store, o)})),
            None => error(
                StatusCode::NOT_FOUND,
                format!("no observation {}", uuid.as_str()),
            ),
        }
    })
    .await
}

fn obs_label(o: &Observation) -> String {
    let mut parts = Vec::new();
    if let Some(ip) = o.ip() {
        parts.push(ip.to_string());
    }
    if let Some(a) = o.asn() {
        parts.push(format!("AS{a}"));
    }
    if let Some(t) = o.last_seen {
        parts.push(format!(
            "last seen {}",
            decnet_clusterd::evidence::time::format_timestamp(t)
        ));
    }
    parts.join(" · ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `GET /api/search?q=`.
pub async fn search(
    state: web::Data<State>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let query = q.get("q").map(|s| s.trim().to_string()).unwrap_or_default();
    if query.is_empty() {
        return error(StatusCode::BAD_REQUEST, "q must not be empty");
    }
    let lower = query.to_lowercase();
    // The campaign index only for a query that can name one by prefix.
    let index = if lower.len() >= 4 {
        match state.members.get(&state).await {
            Ok(i) => Some(i),
            Err(answer) => return answer,
        }
    } else {
        None
    };
    with_view(&state, |snap| {
        let store = snap.store;
        let mut matches = Vec::new();
        if let Some(members) = &index {
            for c in store.campaigns.keys().filter(|c| c.to_lowercase().starts_with(&lower)) {
                let root = effective_root(&store.campaign_groups, c);
                let n = members::current_members(store, &root, members.of(&root)).len();
                matches.push(json!({"kind": "campaign", "uuid": c, "label": plural(n, "identity", "identities")}));
            }
            for i in store.identities.keys().filter(|i| i.to_lowercase().starts_with(&lower)) {
                let n = identity_members(store, &effective_root(&store.identity_groups, i)).len();
                matches.push(json!({"kind": "identity", "uuid": i, "label": plural(n, "observation", "observations")}));
            }
            for o in store.observations.values().filter(|o| o.uuid.to_lowercase().starts_with(&lower)) {
                matches.push(json!({"kind": "observation", "uuid": o.uuid, "label": obs_label(o)}));
            }
        }
        let asn = parse_asn(&query);
        let hits: Vec<&Observation> = store
            .observations
            .values()
            .map(|o| &**o)
            .filter(|o| o.ip() == Some(query.as_str()) || asn.is_some() && o.asn() == asn || carries(o, &query))
            .collect();
        for o in by_recency(hits) {
            if !matches.iter().any(|m| m["kind"] == "observation" && m["uuid"] == o.uuid.as_str()) {
                matches.push(json!({"kind": "observation", "uuid": o.uuid, "label": obs_label(o)}));
            }
        }
        matches.truncate(MAX_MATCHES);
        HttpResponse::Ok().json(json!({"query": query, "matches": matches}))
    })
    .await
}

/// `GET /api/explain?a=&b=`.
pub async fn explain(
    state: web::Data<State>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let (Some(a), Some(b)) = (q.get("a").cloned(), q.get("b").cloned()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "give a and b: two observation uuids or two identity uuids",
        );
    };
    with_view(&state, |snap| {
        let store = snap.store;
        let obs = |u: &str| store.observations.contains_key(u);
        let ident = |u: &str| store.identities.contains_key(u);
        if obs(&a) && obs(&b) {
            let Some(e) = snap.identities.graph().explain_pair(&a, &b) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "the observations are not in the identity graph",
                );
            };
            let (verdict, notes) = shapes::identity_verdict(&e);
            return HttpResponse::Ok().json(json!({
                "a": a, "b": b, "level": "identity", "verdict": verdict, "weight": e.total,
                "threshold": e.threshold, "signals": shapes::identity_signals(&e), "notes": notes,
            }));
        }
        if ident(&a) && ident(&b) {
            let (ra, rb) = (
                effective_root(&store.identity_groups, &a),
                effective_root(&store.identity_groups, &b),
            );
            let Some(s) = snap.campaigns.graph().explain(&ra, &rb) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "the identities are not in the campaign graph",
                );
            };
            let mut notes = Vec::new();
            if ra != a || rb != b {
                notes.push(format!("merged-out identities followed to {ra} and {rb}"));
            }
            if let Some(h) = &s.handoff_detail {
                notes.push(format!(
                    "hand-off on {}: {} then {} after {} s",
                    h.decky,
                    h.from_phase,
                    h.to_phase,
                    h.gap_ms / 1000
                ));
            }
            let signals: Vec<Value> = shapes::campaign_signals(&s)
                .into_iter()
                .map(|mut v| {
                    let d = v
                        .as_object_mut()
                        .and_then(|m| m.remove("detail"))
                        .unwrap_or_default();
                    v["values"] = match (&d["values"], &d["decky"]) {
                        (Value::Array(a), _) => Value::Array(a.clone()),
                        (_, Value::String(decky)) => json!([
                            decky,
                            format!(
                                "{} → {}",
                                d["from_phase"].as_str().unwrap_or("?"),
                                d["to_phase"].as_str().unwrap_or("?")
                            )
                        ]),
                        _ => json!([]),
                    };
                    v
                })
                .collect();
            return HttpResponse::Ok().json(json!({
                "a": ra, "b": rb, "level": "campaign",
                "verdict": if s.edge { "linked" } else { "below threshold" },
                "weight": s.total, "threshold": s.threshold, "signals": signals, "notes": notes,
            }));
        }
        if (obs(&a) || ident(&a)) && (obs(&b) || ident(&b)) {
            return error(
                StatusCode::BAD_REQUEST,
                "a and b must be of one kind: two observations or two identities",
            );
        }
        error(
            StatusCode::NOT_FOUND,
            "explain needs two known observations or two known identities",
        )
    })
    .await
}
