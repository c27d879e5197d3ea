//! The stored rows as the load reads them back: one HMGET reply per hash
//! ([`Fields`]) turned into an observation, identity or campaign row, or
//! into the reason the row cannot be read (a field of the wrong type,
//! evidence that is not an observation, a uuid its key does not name).
//! Absent fields take their defaults; present ones must be valid.

use super::codec::{parse_evidence, parse_stored_timestamp};
use super::write::LEGACY_EVIDENCE_FIELD;
use decnet_clusterd::evidence::{Millis, Observation, Sym};
use decnet_clusterd::set::SortedSet;
use decnet_clusterd::store::{CampaignRow, IdentityRow};

/// What one hash's parser makes of it: a row, nothing (no such hash), or
/// the reason it cannot be read.
pub type Parsed<T> = Result<Option<T>, String>;

/// One hash read back by HMGET: the values of the requested fields, in
/// order, `None` when absent.
pub struct Fields(Vec<Option<Vec<u8>>>);

impl Fields {
    pub fn from_reply(v: redis::Value) -> Fields {
        let redis::Value::Array(items) = v else {
            return Fields(Vec::new());
        };
        Fields(
            items
                .into_iter()
                .map(|v| match v {
                    redis::Value::BulkString(b) => Some(b),
                    redis::Value::SimpleString(s) => Some(s.into_bytes()),
                    _ => None,
                })
                .collect(),
        )
    }

    /// These `n` fields and one more value after them, at index `n` (read
    /// by another command of the same pipeline), `None` when absent.
    pub fn with(mut self, n: usize, extra: Option<Vec<u8>>) -> Fields {
        self.0.resize(n, None);
        self.0.push(extra);
        self
    }

    /// Field `i` as bytes, `None` when absent or empty.
    fn bytes(&self, i: usize) -> Option<&[u8]> {
        self.0
            .get(i)
            .and_then(Option::as_deref)
            .filter(|v| !v.is_empty())
    }

    /// Field `i` (named `name`) must be absent or text.
    fn text(&self, i: usize, name: &str) -> Result<Option<&str>, String> {
        match self.bytes(i) {
            None => Ok(None),
            Some(v) => std::str::from_utf8(v)
                .map(Some)
                .map_err(|_| format!("`{name}` is not UTF-8")),
        }
    }

    /// Field `i` must be absent or parse as a `T`.
    fn strict<T: std::str::FromStr>(&self, i: usize, name: &str) -> Result<Option<T>, String> {
        match self.text(i, name)? {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("`{name}` is not a valid value")),
        }
    }

    /// Field `i` must be absent or a timestamp.
    fn strict_time(&self, i: usize, name: &str) -> Result<Option<Millis>, String> {
        match self.text(i, name)? {
            None => Ok(None),
            Some(v) => parse_stored_timestamp(v)
                .map(Some)
                .ok_or_else(|| format!("`{name}` is not a timestamp")),
        }
    }

    /// Field `i` must be absent or a JSON array of strings.
    fn strict_set(&self, i: usize, name: &str) -> Result<SortedSet<Sym>, String> {
        match self.bytes(i) {
            None => Ok(SortedSet::default()),
            Some(v) => serde_json::from_slice(v)
                .map_err(|_| format!("`{name}` is not a JSON array of strings")),
        }
    }
}

/// A row's own uuid must be the one its key (`{p}:attacker:{uuid}`) ends
/// with.
fn same_uuid(key: &str, uuid: &str) -> Result<(), String> {
    let named = key
        .strip_suffix(uuid)
        .is_some_and(|rest| rest.ends_with(':'));
    if named && !uuid.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the row names uuid `{}`, its key another",
            uuid.escape_debug()
        ))
    }
}

/// The fields of an observation's hash the load reads: the `evidence` of
/// versions before `{p}:evidence:{uuid}`, the direct identity, and the
/// uuid (present in every hash the daemon wrote, so it tells a hash from
/// none). The load appends the evidence key's value to them
/// ([`Fields::with`]).
pub const OBSERVATION_FIELDS: &[&str] = &[LEGACY_EVIDENCE_FIELD, "identity_id", "uuid"];

/// An observation and its direct identity, from its hash and its evidence
/// key. A hash still holding `evidence` (written before the evidence key,
/// or by such a version after it) is read from that; else the key must
/// hold it: a hash without either is a row that cannot be read.
pub fn observation_row(key: &str, h: Fields) -> Parsed<(Observation, Option<String>)> {
    let o = match (h.bytes(0), h.bytes(3)) {
        (Some(field), _) => {
            parse_evidence(field).map_err(|e| format!("`evidence` is not valid: {e}"))?
        }
        (None, Some(stored)) => {
            parse_evidence(stored).map_err(|e| format!("its evidence key is not valid: {e}"))?
        }
        (None, None) if h.bytes(1).is_none() && h.bytes(2).is_none() => return Ok(None),
        (None, None) => return Err("its evidence key is missing".into()),
    };
    same_uuid(key, &o.uuid)?;
    let identity = h.text(1, "identity_id")?.map(str::to_string);
    Ok(Some((o, identity)))
}

pub const IDENTITY_FIELDS: &[&str] = &[
    "uuid",
    "schema_version",
    "campaign_id",
    "merged_into_uuid",
    "observation_count",
    "first_seen_at",
    "last_seen_at",
    "created_at",
    "updated_at",
    "confidence",
    "ja3_hashes",
    "hassh_hashes",
    "payload_hashes",
    "c2_endpoints",
    "kd_digraph_simhash",
    "notes",
];

pub fn identity_row(key: &str, h: Fields) -> Parsed<IdentityRow> {
    let Some(uuid) = h.text(0, "uuid")?.map(str::to_string) else {
        return Ok(None);
    };
    same_uuid(key, &uuid)?;
    Ok(Some(IdentityRow {
        uuid,
        schema_version: h.strict(1, "schema_version")?.unwrap_or(1),
        campaign_id: h.text(2, "campaign_id")?.map(str::to_string),
        merged_into_uuid: h.text(3, "merged_into_uuid")?.map(str::to_string),
        observation_count: h.strict(4, "observation_count")?.unwrap_or(0),
        first_seen_at: h.strict_time(5, "first_seen_at")?,
        last_seen_at: h.strict_time(6, "last_seen_at")?,
        created_at: h.strict_time(7, "created_at")?.unwrap_or(0),
        updated_at: h.strict_time(8, "updated_at")?.unwrap_or(0),
        confidence: h.strict(9, "confidence")?.unwrap_or(0.0),
        ja3_hashes: h.strict_set(10, "ja3_hashes")?,
        hassh_hashes: h.strict_set(11, "hassh_hashes")?,
        payload_hashes: h.strict_set(12, "payload_hashes")?,
        c2_endpoints: h.strict_set(13, "c2_endpoints")?,
        kd_digraph_simhash: h.text(14, "kd_digraph_simhash")?.map(str::to_string),
        notes: h
            .0
            .get(15)
            .and_then(Option::as_deref)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default(),
    }))
}

pub const CAMPAIGN_FIELDS: &[&str] = &[
    "uuid",
    "schema_version",
    "merged_into_uuid",
    "identity_count",
    "first_seen_at",
    "last_seen_at",
    "created_at",
    "updated_at",
    "confidence",
];

pub fn campaign_row(key: &str, h: Fields) -> Parsed<CampaignRow> {
    let Some(uuid) = h.text(0, "uuid")?.map(str::to_string) else {
        return Ok(None);
    };
    same_uuid(key, &uuid)?;
    Ok(Some(CampaignRow {
        uuid,
        schema_version: h.strict(1, "schema_version")?.unwrap_or(1),
        merged_into_uuid: h.text(2, "merged_into_uuid")?.map(str::to_string),
        identity_count: h.strict(3, "identity_count")?.unwrap_or(0),
        first_seen_at: h.strict_time(4, "first_seen_at")?,
        last_seen_at: h.strict_time(5, "last_seen_at")?,
        created_at: h.strict_time(6, "created_at")?.unwrap_or(0),
        updated_at: h.strict_time(7, "updated_at")?.unwrap_or(0),
        confidence: h.strict(8, "confidence")?.unwrap_or(0.0),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(values: &[Option<&str>]) -> Fields {
        Fields(
            values
                .iter()
                .map(|v| v.map(|s| s.as_bytes().to_vec()))
                .collect(),
        )
    }

    #[test]
    fn observations_that_cannot_be_read_say_why() {
        let key = "p:attacker:a-1";
        let stored = |uuid: &str| {
            serde_json::to_string(&Observation {
                uuid: uuid.into(),
                ..Observation::default()
            })
            .unwrap()
        };
        // [hash `evidence`, identity_id, uuid, the evidence key]
        let row = |field: Option<&str>, beside: Option<&str>| {
            hash(&[field, Some("i-1"), Some("a-1"), beside])
        };
        let good = stored("a-1");
        let read = observation_row(key, row(None, Some(&good)))
            .unwrap()
            .unwrap();
        assert_eq!(
            (read.0.uuid.as_str(), read.1.as_deref()),
            ("a-1", Some("i-1"))
        );
        // A hash of an earlier version, the evidence in it.
        assert!(observation_row(key, row(Some(&good), None))
            .unwrap()
            .is_some());
        // Both: the hash's was written later (by an earlier version).
        assert!(observation_row(key, row(Some(&good), Some("{}")))
            .unwrap()
            .is_some());
        assert!(observation_row(key, row(Some("{}"), Some(&good))).is_err());
        assert_eq!(
            observation_row(key, hash(&[None, None, None, None])),
            Ok(None)
        );
        let missing = observation_row(key, row(None, None)).unwrap_err();
        assert!(missing.contains("evidence key is missing"), "{missing}");
        let (other, tail) = (stored("b-2"), stored("1"));
        let wrong_type = good.replacen("\"a-1\"", "7", 1);
        for (evidence, why) in [
            ("{}", "not valid"),
            ("not json", "not valid"),
            ("~2{", "not valid"),
            (wrong_type.as_str(), "not valid"),
            (other.as_str(), "names uuid `b-2`"),
            (tail.as_str(), "names uuid `1`"),
        ] {
            let e = observation_row(key, row(Some(evidence), None)).unwrap_err();
            assert!(
                e.contains(why) && !e.contains("evidence key"),
                "{evidence}: {e}"
            );
            let e = observation_row(key, row(None, Some(evidence))).unwrap_err();
            assert!(e.contains(why), "{evidence}: {e}");
            if why == "not valid" {
                assert!(e.contains("evidence key is not valid"), "{evidence}: {e}");
            }
        }
    }

    #[test]
    fn identities_and_campaigns_with_wrong_types_are_refused() {
        let key = "p:identity:i-1";
        let mut fields = vec![None; IDENTITY_FIELDS.len()];
        fields[0] = Some("i-1");
        let row = identity_row(key, hash(&fields)).unwrap().unwrap();
        assert_eq!((row.schema_version, row.observation_count), (1, 0));
        for (i, bad) in [
            (1, "one"),
            (4, "-3"),
            (5, "yesterday"),
            (7, "{}"),
            (9, "high"),
            (10, "{\"a\":1}"),
            (13, "[1,2]"),
        ] {
            let mut f = fields.clone();
            f[i] = Some(bad);
            let e = identity_row(key, hash(&f)).unwrap_err();
            assert!(e.contains(IDENTITY_FIELDS[i]), "{i}: {e}");
        }
        fields[0] = Some("i-2");
        assert!(identity_row(key, hash(&fields))
            .unwrap_err()
            .contains("names uuid"));
        let key = "p:campaign:c-1";
        let mut fields = vec![None; CAMPAIGN_FIELDS.len()];
        fields[0] = Some("c-1");
        assert!(campaign_row(key, hash(&fields)).unwrap().is_some());
        fields[3] = Some("many");
        assert!(campaign_row(key, hash(&fields))
            .unwrap_err()
            .contains("identity_count"));
    }
}
