//! Trimming the input stream of what every consumer group acked
//! (`ingest.trim_acked`): once the daemon has acked a backlog the stream is
//! emptied; with it off, nothing goes; a second group that has read
//! nothing holds every entry, and as it acks the trim follows it; entries
//! delivered and not acked (pending in our group or in another) are never
//! removed. Each test uses its own key prefix.

mod common;

use clusterd::repository::Keys;
use common::*;
use redis::Commands;
use std::time::{Duration, Instant};

/// Publishes `n` observations (`{tag}-{i}`) and returns their entry ids,
/// oldest first.
fn publish_n(prefix: &str, tag: &str, n: usize) -> Vec<String> {
    let mut c = conn();
    let keys = Keys::new(prefix);
    (0..n)
        .map(|i| {
            redis::cmd("XADD")
                .arg(keys.input())
                .arg("*")
                .arg("topic")
                .arg("attacker.observed")
                .arg("payload")
                .arg(format!(
                    r#"{{"uuid":"{tag}-{i}","ip":"198.51.100.{}"}}"#,
                    i % 250
                ))
                .query(&mut c)
                .unwrap()
        })
        .collect()
}

fn xlen(prefix: &str) -> usize {
    conn().xlen(Keys::new(prefix).input()).unwrap()
}

/// The id of the oldest entry left in the input stream.
fn first_id(prefix: &str) -> Option<String> {
    let r: redis::streams::StreamRangeReply = conn()
        .xrange_count(Keys::new(prefix).input(), "-", "+", 1)
        .unwrap();
    r.ids.first().map(|e| e.id.clone())
}

fn stored(prefix: &str) -> usize {
    conn().scard(Keys::new(prefix).attackers()).unwrap_or(0)
}

fn trimmed(prefix: &str) -> u64 {
    health_of(prefix, "bus-ingest")["trimmed"]
        .as_u64()
        .unwrap_or(0)
}

/// Creates consumer group `group` on the input stream at `from`.
fn create_group(prefix: &str, group: &str, from: &str) {
    let _: String = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(Keys::new(prefix).input())
        .arg(group)
        .arg(from)
        .arg("MKSTREAM")
        .query(&mut conn())
        .unwrap();
}

/// Reads up to `count` new entries as `consumer` of `group` (not acked);
/// returns their ids.
fn read_as(prefix: &str, group: &str, consumer: &str, count: usize) -> Vec<String> {
    let r: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(Keys::new(prefix).input())
        .arg(">")
        .query(&mut conn())
        .unwrap();
    r.keys
        .into_iter()
        .flat_map(|k| k.ids.into_iter().map(|e| e.id))
        .collect()
}

fn ack(prefix: &str, group: &str, ids: &[String]) {
    let n: usize = conn().xack(Keys::new(prefix).input(), group, ids).unwrap();
    assert_eq!(n, ids.len());
}

/// Polls until the stream's oldest entry is `want` (and it holds
/// `len` entries), checking at every poll that it never went past `want`.
fn trimmed_to(prefix: &str, ids: &[String], want: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (len, first) = (xlen(prefix), first_id(prefix));
        assert!(
            len >= ids.len() - want,
            "{what}: trimmed past entry {want}: {len} left"
        );
        if len == ids.len() - want && first.as_ref() == ids.get(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: timed out; {len} entries left, the first {first:?}, want {} from {:?}",
            ids.len() - want,
            ids.get(want)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks for `secs` that the stream keeps `len` entries from `first`.
fn holds(prefix: &str, len: usize, first: Option<&String>, secs: f64, what: &str) {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < until {
        assert_eq!(xlen(prefix), len, "{what}");
        assert_eq!(first_id(prefix).as_ref(), first, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn once_acked_the_backlog_leaves_the_stream_and_with_trimming_off_it_stays() {
    const N: usize = 400;
    let prefix = Prefix::new("trim-acked");
    let p = prefix.0.as_str();
    let ids = publish_n(p, "a", N);
    let daemon = start_with(p, &[]);
    // Every entry acked by the only group: the stream empties.
    trimmed_to(p, &ids, N, "after the backlog");
    assert_eq!(
        stored(p),
        N,
        "every observation stored before its entry went"
    );
    assert_eq!(pending(p), 0);
    eventually("the heartbeat to count the trimmed entries", 30, || {
        trimmed(p) == N as u64
    });
    // New entries keep flowing: they go as they are acked.
    let more = publish_n(p, "b", 50);
    eventually("the next entries to be stored", 30, || stored(p) == N + 50);
    trimmed_to(p, &more, 50, "after more entries");
    assert_eq!(daemon.stop(), 0);

    // Off: the daemon ingests as before and leaves the stream alone.
    let prefix = Prefix::new("trim-off");
    let p = prefix.0.as_str();
    let ids = publish_n(p, "c", N);
    let daemon = start_with(p, &[("CLUSTERD_INGEST__TRIM_ACKED", "false")]);
    eventually("the backlog to be stored", 30, || {
        stored(p) == N && pending(p) == 0
    });
    // Two trim periods and more after the last ack: nothing went.
    holds(p, N, ids.first(), 2.5, "with trim_acked = false");
    assert_eq!(trimmed(p), 0);
    assert_eq!(daemon.stop(), 0);
}

#[test]
fn another_group_that_has_read_nothing_keeps_every_entry_until_it_acks() {
    const N: usize = 300;
    let prefix = Prefix::new("trim-siem");
    let p = prefix.0.as_str();
    // A SIEM's group, reading from the start, before anything is published.
    create_group(p, "siem", "0");
    let ids = publish_n(p, "s", N);
    let daemon = start_with(p, &[]);
    eventually("the backlog to be stored", 30, || {
        stored(p) == N && pending(p) == 0
    });
    // Ours acked everything; the SIEM's group has read nothing, so nothing
    // goes however many trims run.
    holds(p, N, ids.first(), 2.5, "the SIEM has read nothing");
    assert_eq!(trimmed(p), 0);
    // The SIEM reads and acks the first 100: those go, and only those.
    let read = read_as(p, "siem", "s1", 100);
    assert_eq!(read, ids[..100]);
    ack(p, "siem", &read);
    trimmed_to(p, &ids, 100, "the SIEM acked 100");
    // It reads the next 100 and acks only 30 of them: the 70 pending stay,
    // readable again with their fields.
    let read = read_as(p, "siem", "s1", 100);
    assert_eq!(read, ids[100..200]);
    ack(p, "siem", &read[..30]);
    trimmed_to(p, &ids, 130, "the SIEM acked 30 of 100 read");
    holds(
        p,
        N - 130,
        ids.get(130),
        1.5,
        "70 pending in the SIEM's group",
    );
    let again: redis::streams::StreamRangeReply = conn()
        .xrange_count(Keys::new(p).input(), &ids[130], &ids[199], 100)
        .unwrap();
    assert_eq!(again.ids.len(), 70);
    assert!(again.ids.iter().all(|e| e.map.contains_key("payload")));
    eventually("the heartbeat to count the trimmed entries", 30, || {
        trimmed(p) == 130
    });
    assert_eq!(daemon.stop(), 0);
}

#[test]
fn entries_pending_in_our_group_are_never_trimmed() {
    const N: usize = 300;
    let prefix = Prefix::new("trim-pending");
    let p = prefix.0.as_str();
    let ids = publish_n(p, "q", N);
    // A consumer of our own group (a dead instance, say) has read the first
    // 50 and not acked them; the daemon is told not to take them over.
    create_group(p, "clusterd", "0");
    let ghost = read_as(p, "clusterd", "ghost", 50);
    assert_eq!(ghost, ids[..50]);
    let daemon = start_with(p, &[("CLUSTERD_INGEST__CLAIM_IDLE_MS", "600000")]);
    eventually("the rest of the backlog to be stored", 30, || {
        stored(p) == N - 50
    });
    // The daemon acked the other 250; the oldest pending entry holds them.
    holds(p, N, ids.first(), 2.5, "50 pending in our group");
    // The ghost acks 20 of its 50: those go, its 30 pending stay.
    ack(p, "clusterd", &ghost[..20]);
    trimmed_to(p, &ids, 20, "20 of the pending acked");
    holds(p, N - 20, ids.get(20), 1.5, "30 still pending");
    assert_eq!(pending(p), 30);
    assert_eq!(daemon.stop(), 0);
}

#[test]
fn kill_9_while_trimming_loses_nothing_for_either_group() {
    const N: usize = 1500;
    const CHUNK: usize = 150;
    let prefix = Prefix::new("trim-kill");
    let p = prefix.0.as_str();
    create_group(p, "siem", "0");
    let ids = publish_n(p, "k", N);
    // A SIEM that fetched the whole backlog at once and acks as it goes:
    // everything is pending in its group.
    let siem = read_as(p, "siem", "s1", N);
    assert_eq!(siem, ids);
    // Small reads, so the kills land part way through the backlog; what a
    // killed instance read and never acked is claimed after a second.
    let small = [
        ("CLUSTERD_INGEST__BATCH", "32"),
        ("CLUSTERD_INGEST__CLAIM_IDLE_MS", "1000"),
    ];
    let mut daemon = start_with(p, &small);
    // The daemon is killed -9 three times part way through the backlog
    // (each restart trims at once); the SIEM acks a chunk each time.
    let mut acked = 0;
    for kill in 0..3 {
        let goal = (kill + 1) * N / 4;
        eventually(&format!("progress before kill {kill}"), 60, || {
            stored(p) >= goal
        });
        ack(p, "siem", &siem[acked..acked + CHUNK]);
        acked += CHUNK;
        kill9(&mut daemon);
        daemon = start_with(p, &small);
    }
    // Every entry read and not acked by a killed instance was still there
    // to be read again: the daemon stores the whole backlog.
    eventually("the daemon to store the whole backlog", 60, || {
        stored(p) == N && pending(p) == 0
    });
    let dead: usize = conn().xlen(Keys::new(p).deadletter()).unwrap_or(0);
    assert_eq!(dead, 0, "no entry came back empty");
    // What the SIEM acked goes, and nothing after it: its pending entries
    // are all there, with their fields.
    trimmed_to(p, &ids, acked, "the SIEM acked some");
    let rest: redis::streams::StreamRangeReply = conn().xrange_all(Keys::new(p).input()).unwrap();
    assert_eq!(
        rest.ids.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ids[acked..]
    );
    assert!(rest.ids.iter().all(|e| e.map.contains_key("payload")));
    // Both groups have acked everything: the stream empties.
    ack(p, "siem", &siem[acked..]);
    trimmed_to(p, &ids, N, "both groups acked everything");
    assert_eq!(daemon.stop(), 0);
}
