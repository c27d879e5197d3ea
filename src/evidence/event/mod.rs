//! Parsing and validation of input stream entries (SPEC §4) into partial
//! observations: the first step of the flow, before the merge. Every byte
//! here is attacker-controlled: nothing panics, sizes are bounded before
//! anything is decoded, and every error names the field path and the reason
//! — that reason is what the daemon writes to the dead-letter stream.
//!
//! This file reads the entry (its fields, topic, ids, size) and dispatches
//! on the topic; `payload` reads each topic's payload into evidence, and
//! `fields` holds the bounded readers of single values and the field paths
//! errors name. Timestamps are decoded by [`super::time`].

mod fields;
mod payload;
#[cfg(test)]
mod tests;

use super::json::{preview, Json};
use super::time::parse_rfc3339;
use super::{Millis, Observation, Sym};
use crate::phase_rules::PhaseRules;
use fields::{check_id, invalid, req_str, Path};
use serde::{Deserialize, Serialize};

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

/// Parses one stream entry (its field/value pairs, raw bytes).
pub fn parse_entry<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    fields: &[(K, V)],
    limits: &Limits,
) -> Result<ParsedEntry, EntryError> {
    parse_entry_with(fields, limits, None)
}

/// [`parse_entry`], inferring the phase of every session without a sensor
/// phase from its commands with `rules` (SPEC §12).
pub fn parse_entry_with<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    fields: &[(K, V)],
    limits: &Limits,
    rules: Option<&PhaseRules>,
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
        Some(s) => Some(parse_rfc3339(s).map_err(|p| invalid("ts", p))?),
        None => None,
    };
    let payload = Json::parse(payload_s).map_err(|e| EntryError::InvalidJson(e.to_string()))?;
    let obj = payload
        .as_object()
        .ok_or_else(|| invalid("payload", "must be a JSON object"))?;
    let uuid = check_id("uuid", req_str(obj, "uuid", limits)?, limits)?;
    // Not interned: a new observation's uuid is shared by cloning it.
    let mut o = Observation::new(Sym::unique(uuid));
    match topic {
        Topic::Observed => payload::observed(obj, &mut o, ts, limits, rules)?,
        Topic::Fingerprinted => {
            let fp = payload::fingerprint(None, obj, limits)?;
            o.fingerprints.insert(fp);
        }
        Topic::SessionEnded => {
            let s = obj
                .get("session")
                .filter(|v| !v.is_null())
                .ok_or_else(|| invalid("session", "is missing"))?;
            let s = payload::session(&Path::Key("session"), s, limits, rules)?;
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
