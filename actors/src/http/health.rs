//! `/health` (200 when every worker's heartbeat key is present and fresh,
//! else 503, with the payloads) and `/api/overview` (counts, leader, the
//! heartbeats that exist).

use super::{error, State};
use crate::daemon::workers::WORKERS;
use crate::repository::health::{read_heartbeat, worker_heartbeats};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

/// A heartbeat is fresh when its `ts` is within three intervals of now.
fn fresh(beat: &Value, interval_ms: u64, now_ms: i64) -> bool {
    beat["ts"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| now_ms - t.timestamp_millis() <= 3 * interval_ms as i64)
}

/// `GET /health`.
pub async fn health(state: web::Data<State>) -> HttpResponse {
    let mut conn = match state.pool.get().await {
        Ok(c) => c,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")),
    };
    let now = chrono::Utc::now().timestamp_millis();
    let interval = state.settings.heartbeat.interval_ms;
    let mut workers = Map::new();
    let mut stale = Vec::new();
    for w in WORKERS {
        match read_heartbeat(&mut *conn, &state.keys, w).await {
            Ok(Some(beat)) => {
                if !fresh(&beat, interval, now) {
                    stale.push(*w);
                }
                workers.insert(w.to_string(), beat);
            }
            Ok(None) => {
                stale.push(*w);
                workers.insert(w.to_string(), Value::Null);
            }
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")),
        }
    }
    let status = if stale.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status).json(json!({
        "status": if stale.is_empty() { "ok" } else { "unhealthy" },
        "missing_or_stale": stale,
        "workers": workers,
    }))
}

/// `GET /api/overview`.
pub async fn overview(state: web::Data<State>) -> HttpResponse {
    let mut conn = match state.pool.get().await {
        Ok(c) => c,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")),
    };
    match worker_heartbeats(&mut *conn, &state.keys, WORKERS).await {
        Ok(o) => HttpResponse::Ok().json(json!({
            "observations": o.observations,
            "identities": o.identities,
            "campaigns": o.campaigns,
            "leader": o.leader,
            "workers": o.heartbeats,
            "control": state.settings.http.allow_control,
        })),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_follows_the_interval() {
        let now = 1_767_236_400_000;
        let beat = json!({"ts": "2026-01-01T03:00:00.000Z"});
        assert!(fresh(&beat, 1000, now + 2_999));
        assert!(!fresh(&beat, 1000, now + 3_001));
        assert!(!fresh(&json!({"ts": "soon"}), 1000, now));
        assert!(!fresh(&json!({}), 1000, now));
    }
}
