//! `clusterd explain`: the evidence between two observations (tiers,
//! values, veto, rarity, verdict), or between two identities (each campaign
//! signal and its weight, the hand-off's chance discount, the planted key,
//! and what was missing when there is no edge), as text or JSON. Judged
//! with the running daemon's effective configuration (`{p}:config`) when
//! one has been written, saying which configuration was used. Each
//! argument is a uuid, a unique uuid prefix, or (for observations) an IP.

use super::config::settings;
use super::error::CliError;
use super::render::{clean, handoff_sources, pair};
use super::resolve::{resolve, Kind};
use super::snapshot::snapshot;
use crate::cli::out::out;
use crate::effective::{adopt, Source};
use crate::repository::Keys;
use anyhow::Context;
use decnet_clusterd::campaign::CampaignWhy;
use decnet_clusterd::reconcile::effective_root;
use decnet_clusterd::store::Store;
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::Path;

/// `clusterd explain`.
pub fn explain(a: &str, b: &str, json: bool, config: Option<&Path>) -> Result<i32, CliError> {
    if a == b {
        return Err(CliError::Usage(format!(
            "`{}` is the same observation (or identity) twice: explain compares two different ones",
            clean(a, 64)
        )));
    }
    let local = settings(config)?;
    let system = actix_rt::System::new();
    let (snap, source) = system
        .block_on(async {
            let client = redis::Client::open(local.redis.url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            let keys = Keys::new(&local.redis.key_prefix);
            let raw = crate::repository::config::read_config(&mut conn, &keys).await?;
            let (judging, source) = adopt(local, raw.as_deref());
            anyhow::Ok((snapshot(&judging).await?, source))
        })
        .context("reading the repository")?;
    let identities = (
        resolve(&snap.store, Kind::Identity, a),
        resolve(&snap.store, Kind::Identity, b),
    );
    let out = if let (Ok(a), Ok(b)) = identities {
        let (a, b) = (a.as_str(), b.as_str());
        let (ra, rb) = (
            effective_root(&snap.store.identity_groups, a),
            effective_root(&snap.store.identity_groups, b),
        );
        let why = snap.campaigns.graph().why(&ra, &rb).ok_or_else(|| {
            CliError::Usage(format!(
                "identity `{}` or `{}` is not a campaign node",
                clean(&ra, 64),
                clean(&rb, 64)
            ))
        })?;
        let sources = handoff_sources(&snap.store, &why.a, &why.b, &why.score);
        if json {
            let mut v = serde_json::to_value(&why).unwrap_or_default();
            if let (Some(d), Some((from, to))) = (
                v.pointer_mut("/score/handoff_detail")
                    .and_then(Value::as_object_mut),
                sources,
            ) {
                d.insert("from_phase_source".into(), json!(from));
                d.insert("to_phase_source".into(), json!(to));
            }
            with_source(v, &source)
        } else {
            campaign_text(&why, &source, sources)
        }
    } else {
        let a = &resolve(&snap.store, Kind::Observation, a)?;
        let b = &resolve(&snap.store, Kind::Observation, b)?;
        let e = snap.identities.graph().explain_pair(a, b).ok_or_else(|| {
            CliError::Usage(format!(
                "unknown observation or identity: `{}` or `{}` is not in the repository",
                clean(a, 64),
                clean(b, 64)
            ))
        })?;
        if json {
            let mut v = serde_json::to_value(&e).unwrap_or_default();
            if let Value::Object(m) = &mut v {
                m.insert(
                    "phases".into(),
                    json!({"a": session_phases(&snap.store, a), "b": session_phases(&snap.store, b)}),
                );
            }
            with_source(v, &source)
        } else {
            let mut text = format!("judged with {}\n{}", source.describe(), pair(&e));
            for (side, uuid) in [("a", a), ("b", b)] {
                let _ = writeln!(
                    text,
                    "  phases of {side}: {}",
                    phases_line(&snap.store, uuid)
                );
            }
            text
        }
    };
    out!("{out}");
    Ok(0)
}

/// The JSON rendering with `config_source` (daemon, local, unreadable) and
/// `judged_with` (the sentence) added.
fn with_source(mut v: Value, source: &Source) -> String {
    let kind = match source {
        Source::Daemon { .. } => "daemon",
        Source::Local => "local",
        Source::Unreadable(_) => "unreadable",
    };
    if let Value::Object(m) = &mut v {
        m.insert("config_source".into(), json!(kind));
        m.insert("judged_with".into(), json!(source.describe()));
    }
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}

/// Each session of an observation with its phases and where they came from
/// (`phase_source`: `sensor`, `inferred`, or null without a phase).
fn session_phases(store: &Store, observation: &str) -> Vec<Value> {
    let Some(o) = store.observations.get(observation) else {
        return Vec::new();
    };
    o.sessions
        .values()
        .map(|s| {
            json!({
                "session_id": s.session_id,
                "phase": s.first_phase().map(|p| p.name()),
                "last_phase": s.last_phase().map(|p| p.name()),
                "phase_source": s.phase_source().map(|p| p.as_str()),
            })
        })
        .collect()
}

/// One line for the terminal: each session's phases with their source.
fn phases_line(store: &Store, observation: &str) -> String {
    let parts: Vec<String> = store
        .observations
        .get(observation)
        .map(|o| {
            o.sessions
                .values()
                .filter_map(|s| {
                    let (first, last) = (s.first_phase()?, s.last_phase()?);
                    let source = s.phase_source().map(|p| p.as_str()).unwrap_or("-");
                    Some(if first == last {
                        format!("{} ({source})", first.name())
                    } else {
                        format!("{} → {} ({source})", first.name(), last.name())
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn hours(ms: i64) -> String {
    format!("{:.1} h", ms as f64 / 3_600_000.0)
}

/// The campaign-level explanation for a terminal.
fn campaign_text(
    w: &CampaignWhy,
    source: &Source,
    sources: Option<(&'static str, &'static str)>,
) -> String {
    let s = &w.score;
    let mut out = String::new();
    let verdict = if s.edge {
        format!(
            "campaign edge: total {:.2} ≥ threshold {:.2}",
            s.total, s.threshold
        )
    } else {
        format!(
            "no campaign edge: total {:.2} < threshold {:.2}, {:.2} missing",
            s.total, s.threshold, w.missing
        )
    };
    let _ = writeln!(
        out,
        "identities {} and {}",
        clean(&w.a, 64),
        clean(&w.b, 64)
    );
    let _ = writeln!(out, "{verdict}");
    let _ = writeln!(out, "judged with {}", source.describe());
    let _ = writeln!(out, "signals:");
    let handoff = match &s.handoff_detail {
        Some(h) => format!(
            "on {}: {} {} ({}) → {} ({}) {} later; chance of an unrelated arrival μ = {:.2}, discount e^-μ = {:.2}",
            clean(&h.decky, 64),
            clean(&h.from, 64),
            h.from_phase,
            sources.map_or("unknown", |s| s.0),
            h.to_phase,
            sources.map_or("unknown", |s| s.1),
            hours(h.gap_ms),
            h.chance,
            h.discount
        ),
        None => "none".into(),
    };
    let planted = match &s.planted_detail {
        Some(p) => format!(
            "{} planted by {} on {}, used by {} {} later (never discounted)",
            clean(&p.key, 64),
            clean(&p.planted_by, 64),
            clean(&p.decky, 64),
            clean(&p.used_by, 64),
            hours(p.gap_ms)
        ),
        None => "none".into(),
    };
    let list = |v: &[String]| {
        if v.is_empty() {
            "nothing shared".to_string()
        } else {
            v.iter()
                .map(|x| clean(x, 64))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let rhythm = match s.hamming {
        Some(d) => format!("keystroke centroids {d} bits apart"),
        None => "no keystroke centroid on one side".into(),
    };
    for (name, weight, detail) in [
        ("hand-off", s.handoff, handoff),
        ("planted key", s.planted, planted),
        ("infrastructure", s.infra, list(&s.shared_infra)),
        (
            "overlap",
            s.overlap,
            format!("{:.0}% of session time", s.overlap_share * 100.0),
        ),
        ("cohort", s.cohort, list(&s.shared_cohort)),
        ("rhythm", s.rhythm, rhythm),
    ] {
        let _ = writeln!(out, "  {name:<15} {weight:.2}  {detail}");
    }
    if !w.notes.is_empty() {
        let _ = writeln!(out, "what the hand-off and planted-key rules saw:");
        for n in &w.notes {
            let _ = writeln!(out, "  {}", clean(n, 400));
        }
    }
    out
}
