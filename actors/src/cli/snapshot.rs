//! The repository as the read-only verbs (`inspect`, `explain`, `export`)
//! see it: the stored state loaded, the graphs rebuilt in-process (nothing
//! is written), and their JSON and DOT renderings of members, roll-ups, evidence, merge
//! history, operator decisions and the edges that hold identities and
//! campaigns together — for a terminal, as JSON, or as Graphviz DOT. Every
//! attacker-supplied string is escaped for the format it lands in.

use super::render::{clean, handoff_sources_of, with_handoff_sources};
use crate::repository::Keys;
use crate::settings::Settings;
use decnet_clusterd::campaign::clusterer::{campaign_clusterer, CampaignClusterer};
use decnet_clusterd::evidence::Sym;
use decnet_clusterd::identity::clusterer::{identity_clusterer, Clusterer, TickContext};
use decnet_clusterd::reconcile::effective_root;
use decnet_clusterd::store::Store;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The stored state plus graphs rebuilt from it (nothing written back).
pub struct Snapshot {
    pub store: Store,
    pub identities: Box<dyn Clusterer>,
    pub campaigns: Box<dyn CampaignClusterer>,
    /// The retained lifecycle events of both output streams, oldest first:
    /// (stream entry id, ts, topic, payload).
    pub events: Vec<(String, String, String, Value)>,
}

/// Payload fields that name an identity or campaign.
const NAMING_FIELDS: &[&str] = &[
    "identity_uuid",
    "campaign_uuid",
    "winner_uuid",
    "loser_uuid",
    "resurrected_uuid",
    "former_winner_uuid",
    "prior_identity_uuid",
    "prior_campaign_uuid",
];

/// The lifecycle events (formed, merged, unmerged, assigned, linked) that
/// name `uuid`: its merge and unmerge history as far as the streams retain it.
pub fn history(snap: &Snapshot, uuid: &str) -> Vec<Value> {
    snap.events
        .iter()
        .filter(|(_, _, _, p)| NAMING_FIELDS.iter().any(|f| p[*f] == uuid))
        .map(|(id, ts, topic, p)| json!({"entry": id, "ts": ts, "topic": topic, "payload": p}))
        .collect()
}

/// Loads the repository and rebuilds both graphs in memory.
pub async fn snapshot(s: &Settings) -> anyhow::Result<Snapshot> {
    let client = redis::Client::open(s.redis.url.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let (store, events) = load_parts(&mut conn, s).await?;
    rebuild(s, store, events)
}

/// The stored state and the retained output events, read on `conn`.
pub async fn load_parts(
    conn: &mut redis::aio::MultiplexedConnection,
    s: &Settings,
) -> anyhow::Result<(Store, Vec<(String, String, String, Value)>)> {
    let keys = Keys::new(&s.redis.key_prefix);
    let store = crate::repository::load(conn, &keys, |_, _| {}).await?;
    let events = crate::repository::events::read_events(conn, &keys).await?;
    Ok((store, events))
}

/// Rebuilds both graphs over a copy of `store` (CPU work, no I/O).
pub fn rebuild(
    s: &Settings,
    mut store: Store,
    events: Vec<(String, String, String, Value)>,
) -> anyhow::Result<Snapshot> {
    let mut identities = identity_clusterer(&s.clustering.clusterer, s.identity.clone())?;
    let mut campaigns = campaign_clusterer(&s.clustering.campaign_clusterer, s.campaign.clone())?;
    // Work on a copy: the rebuild's journal is discarded, the original store
    // is what is reported.
    let mut scratch = store.clone();
    let mut new_id = || uuid::Uuid::new_v4().to_string();
    let mut ctx = TickContext {
        now: 0,
        new_id: &mut new_id,
    };
    identities.tick(&mut scratch, &mut ctx)?;
    campaigns.tick(&mut scratch, &mut ctx)?;
    store.identity_members = scratch.identity_members;
    Ok(Snapshot {
        store,
        identities,
        campaigns,
        events,
    })
}

fn members_of(store: &Store, identity: &str) -> Vec<String> {
    store
        .observations
        .keys()
        .filter(|o| store.effective_identity(o).as_deref() == Some(identity))
        .map(|o| o.to_string())
        .collect()
}

/// `inspect observation|identity|campaign <uuid>` as JSON.
pub fn inspect(snap: &Snapshot, kind: &str, uuid: &str) -> Result<Value, String> {
    let store = &snap.store;
    match kind {
        "observation" => {
            let o = store
                .observations
                .get(uuid)
                .ok_or_else(|| format!("no observation `{}`", clean(uuid, 64)))?;
            let direct = store.identity_groups.direct.get(uuid).cloned();
            let effective = store.effective_identity(uuid);
            let decisions: Vec<Value> = store
                .decisions
                .iter()
                .filter(|((a, b), _)| a == uuid || b == uuid)
                .map(|((a, b), d)| json!({"pair": [a, b], "kind": d.kind.as_str(), "requested_by": d.requested_by, "at": d.at}))
                .collect();
            Ok(json!({
                "observation": o,
                "identity_id": direct,
                "effective_identity": effective,
                "effective_campaign": effective.as_deref().and_then(|i| store.effective_campaign(i)),
                "decisions": decisions,
            }))
        }
        "identity" => {
            if !store.identities.contains_key(uuid) {
                return Err(format!("no identity `{}`", clean(uuid, 64)));
            }
            let root = effective_root(&store.identity_groups, uuid);
            let row = &store.identities[&root];
            let members = members_of(store, &root);
            let merged_in: Vec<&Sym> = store
                .identity_groups
                .merged_into
                .iter()
                .filter(|(_, w)| **w == root)
                .map(|(l, _)| l)
                .collect();
            let edges = members
                .first()
                .and_then(|m| snap.identities.graph().explain_identity(m))
                .unwrap_or_default();
            Ok(json!({
                "asked": uuid,
                "effective_identity": root,
                "followed_merges": uuid != root,
                "row": row,
                "merged_in": merged_in,
                "members": members.iter().map(|m| {
                    let o = &store.observations[m.as_str()];
                    json!({"uuid": m, "ip": o.ip(), "asn": o.asn()})
                }).collect::<Vec<_>>(),
                "campaign": store.effective_campaign(&root),
                "edges": edges,
                "history": history(snap, uuid),
            }))
        }
        "campaign" => {
            if !store.campaigns.contains_key(uuid) {
                return Err(format!("no campaign `{}`", clean(uuid, 64)));
            }
            let root = effective_root(&store.campaign_groups, uuid);
            let identities: Vec<&String> = store
                .identities
                .keys()
                .filter(|i| {
                    store.identities[*i].merged_into_uuid.is_none()
                        && store.effective_campaign(i).as_deref() == Some(root.as_str())
                })
                .collect();
            let edges: Vec<Value> = identities
                .first()
                .map(|i| snap.campaigns.graph().explain_campaign(i))
                .unwrap_or_default()
                .into_iter()
                .map(|(a, b, s)| {
                    let mut evidence = json!(s);
                    with_handoff_sources(store, &a, &b, &mut evidence);
                    json!({"a": a, "b": b, "evidence": evidence})
                })
                .collect();
            Ok(json!({
                "asked": uuid,
                "effective_campaign": root,
                "row": store.campaigns[&root],
                "identities": identities,
                "edges": edges,
                "history": history(snap, uuid),
            }))
        }
        other => Err(format!(
            "cannot inspect `{}`: use observation, identity or campaign",
            clean(other, 32)
        )),
    }
}

/// Longest DOT string: longer ones are cut and end with an ellipsis.
const DOT_MAX: usize = 200;

/// Escapes a string for a double-quoted DOT id or label (cut at
/// [`DOT_MAX`] characters, ending with `…` when cut).
pub fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().take(DOT_MAX) {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push('\u{b7}'),
            c => out.push(c),
        }
    }
    if s.chars().count() > DOT_MAX {
        out.push('…');
    }
    out
}

/// The first `n` characters of `s`, with `…` when there were more.
fn cut(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

/// The identity/campaign graph as JSON: campaigns (of at least
/// `min_identities` identities), their identities, and the campaign edges
/// with their signals.
pub fn export_json(snap: &Snapshot, only: Option<&str>, min_identities: usize) -> Value {
    let store = &snap.store;
    let mut campaigns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, row) in &store.identities {
        if row.merged_into_uuid.is_some() {
            continue;
        }
        let camp = store.effective_campaign(id).unwrap_or_default();
        if only.is_none_or(|c| c == camp) {
            campaigns.entry(camp).or_default().push(id.clone());
        }
    }
    let mut out = Vec::new();
    for (camp, ids) in campaigns
        .iter()
        .filter(|(_, ids)| ids.len() >= min_identities)
    {
        let edges: Vec<Value> = snap
            .campaigns
            .graph()
            .explain_campaign(&ids[0])
            .into_iter()
            .map(|(a, b, s)| {
                let mut evidence = json!(s);
                with_handoff_sources(store, &a, &b, &mut evidence);
                json!({"a": a, "b": b, "weight": s.total, "evidence": evidence})
            })
            .collect();
        let identities: Vec<Value> = ids
            .iter()
            .map(|i| {
                let r = &store.identities[i];
                json!({"uuid": i, "observation_count": r.observation_count, "confidence": r.confidence,
                       "ja3_hashes": r.ja3_hashes, "hassh_hashes": r.hassh_hashes,
                       "payload_hashes": r.payload_hashes, "c2_endpoints": r.c2_endpoints})
            })
            .collect();
        out.push(json!({"campaign": camp, "identities": identities, "edges": edges}));
    }
    json!({"campaigns": out})
}

fn signal_label(
    s: &decnet_clusterd::campaign::CampaignPairScore,
    sources: Option<(&str, &str)>,
) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &s.handoff_detail {
        let (from, to) = sources.unwrap_or(("unknown", "unknown"));
        parts.push(format!(
            "hand-off {} {} ({from})→{} ({to})",
            cut(&h.decky, 24),
            h.from_phase,
            h.to_phase
        ));
    }
    if s.infra > 0.0 {
        let shared: Vec<String> = s.shared_infra.iter().map(|v| cut(v, 24)).collect();
        parts.push(format!("infra {}", shared.join(", ")));
    }
    if s.rhythm > 0.0 {
        parts.push(format!("rhythm {} bits", s.hamming.unwrap_or(0)));
    }
    if s.overlap > 0.0 {
        parts.push(format!("overlap {:.0}%", s.overlap_share * 100.0));
    }
    parts.join("\n")
}

/// The identity/campaign graph as Graphviz DOT: one cluster per campaign
/// (of at least `min_identities` identities), identities as nodes, campaign
/// edges labelled with their signals.
pub fn export_dot(snap: &Snapshot, only: Option<&str>, min_identities: usize) -> String {
    let v = export_json(snap, only, min_identities);
    let mut out = String::from("digraph clusterd {\n  graph [rankdir=LR, fontname=\"Helvetica\"];\n  node [shape=box, fontname=\"Helvetica\"];\n  edge [dir=none, fontname=\"Helvetica\"];\n");
    for (i, c) in v["campaigns"].as_array().into_iter().flatten().enumerate() {
        let camp = c["campaign"].as_str().unwrap_or("");
        let members = c["identities"].as_array().map_or(&[][..], Vec::as_slice);
        let observations: u64 = members
            .iter()
            .filter_map(|m| m["observation_count"].as_u64())
            .sum();
        let _ = writeln!(
            out,
            "  subgraph \"cluster_{i}\" {{\n    label=\"{}\";",
            dot_escape(&format!(
                "campaign {} — {}, {}",
                cut(camp, 8),
                super::text::count(members.len() as u64, "identity", "identities"),
                super::text::count(observations, "observation", "observations")
            ))
        );
        for id in c["identities"].as_array().into_iter().flatten() {
            let uuid = id["uuid"].as_str().unwrap_or("");
            let tools: Vec<String> = id["ja3_hashes"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(id["hassh_hashes"].as_array().into_iter().flatten())
                .filter_map(|t| t.as_str())
                .take(3)
                .map(|t| cut(t, 24))
                .collect();
            let label = format!(
                "identity {}\n{}, confidence {:.2}\n{}",
                cut(uuid, 8),
                super::text::count(
                    id["observation_count"].as_u64().unwrap_or(0),
                    "observation",
                    "observations"
                ),
                id["confidence"].as_f64().unwrap_or(0.0),
                tools.join("\n")
            );
            let _ = writeln!(
                out,
                "    \"{}\" [label=\"{}\"];",
                dot_escape(uuid),
                dot_escape(&label)
            );
        }
        out.push_str("  }\n");
        for e in c["edges"].as_array().into_iter().flatten() {
            let s: Option<decnet_clusterd::campaign::CampaignPairScore> =
                serde_json::from_value(e["evidence"].clone()).ok();
            let sources = handoff_sources_of(&e["evidence"]);
            let label = s
                .as_ref()
                .map(|s| signal_label(s, sources))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [label=\"{}\"];",
                dot_escape(e["a"].as_str().unwrap_or("")),
                dot_escape(e["b"].as_str().unwrap_or("")),
                dot_escape(&label)
            );
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_strings_are_escaped() {
        assert_eq!(
            dot_escape("a\"b\\c\nd{e}\u{1b}[31m"),
            "a\\\"b\\\\c\\nd{e}\u{b7}[31m"
        );
        let long = "x".repeat(DOT_MAX + 5);
        assert!(dot_escape(&long).ends_with("x…"));
        assert_eq!(cut("abcdef", 3), "abc…");
        assert_eq!(cut("abc", 3), "abc");
    }
}
