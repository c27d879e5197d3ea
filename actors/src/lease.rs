//! The leader lease (`{p}:leader`, SPEC §2) and the fenced commit: every
//! write of the daemon goes through one Lua script that first checks that
//! this instance still holds the lease, then applies all its operations —
//! atomically, so a change never lands without its events, and a paused old
//! leader that wakes up is refused by Redis itself.

use crate::repository::Op;
use redis::aio::MultiplexedConnection;

/// Operations the commit script accepts (anything else is refused).
const ALLOWED: &[&str] = &["HSET", "SADD", "XADD", "XACK", "HDEL", "SREM", "DEL"];

/// Most arguments the commit script hands to one `redis.call`: Redis's Lua
/// unpacks at most about 8,000 values at once, and a batch acks, and a pass
/// adds to an index set, far more than that. Longer variadic operations are
/// sent as several calls (the same writes: the script is atomic).
pub const MAX_CALL_ARGS: usize = 1000;

/// How a variadic operation splits: the leading arguments every piece
/// repeats, and the step its remaining arguments come in (HSET's field/value
/// pairs stay whole). `None`: not split (XADD's arguments are one entry).
fn split_shape(cmd: &str) -> Option<(usize, usize)> {
    match cmd {
        "SADD" | "SREM" | "HDEL" => Some((1, 1)),
        "XACK" => Some((2, 1)),
        "DEL" => Some((0, 1)),
        "HSET" => Some((1, 2)),
        _ => None,
    }
}

/// The calls `op` is sent as: its arguments whole, or in pieces of at most
/// [`MAX_CALL_ARGS`], each with the repeated leading arguments.
fn calls(op: &Op) -> impl Iterator<Item = (&[String], &[String])> {
    let (head, rest, per) = match split_shape(op.cmd) {
        Some((prefix, step)) if op.args.len() > MAX_CALL_ARGS && op.args.len() > prefix => {
            let (head, rest) = op.args.split_at(prefix);
            (head, rest, (MAX_CALL_ARGS - prefix) / step * step)
        }
        _ => (&op.args[..0], &op.args[..], op.args.len().max(1)),
    };
    rest.chunks(per).map(move |piece| (head, piece))
}

const COMMIT_LUA: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED this instance does not hold the lease')
end
local allowed = {HSET=true, SADD=true, XADD=true, XACK=true, HDEL=true, SREM=true, DEL=true}
local i = 2
local n = 0
while i <= #ARGV do
  local cmd = ARGV[i]
  local count = tonumber(ARGV[i + 1])
  if not allowed[cmd] or count == nil then
    return redis.error_reply('BADOP ' .. tostring(cmd))
  end
  redis.call(cmd, unpack(ARGV, i + 2, i + 1 + count))
  i = i + 2 + count
  n = n + 1
end
return n
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
    /// Tries to take the lease (SET NX PX). True when held.
    pub async fn acquire(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> Result<bool, redis::RedisError> {
        let r: Option<String> = redis::cmd("SET")
            .arg(&self.key)
            .arg(&self.instance)
            .arg("NX")
            .arg("PX")
            .arg(self.period_ms)
            .query_async(conn)
            .await?;
        Ok(r.is_some())
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

    /// Applies `ops` atomically if and only if the lease is held.
    ///
    /// The script call is packed straight into one command buffer
    /// (EVALSHA; on NOSCRIPT the script is loaded and the same command sent
    /// again): a batch carries tens of thousands of arguments, and copying
    /// each into its own allocation first cost more than Redis running it.
    pub async fn commit(
        &self,
        conn: &mut MultiplexedConnection,
        ops: &[Op],
    ) -> Result<usize, CommitError> {
        if ops.is_empty() {
            return Ok(0);
        }
        let script = commit_script();
        let (count, bytes) = ops.iter().fold((4, 64), |(n, b), op| {
            let b = b + op.cmd.len() + 20 + op.args.iter().map(String::len).sum::<usize>();
            (n + 2 + op.args.len(), b)
        });
        let mut cmd = redis::Cmd::with_capacity(count + 1, bytes + self.key.len() + 64);
        cmd.arg("EVALSHA")
            .arg(script.get_hash())
            .arg(1)
            .arg(&self.key)
            .arg(&self.instance);
        for op in ops {
            debug_assert!(ALLOWED.contains(&op.cmd));
            if op.args.is_empty() {
                cmd.arg(op.cmd).arg(0);
            }
            for (head, piece) in calls(op) {
                cmd.arg(op.cmd).arg(head.len() + piece.len());
                for a in head.iter().chain(piece) {
                    cmd.arg(a.as_str());
                }
            }
        }
        let mut r = cmd.query_async::<i64>(conn).await;
        if matches!(&r, Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript))
        {
            script.prepare_invoke().load_async(conn).await?;
            r = cmd.query_async::<i64>(conn).await;
        }
        match r {
            Ok(n) => Ok(n as usize),
            Err(e) if e.code() == Some("FENCED") || e.to_string().contains("FENCED") => {
                Err(CommitError::Fenced)
            }
            Err(e) => Err(CommitError::Redis(e)),
        }
    }
}

/// The commit script (its hash is computed once).
fn commit_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(COMMIT_LUA))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(cmd: &'static str, args: impl IntoIterator<Item = String>) -> Op {
        Op {
            cmd,
            args: args.into_iter().collect(),
        }
    }

    #[test]
    fn long_variadic_operations_are_sent_as_bounded_calls_with_their_keys() {
        let members = (0..2500).map(|i| format!("m{i}"));
        let sadd = op("SADD", std::iter::once("set".to_string()).chain(members));
        let pieces: Vec<_> = calls(&sadd).collect();
        assert_eq!(pieces.len(), 3);
        for (head, piece) in &pieces {
            assert_eq!(head, &["set".to_string()]);
            assert!(head.len() + piece.len() <= MAX_CALL_ARGS);
        }
        let sent: Vec<&String> = pieces.iter().flat_map(|(_, p)| p.iter()).collect();
        assert_eq!(sent.len(), 2500);
        assert_eq!(sent[0], "m0");
        assert_eq!(sent[2499], "m2499");

        // XACK keeps key and group; HSET keeps field/value pairs whole.
        let ids = (0..1500).map(|i| format!("{i}-0"));
        let xack = op(
            "XACK",
            ["s".to_string(), "g".to_string()].into_iter().chain(ids),
        );
        assert!(calls(&xack).all(|(h, _)| h == ["s".to_string(), "g".to_string()]));
        let pairs = (0..1200).flat_map(|i| [format!("f{i}"), format!("v{i}")]);
        let hset = op("HSET", std::iter::once("h".to_string()).chain(pairs));
        assert!(calls(&hset).all(|(h, p)| h.len() == 1 && p.len() % 2 == 0));
        assert_eq!(calls(&hset).map(|(_, p)| p.len()).sum::<usize>(), 2400);

        // Short operations, and XADD of any length, go whole.
        let short = op("SADD", ["set".to_string(), "a".to_string()]);
        assert_eq!(calls(&short).count(), 1);
        let xadd = op("XADD", (0..3000).map(|i| i.to_string()));
        assert_eq!(calls(&xadd).count(), 1);
    }
}
