//! The timestamp codec: unix milliseconds ([`Millis`]) from an RFC 3339
//! string with offset or from unix seconds (inputs: attacker-controlled,
//! bounded to 1970..2200), and to RFC 3339 UTC with millisecond precision
//! (every timestamp the daemon writes). The input parser decodes through
//! it; output never goes through the parser.

use super::json::{preview, Json};
use super::Millis;
use serde_json::Value;

/// Earliest and latest accepted instants: 1970-01-01 and 2200-12-31.
const MIN_MS: Millis = 0;
const MAX_MS: Millis = 7_289_654_400_000;

/// Parses a timestamp: an RFC 3339 string with offset, or unix seconds.
pub fn parse_timestamp(v: &Value) -> Result<Millis, String> {
    match v {
        Value::String(s) => parse_rfc3339(s),
        Value::Number(n) => timestamp_secs(n),
        Value::Null => Err(not_a_timestamp("null")),
        Value::Bool(_) => Err(not_a_timestamp("a boolean")),
        Value::Array(_) => Err(not_a_timestamp("an array")),
        Value::Object(_) => Err(not_a_timestamp("an object")),
    }
}

/// [`parse_timestamp`] of a payload value.
pub(crate) fn parse_json_timestamp(v: &Json) -> Result<Millis, String> {
    match v {
        Json::String(s) => parse_rfc3339(s),
        Json::Number(n) => timestamp_secs(n),
        other => Err(not_a_timestamp(other.kind())),
    }
}

fn not_a_timestamp(kind: &str) -> String {
    format!("must be an RFC 3339 string or unix seconds, got {kind}")
}

/// An RFC 3339 timestamp with offset.
pub(crate) fn parse_rfc3339(s: &str) -> Result<Millis, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let ms = parse_timestamp(&Value::String("2026-01-01T03:00:00.250+01:00".into())).unwrap();
        assert_eq!(format_timestamp(ms), "2026-01-01T02:00:00.250Z");
        assert!(parse_timestamp(&serde_json::json!(1e300)).is_err());
        assert!(parse_timestamp(&serde_json::json!(-5)).is_err());
    }
}
