//! Configuration (SPEC §9): `config/default.toml` (embedded) overlaid by
//! `--config FILE`, overlaid by the environment (`REDIS_URL`,
//! `CLUSTERD_KEY_PREFIX`, `CLUSTERD_<SECTION>__<KEY>`,
//! `DECNET_CLUSTERER_TYPE`, `DECNET_CAMPAIGN_CLUSTERER_TYPE`). Every bad
//! value is an error naming its key.

use decnet_clusterd::campaign::clusterer::KNOWN_CAMPAIGN_CLUSTERERS;
use decnet_clusterd::campaign::CampaignWeights;
use decnet_clusterd::evidence::event::Limits;
use decnet_clusterd::identity::catalogue::{Catalogue, CatalogueRef};
use decnet_clusterd::identity::clusterer::KNOWN_CLUSTERERS;
use decnet_clusterd::identity::IdentityWeights;
use decnet_clusterd::phase_rules::PhaseRules;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;

/// The embedded defaults.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub redis: RedisSettings,
    pub instance: InstanceSettings,
    pub lease: LeaseSettings,
    pub heartbeat: HeartbeatSettings,
    pub supervision: SupervisionSettings,
    pub faults: FaultSettings,
    pub ingest: IngestSettings,
    pub limits: Limits,
    pub output: OutputSettings,
    pub clustering: ClusteringSettings,
    pub identity: IdentityWeights,
    pub campaign: CampaignWeights,
    pub log: LogSettings,
    pub phases: PhaseSettings,
    /// The phase rules: the shipped table with `phases.file` applied
    /// (compiled at load, so a bad rule is a configuration error).
    #[serde(skip)]
    pub phase_rules: Option<Arc<PhaseRules>>,
    /// Every section as resolved (defaults, file, environment), for the
    /// effective configuration the leader publishes (`crate::effective`).
    #[serde(skip)]
    pub layered: toml::Table,
    pub http: HttpSettings,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSettings {
    /// A TOML file of rules overlaid on the shipped `config/phases.toml`
    /// (`replace = true` in it replaces them); empty: the shipped rules.
    pub file: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: String,
    pub key_prefix: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSettings {
    pub id: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseSettings {
    pub period_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSettings {
    pub interval_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisionSettings {
    pub max_restarts: u32,
    pub window_ms: u64,
    pub wedged_ms: u64,
}

/// Test-only fault injection (all zero in production).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    pub clustering_panics: u32,
    pub campaign_panics: u32,
    pub ingest_failures: u32,
    pub commit_failures: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    pub batch: usize,
    pub block_ms: u64,
    pub max_deliveries: u64,
    pub claim_idle_ms: u64,
    /// Trim the input stream of entries every consumer group has acked.
    pub trim_acked: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSettings {
    pub stream_maxlen: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusteringSettings {
    pub debounce_ms: u64,
    pub slow_tick_ms: u64,
    pub clusterer: String,
    pub campaign_clusterer: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: String,
    pub level: String,
}

/// `[http]`: the console and API server (SPEC §13).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// `host:port`; empty: `serve` uses [`DEFAULT_LISTEN`], `run` serves nothing.
    pub listen: String,
    /// Whether a non-loopback `listen` address is allowed.
    pub public: bool,
    pub allow_control: bool,
    pub token: String,
}

/// Where `clusterd serve` listens when `http.listen` is empty.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

impl HttpSettings {
    /// The address `serve` binds: `listen`, or the default when empty.
    pub fn address(&self) -> Result<std::net::SocketAddr, SettingsError> {
        let raw = if self.listen.is_empty() {
            DEFAULT_LISTEN
        } else {
            self.listen.as_str()
        };
        let addr: std::net::SocketAddr = raw.parse().map_err(|_| {
            err(
                "http.listen",
                format!("`{raw}` is not an IP address and port"),
            )
        })?;
        if !addr.ip().is_loopback() && !self.public {
            return Err(err(
                "http.listen",
                format!("{addr} is not a loopback address; set http.public = true to serve it"),
            ));
        }
        Ok(addr)
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct SettingsError {
    pub key: String,
    pub problem: String,
}

fn err(key: impl Into<String>, problem: impl Into<String>) -> SettingsError {
    SettingsError {
        key: key.into(),
        problem: problem.into(),
    }
}

/// Overlays `over` onto `base`, table by table.
fn overlay(base: &mut toml::Table, over: toml::Table, path: &str) -> Result<(), SettingsError> {
    for (k, v) in over {
        let key = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => overlay(b, o, &key)?,
            (Some(_), toml::Value::Table(_)) => return Err(err(key, "is not a section")),
            (None, _) if path.is_empty() => return Err(err(key, "unknown section")),
            (None, _) => return Err(err(key, "unknown key")),
            (Some(slot), v) => *slot = typed_like(slot, v, &key)?,
        }
    }
    Ok(())
}

/// Checks an overlaid value against the default's type (so the error can
/// name the key), widening an integer where a float is expected.
fn typed_like(
    default: &toml::Value,
    v: toml::Value,
    key: &str,
) -> Result<toml::Value, SettingsError> {
    use toml::Value as V;
    match (default, v) {
        (V::Float(_), V::Integer(i)) => Ok(V::Float(i as f64)),
        (V::Float(_), v @ V::Float(_))
        | (V::Integer(_), v @ V::Integer(_))
        | (V::String(_), v @ V::String(_))
        | (V::Boolean(_), v @ V::Boolean(_)) => Ok(v),
        (d, v) => Err(err(
            key,
            format!("expected {}, got {}", d.type_str(), v.type_str()),
        )),
    }
}

/// Parses an environment value as a TOML scalar (number, bool) or a string.
fn env_value(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(
                v @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)),
            ) => v,
            _ => toml::Value::String(raw.to_string()),
        },
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

impl Settings {
    /// Loads defaults, the optional file, then `env` (name, value) pairs.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        let mut table: toml::Table = DEFAULT_TOML
            .parse()
            .map_err(|e| err("config/default.toml", format!("{e}")))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| err(path.display().to_string(), format!("cannot read: {e}")))?;
            let over: toml::Table = text
                .parse()
                .map_err(|e| err(path.display().to_string(), format!("not valid TOML: {e}")))?;
            overlay(&mut table, over, "")?;
        }
        for (name, value) in env {
            let (section, key) = match name.as_str() {
                "REDIS_URL" => ("redis".to_string(), "url".to_string()),
                "CLUSTERD_KEY_PREFIX" => ("redis".to_string(), "key_prefix".to_string()),
                "DECNET_CLUSTERER_TYPE" => ("clustering".to_string(), "clusterer".to_string()),
                "DECNET_CAMPAIGN_CLUSTERER_TYPE" => {
                    ("clustering".to_string(), "campaign_clusterer".to_string())
                }
                other => match other
                    .strip_prefix("CLUSTERD_")
                    .and_then(|rest| rest.split_once("__"))
                {
                    Some((s, k)) => (s.to_lowercase(), k.to_lowercase()),
                    None => continue,
                },
            };
            let v = if key == "url"
                || key == "key_prefix"
                || section == "clustering" && key.ends_with("clusterer")
            {
                toml::Value::String(value)
            } else {
                env_value(&value)
            };
            let mut over = toml::Table::new();
            let mut inner = toml::Table::new();
            inner.insert(key, v);
            over.insert(section, toml::Value::Table(inner));
            overlay(&mut table, over, "")
                .map_err(|e| err(format!("{name} ({})", e.key), e.problem))?;
        }
        let mut settings: Settings = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| err("configuration", e.message().to_string()))?;
        settings.layered = table;
        settings.validate()?;
        let mut settings = settings;
        settings.phase_rules = Some(Arc::new(settings.load_phase_rules()?));
        settings.identity.catalogue = load_catalogue(&settings.identity)?;
        settings.campaign.catalogue = settings.identity.catalogue.clone();
        Ok(settings)
    }
}

/// The shipped catalogues with `identity.tooling_file` and
/// `identity.behaviour_file` laid over them (a bad file exits 2 naming the
/// key, the file and the entry).
pub fn load_catalogue(identity: &IdentityWeights) -> Result<CatalogueRef, SettingsError> {
    let (tooling, behaviour) = (&identity.tooling_file, &identity.behaviour_file);
    if tooling.is_empty() && behaviour.is_empty() {
        return Ok(CatalogueRef::default());
    }
    let mut c = (*Catalogue::embedded()).clone();
    let read = |key: &str, path: &str| {
        std::fs::read_to_string(path).map_err(|e| err(key, format!("cannot read {path}: {e}")))
    };
    if !tooling.is_empty() {
        let text = read("identity.tooling_file", tooling)?;
        c.add_tooling(&text)
            .map_err(|e| err("identity.tooling_file", format!("{tooling}: {e}")))?;
    }
    if !behaviour.is_empty() {
        let text = read("identity.behaviour_file", behaviour)?;
        c.add_behaviour(&text)
            .map_err(|e| err("identity.behaviour_file", format!("{behaviour}: {e}")))?;
    }
    Ok(CatalogueRef(Arc::new(c)))
}

impl Settings {
    fn load_phase_rules(&self) -> Result<PhaseRules, SettingsError> {
        let shipped =
            PhaseRules::embedded().map_err(|e| err("config/phases.toml", e.to_string()))?;
        if self.phases.file.is_empty() {
            return Ok(shipped);
        }
        let path = &self.phases.file;
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("phases.file", format!("cannot read {path}: {e}")))?;
        shipped
            .overlay(&text)
            .map_err(|e| err("phases.file", format!("{path}: {e}")))
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let url = &self.redis.url;
        if !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("unix://"))
        {
            return Err(err(
                "redis.url",
                "must start with redis://, rediss:// or unix://",
            ));
        }
        let p = &self.redis.key_prefix;
        if p.is_empty()
            || p.len() > 64
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:{}".contains(c))
            || !hash_tag_ok(p)
        {
            return Err(err(
                "redis.key_prefix",
                "must be 1–64 characters of [A-Za-z0-9-_.:], with at most one \
                 Redis Cluster hash tag {…} around a non-empty part (e.g. {decnet})",
            ));
        }
        for (key, v) in [
            ("lease.period_ms", self.lease.period_ms),
            ("heartbeat.interval_ms", self.heartbeat.interval_ms),
            ("supervision.window_ms", self.supervision.window_ms),
            ("supervision.wedged_ms", self.supervision.wedged_ms),
            ("ingest.block_ms", self.ingest.block_ms),
            ("ingest.max_deliveries", self.ingest.max_deliveries),
            ("ingest.claim_idle_ms", self.ingest.claim_idle_ms),
            ("output.stream_maxlen", self.output.stream_maxlen),
            ("clustering.slow_tick_ms", self.clustering.slow_tick_ms),
        ] {
            if v == 0 {
                return Err(err(key, "must be > 0"));
            }
        }
        if self.lease.period_ms < 300 {
            return Err(err("lease.period_ms", "must be at least 300"));
        }
        if self.ingest.batch == 0 || self.ingest.batch > 10_000 {
            return Err(err("ingest.batch", "must be between 1 and 10000"));
        }
        for (key, v) in [
            ("limits.max_entry_bytes", self.limits.max_entry_bytes),
            ("limits.max_list_len", self.limits.max_list_len),
            ("limits.max_string_len", self.limits.max_string_len),
            ("limits.max_uuid_len", self.limits.max_uuid_len),
        ] {
            if v == 0 {
                return Err(err(key, "must be > 0"));
            }
        }
        if !KNOWN_CLUSTERERS.contains(&self.clustering.clusterer.as_str()) {
            return Err(err(
                "clustering.clusterer (DECNET_CLUSTERER_TYPE)",
                format!(
                    "unknown type `{}`; known: {}",
                    self.clustering.clusterer,
                    KNOWN_CLUSTERERS.join(", ")
                ),
            ));
        }
        if !KNOWN_CAMPAIGN_CLUSTERERS.contains(&self.clustering.campaign_clusterer.as_str()) {
            return Err(err(
                "clustering.campaign_clusterer (DECNET_CAMPAIGN_CLUSTERER_TYPE)",
                format!(
                    "unknown type `{}`; known: {}",
                    self.clustering.campaign_clusterer,
                    KNOWN_CAMPAIGN_CLUSTERERS.join(", ")
                ),
            ));
        }
        self.identity
            .validate()
            .map_err(|e| err(format!("identity.{}", e.key), e.problem))?;
        self.campaign
            .validate()
            .map_err(|e| err(format!("campaign.{}", e.key), e.problem))?;
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err(err("log.format", "must be `text` or `json`"));
        }
        self.http.address()?;
        if self.http.allow_control && self.http.token.len() < 16 {
            return Err(err(
                "http.token",
                "must be at least 16 characters when http.allow_control is true",
            ));
        }
        Ok(())
    }
}

/// Braces in a key prefix form one Redis Cluster hash tag (`{decnet}`,
/// `a{b}c`): one `{`, then one `}`, with something between (docs/scaling.md).
fn hash_tag_ok(p: &str) -> bool {
    match (p.matches('{').count(), p.matches('}').count()) {
        (0, 0) => true,
        (1, 1) => matches!((p.find('{'), p.find('}')), (Some(o), Some(c)) if c > o + 1),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
