//! The leader lease (`{p}:leader`, SPEC §2) and the fenced commit: every
//! write of the daemon is one MULTI/EXEC transaction that Redis runs only if
//! this instance still holds the lease — atomically, so a change never lands
//! without its events, and a paused old leader that wakes up is refused by
//! Redis itself.
//!
//! The fence is a second key, `{p}:leader:fence`, set to the holder's
//! instance id by the same script that takes the lease and touched by
//! nothing else (renewals extend `{p}:leader` only). A commit WATCHes the
//! fence, checks that both keys name this instance, then sends the
//! transaction: if another instance took the lease in between, the fence
//! moved and Redis discards the whole transaction. The transaction is
//! plain commands rather than a Lua script because Redis copies and
//! interns every argument of a script into Lua strings, which cost as much
//! as the writes themselves (a batch carries tens of thousands of them).
//! WATCH belongs to a connection, so a commit needs a connection that no
//! one else uses while it runs (the Publisher's own).

use super::write::Op;
use redis::aio::MultiplexedConnection;
use std::future::Future;

/// Operations a commit may carry.
const ALLOWED: &[&str] = &["SET", "HSET", "SADD", "XADD", "XACK", "HDEL", "SREM", "DEL"];

/// Takes the lease and moves the fence to the new holder, atomically.
const ACQUIRE_LUA: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[1])
  return 1
end
return 0
"#;

const RENEW_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

const RELEASE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Why a commit did not apply.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The lease is held by someone else (or nobody): nothing was written.
    #[error("fenced: this instance no longer holds the leader lease")]
    Fenced,
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The lease of one instance.
#[derive(Clone, Debug)]
pub struct Lease {
    pub key: String,
    pub instance: String,
    pub period_ms: u64,
}

impl Lease {
    /// The fence key: names the instance that took the lease last.
    pub fn fence_key(&self) -> String {
        format!("{}:fence", self.key)
    }

    /// Tries to take the lease (SET NX PX) and, when taken, moves the fence
    /// to this instance. True when held.
    pub async fn acquire(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> Result<bool, redis::RedisError> {
        let n: i64 = redis::Script::new(ACQUIRE_LUA)
            .key(&self.key)
            .key(self.fence_key())
            .arg(&self.instance)
            .arg(self.period_ms)
            .invoke_async(conn)
            .await?;
        Ok(n == 1)
    }

    /// Extends the lease if still held. True when held.
    pub async fn renew(&self, conn: &mut MultiplexedConnection) -> Result<bool, redis::RedisError> {
        let n: i64 = redis::Script::new(RENEW_LUA)
            .key(&self.key)
            .arg(&self.instance)
            .arg(self.period_ms)
            .invoke_async(conn)
            .await?;
        Ok(n == 1)
    }

    /// Gives the lease up if held (clean exit).
    pub async fn release(&self, conn: &mut MultiplexedConnection) -> Result<(), redis::RedisError> {
        let _: i64 = redis::Script::new(RELEASE_LUA)
            .key(&self.key)
            .arg(&self.instance)
            .invoke_async(conn)
            .await?;
        Ok(())
    }

    /// Applies `ops` atomically if and only if the lease is held; returns
    /// how many operations were applied. `conn` must not be used by anyone
    /// else until this returns (it WATCHes the fence).
    pub async fn commit(
        &self,
        conn: &mut MultiplexedConnection,
        ops: &[Op],
    ) -> Result<usize, CommitError> {
        self.commit_checked(conn, &Prepared::new(ops, &[]), || async {})
            .await
    }

    /// [`Lease::commit`] of a transaction built ahead of time.
    pub async fn commit_prepared(
        &self,
        conn: &mut MultiplexedConnection,
        tx: &Prepared,
    ) -> Result<usize, CommitError> {
        self.commit_checked(conn, tx, || async {}).await
    }

    /// [`Lease::commit_prepared`], running `between` after the lease check
    /// and before the transaction is sent (tests take the lease over there).
    pub async fn commit_checked<F, Fut>(
        &self,
        conn: &mut MultiplexedConnection,
        tx: &Prepared,
        between: F,
    ) -> Result<usize, CommitError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ()>,
    {
        if tx.ops == 0 {
            return Ok(0);
        }
        let fence = self.fence_key();
        let (holder, fenced_by): (Option<String>, Option<String>) = redis::pipe()
            .cmd("WATCH")
            .arg(&fence)
            .ignore()
            .cmd("GET")
            .arg(&self.key)
            .cmd("GET")
            .arg(&fence)
            .query_async(conn)
            .await?;
        let mine = Some(self.instance.as_str());
        if holder.as_deref() != mine || fenced_by.as_deref() != mine {
            redis::cmd("UNWATCH").query_async::<()>(conn).await?;
            return Err(CommitError::Fenced);
        }
        between().await;
        // EXEC answers nil when the fence moved after WATCH: another
        // instance took the lease, and Redis applied none of it.
        let applied: Option<redis::Value> = tx.pipeline.query_async(conn).await?;
        match applied {
            Some(_) => Ok(tx.ops),
            None => Err(CommitError::Fenced),
        }
    }
}

/// A commit's transaction, built on a blocking thread rather than on the
/// runtime thread that sends it: a batch carries tens of thousands of
/// arguments, and copying them into commands, then freeing the operations,
/// was a sixth of that thread's time, which it shares with every read,
/// reply and heartbeat.
pub struct Prepared {
    pipeline: redis::Pipeline,
    /// Operations in the transaction.
    ops: usize,
    /// Of them, lifecycle events: appends to each of `event_streams`.
    events: Vec<u64>,
}

impl Prepared {
    /// The transaction of `ops`, counting appends to `event_streams` as
    /// events.
    pub fn new(ops: &[Op], event_streams: &[String]) -> Prepared {
        let mut events = vec![0; event_streams.len()];
        for o in ops.iter().filter(|o| o.cmd == "XADD") {
            if let Some(i) = o
                .args
                .first()
                .and_then(|k| event_streams.iter().position(|s| s == k))
            {
                events[i] += 1;
            }
        }
        Prepared {
            pipeline: transaction(ops),
            ops: ops.len(),
            events,
        }
    }

    /// Lifecycle events it appends.
    pub fn events(&self) -> u64 {
        self.events.iter().sum()
    }

    /// Lifecycle events it appends to each stream, in `event_streams` order.
    pub fn events_per_stream(&self) -> &[u64] {
        &self.events
    }
}

/// The operations as one MULTI/EXEC pipeline, each command built in a
/// buffer sized up front (a batch carries tens of thousands of arguments).
fn transaction(ops: &[Op]) -> redis::Pipeline {
    let mut tx = redis::pipe();
    tx.atomic();
    for op in ops {
        debug_assert!(ALLOWED.contains(&op.cmd), "{} in a commit", op.cmd);
        let bytes = op.cmd.len() + op.args.iter().map(String::len).sum::<usize>();
        let mut cmd = redis::Cmd::with_capacity(op.args.len() + 1, bytes);
        cmd.arg(op.cmd);
        for a in &op.args {
            cmd.arg(a.as_str());
        }
        tx.add_command(cmd).ignore();
    }
    tx
}
