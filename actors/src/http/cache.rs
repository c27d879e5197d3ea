//! The repository snapshot the API answers from: the stored state loaded on
//! the server's own connection and both graphs rebuilt in memory (on a
//! blocking thread), shared by every request. It is rebuilt only when the
//! repository's state version (newest stream entries, index-set sizes)
//! changed — at most once per [`MIN_AGE`], and at least every [`MAX_AGE`]
//! while requests come — so a browser polling the API costs Redis one
//! small pipeline per request, not a scan of the keyspace.
//!
//! It serves `clusterd serve` and a standby `clusterd run`; the leader's
//! own server reads its engine instead (`view.rs`). A rebuild reads and
//! re-clusters the whole repository: over 100,000 observations it takes
//! seconds of CPU. Measured with `clusterd bench-e2e --console` when the
//! leader still rebuilt it, rebuilding whenever the data moved took a
//! third off the ingest rate. So a snapshot is also kept for
//! [`REBUILD_SPACING`] times as long as it took to build: the server then
//! spends at most about a tenth of one core on rebuilds, whatever the
//! load, and is that much less fresh on a large, busy store.

use crate::cli::snapshot::{load_parts, rebuild, Snapshot};
use crate::daemon::connection::{connect, RESPONSE_TIMEOUT};
use crate::repository::feed::state_version;
use crate::repository::Keys;
use crate::settings::Settings;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// A snapshot younger than this is served even when the data moved (the
/// console refreshes a second after the event that moved it).
pub const MIN_AGE: Duration = Duration::from_millis(750);
/// A snapshot older than this is rebuilt even when the version is the same
/// (evidence folded into existing observations moves no index).
pub const MAX_AGE: Duration = Duration::from_secs(30);
/// A snapshot is served for at least this many times its build time.
pub const REBUILD_SPACING: u32 = 10;

/// One built snapshot (handlers lock it while they read it).
pub type Shared = Arc<Mutex<Snapshot>>;

struct Built {
    version: String,
    built_at: Instant,
    /// How long the build took (load and rebuild).
    took: Duration,
    snapshot: Shared,
}

/// How long a snapshot that took `took` to build is served as is, without
/// asking whether the data moved.
pub fn keep_for(took: Duration) -> Duration {
    MIN_AGE.max(took * REBUILD_SPACING).min(MAX_AGE)
}

impl Built {
    fn fresh(&self) -> bool {
        self.built_at.elapsed() < keep_for(self.took)
    }
}

#[derive(Default)]
struct Inner {
    conn: Option<redis::aio::MultiplexedConnection>,
    built: Option<Built>,
}

/// The cache; one rebuild at a time (others wait for it).
pub struct Cache {
    client: redis::Client,
    inner: tokio::sync::Mutex<Inner>,
}

impl Cache {
    pub fn new(client: redis::Client) -> Cache {
        Cache {
            client,
            inner: tokio::sync::Mutex::new(Inner::default()),
        }
    }

    /// The current snapshot, rebuilt first when it is out of date.
    pub async fn get(&self, settings: &Settings, keys: &Keys) -> Result<Shared, String> {
        let mut inner = self.inner.lock().await;
        if let Some(b) = &inner.built {
            if b.fresh() {
                return Ok(b.snapshot.clone());
            }
        }
        let mut conn = match inner.conn.take() {
            Some(c) => c,
            None => connect(&self.client, RESPONSE_TIMEOUT)
                .await
                .map_err(|e| format!("redis: {e}"))?,
        };
        let version = state_version(&mut conn, keys)
            .await
            .map_err(|e| format!("redis: {e}"))?;
        if let Some(b) = &inner.built {
            if b.version == version && b.built_at.elapsed() < MAX_AGE {
                let snap = b.snapshot.clone();
                inner.conn = Some(conn);
                return Ok(snap);
            }
        }
        let t = Instant::now();
        let (store, events) = load_parts(&mut conn, settings)
            .await
            .map_err(|e| format!("reading the repository: {e:#}"))?;
        inner.conn = Some(conn);
        let s = settings.clone();
        let snapshot = tokio::task::spawn_blocking(move || rebuild(&s, store, events))
            .await
            .map_err(|e| format!("rebuilding the graphs: {e}"))?
            .map_err(|e| {
                warn!(error = %format!("{e:#}"), "rebuilding the graphs failed");
                format!("rebuilding the graphs: {e:#}")
            })?;
        debug!(
            elapsed_ms = t.elapsed().as_millis() as u64,
            observations = snapshot.store.observations.len(),
            "console snapshot rebuilt"
        );
        let shared = Arc::new(Mutex::new(snapshot));
        inner.built = Some(Built {
            version,
            built_at: Instant::now(),
            took: t.elapsed(),
            snapshot: shared.clone(),
        });
        Ok(shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_builds_are_kept_longer() {
        assert_eq!(keep_for(Duration::from_millis(20)), MIN_AGE);
        assert_eq!(keep_for(Duration::from_millis(900)), Duration::from_secs(9));
        assert_eq!(keep_for(Duration::from_secs(10)), MAX_AGE);
    }
}
