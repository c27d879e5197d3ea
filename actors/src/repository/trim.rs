//! Trimming the input stream `{p}:stream:attacker` of the entries every
//! consumer group on it has acknowledged (issue 18: the stream was most of
//! Redis's footprint after the observation hashes). BusIngest calls
//! [`trim_acked`] about once a second (`ingest.trim_acked`); the point it
//! trims to is a pure function of where each group stands ([`trim_point`]).

use super::keys::Keys;
use redis::aio::MultiplexedConnection;
use redis::RedisError;
use std::collections::HashMap;

/// A stream entry id, `ms-seq`, as Redis orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId(pub u64, pub u64);

impl StreamId {
    /// Parses `ms-seq` (both parts decimal, as Redis writes them).
    pub fn parse(s: &str) -> Option<StreamId> {
        let (ms, seq) = s.split_once('-')?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }

    /// The next id Redis could give an entry after this one; none after
    /// the greatest.
    pub fn next(self) -> Option<StreamId> {
        match self.1.checked_add(1) {
            Some(seq) => Some(StreamId(self.0, seq)),
            None => self.0.checked_add(1).map(|ms| StreamId(ms, 0)),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// Where one consumer group stands on a stream: its oldest pending
/// (delivered, unacked) entry, if any, and its last-delivered-id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupPosition {
    pub oldest_pending: Option<StreamId>,
    pub last_delivered: StreamId,
}

/// The `MINID` to trim a stream to: the smallest id any group may still
/// need — its oldest pending entry, else the id after its last-delivered
/// one (everything up to that is delivered and acked). None without a
/// group: nothing says what a reader still needs.
pub fn trim_point(groups: &[GroupPosition]) -> Option<StreamId> {
    groups
        .iter()
        .map(|g| {
            let next = g.last_delivered.next().unwrap_or(g.last_delivered);
            g.oldest_pending.map_or(next, |p| p.min(next))
        })
        .min()
}

/// What one trim of the input stream did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trimmed {
    /// Entries below this id went (none when there was no group).
    pub minid: Option<StreamId>,
    pub removed: u64,
}

fn unexpected(what: String) -> RedisError {
    RedisError::from((redis::ErrorKind::Parse, "unexpected stream reply", what))
}

/// Trims the input stream of every entry all its consumer groups have
/// acknowledged (`XTRIM MINID`, exact): for EVERY group on it (ours, and
/// any other reader's, an operator's SIEM), its oldest pending entry, else
/// the id after its last-delivered one; entries below the smallest of
/// those go. An entry delivered and not acked by some group, or not yet
/// delivered to it, is never removed.
///
/// Not atomic, and need not be: the groups are read (XINFO GROUPS) before
/// their pending entries (XPENDING), and meanwhile a group only moves
/// forward — an entry it takes on is newer than the last-delivered-id read
/// first, and acks only shrink what is pending — so the point computed is
/// at most what each group needs when XTRIM runs. Only an operator moving
/// a group back (XGROUP SETID, or a new group from `0`) races it, as it
/// would race any trim a moment earlier.
pub async fn trim_acked(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
) -> Result<Trimmed, RedisError> {
    let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(keys.input())
        .query_async(conn)
        .await?;
    let mut named = Vec::with_capacity(groups.len());
    for g in &groups {
        let name = match g.get("name") {
            Some(redis::Value::BulkString(n)) => n.clone(),
            Some(redis::Value::SimpleString(n)) => n.clone().into_bytes(),
            other => return Err(unexpected(format!("a group name {other:?}"))),
        };
        let last = g
            .get("last-delivered-id")
            .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
            .and_then(|s| StreamId::parse(&s))
            .ok_or_else(|| unexpected("a group without a last-delivered-id".into()))?;
        named.push((name, last));
    }
    if named.is_empty() {
        return Ok(Trimmed {
            minid: None,
            removed: 0,
        });
    }
    // Each group's pending summary: [count, smallest id, largest id, consumers].
    let mut pipe = redis::pipe();
    for (name, _) in &named {
        pipe.cmd("XPENDING").arg(keys.input()).arg(name.as_slice());
    }
    let summaries: Vec<redis::Value> = pipe.query_async(conn).await?;
    if summaries.len() != named.len() {
        return Err(unexpected(format!(
            "{} pending summaries for {} groups",
            summaries.len(),
            named.len()
        )));
    }
    let mut positions = Vec::with_capacity(named.len());
    for ((_, last), summary) in named.iter().zip(summaries) {
        let redis::Value::Array(parts) = summary else {
            return Err(unexpected(format!("a pending summary {summary:?}")));
        };
        let oldest_pending = match parts.first() {
            Some(redis::Value::Int(0)) => None,
            Some(redis::Value::Int(_)) => Some(
                parts
                    .get(1)
                    .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
                    .and_then(|s| StreamId::parse(&s))
                    .ok_or_else(|| unexpected("a pending summary without its oldest id".into()))?,
            ),
            other => return Err(unexpected(format!("a pending count {other:?}"))),
        };
        positions.push(GroupPosition {
            oldest_pending,
            last_delivered: *last,
        });
    }
    let Some(minid) = trim_point(&positions) else {
        return Ok(Trimmed {
            minid: None,
            removed: 0,
        });
    };
    let removed: u64 = redis::cmd("XTRIM")
        .arg(keys.input())
        .arg("MINID")
        .arg(minid.to_string())
        .query_async(conn)
        .await?;
    Ok(Trimmed {
        minid: Some(minid),
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trim_point_is_what_the_furthest_behind_group_still_needs() {
        let id = |s: &str| StreamId::parse(s).unwrap();
        let g = |pending: Option<&str>, last: &str| GroupPosition {
            oldest_pending: pending.map(id),
            last_delivered: id(last),
        };
        assert_eq!(trim_point(&[]), None);
        // Ours alone, all acked: everything delivered goes.
        assert_eq!(trim_point(&[g(None, "5-3")]), Some(id("5-4")));
        // Something pending: it and everything after stay.
        assert_eq!(trim_point(&[g(Some("2-0"), "5-3")]), Some(id("2-0")));
        // Another group that read nothing holds everything.
        assert_eq!(
            trim_point(&[g(None, "5-3"), g(None, "0-0")]),
            Some(id("0-1"))
        );
        // Another group behind with entries pending.
        assert_eq!(
            trim_point(&[g(None, "9-0"), g(Some("3-7"), "4-0")]),
            Some(id("3-7"))
        );
        // The id after the greatest sequence is the next millisecond's
        // first; nothing comes after the greatest id, which stays.
        let max = u64::MAX;
        assert_eq!(
            trim_point(&[g(None, &format!("7-{max}"))]),
            Some(StreamId(8, 0))
        );
        let top = format!("{max}-{max}");
        assert_eq!(trim_point(&[g(None, &top)]), Some(StreamId(max, max)));
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-2-3",
            "+1-0",
            "1- 2",
            "18446744073709551616-0",
        ] {
            assert_eq!(StreamId::parse(bad), None, "{bad:?}");
        }
        assert_eq!(StreamId::parse("12-0").unwrap().to_string(), "12-0");
        assert!(id("2-0") > id("1-99") && id("1-10") > id("1-9"));
    }
}
