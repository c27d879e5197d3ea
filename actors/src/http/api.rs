//! `/api/campaigns` (ranked, paged), `/api/campaigns/{uuid}` (identities,
//! edges with their signals, the phase timeline) and
//! `/api/identities/{uuid}` (roll-ups, members and why each belongs).
//! Merged-out uuids are followed to the winner (`followed_from`).

use super::members;
use super::shapes::{self, identity_members, ts};
use super::view::{with_view, View};
use super::{error, State};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use decnet_clusterd::evidence::Sym;
use decnet_clusterd::reconcile::effective_root;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// Largest page of `/api/campaigns`.
pub const MAX_CAMPAIGN_PAGE: usize = 500;

/// A non-negative integer query parameter (`default` when absent); the
/// error is the 400 message.
pub fn param(q: &HashMap<String, String>, name: &str, default: usize) -> Result<usize, String> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name} must be a non-negative integer")),
    }
}

/// `GET /api/campaigns?offset=&limit=`.
pub async fn campaigns(
    state: web::Data<State>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let (offset, limit) = match (param(&q, "offset", 0), param(&q, "limit", 50)) {
        (Ok(o), Ok(l)) => (o, l),
        (Err(m), _) | (_, Err(m)) => return error(StatusCode::BAD_REQUEST, m),
    };
    if limit == 0 || limit > MAX_CAMPAIGN_PAGE {
        return error(
            StatusCode::BAD_REQUEST,
            format!("limit must be between 1 and {MAX_CAMPAIGN_PAGE}"),
        );
    }
    let index = match state.members.get(&state).await {
        Ok(i) => i,
        Err(answer) => return answer,
    };
    with_view(&state, |snap| {
        // The ranking as indexed; a campaign merged away since is left
        // out of the page (and counted until the index is rebuilt).
        let ranked = &index.ranked;
        let items: Vec<Value> = ranked
            .iter()
            .skip(offset)
            .take(limit)
            .filter(|c| members::still_ranked(snap.store, c))
            .map(|c| {
                let ids = members::current_members(snap.store, c, index.of(c));
                shapes::campaign(snap, c, &ids, &shapes::campaign_edges(snap, &ids))
            })
            .collect();
        HttpResponse::Ok()
            .json(json!({"total": ranked.len(), "offset": offset, "limit": limit, "items": items}))
    })
    .await
}

/// The timeline: one row per identity and decky, sessions by start.
fn timeline(snap: &View, identities: &[String]) -> Vec<Value> {
    let store = snap.store;
    let mut out = Vec::new();
    for id in identities {
        let mut rows: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for o in identity_members(store, id)
            .iter()
            .filter_map(|o| store.observation(o))
        {
            for s in o.sessions.values() {
                let Some(decky) = s.decky_id.as_deref() else {
                    continue;
                };
                rows.entry(decky).or_default().push(json!({
                    "started_at": ts(s.started_at), "ended_at": ts(s.ended_at),
                    "first_phase": s.phase.map(|p| p.to_string()),
                    "last_phase": s.last_phase().map(|p| p.to_string()),
                    "phase_source": s.phase_source().map(|p| p.as_str()),
                }));
            }
        }
        for (decky, mut sessions) in rows {
            sessions.sort_by(|a, b| a["started_at"].as_str().cmp(&b["started_at"].as_str()));
            out.push(json!({"identity_uuid": id, "decky_id": decky, "sessions": sessions}));
        }
    }
    out
}

/// `GET /api/campaigns/{uuid}`.
pub async fn campaign(state: web::Data<State>, uuid: web::Path<String>) -> HttpResponse {
    let asked = uuid.into_inner();
    let index = match state.members.get(&state).await {
        Ok(i) => i,
        Err(answer) => return answer,
    };
    with_view(&state, |snap| {
        let store = snap.store;
        if !store.campaigns.contains_key(&asked) {
            return error(StatusCode::NOT_FOUND, format!("no campaign {asked}"));
        }
        let root = effective_root(&store.campaign_groups, &asked);
        let ids = members::current_members(store, &root, index.of(&root));
        let edges = shapes::campaign_edges(snap, &ids);
        let mut v = json!({
            "campaign": shapes::campaign(snap, &root, &ids, &edges),
            "identities": ids.iter().map(|i| shapes::identity_summary(snap, i)).collect::<Vec<_>>(),
            "edges": edges,
            "timeline": timeline(snap, &ids),
        });
        if root != asked {
            v["followed_from"] = asked.into();
        }
        HttpResponse::Ok().json(v)
    })
    .await
}

/// Each member's strongest tie to another member (the explain of that pair).
fn why(snap: &View, members: &[Sym]) -> HashMap<String, Value> {
    let mut best: HashMap<String, (f64, Value)> = HashMap::new();
    let Some(first) = members.first() else {
        return HashMap::new();
    };
    for edge in snap
        .identities
        .graph()
        .explain_identity(first)
        .unwrap_or_default()
    {
        let e = &edge.explanation;
        if !e.edge {
            continue; // held only by an operator link
        }
        for (me, partner) in [(&e.a, &e.b), (&e.b, &e.a)] {
            if best.get(me).is_none_or(|(w, _)| edge.weight > *w) {
                let v = json!({"partner_uuid": partner, "weight": edge.weight,
                               "signals": shapes::identity_signals(e)});
                best.insert(me.clone(), (edge.weight, v));
            }
        }
    }
    best.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

/// `GET /api/identities/{uuid}`.
pub async fn identity(state: web::Data<State>, uuid: web::Path<String>) -> HttpResponse {
    let asked = uuid.into_inner();
    with_view(&state, |snap| {
        let store = snap.store;
        if !store.identities.contains_key(&asked) {
            return error(StatusCode::NOT_FOUND, format!("no identity {asked}"));
        }
        let root = effective_root(&store.identity_groups, &asked);
        let members = identity_members(store, &root);
        let mut whys = why(snap, members);
        let mut rows: Vec<Value> = members
            .iter()
            .filter_map(|m| store.observation(m))
            .map(|o| {
                json!({"uuid": o.uuid, "ip": o.ip(), "asn": o.asn(),
                            "first_seen": ts(o.first_seen), "last_seen": ts(o.last_seen),
                            "why": whys.remove(o.uuid.as_str()).unwrap_or(Value::Null)})
            })
            .collect();
        rows.sort_by(|a, b| {
            a["first_seen"]
                .as_str()
                .cmp(&b["first_seen"].as_str())
                .then(a["uuid"].as_str().cmp(&b["uuid"].as_str()))
        });
        let mut v = json!({"identity": shapes::identity_detail(snap, &root), "members": rows});
        if root != asked {
            v["followed_from"] = asked.into();
        }
        HttpResponse::Ok().json(v)
    })
    .await
}
