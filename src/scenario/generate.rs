//! The seeded generator: a [`Scenario`] becomes SPEC §4 input events plus
//! truth labels at identity and campaign level. Same scenario and seed,
//! same events, byte for byte.

use super::{parse_duration, Actor, Noise, Scenario, Tooling};
use crate::evidence::time::format_timestamp;
use crate::evidence::Millis;
use crate::phase::Phase;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// One input stream entry.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratedEvent {
    pub topic: String,
    pub event_id: String,
    pub ts: String,
    pub payload: Value,
}

impl GeneratedEvent {
    /// The stream entry's fields: topic, event_id, ts, payload (JSON text).
    pub fn fields(&self) -> Vec<(String, String)> {
        vec![
            ("topic".into(), self.topic.clone()),
            ("event_id".into(), self.event_id.clone()),
            ("ts".into(), self.ts.clone()),
            ("payload".into(), self.payload.to_string()),
        ]
    }
}

/// Ground truth: observation uuid → label.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Truth {
    pub identity: BTreeMap<String, String>,
    pub campaign: BTreeMap<String, String>,
}

/// A generated scenario.
#[derive(Clone, Debug)]
pub struct Generated {
    pub name: String,
    pub events: Vec<GeneratedEvent>,
    pub truth: Truth,
}

fn uuid(rng: &mut ChaCha8Rng) -> String {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn ip(rng: &mut ChaCha8Rng) -> String {
    // 198.18.0.0/15, the benchmarking range: never a real host.
    format!(
        "198.{}.{}.{}",
        rng.random_range(18..20),
        rng.random::<u8>(),
        rng.random_range(1..255)
    )
}

fn dur(s: &str) -> Millis {
    parse_duration(s).unwrap_or(0)
}

/// One observation before it is cut into events.
struct Obs {
    uuid: String,
    ip: String,
    asn: u32,
    first: Millis,
    last: Millis,
    fingerprints: Vec<(&'static str, String)>,
    sessions: Vec<Value>,
}

fn tooling_fps(t: &Tooling) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    for (k, val) in [("ja3", &t.ja3), ("ja4", &t.ja4), ("hassh", &t.hassh)] {
        if let Some(x) = val {
            v.push((k, x.clone()));
        }
    }
    v
}

impl Scenario {
    /// Generates the events and truth.
    pub fn generate(&self) -> Generated {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let t0 =
            chrono::DateTime::parse_from_rfc3339(&self.start).map_or(0, |t| t.timestamp_millis());
        let mut truth = Truth::default();
        let mut all = Vec::new();
        for c in &self.campaigns {
            for a in &c.actors {
                for o in actor_observations(a, t0, &mut rng) {
                    truth
                        .identity
                        .insert(o.uuid.clone(), format!("{}/{}", c.label, a.label));
                    truth.campaign.insert(o.uuid.clone(), c.label.clone());
                    all.push(o);
                }
            }
        }
        for n in &self.noise {
            for (k, o) in noise_observations(n, t0, &mut rng).into_iter().enumerate() {
                let label = format!("noise:{}:{k}", n.label);
                truth.identity.insert(o.uuid.clone(), label.clone());
                truth.campaign.insert(o.uuid.clone(), label);
                all.push(o);
            }
        }
        let mut events = Vec::new();
        for o in &all {
            self.cut(o, &mut rng, &mut events);
        }
        let dups: Vec<GeneratedEvent> = events
            .iter()
            .filter(|_| self.delivery.duplicate > 0.0 && rng.random_bool(self.delivery.duplicate))
            .cloned()
            .collect();
        events.extend(dups);
        if self.delivery.shuffle {
            for i in (1..events.len()).rev() {
                let j = rng.random_range(0..=i);
                events.swap(i, j);
            }
        }
        Generated {
            name: self.name.clone(),
            events,
            truth,
        }
    }

    /// Cuts one observation into events (one, or split by evidence kind).
    fn cut(&self, o: &Obs, rng: &mut ChaCha8Rng, out: &mut Vec<GeneratedEvent>) {
        let ts = format_timestamp(o.last);
        let event = |topic: &str, payload: Value, rng: &mut ChaCha8Rng| GeneratedEvent {
            topic: topic.to_string(),
            event_id: uuid(rng),
            ts: ts.clone(),
            payload,
        };
        let fps: Vec<Value> = o
            .fingerprints
            .iter()
            .map(|(k, v)| json!({"kind": k, "value": v}))
            .collect();
        let mut base = json!({
            "uuid": o.uuid, "ip": o.ip, "asn": o.asn,
            "first_seen": format_timestamp(o.first), "last_seen": (o.last as f64) / 1000.0,
        });
        if self.delivery.split_evidence {
            out.push(event("attacker.observed", base, rng));
            for fp in fps {
                let mut p = fp;
                p["uuid"] = json!(o.uuid);
                out.push(event("attacker.fingerprinted", p, rng));
            }
            for s in &o.sessions {
                out.push(event(
                    "attacker.session.ended",
                    json!({"uuid": o.uuid, "session": s}),
                    rng,
                ));
            }
            out.push(event(
                "attacker.scored",
                json!({"uuid": o.uuid, "score": 1}),
                rng,
            ));
        } else {
            base["fingerprints"] = Value::Array(fps);
            base["sessions"] = Value::Array(o.sessions.clone());
            out.push(event("attacker.observed", base, rng));
        }
    }
}

fn actor_observations(a: &Actor, t0: Millis, rng: &mut ChaCha8Rng) -> Vec<Obs> {
    let mut out = Vec::new();
    let mut t = t0 + dur(&a.start);
    let step_gap = dur(&a.step_gap);
    for i in 0..a.ips {
        if i > 0 {
            t += dur(&a.spacing);
            for p in a.pauses.iter().filter(|p| p.after + 1 == i) {
                t += dur(&p.gap);
            }
        }
        let tooling = match &a.upgrade {
            Some(u) if i >= u.at => merge_tooling(&a.tooling, &u.tooling),
            _ => a.tooling.clone(),
        };
        let uuid = uuid(rng);
        let decky = &a.deckies[i % a.deckies.len()];
        let steps: Vec<Option<&super::Step>> = if a.steps.is_empty() {
            vec![None]
        } else {
            a.steps.iter().map(Some).collect()
        };
        let mut sessions = Vec::new();
        let n = steps.len();
        for (j, step) in steps.into_iter().enumerate() {
            let started = t + j as Millis * step_gap;
            let mut s = Map::new();
            s.insert("session_id".into(), json!(format!("s-{}-{j}", &uuid[..8])));
            s.insert("decky_id".into(), json!(decky));
            s.insert("started_at".into(), json!(format_timestamp(started)));
            s.insert(
                "ended_at".into(),
                json!(format_timestamp(started + step_gap / 2)),
            );
            if let Some(st) = step {
                let phase = Phase::from_name(&st.phase);
                match (st.as_tactic, phase.and_then(|p| p.tactic())) {
                    (true, Some(tactic)) => s.insert("tactic".into(), json!(tactic)),
                    _ => s.insert("phase".into(), json!(st.phase)),
                };
                s.insert("commands".into(), json!(st.commands));
                if let Some(k) = &st.auth_key {
                    s.insert("auth_key".into(), json!(k));
                }
                if !st.planted_keys.is_empty() {
                    s.insert("planted_keys".into(), json!(st.planted_keys));
                }
            }
            if j == 0 && !a.credentials.is_empty() {
                s.insert("credentials".into(), json!(a.credentials));
            }
            if j + 1 == n {
                if let Some(p) = a.payloads.get(i % a.payloads.len().max(1)) {
                    s.insert("payload_hash".into(), json!(p));
                }
                if let Some(c) = a.c2.get(i % a.c2.len().max(1)) {
                    s.insert("c2_callback".into(), json!(c));
                }
            }
            if let Some(h) = a
                .simhash
                .as_ref()
                .and_then(|h| u64::from_str_radix(h, 16).ok())
            {
                let mut h = h;
                for _ in 0..a.simhash_noise {
                    h ^= 1 << rng.random_range(0..64);
                }
                s.insert("kd_digraph_simhash".into(), json!(format!("{h:016x}")));
            }
            sessions.push(Value::Object(s));
        }
        out.push(Obs {
            uuid,
            ip: ip(rng),
            asn: a.asns[i % a.asns.len()],
            first: t,
            last: t + (n as Millis - 1) * step_gap + step_gap / 2,
            fingerprints: tooling_fps(&tooling),
            sessions,
        });
    }
    out
}

fn merge_tooling(base: &Tooling, over: &Tooling) -> Tooling {
    Tooling {
        ja3: over.ja3.clone().or_else(|| base.ja3.clone()),
        ja4: over.ja4.clone().or_else(|| base.ja4.clone()),
        hassh: over.hassh.clone().or_else(|| base.hassh.clone()),
    }
}

fn noise_observations(n: &Noise, t0: Millis, rng: &mut ChaCha8Rng) -> Vec<Obs> {
    let within = dur(&n.within).max(1);
    let start = t0 + dur(&n.start);
    (0..n.count)
        .map(|k| {
            let t = start + rng.random_range(0..within);
            let uuid = uuid(rng);
            let fingerprints = match &n.library {
                Some(lib) => tooling_fps(lib),
                None => vec![
                    ("ja3", format!("771,{}-{:x}", n.label, rng.random::<u64>())),
                    ("hassh", format!("{:032x}", rng.random::<u128>())),
                ],
            };
            let mut creds = Vec::new();
            if !n.wordlist.is_empty() {
                for _ in 0..n.credentials_per_scanner {
                    creds.push(n.wordlist[rng.random_range(0..n.wordlist.len())].clone());
                }
            }
            let decky = &n.deckies[rng.random_range(0..n.deckies.len())];
            let plays: Vec<(&str, &[String])> = if n.steps.is_empty() {
                vec![(n.phase.as_str(), n.commands.as_slice())]
            } else {
                n.steps
                    .iter()
                    .map(|s| (s.phase.as_str(), s.commands.as_slice()))
                    .collect()
            };
            let sessions: Vec<Value> = plays
                .iter()
                .enumerate()
                .map(|(j, (phase, commands))| {
                    let at = t + j as Millis * 600_000;
                    let mut s = json!({
                        "session_id": format!("s-{}-{k}-{j}", &uuid[..8]),
                        "decky_id": decky,
                        "started_at": format_timestamp(at),
                        "ended_at": format_timestamp(at + 60_000),
                        "phase": phase,
                        "commands": commands,
                    });
                    if j == 0 {
                        s["credentials"] = json!(creds);
                    }
                    s
                })
                .collect();
            let last = t + (plays.len() as Millis - 1) * 600_000 + 60_000;
            Obs {
                uuid,
                ip: ip(rng),
                asn: n.asns[rng.random_range(0..n.asns.len())],
                first: t,
                last,
                fingerprints,
                sessions,
            }
        })
        .collect()
}
