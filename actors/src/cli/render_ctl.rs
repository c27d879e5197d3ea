//! How `clusterd ctl` prints a reply for a person: `status` as an aligned
//! table of every worker (`-` where a worker reported nothing), the leader,
//! the queues and the row counts; the other actions' results as lines of
//! `name: value` with rounded numbers.

use super::render::clean;
use super::text::{count, number, table, Align};
use crate::daemon::workers;
use serde_json::Value;
use std::fmt::Write;

/// The stored rows of each kind (`status` asks for them beside the reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub observations: u64,
    pub identities: u64,
    pub campaigns: u64,
}

impl From<(u64, u64, u64)> for Counts {
    fn from((observations, identities, campaigns): (u64, u64, u64)) -> Counts {
        Counts {
            observations,
            identities,
            campaigns,
        }
    }
}

/// Every worker, in the order of SPEC §6, the heartbeat included.
const ROWS: &[&str] = workers::WORKERS;

/// A value for a person: strings escaped, numbers rounded, lists joined.
pub fn value(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => clean(s, 120),
        Value::Number(_) => number(v),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a.iter().map(value).collect::<Vec<_>>().join(", "),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{} {}", clean(k, 40), value(v)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn cell(w: &Value, field: &str) -> String {
    match &w[field] {
        Value::Null => "-".into(),
        v => value(v),
    }
}

fn uptime(w: &Value) -> String {
    let Some(s) = w["uptime_s"].as_u64() else {
        return "-".into();
    };
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn status(result: &Value, counts: Option<Counts>) -> String {
    let mut out = String::new();
    let leader = result["leader"].as_str();
    let process = &result["workers"][workers::PROCESS];
    let _ = match leader {
        Some(l) if process["instance_id"].as_str() == Some(l) => writeln!(
            out,
            "leader: {} (pid {} on {})",
            clean(l, 64),
            cell(process, "pid"),
            cell(process, "host")
        ),
        Some(l) => writeln!(out, "leader: {}", clean(l, 64)),
        None => writeln!(out, "leader: none (no instance holds the lease)"),
    };
    let q = &result["queues"];
    let _ = writeln!(
        out,
        "queues: input {}, lag {}, pending {}, dead-letter {}",
        cell(q, "input"),
        cell(q, "lag"),
        cell(q, "pending"),
        cell(q, "deadletter")
    );
    if let Some(c) = counts {
        let _ = writeln!(
            out,
            "stored: {}, {}, {} (merged-out rows included)",
            count(c.observations, "observation", "observations"),
            count(c.identities, "identity", "identities"),
            count(c.campaigns, "campaign", "campaigns")
        );
    }
    out.push('\n');
    let mut names: Vec<String> = ROWS.iter().map(|s| s.to_string()).collect();
    // A worker the daemon reports that this build does not know still shows.
    for name in result["workers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let rows: Vec<Vec<String>> = names
        .iter()
        .map(|name| {
            let w = &result["workers"][name.as_str()];
            let state = if w.is_null() {
                "absent".into()
            } else {
                cell(w, "state")
            };
            vec![
                clean(name, 24),
                state,
                w["instance_id"]
                    .as_str()
                    .map_or("-".into(), super::text::short),
                uptime(w),
                cell(w, "restarts"),
                cell(w, "ingested"),
                cell(w, "dead_lettered"),
                cell(w, "lag"),
                cell(w, "dirty"),
                cell(w, "ticks"),
                match w["last_tick_ms"].as_u64() {
                    Some(ms) => format!("{ms} ms"),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    let (l, r) = (Align::Left, Align::Right);
    out.push_str(&table(
        &[
            ("worker", l),
            ("state", l),
            ("instance", l),
            ("uptime", r),
            ("restarts", r),
            ("ingested", r),
            ("dead-lettered", r),
            ("lag", r),
            ("dirty", r),
            ("ticks", r),
            ("last tick", r),
        ],
        &rows,
    ));
    out
}

/// A readable rendering of a control reply's result.
pub fn control_reply(action: &str, result: &Value, counts: Option<Counts>) -> String {
    if action == "status" {
        return status(result, counts);
    }
    let mut out = format!("{action}: ok\n");
    for (k, v) in result.as_object().into_iter().flatten() {
        let _ = writeln!(out, "  {}: {}", clean(k, 40).replace('_', " "), value(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_shows_every_worker_and_dashes_for_the_missing() {
        let result = json!({
            "leader": "inst-1",
            "queues": {"input": 3, "lag": 0, "pending": 0, "deadletter": 1},
            "workers": {
                "clusterd": {"instance_id": "inst-1", "pid": 7, "host": "h", "state": "running", "uptime_s": 75, "restarts": 0},
                "clusterer": {"state": "standby", "ticks": 4, "last_tick_ms": 12, "dirty": 0},
            }
        });
        let out = control_reply("status", &result, Some(Counts::from((1, 2, 1))));
        assert!(out.contains("leader: inst-1 (pid 7 on h)"), "{out}");
        assert!(
            out.contains("stored: 1 observation, 2 identities, 1 campaign"),
            "{out}"
        );
        assert!(out.contains("1m15s"), "{out}");
        let heartbeat = out.lines().find(|l| l.starts_with("heartbeat")).unwrap();
        assert!(
            heartbeat.contains("absent") && heartbeat.ends_with('-'),
            "{out}"
        );
        assert!(out
            .lines()
            .any(|l| l.starts_with("clusterer") && l.contains("standby")));
    }

    #[test]
    fn replies_round_numbers() {
        let out = control_reply("tick", &json!({"ticks": 3, "last_tick_ms": 1.23456}), None);
        assert_eq!(out, "tick: ok\n  last tick ms: 1.23\n  ticks: 3\n");
    }
}
