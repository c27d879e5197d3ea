//! A large synthetic corpus for benchmarks, built directly as observations
//! (no JSON): a realistic mix — mostly noise scanners (half on a few common
//! library fingerprints, half with unique tooling; wordlist credentials;
//! ASNs from a pool of 2,000), actors rotating through 5–40 IPs with a rare
//! fingerprint (half of them also carrying a common library HASSH), payloads
//! and C2 per actor, a few botnets of 60–500 bots, sessions on 200 deckies
//! over a year.

use super::Truth;
use crate::evidence::{Fingerprint, Observation, Session, Stamped, Sym};
use crate::phase::Phase;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const LIBRARIES: u32 = 5;
const WORDLIST: u32 = 200;
const ASNS: u32 = 2_000;
const DECKIES: u32 = 200;
const YEAR_MS: i64 = 365 * 86_400_000;
const T0: i64 = 1_767_225_600_000; // 2026-01-01

fn fp(kind: &str, value: String) -> Fingerprint {
    Fingerprint {
        kind: kind.into(),
        value: value.into(),
    }
}

fn session(id: &str, decky: u32, at: i64, phase: Phase) -> Session {
    Session {
        session_id: id.into(),
        decky_id: Some(format!("decky-{decky:03}").into()),
        started_at: Some(at),
        ended_at: Some(at + 120_000),
        phase: Some(phase),
        ..Default::default()
    }
}

/// `observations` observations and their identity/campaign truth.
pub fn large_corpus(observations: usize, seed: u64) -> (Vec<Observation>, Truth) {
    let mut out = Vec::with_capacity(observations);
    let mut truth = Truth::default();
    stream_corpus(observations, seed, |o, identity, campaign| {
        truth
            .identity
            .insert(o.uuid.to_string(), identity.to_string());
        truth
            .campaign
            .insert(o.uuid.to_string(), campaign.to_string());
        out.push(o);
    });
    (out, truth)
}

/// The same corpus, handed over one observation at a time (with its
/// identity and campaign labels) so a consumer never holds all of it: the
/// benchmark measures the clustering's memory, not the corpus's. A third of
/// the actors without library tooling share the C2 of the previous such
/// actor and its payload: two identities (their tooling disagrees, which
/// vetoes the shared infrastructure at identity level), one campaign.
pub fn stream_corpus(observations: usize, seed: u64, mut f: impl FnMut(Observation, &str, &str)) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut produced = 0usize;
    let mut group = 0u64;
    let mut open_campaign: Option<u64> = None;
    while produced < observations {
        group += 1;
        let roll: f64 = rng.random();
        let label = format!("g{group}");
        let mut campaign = label.clone();
        let members: Vec<Observation> = if roll < 0.8 {
            vec![noise(&mut rng, produced)]
        } else if roll < 0.9995 {
            let join = match open_campaign {
                Some(c) if rng.random_bool(0.33) => Some(c),
                _ => None,
            };
            let (members, plain) = actor(&mut rng, group, produced, join);
            match join {
                Some(c) => {
                    campaign = format!("g{c}");
                    open_campaign = None;
                }
                None if plain => open_campaign = Some(group),
                None => {}
            }
            members
        } else {
            botnet(&mut rng, group, produced)
        };
        for o in members {
            if produced == observations {
                break;
            }
            produced += 1;
            f(o, &label, &campaign);
        }
    }
}

fn base(rng: &mut ChaCha8Rng, index: usize) -> Observation {
    let mut o = Observation::new(Sym::unique(&format!("obs-{index:08}")));
    let t = T0 + rng.random_range(0..YEAR_MS);
    o.first_seen = Some(t);
    o.last_seen = Some(t + 300_000);
    o.ip = Some(Stamped {
        at: t,
        value: Sym::unique(&format!("198.18.{}.{}", (index >> 8) & 255, index & 255)),
    });
    o.asn = Some(Stamped {
        at: t,
        value: 64_512 + rng.random_range(0..ASNS),
    });
    o
}

fn noise(rng: &mut ChaCha8Rng, index: usize) -> Observation {
    let mut o = base(rng, index);
    if rng.random_bool(0.5) {
        let l = rng.random_range(0..LIBRARIES);
        o.fingerprints.insert(fp("ja3", format!("lib-ja3-{l}")));
        o.fingerprints.insert(fp("hassh", format!("lib-hassh-{l}")));
    } else {
        o.fingerprints
            .insert(fp("ja3", format!("uniq-ja3-{index}")));
        o.fingerprints
            .insert(fp("hassh", format!("uniq-hassh-{index}")));
    }
    let t = o.first_seen.unwrap_or(T0);
    let mut s = session("s0", rng.random_range(0..DECKIES), t, Phase::Discovery);
    for _ in 0..3 {
        let w = rng.random_range(0..WORDLIST);
        s.credentials
            .insert((format!("user{}", w % 20).into(), format!("pass{w}").into()));
    }
    s.commands.insert("uname -a".into());
    s.commands
        .insert(format!("cat /proc/cpuinfo #{}", rng.random_range(0..20)).into());
    o.sessions.join(s);
    o
}

/// An actor; with `join`, it shares that earlier actor's C2. Returns the
/// observations and whether the actor carries no library tooling (so a later
/// actor may join it without sharing a tooling value).
fn actor(
    rng: &mut ChaCha8Rng,
    group: u64,
    index: usize,
    join: Option<u64>,
) -> (Vec<Observation>, bool) {
    let ips = rng.random_range(5..=40);
    let common_hassh = if join.is_some() {
        None
    } else {
        rng.random_bool(0.5).then(|| rng.random_range(0..LIBRARIES))
    };
    let c2_group = join.unwrap_or(group);
    let deckies: Vec<u32> = (0..3).map(|_| rng.random_range(0..DECKIES)).collect();
    let simhash: u64 = rng.random();
    let start = T0 + rng.random_range(0..YEAR_MS);
    let members = (0..ips)
        .map(|i| {
            let mut o = base(rng, index + i);
            let t = start + i as i64 * 3_600_000;
            o.first_seen = Some(t);
            o.last_seen = Some(t + 900_000);
            o.fingerprints
                .insert(fp("ja3", format!("actor-ja3-{group}")));
            if let Some(l) = common_hassh {
                o.fingerprints.insert(fp("hassh", format!("lib-hassh-{l}")));
            }
            let decky = deckies[i % deckies.len()];
            for (j, phase) in [Phase::Discovery, Phase::Execution, Phase::Persistence]
                .into_iter()
                .enumerate()
            {
                let id = format!("s{j}");
                let mut s = session(&id, decky, t + j as i64 * 300_000, phase);
                s.commands.insert(format!("./stage{j}-{group}").into());
                s.commands.insert("id".into());
                s.kd_digraph_simhash = Some(simhash);
                if j == 2 {
                    s.extras
                        .payload_hashes
                        .insert(format!("payload-{c2_group}").into());
                    s.extras
                        .c2_endpoints
                        .insert(format!("c2-{c2_group}.example").into());
                }
                o.sessions.join(s);
            }
            o
        })
        .collect();
    (members, common_hassh.is_none())
}

fn botnet(rng: &mut ChaCha8Rng, group: u64, index: usize) -> Vec<Observation> {
    let bots = rng.random_range(60..=500);
    (0..bots)
        .map(|i| {
            let mut o = base(rng, index + i);
            o.fingerprints.insert(fp("ja3", format!("bot-ja3-{group}")));
            let t = o.first_seen.unwrap_or(T0);
            let mut s = session("s0", rng.random_range(0..DECKIES), t, Phase::Execution);
            s.extras
                .payload_hashes
                .insert(format!("bot-payload-{group}").into());
            s.extras
                .c2_endpoints
                .insert(format!("bot-c2-{group}.example").into());
            o.sessions.join(s);
            o
        })
        .collect()
}
