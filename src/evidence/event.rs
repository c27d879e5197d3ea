//! Parsing and validation of input stream entries (SPEC §4) into partial
//! observations. Every value here is attacker-controlled.

use super::Millis;

/// Formats unix milliseconds as RFC 3339 UTC with millisecond precision.
pub fn format_timestamp(ms: Millis) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => String::new(),
    }
}
