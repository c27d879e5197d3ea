//! The daemon's Prometheus metrics (SPEC §13): one registry per process,
//! the handles the actors update, and its rendering (`exposition.rs`).
//!
//! Every labelled series is created up front with a label value from a
//! fixed set (dead-letter reason classes, output streams, actors, states),
//! and its handle kept: updating a counter or gauge on the hot path is one
//! atomic operation, with no lookup, lock or allocation. Histograms take
//! an uncontended lock per observation, and are observed once per pass,
//! commit or batch, never per entry.

mod exposition;

pub use exposition::{openmetrics_to_text, sort_series, Format, OPENMETRICS, TEXT};

use super::workers;
use decnet_clusterd::evidence::event::EntryError;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels<const N: usize> = [(&'static str, &'static str); N];

/// Why an entry was dead-lettered, as a bounded label (the free-text
/// reason stays in the dead-letter stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadReason {
    TooLarge,
    MissingField,
    NotUtf8,
    InvalidJson,
    InvalidField,
    MaxDeliveries,
}

impl DeadReason {
    pub const ALL: [DeadReason; 6] = [
        DeadReason::TooLarge,
        DeadReason::MissingField,
        DeadReason::NotUtf8,
        DeadReason::InvalidJson,
        DeadReason::InvalidField,
        DeadReason::MaxDeliveries,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::TooLarge => "too_large",
            DeadReason::MissingField => "missing_field",
            DeadReason::NotUtf8 => "not_utf8",
            DeadReason::InvalidJson => "invalid_json",
            DeadReason::InvalidField => "invalid_field",
            DeadReason::MaxDeliveries => "max_deliveries",
        }
    }

    /// The class of a parse error (an unknown topic is not dead-lettered;
    /// should one get here it counts as an invalid field).
    pub fn of(e: &EntryError) -> DeadReason {
        match e {
            EntryError::TooLarge { .. } => DeadReason::TooLarge,
            EntryError::MissingField { .. } => DeadReason::MissingField,
            EntryError::NotUtf8 { .. } => DeadReason::NotUtf8,
            EntryError::InvalidJson(_) => DeadReason::InvalidJson,
            EntryError::Invalid { .. } | EntryError::UnknownTopic(_) => DeadReason::InvalidField,
        }
    }

    /// Its place in [`DeadReason::ALL`] (and in [`DeadCounts`]).
    pub fn index(self) -> usize {
        DeadReason::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Dead letters of one batch, per reason class.
pub type DeadCounts = [u64; DeadReason::ALL.len()];

/// The output streams whose events are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Identity,
    Campaign,
}

/// The clustering layers (dirty gauges, pass histograms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    Identity,
    Campaign,
}

/// The states an actor's gauge can be in: SPEC §6's, and `silent` for an
/// actor that did not answer the last ping (dead or wedged).
pub const STATES: [&str; 6] = [
    "running",
    "paused",
    "standby",
    "degraded",
    "restarting",
    "silent",
];

/// The actors with a restart counter and a state gauge.
pub const ACTORS: [&str; 6] = workers::ACTORS;

/// The registry and every handle into it.
pub struct Metrics {
    registry: Registry,
    pub read: Counter,
    pub ingested: Counter,
    pub unknown_topics: Counter,
    dead_lettered: Vec<Counter>,
    events: [Counter; 2],
    pub commits: Counter,
    pub refused: Counter,
    pub commit_failures: Counter,
    restarts: Vec<Counter>,
    pub identity_pass: Histogram,
    pub campaign_pass: Histogram,
    pub commit_seconds: Histogram,
    pub ingest_batch: Histogram,
    dirty: [Gauge; 2],
    pub lag: Gauge,
    pub observations: Gauge,
    pub identities: Gauge,
    pub campaigns: Gauge,
    pub leader: Gauge,
    /// Per actor (as [`ACTORS`]), per state (as [`STATES`]).
    states: Vec<Vec<Gauge>>,
}

/// Buckets from half a millisecond to about 33 s, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

fn counter(r: &mut Registry, name: &str, help: &str) -> Counter {
    let c = Counter::default();
    r.register(name, help, c.clone());
    c
}

fn gauge(r: &mut Registry, name: &str, help: &str) -> Gauge {
    let g = Gauge::default();
    r.register(name, help, g.clone());
    g
}

fn histogram(r: &mut Registry, name: &str, help: &str) -> Histogram {
    let h = seconds();
    r.register(name, help, h.clone());
    h
}

/// A family whose series are all created now, one per label value.
fn family<M>(
    r: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[&'static str],
) -> Vec<M>
where
    M: prometheus_client::encoding::EncodeMetric
        + prometheus_client::metrics::TypedMetric
        + Clone
        + Default
        + Send
        + Sync
        + std::fmt::Debug
        + 'static,
{
    let f = Family::<Labels<1>, M>::default();
    r.register(name, help, f.clone());
    values
        .iter()
        .map(|v| f.get_or_create(&[(label, *v)]).clone())
        .collect()
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let read = counter(
            &mut r,
            "clusterd_entries_read",
            "Input stream entries read (including entries read again after a failed commit)",
        );
        let ingested = counter(
            &mut r,
            "clusterd_entries_ingested",
            "Input entries merged into observations and committed",
        );
        let unknown_topics = counter(
            &mut r,
            "clusterd_unknown_topics",
            "Input entries with a topic the daemon does not know (acked, not dead-lettered)",
        );
        let reasons = DeadReason::ALL.map(DeadReason::as_str);
        let dead_lettered = family(
            &mut r,
            "clusterd_entries_dead_lettered",
            "Input entries moved to the dead-letter stream, by reason class",
            "reason",
            &reasons,
        );
        let streams = ["identity", "campaign"];
        let ev: Vec<Counter> = family(
            &mut r,
            "clusterd_events_published",
            "Lifecycle events committed to an output stream",
            "stream",
            &streams,
        );
        let commits = counter(
            &mut r,
            "clusterd_commits",
            "Fenced transactions committed by the Publisher",
        );
        let refused = counter(
            &mut r,
            "clusterd_commits_refused",
            "Commits refused because an earlier commit of the same state failed",
        );
        let commit_failures = counter(
            &mut r,
            "clusterd_commit_failures",
            "Commits that failed (Redis error, lost fence or injected fault)",
        );
        let restarts = family(
            &mut r,
            "clusterd_actor_restarts",
            "Restarts of an actor by its supervisor",
            "actor",
            &ACTORS,
        );
        let identity_pass = histogram(
            &mut r,
            "clusterd_identity_pass_seconds",
            "Identity clustering passes, from taking the state to their change set committed",
        );
        let campaign_pass = histogram(
            &mut r,
            "clusterd_campaign_pass_seconds",
            "Campaign clustering passes, from taking the state to their change set committed",
        );
        let commit_seconds = histogram(
            &mut r,
            "clusterd_commit_seconds",
            "Successful fenced commits, from their turn in the Publisher to Redis's answer",
        );
        let ingest_batch = histogram(
            &mut r,
            "clusterd_ingest_batch_seconds",
            "Ingest batches, from the read returning entries to their commit landing",
        );
        let dirty: Vec<Gauge> = family(&mut r, "clusterd_dirty", "Changes not yet clustered, per layer (observations for identity, identity passes for campaign)", "layer", &["identity", "campaign"]);
        let lag = gauge(
            &mut r,
            "clusterd_consumer_lag",
            "Input entries not yet delivered to the consumer group",
        );
        let observations = gauge(&mut r, "clusterd_observations", "Observations stored");
        let identities = gauge(&mut r, "clusterd_identities", "Identities (not merged out)");
        let campaigns = gauge(&mut r, "clusterd_campaigns", "Campaigns (not merged out)");
        let leader = gauge(
            &mut r,
            "clusterd_leader",
            "1 while this instance holds the leader lease, 0 as standby",
        );
        let f = Family::<Labels<2>, Gauge>::default();
        r.register(
            "clusterd_actor_state",
            "1 for the state each actor reported at the last heartbeat, 0 for the others",
            f.clone(),
        );
        let states = ACTORS
            .iter()
            .map(|a| {
                STATES
                    .iter()
                    .map(|s| f.get_or_create(&[("actor", *a), ("state", *s)]).clone())
                    .collect()
            })
            .collect();
        let [identity_events, campaign_events] = [ev[0].clone(), ev[1].clone()];
        let [identity_dirty, campaign_dirty] = [dirty[0].clone(), dirty[1].clone()];
        Metrics {
            registry: r,
            read,
            ingested,
            unknown_topics,
            dead_lettered,
            events: [identity_events, campaign_events],
            commits,
            refused,
            commit_failures,
            restarts,
            identity_pass,
            campaign_pass,
            commit_seconds,
            ingest_batch,
            dirty: [identity_dirty, campaign_dirty],
            lag,
            observations,
            identities,
            campaigns,
            leader,
            states,
        }
    }

    /// Counts a committed batch's dead letters.
    pub fn dead_lettered(&self, counts: &DeadCounts) {
        for (c, n) in self.dead_lettered.iter().zip(counts) {
            if *n > 0 {
                c.inc_by(*n);
            }
        }
    }

    pub fn events(&self, stream: Stream, n: u64) {
        let i = match stream {
            Stream::Identity => 0,
            Stream::Campaign => 1,
        };
        if n > 0 {
            self.events[i].inc_by(n);
        }
    }

    pub fn pass(&self, layer: Layer) -> &Histogram {
        match layer {
            Layer::Identity => &self.identity_pass,
            Layer::Campaign => &self.campaign_pass,
        }
    }

    pub fn dirty(&self, layer: Layer, n: u64) {
        let i = match layer {
            Layer::Identity => 0,
            Layer::Campaign => 1,
        };
        self.dirty[i].set(n.min(i64::MAX as u64) as i64);
    }

    /// Counts a restart of `actor` (a name of [`ACTORS`]; others are ignored).
    pub fn restarted(&self, actor: &str) {
        if let Some(i) = ACTORS.iter().position(|a| *a == actor) {
            self.restarts[i].inc();
        }
    }

    /// Sets `actor`'s state gauge: 1 for `state`, 0 for the others (an
    /// unknown state leaves every gauge 0).
    pub fn actor_state(&self, actor: &str, state: &str) {
        let Some(i) = ACTORS.iter().position(|a| *a == actor) else {
            return;
        };
        for (s, g) in STATES.iter().zip(&self.states[i]) {
            g.set(i64::from(*s == state));
        }
    }

    /// The stored counts (observations, live identities, live campaigns).
    pub fn counts(&self, observations: usize, identities: usize, campaigns: usize) {
        let n = |v: usize| v.min(i64::MAX as usize) as i64;
        self.observations.set(n(observations));
        self.identities.set(n(identities));
        self.campaigns.set(n(campaigns));
    }

    /// The registry in the OpenMetrics text format (ends with `# EOF`),
    /// each family's series in a stable order.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        exposition::sort_series(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample names the registry renders.
    fn names(m: &Metrics) -> std::collections::BTreeSet<String> {
        m.render()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_metric_the_dashboard_queries_is_rendered() {
        let dashboard = include_str!("../../../../config/grafana-dashboard.json");
        let rendered = names(&Metrics::new());
        let mut queried = 0;
        for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("clusterd_") {
                queried += 1;
                assert!(rendered.contains(word), "the dashboard queries {word}");
            }
        }
        assert!(queried > 20);
    }

    #[test]
    fn updates_land_in_their_series() {
        let m = Metrics::new();
        m.dead_lettered(&{
            let mut d = DeadCounts::default();
            d[DeadReason::InvalidJson.index()] = 2;
            d
        });
        m.events(Stream::Campaign, 3);
        m.restarted(workers::PUBLISHER);
        m.restarted("no-such-actor");
        m.actor_state(workers::CONTROL, "paused");
        m.dirty(Layer::Identity, 7);
        let text = m.render();
        for line in [
            "clusterd_entries_dead_lettered_total{reason=\"invalid_json\"} 2",
            "clusterd_entries_dead_lettered_total{reason=\"too_large\"} 0",
            "clusterd_events_published_total{stream=\"campaign\"} 3",
            "clusterd_events_published_total{stream=\"identity\"} 0",
            "clusterd_actor_restarts_total{actor=\"publisher\"} 1",
            "clusterd_actor_state{actor=\"control\",state=\"paused\"} 1",
            "clusterd_actor_state{actor=\"control\",state=\"running\"} 0",
            "clusterd_dirty{layer=\"identity\"} 7",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        assert_eq!(text, m.render(), "rendering is deterministic");
    }
}
