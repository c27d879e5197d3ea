//! How values are spelled inside Redis (SPEC §3, §5): timestamps of the
//! hashes and events, JSON-encoded fields, an observation's internal
//! evidence (`{p}:evidence:{uuid}`),
//! and the `{lo}|{hi}` field of an operator decision. Every encoding has its
//! decoding here, beside it; the writes (`write.rs`) and the load
//! (`load.rs`) go through this module rather than spelling them again.

use decnet_clusterd::evidence::stored;
use decnet_clusterd::evidence::time::{format_timestamp, parse_timestamp};
use decnet_clusterd::evidence::{Millis, Observation};
use decnet_clusterd::identity::Decision;

/// A timestamp as stored (RFC 3339, milliseconds, UTC).
pub fn timestamp(t: Millis) -> String {
    format_timestamp(t)
}

/// An optional timestamp as stored: empty when absent.
pub fn optional_timestamp(t: Option<Millis>) -> String {
    t.map(format_timestamp).unwrap_or_default()
}

/// A stored timestamp read back; `None` when it is not one.
pub fn parse_stored_timestamp(v: &str) -> Option<Millis> {
    parse_timestamp(&serde_json::Value::String(v.to_string())).ok()
}

/// A value as a JSON field (`null` if it cannot be encoded).
pub fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// An observation's internal evidence, in the compact form
/// (`decnet_clusterd::evidence::stored`).
pub fn evidence(o: &Observation) -> String {
    stored::encode(o)
}

/// Stored evidence read back (the evidence key, or the hash's `evidence`
/// field of earlier versions): the compact form, or the JSON every version
/// before it wrote.
pub fn parse_evidence(raw: &[u8]) -> Result<Observation, stored::StoredEvidenceError> {
    stored::decode(raw)
}

/// A decision's pair in the order it is stored: the smaller uuid first.
pub fn decision_pair<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// The field of `{p}:decisions` for a sorted pair: `{lo}|{hi}`.
pub fn decision_field(lo: &str, hi: &str) -> String {
    format!("{lo}|{hi}")
}

/// The pair a `{p}:decisions` field names; `None` when it names none.
pub fn parse_decision_field(field: &str) -> Option<(&str, &str)> {
    field.split_once('|')
}

/// A decision's stored value: JSON {kind, requested_by, at}.
pub fn decision_value(d: &Decision) -> String {
    serde_json::to_string(d).unwrap_or_default()
}

/// A stored decision value read back; `None` when it is malformed.
pub fn parse_decision_value(v: &str) -> Option<Decision> {
    serde_json::from_str(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use decnet_clusterd::identity::DecisionKind;

    #[test]
    fn a_decision_field_and_value_read_back_as_written() {
        let (lo, hi) = decision_pair("obs-b", "obs-a");
        assert_eq!((lo, hi), ("obs-a", "obs-b"));
        let field = decision_field(lo, hi);
        assert_eq!(field, "obs-a|obs-b");
        assert_eq!(parse_decision_field(&field), Some(("obs-a", "obs-b")));
        assert_eq!(parse_decision_field("no-bar"), None);
        let d = Decision {
            kind: DecisionKind::Separate,
            requested_by: "ana".into(),
            at: 1_700_000_000_123,
        };
        assert_eq!(parse_decision_value(&decision_value(&d)), Some(d));
        assert!(parse_decision_value("{").is_none());
    }

    #[test]
    fn timestamps_read_back_as_written() {
        let t = 1_700_000_000_123;
        assert_eq!(parse_stored_timestamp(&timestamp(t)), Some(t));
        assert_eq!(optional_timestamp(None), "");
        assert_eq!(parse_stored_timestamp("yesterday"), None);
    }
}
