//! The importers' Redis side (SPEC §12): publishing an event into the input
//! stream only if no importer published its id before (one Lua script:
//! SADD into the seen-set, XADD when new), and the position of a followed
//! file (`{p}:import:{source}:{file}`).

use super::Keys;
use decnet_clusterd::sensor::cowrie::ImportEvent;
use redis::{Commands, Connection, RedisResult, Script};
use std::collections::BTreeSet;

const PUBLISH_ONCE: &str = r#"
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[3] == '' then
  redis.call('XADD', KEYS[2], '*', 'topic', 'attacker.observed', 'event_id', ARGV[1], 'payload', ARGV[2])
else
  redis.call('XADD', KEYS[2], '*', 'topic', 'attacker.observed', 'event_id', ARGV[1], 'ts', ARGV[3], 'payload', ARGV[2])
end
return 1
"#;

/// Publishes the events not published before; returns how many were new.
pub fn publish_once(
    conn: &mut Connection,
    keys: &Keys,
    events: &[ImportEvent],
) -> RedisResult<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    let script = Script::new(PUBLISH_ONCE);
    // Load once, then EVALSHA in one pipeline per batch.
    script.prepare_invoke().load(conn)?;
    let mut pipe = redis::pipe();
    for e in events {
        pipe.cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(2)
            .arg(keys.import_seen())
            .arg(keys.input())
            .arg(&e.event_id)
            .arg(&e.payload)
            .arg(e.ts.as_deref().unwrap_or(""));
    }
    let added: Vec<i64> = pipe.query(conn)?;
    Ok(added.iter().filter(|a| **a == 1).count())
}

/// Where a follower stands in one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Where a restart resumes reading (the oldest open session's start).
    pub offset: u64,
    /// How far the file had been read.
    pub until: u64,
    /// The file's identity (device, inode), to tell a rotation while down.
    pub dev: u64,
    pub ino: u64,
    /// Sessions open at the save.
    pub open: BTreeSet<String>,
}

/// The saved position, if any (a malformed one reads as none).
pub fn load_position(
    conn: &mut Connection,
    keys: &Keys,
    source: &str,
    file: &str,
) -> RedisResult<Option<Position>> {
    let h: std::collections::HashMap<String, String> =
        conn.hgetall(keys.import_position(source, file))?;
    let num = |k: &str| h.get(k).and_then(|v| v.parse::<u64>().ok());
    let open = h
        .get("open")
        .and_then(|v| serde_json::from_str::<BTreeSet<String>>(v).ok());
    Ok(
        match (num("offset"), num("until"), num("dev"), num("ino"), open) {
            (Some(offset), Some(until), Some(dev), Some(ino), Some(open)) if offset <= until => {
                Some(Position {
                    offset,
                    until,
                    dev,
                    ino,
                    open,
                })
            }
            _ => None,
        },
    )
}

/// Saves a position (one HSET, so it is never half written).
pub fn save_position(
    conn: &mut Connection,
    keys: &Keys,
    source: &str,
    file: &str,
    p: &Position,
) -> RedisResult<()> {
    let open = serde_json::to_string(&p.open).unwrap_or_else(|_| "[]".into());
    let updated = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    conn.hset_multiple::<_, _, _, ()>(
        keys.import_position(source, file),
        &[
            ("offset", p.offset.to_string()),
            ("until", p.until.to_string()),
            ("dev", p.dev.to_string()),
            ("ino", p.ino.to_string()),
            ("open", open),
            ("updated_at", updated),
        ],
    )
}
