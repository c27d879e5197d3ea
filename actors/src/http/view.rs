//! What one API answer reads ([`View`]): the store and both graphs, and the
//! tooling catalogue that names libraries.
//!
//! In `clusterd run`, while this process leads, that is the daemon's engine
//! itself: the handler takes the engine's lock for the time its answer
//! takes (milliseconds; the lock is fair, so a waiting ingest batch goes
//! next) and nothing is reloaded or re-clustered. Measured with `clusterd
//! bench-e2e --console`, the snapshot rebuild it replaces cost a sixth of
//! the ingest rate and doubled the p99 latency. Standby, and in `clusterd
//! serve`, there is no engine here, and the answer reads the snapshot of
//! [`super::cache`].

use super::{error, State};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use decnet_clusterd::campaign::clusterer::CampaignClusterer;
use decnet_clusterd::identity::catalogue::Catalogue;
use decnet_clusterd::identity::clusterer::Clusterer;
use decnet_clusterd::store::Store;
use std::time::Duration;

/// How long an answer waits for the engine (a first pass over millions of
/// observations holds it for tens of seconds) before it answers 503.
pub const ENGINE_WAIT: Duration = Duration::from_secs(10);

/// The header that says where an answer was read.
pub const SOURCE_HEADER: HeaderName = HeaderName::from_static("x-clusterd-source");
/// Read from the daemon's engine in this process.
pub const ENGINE: &str = "engine";
/// Read from the repository snapshot.
pub const SNAPSHOT: &str = "snapshot";

/// The state an answer is built from.
pub struct View<'a> {
    /// [`ENGINE`] or [`SNAPSHOT`].
    pub source: &'static str,
    pub store: &'a Store,
    pub identities: &'a dyn Clusterer,
    pub campaigns: &'a dyn CampaignClusterer,
    pub catalogue: &'a Catalogue,
}

/// Runs `f` on the current state: the live engine when this process leads,
/// else the repository snapshot; 503 when neither can be read now.
/// The answer's `X-Clusterd-Source` header names which (`engine` or
/// `snapshot`).
pub async fn with_view(state: &State, f: impl FnOnce(&View) -> HttpResponse) -> HttpResponse {
    let mut source = SNAPSHOT;
    let answer = read_view(state, |v| {
        source = v.source;
        f(v)
    })
    .await;
    match answer {
        Ok(mut a) => {
            a.headers_mut()
                .insert(SOURCE_HEADER, HeaderValue::from_static(source));
            a
        }
        Err(a) => a,
    }
}

/// [`with_view`] for a value: `Err` is the error answer.
pub async fn read_view<T>(state: &State, f: impl FnOnce(&View) -> T) -> Result<T, HttpResponse> {
    let catalogue = &state.settings.identity.catalogue.0;
    if let Some(engine) = state.live.as_ref().and_then(|l| l.get()) {
        let Ok(engine) = tokio::time::timeout(ENGINE_WAIT, engine.lock()).await else {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the daemon has been clustering for over {} s; try again shortly",
                    ENGINE_WAIT.as_secs()
                ),
            ));
        };
        if !engine.valid {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is loading the repository; try again shortly",
            ));
        }
        return Ok(f(&View {
            source: ENGINE,
            store: &engine.store,
            identities: engine.identities.as_ref(),
            campaigns: engine.campaigns.as_ref(),
            catalogue,
        }));
    }
    match state.cache.get(&state.settings, &state.keys).await {
        Ok(shared) => match shared.lock() {
            Ok(snap) => Ok(f(&View {
                source: SNAPSHOT,
                store: &snap.store,
                identities: snap.identities.as_ref(),
                campaigns: snap.campaigns.as_ref(),
                catalogue,
            })),
            Err(_) => Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the snapshot is unusable",
            )),
        },
        Err(e) => Err(error(StatusCode::SERVICE_UNAVAILABLE, e)),
    }
}
