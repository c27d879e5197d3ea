//! The leader lease (`{p}:leader`, SPEC §2) and the fenced commit: every
//! write of the daemon goes through one Lua script that first checks that
//! this instance still holds the lease, then applies all its operations —
//! atomically, so a change never lands without its events, and a paused old
//! leader that wakes up is refused by Redis itself.

use crate::repository::Op;
use redis::aio::MultiplexedConnection;

/// Operations the commit script accepts (anything else is refused).
const ALLOWED: &[&str] = &["HSET", "SADD", "XADD", "XACK", "HDEL", "SREM", "DEL"];

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
            cmd.arg(op.cmd).arg(op.args.len());
            for a in &op.args {
                cmd.arg(a.as_str());
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
