//! Publishing into the input stream: what `clusterd simulate` does (and what
//! the tests use to feed the daemon).

use crate::keys::Keys;
use decnet_clusterd::scenario::GeneratedEvent;
use redis::aio::MultiplexedConnection;
use std::time::{Duration, Instant};

/// Appends events to `{p}:stream:attacker` in pipelined chunks, at most
/// `rate` events per second when given; calls `progress` after each chunk.
pub async fn publish(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    events: &[GeneratedEvent],
    rate: Option<u32>,
    mut progress: impl FnMut(usize),
) -> Result<(), redis::RedisError> {
    let chunk = rate.map_or(500, |r| (r as usize / 10).clamp(1, 500));
    let started = Instant::now();
    let mut sent = 0usize;
    for part in events.chunks(chunk) {
        let mut pipe = redis::pipe();
        for e in part {
            pipe.cmd("XADD").arg(keys.input()).arg("*");
            for (k, v) in e.fields() {
                pipe.arg(k).arg(v);
            }
            pipe.ignore();
        }
        let _: () = pipe.query_async(conn).await?;
        sent += part.len();
        progress(sent);
        if let Some(r) = rate.filter(|r| *r > 0) {
            let due = Duration::from_secs_f64(sent as f64 / r as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    Ok(())
}
