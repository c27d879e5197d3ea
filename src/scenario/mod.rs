//! The scenario language: YAML files that describe campaigns of actors
//! (IP pools, ASNs, tooling, schedules with pauses, phases with commands,
//! credentials, payloads, C2, deckies, keystroke rhythm) and populations of
//! noise scanners, plus how the evidence is delivered (split, shuffled,
//! duplicated). [`generate`] turns a scenario into SPEC §4 input events with
//! truth labels, deterministically from its seed. The format is documented
//! in `scenarios/README.md`; the built-in scenarios are the files in
//! `scenarios/`, embedded at build time.

pub mod corpus;
pub mod generate;

pub use generate::{Generated, GeneratedEvent, Truth};

use serde::Deserialize;
use std::collections::BTreeMap;

/// A whole scenario file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The naive rule this scenario defeats.
    #[serde(default)]
    pub defeats: String,
    #[serde(default)]
    pub seed: u64,
    /// RFC 3339; every offset is relative to it.
    #[serde(default = "default_start")]
    pub start: String,
    #[serde(default)]
    pub campaigns: Vec<Campaign>,
    #[serde(default)]
    pub noise: Vec<Noise>,
    /// Other built-in scenarios whose campaigns and noise are included.
    #[serde(default)]
    pub include: Vec<String>,
    /// Adds this many noise scanners per actor observation (using the first
    /// noise population as the template).
    #[serde(default)]
    pub noise_per_actor_observation: u32,
    #[serde(default)]
    pub delivery: Delivery,
}

fn default_start() -> String {
    "2026-01-01T00:00:00Z".to_string()
}

/// One operation: the actors that work it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    pub label: String,
    pub actors: Vec<Actor>,
}

/// Client tooling fingerprints.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tooling {
    pub ja3: Option<String>,
    pub ja4: Option<String>,
    pub hassh: Option<String>,
}

/// A change of tooling from one observation on (a tool upgrade).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upgrade {
    /// Index of the first observation with the new tooling.
    pub at: usize,
    #[serde(flatten)]
    pub tooling: Tooling,
}

/// One phase step of an actor's playbook.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub phase: String,
    #[serde(default)]
    pub commands: Vec<String>,
    /// Report the phase as its ATT&CK tactic id instead of its UKC name.
    #[serde(default)]
    pub as_tactic: bool,
    /// The `SHA256:` fingerprint of the key the session authenticated with.
    pub auth_key: Option<String>,
    /// Fingerprints of keys the session added to `authorized_keys`.
    #[serde(default)]
    pub planted_keys: Vec<String>,
}

/// A silence in an actor's schedule.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    /// After this observation index.
    pub after: usize,
    /// Extra gap, e.g. `30d`, `6h`.
    pub gap: String,
}

/// One set of hands.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub label: String,
    /// Number of source IPs, i.e. observations.
    pub ips: usize,
    pub asns: Vec<u32>,
    #[serde(default)]
    pub tooling: Tooling,
    pub upgrade: Option<Upgrade>,
    /// When the first observation starts (offset from the scenario start).
    #[serde(default = "zero")]
    pub start: String,
    /// Time between consecutive observations.
    #[serde(default = "default_spacing")]
    pub spacing: String,
    #[serde(default)]
    pub pauses: Vec<Pause>,
    pub deckies: Vec<String>,
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Time between consecutive sessions of one observation.
    #[serde(default = "default_step_gap")]
    pub step_gap: String,
    #[serde(default)]
    pub credentials: Vec<(String, String)>,
    #[serde(default)]
    pub payloads: Vec<String>,
    #[serde(default)]
    pub c2: Vec<String>,
    /// 16 hex chars: the typist's keystroke digraph SimHash.
    pub simhash: Option<String>,
    /// Bits flipped at random per session.
    #[serde(default)]
    pub simhash_noise: u32,
}

fn zero() -> String {
    "0h".into()
}
fn default_spacing() -> String {
    "1h".into()
}
fn default_step_gap() -> String {
    "5m".into()
}

/// A population of unrelated scanners (each one its own identity and campaign).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Noise {
    pub label: String,
    pub count: usize,
    /// Shared library tooling; absent → each scanner gets unique tooling.
    pub library: Option<Tooling>,
    /// Credentials are drawn from this list.
    #[serde(default)]
    pub wordlist: Vec<(String, String)>,
    #[serde(default = "three")]
    pub credentials_per_scanner: usize,
    pub asns: Vec<u32>,
    pub deckies: Vec<String>,
    #[serde(default = "discovery")]
    pub phase: String,
    #[serde(default)]
    pub commands: Vec<String>,
    /// When the first scanner may arrive (offset from the scenario start).
    #[serde(default = "zero")]
    pub start: String,
    /// Scanners arrive uniformly over this span.
    #[serde(default = "default_within")]
    pub within: String,
    /// A playbook every scanner of the population runs (one session per
    /// step, ten minutes apart); empty → a single session of `phase`.
    #[serde(default)]
    pub steps: Vec<Step>,
}

fn three() -> usize {
    3
}
fn discovery() -> String {
    "discovery".into()
}
fn default_within() -> String {
    "7d".into()
}

/// How the evidence reaches the stream.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// Fingerprints and sessions arrive as separate events.
    #[serde(default)]
    pub split_evidence: bool,
    #[serde(default)]
    pub shuffle: bool,
    /// Share of events replayed a second time (0..=1).
    #[serde(default)]
    pub duplicate: f64,
}

/// Why a scenario file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario YAML: {0}")]
    Yaml(String),
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
    #[error("include: unknown built-in scenario `{0}`")]
    UnknownInclude(String),
}

fn bad(path: impl Into<String>, problem: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        path: path.into(),
        problem: problem.into(),
    }
}

/// Parses a duration like `90s`, `15m`, `6h`, `3d`, `2d6h` into milliseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut num = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !num.is_empty() || s.trim().is_empty() {
        return None;
    }
    Some(total)
}

const BUILTINS: &[(&str, &str)] = &[
    (
        "shared_wordlist",
        include_str!("../../scenarios/shared_wordlist.yaml"),
    ),
    (
        "vpn_hopping",
        include_str!("../../scenarios/vpn_hopping.yaml"),
    ),
    ("lone_wolf", include_str!("../../scenarios/lone_wolf.yaml")),
    (
        "paused_campaign",
        include_str!("../../scenarios/paused_campaign.yaml"),
    ),
    (
        "multi_operator",
        include_str!("../../scenarios/multi_operator.yaml"),
    ),
    ("slow_burn", include_str!("../../scenarios/slow_burn.yaml")),
    (
        "all_with_noise",
        include_str!("../../scenarios/all_with_noise.yaml"),
    ),
    (
        "common_library",
        include_str!("../../scenarios/common_library.yaml"),
    ),
    ("botnet", include_str!("../../scenarios/botnet.yaml")),
    (
        "tool_upgrade",
        include_str!("../../scenarios/tool_upgrade.yaml"),
    ),
    (
        "partial_evidence",
        include_str!("../../scenarios/partial_evidence.yaml"),
    ),
    (
        "handoff_no_infra",
        include_str!("../../scenarios/handoff_no_infra.yaml"),
    ),
    (
        "same_decky_unrelated",
        include_str!("../../scenarios/same_decky_unrelated.yaml"),
    ),
    (
        "busy_fleet",
        include_str!("../../scenarios/busy_fleet.yaml"),
    ),
    (
        "keystroke_pair",
        include_str!("../../scenarios/keystroke_pair.yaml"),
    ),
    (
        "planted_key_handoff",
        include_str!("../../scenarios/planted_key_handoff.yaml"),
    ),
    (
        "scanner_noise_handoff",
        include_str!("../../scenarios/scanner_noise_handoff.yaml"),
    ),
    (
        "small_library_scanners",
        include_str!("../../scenarios/small_library_scanners.yaml"),
    ),
    (
        "behaviour_only_operator",
        include_str!("../../scenarios/behaviour_only_operator.yaml"),
    ),
    (
        "key_operator_libraries",
        include_str!("../../scenarios/key_operator_libraries.yaml"),
    ),
];

/// Names of the built-in scenarios.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|b| b.0).collect()
}

/// A built-in scenario by name (includes resolved).
pub fn builtin(name: &str) -> Option<Scenario> {
    let text = BUILTINS.iter().find(|b| b.0 == name)?.1;
    Scenario::from_yaml(text).ok()
}

impl Scenario {
    /// Parses and validates a scenario, resolving `include:` against the
    /// built-ins.
    pub fn from_yaml(text: &str) -> Result<Scenario, ScenarioError> {
        let mut s: Scenario =
            serde_yaml_ng::from_str(text).map_err(|e| ScenarioError::Yaml(e.to_string()))?;
        for name in std::mem::take(&mut s.include) {
            let text = BUILTINS
                .iter()
                .find(|b| b.0 == name)
                .ok_or_else(|| ScenarioError::UnknownInclude(name.clone()))?
                .1;
            let inc = Scenario::from_yaml(text)?;
            for mut c in inc.campaigns {
                c.label = format!("{name}/{}", c.label);
                s.campaigns.push(c);
            }
            for mut n in inc.noise {
                n.label = format!("{name}/{}", n.label);
                s.noise.push(n);
            }
        }
        if s.noise_per_actor_observation > 0 {
            let actor_obs: usize = s
                .campaigns
                .iter()
                .flat_map(|c| &c.actors)
                .map(|a| a.ips)
                .sum();
            let template = s.noise.first().cloned().ok_or_else(|| {
                bad(
                    "noise_per_actor_observation",
                    "needs a noise population as template",
                )
            })?;
            s.noise.push(Noise {
                label: format!("{}-extra", template.label),
                count: actor_obs * s.noise_per_actor_observation as usize,
                ..template
            });
        }
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        if chrono::DateTime::parse_from_rfc3339(&self.start).is_err() {
            return Err(bad("start", "must be an RFC 3339 timestamp"));
        }
        if !(0.0..=1.0).contains(&self.delivery.duplicate) {
            return Err(bad("delivery.duplicate", "must be between 0 and 1"));
        }
        let mut labels = BTreeMap::new();
        for (ci, c) in self.campaigns.iter().enumerate() {
            for (ai, a) in c.actors.iter().enumerate() {
                let p = format!("campaigns[{ci}].actors[{ai}]");
                if labels
                    .insert(format!("{}/{}", c.label, a.label), ())
                    .is_some()
                {
                    return Err(bad(&p, format!("duplicate actor label `{}`", a.label)));
                }
                if a.ips == 0 {
                    return Err(bad(format!("{p}.ips"), "must be at least 1"));
                }
                if a.asns.is_empty() {
                    return Err(bad(format!("{p}.asns"), "must not be empty"));
                }
                if a.deckies.is_empty() {
                    return Err(bad(format!("{p}.deckies"), "must not be empty"));
                }
                for (k, d) in [
                    ("start", &a.start),
                    ("spacing", &a.spacing),
                    ("step_gap", &a.step_gap),
                ] {
                    if parse_duration(d).is_none() {
                        return Err(bad(
                            format!("{p}.{k}"),
                            format!("`{d}` is not a duration like 6h or 2d6h"),
                        ));
                    }
                }
                for (i, pause) in a.pauses.iter().enumerate() {
                    if parse_duration(&pause.gap).is_none() {
                        return Err(bad(format!("{p}.pauses[{i}].gap"), "is not a duration"));
                    }
                }
                for (i, st) in a.steps.iter().enumerate() {
                    if crate::phase::Phase::from_name(&st.phase).is_none() {
                        return Err(bad(
                            format!("{p}.steps[{i}].phase"),
                            format!("unknown UKC phase `{}`", st.phase),
                        ));
                    }
                    for (k, key) in st.auth_key.iter().chain(&st.planted_keys).enumerate() {
                        if !is_key_fingerprint(key) {
                            let field = if st.auth_key.is_some() && k == 0 {
                                "auth_key".to_string()
                            } else {
                                format!("planted_keys[{}]", k - st.auth_key.is_some() as usize)
                            };
                            return Err(bad(
                                format!("{p}.steps[{i}].{field}"),
                                "must be `SHA256:` and 43 base64 characters",
                            ));
                        }
                    }
                }
                if let Some(h) = &a.simhash {
                    if u64::from_str_radix(h, 16).is_err() || h.len() != 16 {
                        return Err(bad(format!("{p}.simhash"), "must be 16 hex characters"));
                    }
                }
            }
        }
        for (i, n) in self.noise.iter().enumerate() {
            let p = format!("noise[{i}]");
            if n.asns.is_empty() || n.deckies.is_empty() {
                return Err(bad(&p, "asns and deckies must not be empty"));
            }
            if parse_duration(&n.within).is_none() {
                return Err(bad(format!("{p}.within"), "is not a duration"));
            }
            if parse_duration(&n.start).is_none() {
                return Err(bad(format!("{p}.start"), "is not a duration"));
            }
            if crate::phase::Phase::from_name(&n.phase).is_none() {
                return Err(bad(
                    format!("{p}.phase"),
                    format!("unknown UKC phase `{}`", n.phase),
                ));
            }
        }
        Ok(())
    }
}

/// Whether `k` is spelled as OpenSSH prints a key fingerprint (what the
/// input parser accepts, SPEC §4).
fn is_key_fingerprint(k: &str) -> bool {
    k.strip_prefix("SHA256:").is_some_and(|b| {
        b.len() == 43
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(90_000));
        assert_eq!(parse_duration("2d6h"), Some(2 * 86_400_000 + 6 * 3_600_000));
        assert_eq!(parse_duration("6"), None);
        assert_eq!(parse_duration("6y"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn every_builtin_parses() {
        for name in builtin_names() {
            let text = BUILTINS.iter().find(|b| b.0 == name).unwrap().1;
            let s = Scenario::from_yaml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.name, name);
            assert!(
                !s.defeats.is_empty(),
                "{name} must name the naive rule it defeats"
            );
        }
    }

    #[test]
    fn errors_are_clear() {
        let e = Scenario::from_yaml("name: x\ncampaigns: [{label: c, actors: [{label: a, ips: 0, asns: [1], deckies: [d]}]}]")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "campaigns[0].actors[0].ips: must be at least 1"
        );
        let e = Scenario::from_yaml("name: x\nbogus: 1").unwrap_err();
        assert!(e.to_string().contains("unknown field `bogus`"), "{e}");
        let e = Scenario::from_yaml("name: x\ncampaigns: [{label: c, actors: [{label: a, ips: 1, asns: [1], deckies: [d], steps: [{phase: discovery, planted_keys: [\"SHA256:short\"]}]}]}]")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "campaigns[0].actors[0].steps[0].planted_keys[0]: must be `SHA256:` and 43 base64 characters"
        );
        let e = Scenario::from_yaml("name: x\ninclude: [nope]").unwrap_err();
        assert!(e.to_string().contains("nope"));
    }
}
