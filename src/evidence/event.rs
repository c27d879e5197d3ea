//! Parsing and validation of input stream entries (SPEC §4) into partial
//! observations. Every byte here is attacker-controlled: nothing panics,
//! sizes are bounded before anything is decoded, and every error names the
//! field path and the reason — that reason is what the daemon writes to the
//! dead-letter stream.

use super::json::{Json, Object};
use super::{Fingerprint, Millis, Observation, Session, Stamped};
use crate::phase::Phase;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Size limits on one input entry (configurable in the daemon).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Total bytes of all field names and values of one entry.
    pub max_entry_bytes: usize,
    /// Longest list (fingerprints, sessions, commands, credentials).
    pub max_list_len: usize,
    /// Longest string value, in bytes.
    pub max_string_len: usize,
    /// Longest observation uuid / session id.
    pub max_uuid_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entry_bytes: 65_536,
            max_list_len: 512,
            max_string_len: 4_096,
            max_uuid_len: 128,
        }
    }
}

/// Input topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Topic {
    Observed,
    Fingerprinted,
    SessionEnded,
    Scored,
}

impl Topic {
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Observed => "attacker.observed",
            Topic::Fingerprinted => "attacker.fingerprinted",
            Topic::SessionEnded => "attacker.session.ended",
            Topic::Scored => "attacker.scored",
        }
    }

    pub fn parse(s: &str) -> Option<Topic> {
        [
            Topic::Observed,
            Topic::Fingerprinted,
            Topic::SessionEnded,
            Topic::Scored,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// A valid entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedEntry {
    pub topic: Topic,
    pub event_id: Option<String>,
    pub ts: Option<Millis>,
    /// The evidence this entry carries (for `attacker.scored` only the uuid).
    pub observation: Observation,
}

/// Why an entry cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("entry is {bytes} bytes, over the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("field `{field}` is missing")]
    MissingField { field: &'static str },
    #[error("field `{field}` is not valid UTF-8")]
    NotUtf8 { field: &'static str },
    #[error("unknown topic `{0}`")]
    UnknownTopic(String),
    #[error("payload is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
}

impl EntryError {
    /// One line for the dead-letter `reason` field.
    pub fn reason(&self) -> String {
        self.to_string()
    }

    /// Unknown topics are acked and counted, not dead-lettered.
    pub fn is_unknown_topic(&self) -> bool {
        matches!(self, EntryError::UnknownTopic(_))
    }
}

/// Where a value sits in a payload (`sessions[2].commands[0]`): written out
/// only when an error names it, so a valid entry allocates no paths.
#[derive(Clone, Copy)]
enum Path<'a> {
    Key(&'a str),
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Key(k) => f.write_str(k),
            Path::Field(p, k) => write!(f, "{p}.{k}"),
            Path::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

fn invalid(path: impl fmt::Display, problem: impl Into<String>) -> EntryError {
    EntryError::Invalid {
        path: path.to_string(),
        problem: problem.into(),
    }
}

/// Shortens an attacker string for an error message.
fn preview(s: &str) -> String {
    let mut out: String = s.chars().take(40).flat_map(char::escape_default).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// Parses one stream entry (its field/value pairs, raw bytes).
pub fn parse_entry<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    fields: &[(K, V)],
    limits: &Limits,
) -> Result<ParsedEntry, EntryError> {
    let bytes: usize = fields
        .iter()
        .map(|(k, v)| k.as_ref().len() + v.as_ref().len())
        .sum();
    if bytes > limits.max_entry_bytes {
        return Err(EntryError::TooLarge {
            bytes,
            limit: limits.max_entry_bytes,
        });
    }
    // A field named twice (streams allow it): the last one counts.
    let get = |name: &'static str| -> Result<Option<&str>, EntryError> {
        match fields
            .iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name.as_bytes())
        {
            None => Ok(None),
            Some((_, v)) => std::str::from_utf8(v.as_ref())
                .map(Some)
                .map_err(|_| EntryError::NotUtf8 { field: name }),
        }
    };
    let topic_s = get("topic")?.ok_or(EntryError::MissingField { field: "topic" })?;
    let topic = Topic::parse(topic_s).ok_or_else(|| EntryError::UnknownTopic(preview(topic_s)))?;
    let payload_s = get("payload")?.ok_or(EntryError::MissingField { field: "payload" })?;
    let event_id = match get("event_id")? {
        Some(s) => Some(check_id("event_id", s, limits)?.to_string()),
        None => None,
    };
    let ts = match get("ts")? {
        Some(s) => Some(timestamp_str(s).map_err(|p| invalid("ts", p))?),
        None => None,
    };
    let payload = Json::parse(payload_s).map_err(|e| EntryError::InvalidJson(e.to_string()))?;
    let obj = payload
        .as_object()
        .ok_or_else(|| invalid("payload", "must be a JSON object"))?;
    let uuid = check_id("uuid", req_str(obj, "uuid", limits)?, limits)?;
    let mut o = Observation::new(uuid);
    match topic {
        Topic::Observed => observed(obj, &mut o, ts, limits)?,
        Topic::Fingerprinted => {
            let fp = fingerprint(None, obj, limits)?;
            o.fingerprints.insert(fp);
        }
        Topic::SessionEnded => {
            let s = obj
                .get("session")
                .filter(|v| !v.is_null())
                .ok_or_else(|| invalid("session", "is missing"))?;
            let s = session(&Path::Key("session"), s, limits)?;
            o.sessions.join(s);
        }
        Topic::Scored => {}
    }
    Ok(ParsedEntry {
        topic,
        event_id,
        ts,
        observation: o,
    })
}

/// Ids become parts of Redis keys: a safe charset and a bounded length.
fn check_id<'a>(
    path: impl fmt::Display + Copy,
    s: &'a str,
    limits: &Limits,
) -> Result<&'a str, EntryError> {
    if s.is_empty() {
        return Err(invalid(path, "must not be empty"));
    }
    if s.len() > limits.max_uuid_len {
        return Err(invalid(
            path,
            format!(
                "is {} bytes, over the limit of {}",
                s.len(),
                limits.max_uuid_len
            ),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(invalid(
            path,
            format!(
                "contains `{}`; only [A-Za-z0-9._:-] are allowed",
                c.escape_default()
            ),
        ));
    }
    Ok(s)
}

fn present<'o, 'a>(obj: &'o Object<'a>, key: &str) -> Option<&'o Json<'a>> {
    obj.get(key).filter(|v| !v.is_null())
}

fn string<'a>(
    path: impl fmt::Display + Copy,
    v: &'a Json<'_>,
    limits: &Limits,
) -> Result<&'a str, EntryError> {
    let s = v
        .as_str()
        .ok_or_else(|| invalid(path, format!("must be a string, got {}", v.kind())))?;
    if s.len() > limits.max_string_len {
        return Err(invalid(
            path,
            format!(
                "is {} bytes, over the limit of {}",
                s.len(),
                limits.max_string_len
            ),
        ));
    }
    Ok(s)
}

fn req_str<'a>(obj: &'a Object<'_>, key: &str, limits: &Limits) -> Result<&'a str, EntryError> {
    let v = present(obj, key).ok_or_else(|| invalid(key, "is missing"))?;
    string(key, v, limits)
}

fn nonempty<'a>(
    path: impl fmt::Display + Copy,
    v: &'a Json<'_>,
    limits: &Limits,
) -> Result<&'a str, EntryError> {
    let s = string(path, v, limits)?;
    if s.is_empty() {
        return Err(invalid(path, "must not be empty"));
    }
    Ok(s)
}

fn list<'v, 'a>(
    path: impl fmt::Display + Copy,
    v: &'v Json<'a>,
    limits: &Limits,
) -> Result<&'v [Json<'a>], EntryError> {
    let a = v
        .as_array()
        .ok_or_else(|| invalid(path, format!("must be an array, got {}", v.kind())))?;
    if a.len() > limits.max_list_len {
        return Err(invalid(
            path,
            format!(
                "has {} items, over the limit of {}",
                a.len(),
                limits.max_list_len
            ),
        ));
    }
    Ok(a)
}

/// Earliest and latest accepted instants: 1970-01-01 and 2200-12-31.
const MIN_MS: Millis = 0;
const MAX_MS: Millis = 7_289_654_400_000;

/// Parses a timestamp: an RFC 3339 string with offset, or unix seconds.
pub fn parse_timestamp(v: &Value) -> Result<Millis, String> {
    match v {
        Value::String(s) => timestamp_str(s),
        Value::Number(n) => timestamp_secs(n),
        Value::Null => Err(not_a_timestamp("null")),
        Value::Bool(_) => Err(not_a_timestamp("a boolean")),
        Value::Array(_) => Err(not_a_timestamp("an array")),
        Value::Object(_) => Err(not_a_timestamp("an object")),
    }
}

/// [`parse_timestamp`] of a payload value.
fn json_timestamp(v: &Json) -> Result<Millis, String> {
    match v {
        Json::String(s) => timestamp_str(s),
        Json::Number(n) => timestamp_secs(n),
        other => Err(not_a_timestamp(other.kind())),
    }
}

fn not_a_timestamp(kind: &str) -> String {
    format!("must be an RFC 3339 string or unix seconds, got {kind}")
}

/// An RFC 3339 timestamp with offset.
fn timestamp_str(s: &str) -> Result<Millis, String> {
    let ms = chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|_| format!("`{}` is not an RFC 3339 timestamp", preview(s)))?
        .timestamp_millis();
    in_range(ms)
}

/// Unix seconds.
fn timestamp_secs(n: &serde_json::Number) -> Result<Millis, String> {
    let secs = n
        .as_f64()
        .filter(|f| f.is_finite())
        .ok_or("is not a finite number")?;
    if !(MIN_MS as f64 / 1000.0..=MAX_MS as f64 / 1000.0).contains(&secs) {
        return Err(format!("{secs} is outside 1970..2200"));
    }
    in_range((secs * 1000.0).round() as Millis)
}

fn in_range(ms: Millis) -> Result<Millis, String> {
    if !(MIN_MS..=MAX_MS).contains(&ms) {
        return Err("is outside 1970..2200".into());
    }
    Ok(ms)
}

/// Formats unix milliseconds as RFC 3339 UTC with millisecond precision.
pub fn format_timestamp(ms: Millis) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => String::new(),
    }
}

fn time(
    obj: &Object,
    key: &str,
    path: impl fmt::Display + Copy,
) -> Result<Option<Millis>, EntryError> {
    match present(obj, key) {
        None => Ok(None),
        Some(v) => json_timestamp(v).map(Some).map_err(|p| invalid(path, p)),
    }
}

fn observed(
    obj: &Object,
    o: &mut Observation,
    ts: Option<Millis>,
    limits: &Limits,
) -> Result<(), EntryError> {
    o.first_seen = time(obj, "first_seen", "first_seen")?;
    o.last_seen = time(obj, "last_seen", "last_seen")?;
    // "Latest value" fields are stamped with the report's own time, so the
    // merge keeps the most recent report whatever order events arrive in.
    let at = o.last_seen.or(ts).unwrap_or(0);
    if let Some(v) = present(obj, "ip") {
        let s = string("ip", v, limits)?;
        let ip: std::net::IpAddr = s.parse().map_err(|_| {
            invalid(
                "ip",
                format!("`{}` is not an IPv4 or IPv6 address", preview(s)),
            )
        })?;
        o.ip = Some(Stamped {
            at,
            value: ip.to_string(),
        });
    }
    if let Some(v) = present(obj, "asn") {
        o.asn = Some(Stamped { at, value: asn(v)? });
    }
    if let Some(v) = present(obj, "fingerprints") {
        let list_path = Path::Key("fingerprints");
        for (i, fp) in list(list_path, v, limits)?.iter().enumerate() {
            let path = Path::Index(&list_path, i);
            let fo = fp
                .as_object()
                .ok_or_else(|| invalid(path, format!("must be an object, got {}", fp.kind())))?;
            o.fingerprints.insert(fingerprint(Some(&path), fo, limits)?);
        }
    }
    if let Some(v) = present(obj, "sessions") {
        let list_path = Path::Key("sessions");
        for (i, s) in list(list_path, v, limits)?.iter().enumerate() {
            let s = session(&Path::Index(&list_path, i), s, limits)?;
            o.sessions.join(s);
        }
    }
    Ok(())
}

fn asn(v: &Json) -> Result<u32, EntryError> {
    let bad = || {
        invalid(
            "asn",
            "must be an integer 0..=4294967295 or a string like \"AS64512\"",
        )
    };
    match v {
        Json::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(bad),
        Json::String(s) => {
            let digits = s
                .strip_prefix("AS")
                .or_else(|| s.strip_prefix("as"))
                .unwrap_or(s);
            if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad());
            }
            digits.parse().map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

/// A fingerprint object, at `at` (`None`: the payload itself).
fn fingerprint(
    at: Option<&Path>,
    obj: &Object,
    limits: &Limits,
) -> Result<Fingerprint, EntryError> {
    let field = |k| match at {
        None => Path::Key(k),
        Some(p) => Path::Field(p, k),
    };
    let (kpath, vpath) = (field("kind"), field("value"));
    let k = nonempty(
        kpath,
        present(obj, "kind").ok_or_else(|| invalid(kpath, "is missing"))?,
        limits,
    )?;
    let v = nonempty(
        vpath,
        present(obj, "value").ok_or_else(|| invalid(vpath, "is missing"))?,
        limits,
    )?;
    Ok(Fingerprint {
        kind: k.to_lowercase(),
        value: v.to_string(),
    })
}

fn session(path: &Path, v: &Json, limits: &Limits) -> Result<Session, EntryError> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid(path, format!("must be an object, got {}", v.kind())))?;
    let p = |k| Path::Field(path, k);
    let id_path = p("session_id");
    let id = present(obj, "session_id").ok_or_else(|| invalid(id_path, "is missing"))?;
    let id = check_id(id_path, string(id_path, id, limits)?, limits)?;
    let mut s = Session {
        session_id: id.to_string(),
        ..Default::default()
    };
    if let Some(d) = present(obj, "decky_id") {
        s.decky_id = Some(nonempty(p("decky_id"), d, limits)?.to_string());
    }
    s.started_at = time(obj, "started_at", p("started_at"))?;
    s.ended_at = time(obj, "ended_at", p("ended_at"))?;
    let phase = match present(obj, "phase") {
        Some(v) => {
            let name = string(p("phase"), v, limits)?;
            Some(Phase::from_name(name).ok_or_else(|| {
                invalid(p("phase"), format!("unknown UKC phase `{}`", preview(name)))
            })?)
        }
        None => None,
    };
    let tactic = match present(obj, "tactic") {
        Some(v) => {
            let id = string(p("tactic"), v, limits)?;
            Some(Phase::from_tactic(id).ok_or_else(|| {
                invalid(
                    p("tactic"),
                    format!("unknown ATT&CK tactic `{}`", preview(id)),
                )
            })?)
        }
        None => None,
    };
    s.phase = match (phase, tactic) {
        (Some(a), Some(b)) if a != b => {
            return Err(invalid(
                path,
                format!("phase `{a}` and tactic (phase `{b}`) disagree"),
            ));
        }
        (a, b) => a.or(b),
    };
    if let Some(v) = present(obj, "commands") {
        let list_path = p("commands");
        for (i, c) in list(list_path, v, limits)?.iter().enumerate() {
            s.commands
                .insert(string(Path::Index(&list_path, i), c, limits)?.to_string());
        }
    }
    if let Some(v) = present(obj, "credentials") {
        let list_path = p("credentials");
        for (i, c) in list(list_path, v, limits)?.iter().enumerate() {
            let cp = Path::Index(&list_path, i);
            let pair = c
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| invalid(cp, "must be a [user, password] pair"))?;
            let user = string(Path::Index(&cp, 0), &pair[0], limits)?;
            let pass = string(Path::Index(&cp, 1), &pair[1], limits)?;
            s.credentials.insert((user.to_string(), pass.to_string()));
        }
    }
    if let Some(v) = present(obj, "payload_hash") {
        s.payload_hashes
            .insert(nonempty(p("payload_hash"), v, limits)?.to_string());
    }
    if let Some(v) = present(obj, "c2_callback") {
        s.c2_endpoints
            .insert(nonempty(p("c2_callback"), v, limits)?.to_string());
    }
    if let Some(v) = present(obj, "kd_digraph_simhash") {
        let hp = p("kd_digraph_simhash");
        let h = string(hp, v, limits)?;
        if h.len() != 16 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(hp, "must be exactly 16 hex characters"));
        }
        s.kd_digraph_simhash = Some(
            u64::from_str_radix(h, 16)
                .map_err(|_| invalid(hp, "must be exactly 16 hex characters"))?,
        );
    }
    Ok(s)
}

/// The `attacker.observed` payload that carries all of an observation's
/// evidence (the inverse of parsing, for publishers and benchmarks).
pub fn observed_payload(o: &Observation) -> Value {
    let mut p = Map::new();
    p.insert("uuid".into(), Value::from(o.uuid.clone()));
    if let Some(ip) = o.ip() {
        p.insert("ip".into(), Value::from(ip));
    }
    if let Some(asn) = o.asn() {
        p.insert("asn".into(), Value::from(asn));
    }
    if let Some(t) = o.first_seen {
        p.insert("first_seen".into(), Value::from(format_timestamp(t)));
    }
    if let Some(t) = o.last_seen {
        p.insert("last_seen".into(), Value::from(format_timestamp(t)));
    }
    let fps: Vec<Value> = o
        .fingerprints
        .iter()
        .map(|f| serde_json::json!({"kind": f.kind, "value": f.value}))
        .collect();
    p.insert("fingerprints".into(), Value::from(fps));
    let mut sessions = Vec::new();
    for s in o.sessions.values() {
        // One report per payload/C2 value keeps the wire's singular fields.
        let n = s.payload_hashes.len().max(s.c2_endpoints.len()).max(1);
        let (payloads, c2s): (Vec<_>, Vec<_>) = (
            s.payload_hashes.iter().collect(),
            s.c2_endpoints.iter().collect(),
        );
        for i in 0..n {
            let mut v = Map::new();
            v.insert("session_id".into(), Value::from(s.session_id.clone()));
            if let Some(d) = &s.decky_id {
                v.insert("decky_id".into(), Value::from(d.clone()));
            }
            if let Some(t) = s.started_at {
                v.insert("started_at".into(), Value::from(format_timestamp(t)));
            }
            if let Some(t) = s.ended_at {
                v.insert("ended_at".into(), Value::from(format_timestamp(t)));
            }
            if let Some(ph) = s.phase {
                v.insert("phase".into(), Value::from(ph.name()));
            }
            v.insert("commands".into(), serde_json::json!(s.commands));
            v.insert("credentials".into(), serde_json::json!(s.credentials));
            if let Some(p) = payloads.get(i) {
                v.insert("payload_hash".into(), Value::from((*p).clone()));
            }
            if let Some(c) = c2s.get(i) {
                v.insert("c2_callback".into(), Value::from((*c).clone()));
            }
            if let Some(h) = s.kd_digraph_simhash {
                v.insert(
                    "kd_digraph_simhash".into(),
                    Value::from(format!("{h:016x}")),
                );
            }
            sessions.push(Value::Object(v));
        }
    }
    p.insert("sessions".into(), Value::from(sessions));
    Value::Object(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(topic: &str, payload: &str) -> Vec<(String, String)> {
        vec![
            ("topic".into(), topic.into()),
            ("event_id".into(), "e-1".into()),
            ("ts".into(), "2026-01-01T03:00:00Z".into()),
            ("payload".into(), payload.into()),
        ]
    }

    fn parse(topic: &str, payload: &str) -> Result<ParsedEntry, EntryError> {
        parse_entry(&entry(topic, payload), &Limits::default())
    }

    fn err(topic: &str, payload: &str) -> String {
        parse(topic, payload).unwrap_err().reason()
    }

    #[test]
    fn a_field_named_twice_counts_once_its_last_value() {
        let mut fields = entry("attacker.rumoured", r#"{"uuid":"a"}"#);
        fields.push(("topic".into(), "attacker.observed".into()));
        let p = parse_entry(&fields, &Limits::default()).unwrap();
        assert_eq!(p.topic, Topic::Observed);
        fields.push(("payload".into(), "not json".into()));
        assert!(matches!(
            parse_entry(&fields, &Limits::default()),
            Err(EntryError::InvalidJson(_))
        ));
    }

    #[test]
    fn full_observation_parses() {
        let p = parse(
            "attacker.observed",
            r#"{"uuid":"att-1","ip":"203.0.113.7","asn":64512,"first_seen":"2026-01-01T03:00:00Z",
                "last_seen":1767236400.5,"fingerprints":[{"kind":"JA3","value":"771,4865"}],
                "sessions":[{"session_id":"s-1","decky_id":"decky-03","started_at":"2026-01-01T03:01:00Z",
                "ended_at":"2026-01-01T03:04:10Z","tactic":"TA0007","commands":["whoami","uname -a"],
                "credentials":[["root","toor"]],"payload_hash":"9f86","c2_callback":"c2.example.net",
                "kd_digraph_simhash":"a1b2c3d4e5f60718"}]}"#,
        )
        .unwrap();
        let o = p.observation;
        assert_eq!(o.ip(), Some("203.0.113.7"));
        assert_eq!(o.asn(), Some(64512));
        assert_eq!(o.last_seen, Some(1_767_236_400_500));
        assert_eq!(o.ip.as_ref().unwrap().at, 1_767_236_400_500);
        assert!(o.fingerprints.iter().any(|f| f.kind == "ja3"));
        let s = &o.sessions["s-1"];
        assert_eq!(s.phase, Some(Phase::Discovery));
        assert_eq!(s.kd_digraph_simhash, Some(0xa1b2c3d4e5f60718));
        assert!(s.c2_endpoints.contains("c2.example.net"));
        assert_eq!(p.ts, Some(1_767_236_400_000));
    }

    #[test]
    fn other_topics() {
        let p = parse(
            "attacker.fingerprinted",
            r#"{"uuid":"a","kind":"hassh","value":"ec73"}"#,
        )
        .unwrap();
        assert_eq!(p.observation.fingerprints.len(), 1);
        let p = parse(
            "attacker.session.ended",
            r#"{"uuid":"a","session":{"session_id":"s","phase":"persistence"}}"#,
        )
        .unwrap();
        assert_eq!(p.observation.sessions["s"].phase, Some(Phase::Persistence));
        let p = parse("attacker.scored", r#"{"uuid":"a","score":99,"junk":[1,2]}"#).unwrap();
        assert_eq!(p.observation, Observation::new("a"));
        let e = parse("attacker.unknown", "{}").unwrap_err();
        assert!(e.is_unknown_topic());
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(err("attacker.observed", "{}"), "uuid: is missing");
        assert!(err("attacker.observed", "not json").starts_with("payload is not valid JSON"));
        assert_eq!(
            err("attacker.observed", "[1]"),
            "payload: must be a JSON object"
        );
        assert!(err("attacker.observed", r#"{"uuid":"a b"}"#).contains("only [A-Za-z0-9._:-]"));
        assert!(err("attacker.observed", r#"{"uuid":"a","ip":"999.1.1.1"}"#).starts_with("ip:"));
        assert!(err("attacker.observed", r#"{"uuid":"a","asn":-1}"#).starts_with("asn:"));
        assert!(err(
            "attacker.observed",
            r#"{"uuid":"a","last_seen":"yesterday"}"#
        )
        .starts_with("last_seen:"));
        assert_eq!(
            err(
                "attacker.observed",
                r#"{"uuid":"a","sessions":[{"session_id":"s","phase":"hacking"}]}"#
            ),
            "sessions[0].phase: unknown UKC phase `hacking`"
        );
        assert!(err(
            "attacker.observed",
            r#"{"uuid":"a","sessions":[{"session_id":"s","tactic":"TA9999"}]}"#
        )
        .starts_with("sessions[0].tactic: unknown ATT&CK tactic"));
        assert!(err(
            "attacker.observed",
            r#"{"uuid":"a","sessions":[{"session_id":"s","phase":"discovery","tactic":"TA0003"}]}"#
        )
        .contains("disagree"));
        assert_eq!(
            err(
                "attacker.observed",
                r#"{"uuid":"a","sessions":[{"session_id":"s","commands":["ok",5]}]}"#
            ),
            "sessions[0].commands[1]: must be a string, got a number"
        );
        assert!(err(
            "attacker.observed",
            r#"{"uuid":"a","sessions":[{"session_id":"s","credentials":[["root"]]}]}"#
        )
        .starts_with("sessions[0].credentials[0]:"));
        assert!(err(
            "attacker.observed",
            r#"{"uuid":"a","sessions":[{"session_id":"s","kd_digraph_simhash":"xyz"}]}"#
        )
        .contains("16 hex"));
        assert!(err(
            "attacker.observed",
            r#"{"uuid":"a","fingerprints":[{"kind":"ja3"}]}"#
        )
        .starts_with("fingerprints[0].value"));
        // Every kind of path step, as written out in the error.
        assert_eq!(
            err(
                "attacker.observed",
                r#"{"uuid":"a","sessions":[{"session_id":"s"},{"session_id":"t","credentials":[["u","p"],["root",7]]}]}"#
            ),
            "sessions[1].credentials[1][1]: must be a string, got a number"
        );
        assert_eq!(
            err(
                "attacker.session.ended",
                r#"{"uuid":"a","session":{"session_id":""}}"#
            ),
            "session.session_id: must not be empty"
        );
        assert_eq!(
            err("attacker.fingerprinted", r#"{"uuid":"a","value":"x"}"#),
            "kind: is missing"
        );
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_entry_bytes: 200,
            max_list_len: 2,
            max_string_len: 8,
            max_uuid_len: 4,
        };
        let big = entry(
            "attacker.observed",
            &format!(r#"{{"uuid":"a","x":"{}"}}"#, "x".repeat(300)),
        );
        assert!(matches!(
            parse_entry(&big, &limits),
            Err(EntryError::TooLarge { .. })
        ));
        let p = |payload: &str| {
            parse_entry(&entry("attacker.observed", payload), &limits)
                .unwrap_err()
                .reason()
        };
        assert!(p(r#"{"uuid":"abcde"}"#).contains("over the limit of 4"));
        assert!(
            p(r#"{"uuid":"a","sessions":[{"session_id":"s","commands":["1","2","3"]}]}"#)
                .contains("3 items")
        );
        assert!(
            p(r#"{"uuid":"a","sessions":[{"session_id":"s","commands":["123456789"]}]}"#)
                .contains("9 bytes")
        );
    }

    #[test]
    fn raw_bytes_and_missing_fields() {
        let e =
            parse_entry(&[(b"topic".to_vec(), vec![0xff, 0xfe])], &Limits::default()).unwrap_err();
        assert_eq!(e, EntryError::NotUtf8 { field: "topic" });
        let e = parse_entry(&[("topic", "attacker.observed")], &Limits::default()).unwrap_err();
        assert_eq!(e, EntryError::MissingField { field: "payload" });
        let e = parse_entry(
            &[
                ("topic", "attacker.observed"),
                ("ts", "soon"),
                ("payload", "{}"),
            ],
            &Limits::default(),
        );
        assert!(e.unwrap_err().reason().starts_with("ts:"));
    }

    #[test]
    fn observed_payload_round_trips() {
        let (corpus, _) = crate::scenario::corpus::large_corpus(300, 5);
        for o in corpus {
            let fields = [
                ("topic", "attacker.observed".to_string()),
                ("payload", observed_payload(&o).to_string()),
            ];
            let mut back = parse_entry(&fields, &Limits::default())
                .unwrap()
                .observation;
            // ip/asn stamps come from last_seen on the wire.
            back.ip = back.ip.map(|s| Stamped {
                at: o.ip.as_ref().map_or(0, |x| x.at),
                ..s
            });
            back.asn = back.asn.map(|s| Stamped {
                at: o.asn.as_ref().map_or(0, |x| x.at),
                ..s
            });
            assert_eq!(back, o);
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let ms = parse_timestamp(&Value::String("2026-01-01T03:00:00.250+01:00".into())).unwrap();
        assert_eq!(format_timestamp(ms), "2026-01-01T02:00:00.250Z");
        assert!(parse_timestamp(&serde_json::json!(1e300)).is_err());
        assert!(parse_timestamp(&serde_json::json!(-5)).is_err());
    }
}
