//! Human-readable rendering for the terminal. Attacker-supplied strings are
//! escaped (control characters, quotes) and shortened before printing.

use decnet_clusterd::campaign::{CampaignGraph, CampaignPairScore};
use decnet_clusterd::evidence::PhaseSource;
use decnet_clusterd::identity::IdentityGraph;
use decnet_clusterd::metrics::{format_table, Scores};
use decnet_clusterd::phase::Phase;
use decnet_clusterd::store::Store;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Escapes and shortens an attacker-supplied string for a terminal.
pub fn clean(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).flat_map(char::escape_debug).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// Observations of each effective identity.
fn members_by_identity(store: &Store) -> BTreeMap<String, Vec<&str>> {
    let mut by: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for o in store.observations.keys() {
        if let Some(i) = store.effective_identity(o) {
            by.entry(i).or_default().push(o);
        }
    }
    by
}

/// A phase as the CLI prints it wherever it prints one (SPEC §4): its name
/// and where it came from, `discovery (sensor)`, `discovery (inferred)`, or
/// both when sessions disagree, `discovery (sensor, inferred)`.
pub fn phase_with_source(name: &str, sources: &BTreeSet<PhaseSource>) -> String {
    let s: Vec<&str> = sources.iter().map(|s| s.as_str()).collect();
    if s.is_empty() {
        name.to_string()
    } else {
        format!("{name} ({})", s.join(", "))
    }
}

/// ASNs and kill-chain phases (in chain order, each with its sources) of
/// some observations.
fn asns_and_phases(store: &Store, members: &[&str]) -> (String, String) {
    let obs: Vec<_> = members
        .iter()
        .filter_map(|m| store.observations.get(*m))
        .collect();
    let asns: BTreeSet<u32> = obs.iter().filter_map(|o| o.asn()).collect();
    // Phase's Ord is kill-chain order, not alphabetical.
    let mut phases: BTreeMap<Phase, BTreeSet<PhaseSource>> = BTreeMap::new();
    for sess in obs.iter().flat_map(|o| o.sessions.values()) {
        let Some(source) = sess.phase_source() else {
            continue;
        };
        for p in sess.first_phase().into_iter().chain(sess.last_phase()) {
            phases.entry(p).or_default().insert(source);
        }
    }
    (
        asns.iter()
            .map(|a| format!("AS{a}"))
            .collect::<Vec<_>>()
            .join(" "),
        phases
            .iter()
            .map(|(p, sources)| phase_with_source(p.name(), sources))
            .collect::<Vec<_>>()
            .join(" → "),
    )
}

/// Where a campaign hand-off's two phases came from: the sessions on its
/// decky of the identity that handed off whose last phase is `from_phase`,
/// and of the other identity whose first phase is `to_phase`. `sensor` when
/// any such session has the sensor's phase, `inferred` when all were
/// inferred, `unknown` when none is stored any more. `a` and `b` are the
/// pair's identities; `None` without a hand-off.
pub fn handoff_sources(
    store: &Store,
    a: &str,
    b: &str,
    score: &CampaignPairScore,
) -> Option<(&'static str, &'static str)> {
    let h = score.handoff_detail.as_ref()?;
    let to = if h.from == a { b } else { a };
    let source = |identity: &str, phase: &str, last: bool| -> &'static str {
        let mut seen = None;
        for o in store.observations.iter().filter_map(|(uuid, o)| {
            (store.effective_identity(uuid).as_deref() == Some(identity)).then_some(o)
        }) {
            for s in o.sessions.values() {
                let p = if last {
                    s.last_phase()
                } else {
                    s.first_phase()
                };
                if s.decky_id.as_deref() != Some(h.decky.as_str())
                    || p.map(|p| p.name()) != Some(phase)
                {
                    continue;
                }
                match s.phase_source() {
                    Some(PhaseSource::Sensor) => return PhaseSource::Sensor.as_str(),
                    Some(PhaseSource::Inferred) => seen = Some(PhaseSource::Inferred.as_str()),
                    None => {}
                }
            }
        }
        seen.unwrap_or("unknown")
    };
    Some((
        source(&h.from, &h.from_phase, true),
        source(to, &h.to_phase, false),
    ))
}

/// Adds `from_phase_source` and `to_phase_source` to the `handoff_detail`
/// of a campaign edge's evidence (JSON), as `--json` output carries them.
pub fn with_handoff_sources(store: &Store, a: &str, b: &str, evidence: &mut Value) {
    let Ok(score) = serde_json::from_value::<CampaignPairScore>(evidence.clone()) else {
        return;
    };
    if let (Some(d), Some((from, to))) = (
        evidence
            .pointer_mut("/handoff_detail")
            .and_then(Value::as_object_mut),
        handoff_sources(store, a, b, &score),
    ) {
        d.insert("from_phase_source".into(), Value::from(from));
        d.insert("to_phase_source".into(), Value::from(to));
    }
}

/// The sources [`with_handoff_sources`] added to an edge's evidence.
pub fn handoff_sources_of(evidence: &Value) -> Option<(&str, &str)> {
    let d = evidence.get("handoff_detail")?;
    Some((
        d["from_phase_source"].as_str()?,
        d["to_phase_source"].as_str()?,
    ))
}

/// What holds an identity together, most frequent first.
fn identity_signals(graph: &IdentityGraph, member: &str) -> Vec<(String, usize)> {
    let mut signals: BTreeMap<String, usize> = BTreeMap::new();
    for e in graph.explain_identity(member).unwrap_or_default() {
        let key = e
            .explanation
            .high_signal
            .clone()
            .unwrap_or_else(|| "operator link".into());
        *signals.entry(key).or_default() += 1;
    }
    let mut v: Vec<_> = signals.into_iter().collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.1));
    v
}

/// One line per campaign edge: which signals tied the two identities;
/// the hand-off's phases with their sources ([`handoff_sources`]).
pub fn campaign_signal(s: &CampaignPairScore, sources: Option<(&str, &str)>) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &s.handoff_detail {
        let (from, to) = sources.unwrap_or(("unknown", "unknown"));
        parts.push(format!(
            "hand-off on {}: {} ({from}) → {} ({to}), {:.1} h later, weight {:.2}",
            clean(&h.decky, 40),
            h.from_phase,
            h.to_phase,
            h.gap_ms as f64 / 3_600_000.0,
            h.weight
        ));
    }
    if s.infra > 0.0 {
        let shared: Vec<String> = s.shared_infra.iter().map(|v| clean(v, 40)).collect();
        parts.push(format!(
            "shared infrastructure {} ({:.2})",
            shared.join(", "),
            s.infra
        ));
    }
    if s.rhythm > 0.0 {
        parts.push(format!(
            "keystroke rhythm {} bits apart ({:.2})",
            s.hamming.unwrap_or(0),
            s.rhythm
        ));
    }
    if s.overlap > 0.0 {
        parts.push(format!(
            "overlapping activity {:.0}% ({:.2})",
            s.overlap_share * 100.0,
            s.overlap
        ));
    }
    parts.join(" + ")
}

/// The demo summary.
pub fn summary(
    store: &Store,
    identities: &IdentityGraph,
    campaigns: &CampaignGraph,
    events: usize,
    quality: &[(String, Scores)],
    top: usize,
) -> String {
    let by_identity = members_by_identity(store);
    let mut by_campaign: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for id in by_identity.keys() {
        if let Some(c) = store.effective_campaign(id) {
            by_campaign.entry(c).or_default().push(id);
        }
    }
    let multi = by_identity.values().filter(|m| m.len() > 1).count();
    let multi_campaigns = by_campaign.values().filter(|m| m.len() > 1).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{events} events → {} observations → {} identities → {} campaigns\n({multi} identities span several IPs, {multi_campaigns} campaigns join several identities; the rest are lone scanners)\n",
        store.observations.len(),
        by_identity.len(),
        by_campaign.len()
    );
    let mut largest: Vec<(&String, &Vec<&String>)> = by_campaign.iter().collect();
    let size = |ids: &Vec<&String>| ids.iter().map(|i| by_identity[*i].len()).sum::<usize>();
    largest.sort_by(|a, b| {
        (b.1.len(), size(b.1))
            .cmp(&(a.1.len(), size(a.1)))
            .then(a.0.cmp(b.0))
    });
    let _ = writeln!(out, "Largest campaigns:");
    for (campaign, ids) in largest.into_iter().take(top) {
        let members: Vec<&str> = ids
            .iter()
            .flat_map(|i| by_identity[*i].iter().copied())
            .collect();
        let (asns, phases) = asns_and_phases(store, &members);
        let conf = store.campaigns.get(campaign).map_or(0.0, |r| r.confidence);
        let _ = writeln!(
            out,
            "  campaign {campaign}: {} identities, {} IPs, confidence {conf:.2}\n    ASNs {asns}\n    phases {phases}",
            ids.len(),
            members.len()
        );
        for (a, b, s) in campaigns.explain_campaign(ids[0]) {
            let _ = writeln!(
                out,
                "    …{} ↔ …{}: {}",
                &a[a.len().saturating_sub(6)..],
                &b[b.len().saturating_sub(6)..],
                campaign_signal(&s, handoff_sources(store, &a, &b, &s))
            );
        }
        for id in ids {
            let m = &by_identity[*id];
            let conf = store.identities.get(*id).map_or(0.0, |r| r.confidence);
            let tied: Vec<String> = identity_signals(identities, m[0])
                .into_iter()
                .take(2)
                .map(|(s, n)| format!("{} ×{n}", clean(&s, 48)))
                .collect();
            let tied = if tied.is_empty() {
                "a single observation".to_string()
            } else {
                format!("tied by {}", tied.join(", "))
            };
            let _ = writeln!(
                out,
                "    identity {id}: {} IPs, confidence {conf:.2}, {tied}",
                m.len()
            );
        }
    }
    let _ = writeln!(out, "\nQuality against the scenario's truth labels:\n");
    out.push_str(&format_table(quality));
    let _ = writeln!(
        out,
        "\nAlso: `clusterd score` scores every built-in scenario at both levels (`--list` lists them);\n`clusterd bench` and `clusterd bench-e2e` measure clustering speed."
    );
    out
}

/// One line per shared credential or command: its carriers and rarity, and
/// why (`catalogue`: stock; `strength`: a guessable password; `count`).
fn behaviour_lines(
    out: &mut String,
    values: &[decnet_clusterd::identity::similarity::SharedValue],
) {
    for v in values {
        let why = match v.because.as_str() {
            "catalogue" => "stock (catalogue)".to_string(),
            "strength" => "guessable password".to_string(),
            _ => format!("on {} observations", v.carriers),
        };
        let _ = writeln!(
            out,
            "            {} {} {why} → rarity {:.2}",
            v.kind,
            clean(&v.value, 60),
            v.rarity
        );
    }
}

/// A readable rendering of a pair explanation.
pub fn pair(e: &decnet_clusterd::identity::PairExplanation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} vs {}", clean(&e.a, 64), clean(&e.b, 64));
    let _ = writeln!(
        out,
        "  high      {:.3}  {}",
        e.high,
        e.high_signal
            .as_deref()
            .map(|s| clean(s, 80))
            .unwrap_or_else(|| "-".into())
    );
    for t in &e.shared_tooling {
        let why = match &t.library {
            Some(lib) => format!("tooling (catalogue: {})", clean(lib, 40)),
            None => format!("on {} observations", t.carriers),
        };
        let _ = writeln!(
            out,
            "            shared {} {} {why} → rarity {:.2}, weight {:.2}",
            clean(&t.kind, 10),
            clean(&t.value, 60),
            t.rarity,
            t.weight
        );
    }
    for k in &e.shared_keys {
        let _ = writeln!(
            out,
            "            shared {} key {} on {} observations → rarity {:.2}",
            k.kind,
            clean(&k.value, 60),
            k.carriers,
            k.rarity
        );
    }
    if e.vetoed {
        let _ = writeln!(out, "            vetoed: both carry distinctive tooling and every common kind disagrees; shared payload/C2 and behaviour count nothing");
    }
    let _ = writeln!(
        out,
        "  medium    {:.3}  commands (rarity-weighted Jaccard)",
        e.medium
    );
    behaviour_lines(&mut out, &e.command_rarity);
    let _ = writeln!(
        out,
        "  low       {:.3}  {} shared credential pair{} (rarity-weighted Jaccard)",
        e.low,
        e.shared_credentials.len(),
        if e.shared_credentials.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    behaviour_lines(&mut out, &e.credential_rarity);
    let _ = writeln!(
        out,
        "  very low  {:.3}  {}",
        e.asn,
        e.same_asn
            .map(|a| format!("both AS{a}"))
            .unwrap_or_else(|| "-".into())
    );
    let _ = writeln!(
        out,
        "  total     {:.3} (threshold {:.2}) → {}",
        e.total,
        e.threshold,
        if e.edge {
            "edge: same hands"
        } else {
            "no edge"
        }
    );
    if let Some(d) = &e.decision {
        let _ = writeln!(out, "  operator decision: {d} (wins over evidence)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use decnet_clusterd::campaign::handoff::Handoff;
    use decnet_clusterd::evidence::{Observation, Session};

    /// Identity `i-a` (observation `o-a`: a sensor's phase on decky-1, an
    /// inferred one elsewhere) and `i-b` (`o-b`: an inferred phase on
    /// decky-1), one campaign.
    fn store() -> Store {
        let mut s = Store::default();
        let session = |id: &str, decky: &str, phase: Phase, inferred: bool| Session {
            session_id: id.into(),
            decky_id: Some(decky.into()),
            phase: Some(phase),
            phase_inferred: inferred,
            ..Default::default()
        };
        let mut a = Observation::new("o-a");
        a.sessions
            .join(session("s1", "decky-1", Phase::Discovery, false));
        a.sessions
            .join(session("s2", "decky-2", Phase::Exploitation, true));
        a.sessions
            .join(session("s3", "decky-3", Phase::Exploitation, false));
        let mut b = Observation::new("o-b");
        b.sessions
            .join(session("s4", "decky-1", Phase::Persistence, true));
        for (o, i) in [(a, "i-a"), (b, "i-b")] {
            s.identity_groups.direct.insert(o.uuid.clone(), i.into());
            s.identity_groups.groups.insert(i.into());
            s.observations.insert(o.uuid.clone(), Box::new(o));
        }
        s
    }

    #[test]
    fn every_phase_printed_says_its_source() {
        let s = store();
        let (_, phases) = asns_and_phases(&s, &["o-a", "o-b"]);
        assert_eq!(
            phases,
            "exploitation (sensor, inferred) → persistence (inferred) → discovery (sensor)"
        );
        let score = CampaignPairScore {
            handoff: 0.5,
            handoff_detail: Some(Handoff {
                decky: "decky-1".into(),
                from: "i-a".into(),
                from_phase: "discovery".into(),
                to_phase: "persistence".into(),
                gap_ms: 3_600_000,
                chance: 0.1,
                discount: 0.9,
                weight: 0.5,
            }),
            planted: 0.0,
            planted_detail: None,
            infra: 0.0,
            shared_infra: Vec::new(),
            overlap: 0.0,
            overlap_share: 0.0,
            cohort: 0.0,
            shared_cohort: Vec::new(),
            rhythm: 0.0,
            hamming: None,
            total: 0.5,
            threshold: 0.4,
            edge: true,
        };
        let sources = handoff_sources(&s, "i-b", "i-a", &score);
        assert_eq!(sources, Some(("sensor", "inferred")));
        assert_eq!(
            campaign_signal(&score, sources),
            "hand-off on decky-1: discovery (sensor) → persistence (inferred), 1.0 h later, weight 0.50"
        );
        // The JSON of an edge carries them, and the text read from it too.
        let mut evidence = serde_json::to_value(&score).unwrap();
        with_handoff_sources(&s, "i-a", "i-b", &mut evidence);
        assert_eq!(evidence["handoff_detail"]["from_phase_source"], "sensor");
        assert_eq!(handoff_sources_of(&evidence), Some(("sensor", "inferred")));
        // A phase no stored session shows any more is said to be unknown.
        let mut gone = score.clone();
        gone.handoff_detail.as_mut().unwrap().from_phase = "collection".into();
        assert_eq!(
            handoff_sources(&s, "i-a", "i-b", &gone),
            Some(("unknown", "inferred"))
        );
    }

    #[test]
    fn attacker_strings_are_escaped() {
        assert_eq!(clean("a\nb\"c\u{1b}[31m", 40), "a\\nb\\\"c\\u{1b}[31m");
        assert_eq!(clean("abcdef", 3), "abc…");
    }
}
