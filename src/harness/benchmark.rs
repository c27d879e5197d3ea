//! The identity benchmark behind `clusterd bench`: full clustering of a
//! large synthetic corpus (interning, indexing and components) and the
//! latency of one new observation into the settled graph. Timings only;
//! the CLI adds memory figures.
//!
//! [`run_passes`] measures the daemon's steady state: a store settled by
//! both clusterers, then clustering passes over batches of new and changed
//! observations, split by phase (see [`PassTimings`]).

use crate::campaign::clusterer::{CampaignClusterer, CampaignComponents};
use crate::campaign::{CampaignGraph, CampaignWeights, IdentityRollup};
use crate::evidence::{Fingerprint, Observation, Session, Stamped, Sym};
use crate::identity::catalogue::Catalogue;
use crate::identity::clusterer::{Clusterer, ConnectedComponents, TickContext};
use crate::identity::{IdentityGraph, IdentityWeights};
use crate::phase::Phase;
use crate::scenario::corpus::stream_corpus;
use crate::store::{PassTimings, Store};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The figures of one run.
#[derive(Clone, Debug)]
pub struct BenchReport {
    pub observations: usize,
    pub identities: usize,
    /// Generating the corpus (streamed: never held whole).
    pub generate: Duration,
    /// Interning and indexing every observation.
    pub load: Duration,
    /// Components from scratch.
    pub cluster: Duration,
    pub incremental_samples: usize,
    pub incremental_median: Duration,
    pub incremental_p99: Duration,
}

/// Runs the benchmark on `observations` generated from `seed`.
pub fn run(
    observations: usize,
    seed: u64,
    incremental_samples: usize,
    mut progress: impl FnMut(&str),
) -> BenchReport {
    progress("generating and loading observations");
    let mut graph =
        IdentityGraph::new(IdentityWeights::default()).expect("default weights are valid");
    let mut load = Duration::ZERO;
    let started = Instant::now();
    stream_corpus(observations, seed, |o, _, _| {
        let t = Instant::now();
        graph.upsert(&o);
        load += t.elapsed();
    });
    let generate = started.elapsed().saturating_sub(load);
    progress("clustering");
    let t = Instant::now();
    let identities = graph.rebuild().len();
    let cluster = t.elapsed();
    progress("incremental updates");
    let mut samples = Vec::with_capacity(incremental_samples);
    for i in 0..incremental_samples {
        // Alternate between a new lone scanner and a new IP of an existing actor.
        let mut o = Observation::new(Sym::unique(&format!("bench-new-{i}")));
        let value = if i % 2 == 0 {
            format!("bench-unique-{i}")
        } else {
            format!("actor-ja3-{}", 2 + i * 7 % 1000)
        };
        o.fingerprints.insert(Fingerprint {
            kind: "ja3".into(),
            value: value.into(),
        });
        let t = Instant::now();
        graph.upsert(&o);
        graph.settle();
        samples.push(t.elapsed());
    }
    samples.sort();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    BenchReport {
        observations,
        identities,
        generate,
        load,
        cluster,
        incremental_samples,
        incremental_median: at(0.5),
        incremental_p99: at(0.99),
    }
}

/// Roll-ups of `identities` synthetic identities: the benchmark corpus's
/// truth groups (lone scanners, rotating actors, botnets), rolled up.
pub fn corpus_rollups(identities: usize, seed: u64) -> Vec<(String, IdentityRollup)> {
    let mut out: Vec<(String, IdentityRollup)> = Vec::with_capacity(identities);
    let mut current: Option<String> = None;
    let mut members: Vec<Observation> = Vec::new();
    // Generous upper bound on observations; stops early once enough groups closed.
    let mut done = false;
    stream_corpus(identities * 8, seed, |o, label, _| {
        if done {
            return;
        }
        if current.as_deref() != Some(label) {
            if let Some(l) = current.take() {
                out.push((
                    l,
                    IdentityRollup::from_observations(members.iter(), &Catalogue::embedded()),
                ));
                members.clear();
                done = out.len() == identities;
            }
            current = Some(label.to_string());
        }
        members.push(o);
    });
    if !done {
        if let Some(l) = current {
            out.push((
                l,
                IdentityRollup::from_observations(members.iter(), &Catalogue::embedded()),
            ));
        }
    }
    out
}

/// The campaign benchmark: rebuild over `identities` roll-ups.
#[derive(Clone, Debug)]
pub struct CampaignBenchReport {
    pub identities: usize,
    pub campaigns: usize,
    pub rollup: Duration,
    pub cluster: Duration,
}

/// Clusters `identities` synthetic identities into campaigns.
pub fn run_campaigns(identities: usize, seed: u64) -> CampaignBenchReport {
    let t = Instant::now();
    let rollups = corpus_rollups(identities, seed);
    let rollup = t.elapsed();
    let t = Instant::now();
    let mut g = CampaignGraph::new(CampaignWeights::default()).expect("default weights are valid");
    for (id, r) in rollups {
        g.upsert(&id, r);
    }
    let campaigns = g.rebuild().len();
    CampaignBenchReport {
        identities: g.len(),
        campaigns,
        rollup,
        cluster: t.elapsed(),
    }
}

/// A store settled by both clusterers, ready for clustering passes over
/// small batches (the daemon's steady state).
pub struct SettledStore {
    pub store: Store,
    pub identities: ConnectedComponents,
    pub campaigns: CampaignComponents,
    /// The tooling fingerprint of every rotating actor of the corpus.
    actor_ja3: Vec<String>,
    observations: usize,
    next_id: u64,
    next_batch: u64,
    rng: ChaCha8Rng,
    /// Time the settling took (both full passes, journal dropped).
    pub settle: Duration,
}

/// One clustering pass over a batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct PassSample {
    /// Folding the batch into the stored observations.
    pub merge: Duration,
    pub timings: PassTimings,
    /// Taking the journal.
    pub journal: Duration,
    pub events: usize,
    pub identity_rows: usize,
    pub campaign_rows: usize,
}

impl PassSample {
    /// The clustering pass: both ticks and the journal (not the merge).
    pub fn pass(&self) -> Duration {
        self.timings.total() + self.journal
    }
}

const BENCH_T0: i64 = 1_767_225_600_000;
const BENCH_YEAR_MS: i64 = 365 * 86_400_000;

impl SettledStore {
    /// Generates `observations` from `seed` into a store and runs both
    /// clusterers' full first pass over it.
    pub fn new(observations: usize, seed: u64) -> SettledStore {
        let mut store = Store::default();
        let mut actor_ja3 = BTreeSet::new();
        stream_corpus(observations, seed, |o, _, _| {
            for fp in &o.fingerprints {
                if fp.value.starts_with("actor-ja3-") {
                    actor_ja3.insert(fp.value.clone());
                }
            }
            store.observations.insert(o.uuid.clone(), Box::new(o));
        });
        let mut s = SettledStore {
            store,
            identities: ConnectedComponents::new(IdentityWeights::default())
                .expect("default weights are valid"),
            campaigns: CampaignComponents::new(CampaignWeights::default())
                .expect("default weights are valid"),
            actor_ja3: actor_ja3.into_iter().map(String::from).collect(),
            observations,
            next_id: 0,
            next_batch: 0,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x7a11),
            settle: Duration::ZERO,
        };
        let t = Instant::now();
        s.pass(&[]);
        s.settle = t.elapsed();
        s
    }

    /// Merges `batch` into the store and runs one pass (both ticks, then the
    /// journal is taken and dropped).
    pub fn pass(&mut self, batch: &[Observation]) -> PassSample {
        let t = Instant::now();
        for o in batch {
            self.store.merge_observation(o);
        }
        let merge = t.elapsed();
        self.store.timings = PassTimings::default();
        let next_id = &mut self.next_id;
        let mut new_id = || {
            *next_id += 1;
            format!("bench-id-{next_id:012}")
        };
        let mut ctx = TickContext {
            now: BENCH_T0 + BENCH_YEAR_MS,
            new_id: &mut new_id,
        };
        self.identities
            .tick(&mut self.store, &mut ctx)
            .expect("identity tick");
        self.campaigns
            .tick(&mut self.store, &mut ctx)
            .expect("campaign tick");
        let t = Instant::now();
        let journal = self.store.take_journal();
        let journal_time = t.elapsed();
        let sample = PassSample {
            merge,
            timings: self.store.timings,
            journal: journal_time,
            events: journal.events.len(),
            identity_rows: journal.identities.len() + journal.identity_campaigns.len(),
            campaign_rows: journal.campaigns.len(),
        };
        drop(journal);
        sample
    }

    /// Generates a batch of `n` and runs a pass over it.
    pub fn next_pass(&mut self, n: usize) -> PassSample {
        let b = self.batch(n);
        self.pass(&b)
    }

    /// A batch of `n` new or changed observations, the daemon's mix: half
    /// new scanners (on a library fingerprint or unique tooling), a quarter
    /// new IPs of existing rotating actors, a quarter new sessions on stored
    /// observations.
    pub fn batch(&mut self, n: usize) -> Vec<Observation> {
        self.next_batch += 1;
        let b = self.next_batch;
        let rng = &mut self.rng;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let t = BENCH_T0 + rng.random_range(0..BENCH_YEAR_MS);
            let decky = format!("decky-{:03}", rng.random_range(0..200u32));
            let roll = rng.random_range(0..4u32);
            if roll == 3 && self.observations > 0 {
                // A new session on a stored observation.
                let index = rng.random_range(0..self.observations);
                let mut o = Observation::new(Sym::unique(&format!("obs-{index:08}")));
                let id = format!("bench-s{b}-{i}");
                o.sessions.join(Session {
                    session_id: id.into(),
                    decky_id: Some(decky.into()),
                    started_at: Some(t),
                    ended_at: Some(t + 120_000),
                    phase: Some(Phase::Discovery),
                    commands: ["uname -a".into()].into_iter().collect(),
                    ..Default::default()
                });
                out.push(o);
                continue;
            }
            let mut o = Observation::new(Sym::unique(&format!("bench-obs-{b}-{i}")));
            o.first_seen = Some(t);
            o.last_seen = Some(t + 300_000);
            o.ip = Some(Stamped {
                at: t,
                value: Sym::unique(&format!("203.0.{}.{}", (i >> 8) & 255, i & 255)),
            });
            o.asn = Some(Stamped {
                at: t,
                value: 64_512 + rng.random_range(0..2_000u32),
            });
            let mut s = Session {
                session_id: "s0".into(),
                decky_id: Some(decky.into()),
                started_at: Some(t),
                ended_at: Some(t + 120_000),
                phase: Some(Phase::Discovery),
                ..Default::default()
            };
            let actor = (roll == 2 && !self.actor_ja3.is_empty())
                .then(|| self.actor_ja3[rng.random_range(0..self.actor_ja3.len())].clone());
            match actor {
                Some(ja3) => {
                    o.fingerprints.insert(Fingerprint {
                        kind: "ja3".into(),
                        value: ja3.into(),
                    });
                    s.commands.insert("id".into());
                }
                None => {
                    let (ja3, hassh) = if rng.random_bool(0.5) {
                        let l = rng.random_range(0..5u32);
                        (format!("lib-ja3-{l}"), format!("lib-hassh-{l}"))
                    } else {
                        (format!("bench-ja3-{b}-{i}"), format!("bench-hassh-{b}-{i}"))
                    };
                    o.fingerprints.insert(Fingerprint {
                        kind: "ja3".into(),
                        value: ja3.into(),
                    });
                    o.fingerprints.insert(Fingerprint {
                        kind: "hassh".into(),
                        value: hassh.into(),
                    });
                    for _ in 0..3 {
                        let w = rng.random_range(0..200u32);
                        s.credentials
                            .insert((format!("user{}", w % 20).into(), format!("pass{w}").into()));
                    }
                    s.commands.insert("uname -a".into());
                }
            }
            o.sessions.join(s);
            out.push(o);
        }
        out
    }
}

/// Per-phase figures of the passes over one batch size.
#[derive(Clone, Debug)]
pub struct PassBatchReport {
    pub batch: usize,
    pub samples: Vec<PassSample>,
}

impl PassBatchReport {
    fn quantile(mut v: Vec<Duration>, q: f64) -> Duration {
        v.sort();
        v.get(((v.len().max(1) - 1) as f64 * q).round() as usize)
            .copied()
            .unwrap_or_default()
    }

    /// (phase name, median, mean) in pass order, then the whole pass.
    pub fn phases(&self) -> Vec<(&'static str, Duration, Duration)> {
        let n = self.samples.len().max(1) as u32;
        let mut names: Vec<&'static str> = vec!["merge batch"];
        names.extend(PassTimings::default().phases().iter().map(|p| p.0));
        names.push("take journal");
        names.push("pass (ticks+journal)");
        (0..names.len())
            .map(|i| {
                let v: Vec<Duration> = self
                    .samples
                    .iter()
                    .map(|s| match i {
                        0 => s.merge,
                        i if i <= 7 => s.timings.phases()[i - 1].1,
                        8 => s.journal,
                        _ => s.pass(),
                    })
                    .collect();
                let mean = v.iter().sum::<Duration>() / n;
                (names[i], Self::quantile(v, 0.5), mean)
            })
            .collect()
    }

    pub fn pass_max(&self) -> Duration {
        self.samples
            .iter()
            .map(PassSample::pass)
            .max()
            .unwrap_or_default()
    }
}

/// The pass benchmark at one store size.
#[derive(Clone, Debug)]
pub struct PassBenchReport {
    pub observations: usize,
    pub identities: usize,
    pub campaigns: usize,
    pub settle: Duration,
    pub batches: Vec<PassBatchReport>,
}

impl std::fmt::Display for PassBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        writeln!(
            f,
            "clustering pass over a settled store: {} observations, {} identities, {} campaigns (settled in {:.1} s)",
            self.observations,
            self.identities,
            self.campaigns,
            self.settle.as_secs_f64()
        )?;
        for b in &self.batches {
            let mean = |g: fn(&PassSample) -> usize| {
                b.samples.iter().map(g).sum::<usize>() as f64 / b.samples.len().max(1) as f64
            };
            writeln!(
                f,
                "  batch {} ({} passes; per pass {:.0} events, {:.0} identity rows, {:.0} campaign rows written)",
                b.batch,
                b.samples.len(),
                mean(|s| s.events),
                mean(|s| s.identity_rows),
                mean(|s| s.campaign_rows)
            )?;
            writeln!(
                f,
                "    {:<22} {:>10} {:>10}",
                "phase", "median ms", "mean ms"
            )?;
            for (name, median, mean) in b.phases() {
                writeln!(f, "    {name:<22} {:>10.3} {:>10.3}", ms(median), ms(mean))?;
            }
            writeln!(f, "    {:<22} {:>10.3}", "pass max", ms(b.pass_max()))?;
        }
        Ok(())
    }
}

/// Settles `observations` from `seed`, then runs `passes` passes for each
/// batch size (after one warm-up pass each).
pub fn run_passes(
    observations: usize,
    seed: u64,
    batches: &[usize],
    passes: usize,
    mut progress: impl FnMut(&str),
) -> PassBenchReport {
    progress("generating and settling the store");
    let mut s = SettledStore::new(observations, seed);
    passes_over(&mut s, batches, passes, progress)
}

/// [`run_passes`] over an already settled store.
pub fn passes_over(
    s: &mut SettledStore,
    batches: &[usize],
    passes: usize,
    mut progress: impl FnMut(&str),
) -> PassBenchReport {
    let mut out = Vec::new();
    for &n in batches {
        progress(&format!("passes over batches of {n}"));
        s.next_pass(n);
        let samples = (0..passes).map(|_| s.next_pass(n)).collect();
        out.push(PassBatchReport { batch: n, samples });
    }
    PassBenchReport {
        observations: s.observations,
        identities: s.store.identity_members.len(),
        campaigns: s.campaigns.graph().campaigns().len(),
        settle: s.settle,
        batches: out,
    }
}

/// One size of the side-by-side run: the reference design's all-pairs
/// identity rule ([`crate::harness::reference::all_pairs_components`]) and
/// ours (indexed graph: upsert every observation, then components), timed
/// on the same corpus.
#[derive(Clone, Debug)]
pub struct ReferenceRow {
    pub observations: usize,
    pub ours: Duration,
    pub reference: Duration,
    pub identities: usize,
    /// Both found exactly the same identities (member sets).
    pub agree: bool,
}

impl ReferenceRow {
    /// How many times longer the all-pairs rule took.
    pub fn ratio(&self) -> f64 {
        self.reference.as_secs_f64() / self.ours.as_secs_f64().max(1e-9)
    }
}

/// Times ours beside the all-pairs reference on the benchmark corpus of
/// each size (seed `seed`), checking that both find the same identities.
pub fn run_reference(sizes: &[usize], seed: u64) -> Vec<ReferenceRow> {
    use crate::harness::reference::all_pairs_components;
    use crate::identity::decisions::Decisions;
    sizes
        .iter()
        .map(|&n| {
            let mut corpus = Vec::with_capacity(n);
            stream_corpus(n, seed, |o, _, _| corpus.push(o));
            let weights = IdentityWeights::default();
            let t = Instant::now();
            let mut graph = IdentityGraph::new(weights.clone()).expect("default weights are valid");
            for o in &corpus {
                graph.upsert(o);
            }
            let computed = graph.rebuild();
            let ours = t.elapsed();
            let t = Instant::now();
            let reference = all_pairs_components(&corpus, &weights, &Decisions::default());
            let reference_took = t.elapsed();
            let mut mine: Vec<Vec<String>> = computed
                .into_iter()
                .map(|c| {
                    let mut m: Vec<String> = c.members.iter().map(|m| m.to_string()).collect();
                    m.sort();
                    m
                })
                .collect();
            mine.sort();
            ReferenceRow {
                observations: n,
                ours,
                reference: reference_took,
                identities: mine.len(),
                agree: mine == reference,
            }
        })
        .collect()
}
