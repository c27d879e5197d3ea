//! The HTTP server of SPEC §13 (`clusterd serve`, and `clusterd run` with
//! `http.listen` set): its shared state, the server's start and stop, and
//! the one table of routes. In `clusterd run`, while the process leads, the
//! API answers from the daemon's engine itself (a lock held for the time one
//! answer takes); standby, and in `clusterd serve`, from a snapshot of the
//! repository read on its own connection and re-clustered. The output
//! streams are read through its own blocking reads. It writes nothing: the one route that acts,
//! `POST /api/control` (only with `http.allow_control` and its token),
//! publishes on the control channel as `clusterd ctl` does.
//!
//! ```text
//! mod.rs        State, serve(), routes() — every route is registered there
//! assets.rs     the console's files, compiled into the binary, and its pages
//! health.rs     /health and /api/overview (heartbeat keys)
//! metrics.rs    /metrics: the daemon's registry, or the leader's last rendering
//! view.rs       what an answer reads: the live engine, or the snapshot
//! cache.rs      the repository snapshot when no engine is at hand, rebuilt when it changed
//! members.rs    campaign → identities and the campaign ranking, kept a few seconds
//! shapes.rs     the JSON shapes of docs/console-api.md built from a snapshot
//! api.rs        /api/campaigns…, /api/identities/{uuid}
//! control.rs    POST /api/control: operator decisions, only with http.allow_control
//! lookup.rs     /api/observations…, /api/search, /api/explain
//! events.rs     /api/events: server-sent events from the output streams
//! ```

pub mod api;
pub mod assets;
pub mod cache;
pub mod control;
pub mod events;
pub mod health;
pub mod lookup;
pub mod members;
pub mod metrics;
pub mod shapes;
pub mod view;

use crate::daemon::connection::{Pool, CONNECT_TIMEOUT};
use crate::daemon::engine::LiveEngine;
use crate::daemon::metrics::Metrics;
use crate::repository::Keys;
use crate::settings::Settings;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::{info, warn};

/// What every handler shares (one per server, behind `web::Data`).
pub struct State {
    pub settings: Settings,
    pub keys: Keys,
    pub client: redis::Client,
    /// Short commands (heartbeats, counts, version probes).
    pub pool: Pool,
    pub cache: cache::Cache,
    /// Campaign → identities, rebuilt at most every few seconds.
    pub members: members::MembersCache,
    /// Open event streams (each holds its own Redis connection), bounded.
    pub event_slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// The daemon's registry when it runs in this process; `None` in a
    /// standalone `serve`, which serves the leader's from Redis.
    pub metrics: Option<Arc<Metrics>>,
    /// The daemon's engine when it runs in this process (set while it
    /// leads); `None` in a standalone `serve`.
    pub live: Option<Arc<LiveEngine>>,
}

impl State {
    pub fn new(settings: Settings) -> anyhow::Result<State> {
        let client = redis::Client::open(settings.redis.url.as_str())?;
        let manager = bb8_redis::RedisConnectionManager::new(settings.redis.url.as_str())?;
        let pool = bb8::Pool::builder()
            .max_size(4)
            .connection_timeout(CONNECT_TIMEOUT)
            .build_unchecked(manager);
        Ok(State {
            keys: Keys::new(&settings.redis.key_prefix),
            cache: cache::Cache::new(client.clone()),
            members: members::MembersCache::default(),
            event_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(events::MAX_CLIENTS)),
            client,
            pool,
            settings,
            metrics: None,
            live: None,
        })
    }
}

/// An error answer: `{"error": …}` with its status.
pub fn error(status: actix_web::http::StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": message.into()}))
}

/// Every route of the server. Further routes (e.g. `/metrics`) are added
/// here, before the console's page fallback.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/api/overview", web::get().to(health::overview))
        .route("/api/campaigns", web::get().to(api::campaigns))
        .route("/api/campaigns/{uuid}", web::get().to(api::campaign))
        .route("/api/identities/{uuid}", web::get().to(api::identity))
        .route("/api/observations", web::get().to(lookup::observations))
        .route(
            "/api/observations/{uuid}",
            web::get().to(lookup::observation),
        )
        .route("/api/search", web::get().to(lookup::search))
        .route("/api/explain", web::get().to(lookup::explain))
        .route("/api/events", web::get().to(events::events))
        .route("/api/control", web::post().to(control::control))
        .route("/metrics", web::get().to(metrics::metrics));
    assets::routes(cfg);
}

/// Serves until `shutdown` resolves, then stops gracefully.
pub async fn serve(
    settings: Settings,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    serve_with(settings, addr, shutdown, None, None).await
}

/// [`serve`] beside the daemon in this process: `/metrics` from its
/// registry, and the API from its engine while it leads.
pub async fn serve_in_process(
    settings: Settings,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()>,
    metrics: Arc<Metrics>,
    live: Arc<LiveEngine>,
) -> anyhow::Result<()> {
    serve_with(settings, addr, shutdown, Some(metrics), Some(live)).await
}

async fn serve_with(
    settings: Settings,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()>,
    metrics: Option<Arc<Metrics>>,
    live: Option<Arc<LiveEngine>>,
) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() {
        warn!(%addr, "serving the console on a non-loopback address (http.public = true): anyone who reaches it reads attacker data");
    }
    let mut state = State::new(settings)?;
    state.metrics = metrics;
    state.live = live;
    let state = web::Data::new(state);
    let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(routes))
        .workers(2)
        .disable_signals()
        .bind(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    for bound in server.addrs() {
        info!(addr = %bound, "console and API listening");
    }
    let server = server.run();
    let handle = server.handle();
    tokio::select! {
        r = server => r?,
        _ = shutdown => handle.stop(true).await,
    }
    Ok(())
}
