//! Every Redis key name of SPEC §3, derived from the prefix in one place.

/// Key names for one deployment prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn input(&self) -> String {
        format!("{}:stream:attacker", self.prefix)
    }
    pub fn identity_stream(&self) -> String {
        format!("{}:stream:identity", self.prefix)
    }
    pub fn campaign_stream(&self) -> String {
        format!("{}:stream:campaign", self.prefix)
    }
    pub fn deadletter(&self) -> String {
        format!("{}:stream:deadletter", self.prefix)
    }
    pub fn quarantine(&self) -> String {
        format!("{}:stream:quarantine", self.prefix)
    }
    pub fn attacker(&self, uuid: &str) -> String {
        format!("{}:attacker:{uuid}", self.prefix)
    }
    /// An observation's internal evidence (the compact form of
    /// `src/evidence/stored.rs`), a string beside its hash: kept out of the
    /// hash so that the hash's public fields fit a listpack. Same prefix, so
    /// a hash-tagged prefix keeps both in one Redis Cluster slot.
    pub fn evidence(&self, uuid: &str) -> String {
        format!("{}:evidence:{uuid}", self.prefix)
    }
    pub fn identity(&self, uuid: &str) -> String {
        format!("{}:identity:{uuid}", self.prefix)
    }
    pub fn campaign(&self, uuid: &str) -> String {
        format!("{}:campaign:{uuid}", self.prefix)
    }
    pub fn attackers(&self) -> String {
        format!("{}:attackers", self.prefix)
    }
    pub fn identities(&self) -> String {
        format!("{}:identities", self.prefix)
    }
    pub fn campaigns(&self) -> String {
        format!("{}:campaigns", self.prefix)
    }
    pub fn health(&self, worker: &str) -> String {
        format!("{}:health:{worker}", self.prefix)
    }
    /// The leader's rendered metrics (OpenMetrics text), beside its heartbeats.
    pub fn metrics(&self) -> String {
        format!("{}:metrics", self.prefix)
    }
    pub fn leader(&self) -> String {
        format!("{}:leader", self.prefix)
    }
    /// Operator decisions: field `a|b` (sorted pair) → JSON {kind, requested_by, at}.
    pub fn decisions(&self) -> String {
        format!("{}:decisions", self.prefix)
    }
    /// The running leader's effective configuration (JSON, secrets removed).
    pub fn config(&self) -> String {
        format!("{}:config", self.prefix)
    }
    pub fn control(&self) -> String {
        format!("{}:control", self.prefix)
    }
    pub fn control_reply(&self) -> String {
        format!("{}:control:reply", self.prefix)
    }
    /// An importer's position in one followed file (SPEC §12).
    pub fn import_position(&self, source: &str, file: &str) -> String {
        format!("{}:import:{source}:{file}", self.prefix)
    }
    /// The event ids every importer has published (set).
    pub fn import_seen(&self) -> String {
        format!("{}:import:seen", self.prefix)
    }
}

/// The input stream's consumer group (SPEC §3).
pub const CONSUMER_GROUP: &str = "clusterd";
