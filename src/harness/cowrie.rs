//! A world recorded from the real Cowrie lab (`tests/cowrie/lab.py`) as a
//! scenario: Cowrie's own JSON logs and TTY logs, turned into SPEC §4
//! events by the importer's core exactly as `clusterd import cowrie` does,
//! with the lab's truth as labels. Real sensors give no phases, so a run
//! over it infers them ([`super::quality::QualityConfig::phase_rules`]).
//!
//! A recorded directory holds `truth.json` (`sensors`, and `sources`: for
//! every source IP its `identity` and `campaign`), `<sensor>.json` for each
//! sensor and `state/` (the TTY logs).

use crate::scenario::{Generated, GeneratedEvent, Truth};
use crate::sensor::cowrie::ttylog::session_simhash;
use crate::sensor::cowrie::{observation_uuid, Assembler, Evidence};
use std::path::Path;

/// Why a recorded world could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordedError {
    #[error("{path}: {problem}")]
    Read { path: String, problem: String },
}

fn read_err(path: &Path, problem: impl ToString) -> RecordedError {
    RecordedError::Read {
        path: path.display().to_string(),
        problem: problem.to_string(),
    }
}

/// Loads a recorded world as a generated scenario named after its folder.
pub fn recorded_world(dir: &Path) -> Result<Generated, RecordedError> {
    let truth_path = dir.join("truth.json");
    let text = std::fs::read_to_string(&truth_path).map_err(|e| read_err(&truth_path, e))?;
    let t: serde_json::Value = serde_json::from_str(&text).map_err(|e| read_err(&truth_path, e))?;
    let sources = t["sources"]
        .as_object()
        .ok_or_else(|| read_err(&truth_path, "no `sources` object"))?;
    let mut truth = Truth::default();
    for (ip, labels) in sources {
        let addr = ip
            .parse()
            .map_err(|_| read_err(&truth_path, format!("source {ip:?} is not an IP address")))?;
        let uuid = observation_uuid(&addr);
        let label = |k: &str| {
            labels[k]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| read_err(&truth_path, format!("source {ip}: no `{k}`")))
        };
        truth.identity.insert(uuid.clone(), label("identity")?);
        truth.campaign.insert(uuid, label("campaign")?);
    }
    let sensors = t["sensors"]
        .as_array()
        .ok_or_else(|| read_err(&truth_path, "no `sensors` list"))?;
    let state = dir.join("state");
    let mut events = Vec::new();
    let mut asm = Assembler::new("cowrie");
    let mut push = |done: Vec<Evidence>| {
        for e in done {
            let simhash = session_simhash(&e, &state, |_| {});
            for ev in e.events(simhash) {
                let payload = serde_json::from_str(&ev.payload).unwrap_or_default();
                events.push(GeneratedEvent {
                    topic: "attacker.observed".into(),
                    event_id: ev.event_id,
                    ts: ev.ts.unwrap_or_default(),
                    payload,
                });
            }
        }
    };
    for s in sensors {
        let name = s
            .as_str()
            .ok_or_else(|| read_err(&truth_path, "a sensor name is not a string"))?;
        let log = dir.join(format!("{name}.json"));
        let bytes = std::fs::read(&log).map_err(|e| read_err(&log, e))?;
        let mut offset = 0u64;
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            push(asm.push_line(body, offset));
            offset += line.len() as u64;
        }
    }
    push(asm.finish());
    if asm.stats().malformed > 0 {
        return Err(read_err(
            dir,
            format!("{} malformed Cowrie lines", asm.stats().malformed),
        ));
    }
    Ok(Generated {
        name: dir
            .file_name()
            .map_or("recorded".into(), |n| n.to_string_lossy().into_owned()),
        events,
        truth,
    })
}
