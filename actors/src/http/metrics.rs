//! `/metrics` (SPEC §13): Prometheus metrics, in OpenMetrics when the
//! scraper asks for it (Prometheus does) and in the Prometheus text format
//! otherwise. In `clusterd run` with `http.listen` they are the daemon's
//! own registry, live; in a standalone `clusterd serve` they are the
//! leader's, as it last wrote them beside its heartbeats (at most three
//! heartbeat intervals old), or 503 when no leader has.

use super::State;
use crate::daemon::metrics::Format;
use crate::repository::health::read_metrics;
use actix_web::http::header::{ACCEPT, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

fn plain(status: StatusCode, message: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
        .body(message + "\n")
}

/// `GET /metrics`.
pub async fn metrics(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let format = Format::negotiate(req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()));
    let openmetrics = match &state.metrics {
        Some(m) => m.render(),
        None => {
            let read = match state.pool.get().await {
                Ok(mut conn) => read_metrics(&mut *conn, &state.keys)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match read {
                Ok(Some(text)) => text,
                Ok(None) => {
                    return plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "no leader has written its metrics within three heartbeat intervals (prefix {})",
                            state.keys.prefix()
                        ),
                    )
                }
                Err(e) => return plain(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")),
            }
        }
    };
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, format.content_type()))
        .body(format.render(&openmetrics))
}
