use decnet_clusterd::evidence::{Fingerprint, Observation, Session, Stamped};
use decnet_clusterd::identity::{IdentityGraph, IdentityWeights};
use decnet_clusterd::phase::Phase;
use rand::{Rng, SeedableRng};
use std::time::Instant;
fn fp(k: &str, v: String) -> Fingerprint {
    Fingerprint {
        kind: k.into(),
        value: v,
    }
}
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut obs = Vec::with_capacity(n);
    let t = Instant::now();
    let mut actor = 0;
    while obs.len() < n {
        if rng.random_bool(0.8) {
            let i = obs.len();
            let mut o = Observation::new(format!("obs-{i:08}"));
            if rng.random_bool(0.5) {
                let l = rng.random_range(0..5);
                o.fingerprints.insert(fp("ja3", format!("lib{l}")));
                o.fingerprints.insert(fp("hassh", format!("libh{l}")));
            } else {
                o.fingerprints.insert(fp("ja3", format!("u{i}")));
            }
            o.asn = Some(Stamped {
                at: 0,
                value: rng.random_range(0..2000),
            });
            let mut s = Session {
                session_id: "s".into(),
                phase: Some(Phase::Discovery),
                ..Default::default()
            };
            for _ in 0..3 {
                s.credentials
                    .insert((format!("u{}", rng.random_range(0..50)), "x".into()));
            }
            s.commands.insert("uname -a".into());
            o.sessions.insert("s".into(), s);
            obs.push(o);
        } else {
            actor += 1;
            let k = rng.random_range(5..40);
            for _ in 0..k {
                let i = obs.len();
                let mut o = Observation::new(format!("obs-{i:08}"));
                o.fingerprints.insert(fp("ja3", format!("a{actor}")));
                if rng.random_bool(0.5) {
                    o.fingerprints.insert(fp("hassh", "libh0".into()));
                }
                let mut s = Session {
                    session_id: "s".into(),
                    phase: Some(Phase::Discovery),
                    ..Default::default()
                };
                s.payload_hashes.insert(format!("p{actor}"));
                s.c2_endpoints.insert(format!("c{actor}"));
                s.commands.insert(format!("cmd{actor}"));
                s.commands.insert("id".into());
                o.sessions.insert("s".into(), s);
                obs.push(o);
            }
        }
    }
    eprintln!("generated {} in {:?}", obs.len(), t.elapsed());
    let t = Instant::now();
    let mut g = IdentityGraph::new(IdentityWeights::default()).unwrap();
    for o in &obs {
        g.upsert(o);
    }
    let t_up = t.elapsed();
    let ids = g.rebuild();
    eprintln!(
        "upsert {:?}, total incl rebuild {:?}: {} identities",
        t_up,
        t.elapsed(),
        ids.len()
    );
    let mut lat = Vec::new();
    for i in 0..1000 {
        let mut o = Observation::new(format!("new-{i}"));
        o.fingerprints.insert(fp("ja3", format!("a{}", i % 50 + 1)));
        let t = Instant::now();
        g.upsert(&o);
        g.settle();
        lat.push(t.elapsed());
    }
    lat.sort();
    eprintln!("incremental median {:?} p99 {:?}", lat[500], lat[990]);
}
