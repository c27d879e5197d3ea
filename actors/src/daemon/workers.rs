//! The worker names of SPEC §6: each actor's heartbeat key
//! `{p}:health:{worker}` and control target. A leaf: the actors, the
//! heartbeat, the control actor, the wiring and the repository's `settled`
//! check all name workers through it, so none imports another for a name.

pub const PROCESS: &str = "clusterd";
pub const BUS_INGEST: &str = "bus-ingest";
pub const IDENTITY: &str = "clusterer";
pub const CAMPAIGN: &str = "campaign-clusterer";
pub const PUBLISHER: &str = "publisher";
pub const HEARTBEAT: &str = "heartbeat";
pub const CONTROL: &str = "control";

/// Every worker with a heartbeat key, the process first (SPEC §6).
pub const WORKERS: &[&str] = &[
    PROCESS, BUS_INGEST, IDENTITY, CAMPAIGN, PUBLISHER, HEARTBEAT, CONTROL,
];

/// The actors: every worker but the process itself.
pub const ACTORS: [&str; 6] = [
    BUS_INGEST, IDENTITY, CAMPAIGN, PUBLISHER, HEARTBEAT, CONTROL,
];
