//! `/api/events`: server-sent events from the identity and campaign output
//! streams. Each client gets its own connection and reads with XREAD BLOCK
//! from "now" (or after `Last-Event-ID`); a keep-alive comment goes out
//! whenever a block ends empty, and the reader ends when the client is gone
//! (the next write fails and the stream is dropped).

use super::{error, State};
use crate::daemon::connection::{connect, RESPONSE_TIMEOUT};
use crate::repository::events::{newest_ids, read_after, Followed};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::value::RawValue;
use tokio::sync::OwnedSemaphorePermit;
use tracing::debug;

/// Most event streams open at once.
pub const MAX_CLIENTS: usize = 32;
/// How long one XREAD blocks; a keep-alive follows an empty one.
pub const BLOCK_MS: u64 = 15_000;
/// Most entries one read sends.
const READ_COUNT: usize = 100;

/// The `data:` of one message; the payload goes out as it is stored,
/// without being parsed and written again (a flood streams thousands a
/// second).
#[derive(serde::Serialize)]
struct Data<'a> {
    stream: &'a str,
    topic: &'a str,
    event_id: &'a str,
    ts: &'a str,
    payload: &'a RawValue,
}

/// One SSE message for an output-stream entry.
pub fn message(e: &Followed) -> String {
    let data = serde_json::to_string(&Data {
        stream: e.stream,
        topic: &e.topic,
        event_id: &e.id,
        ts: &e.ts,
        payload: &e.payload,
    })
    .unwrap_or_default();
    // serde_json never emits a raw newline, and the stored payload is one
    // line of JSON written by the Publisher; `data:` stays one line.
    format!("id: {}\ndata: {}\n\n", e.id.replace(['\n', '\r'], ""), data)
}

/// A stream id (`ms-seq`) from `Last-Event-ID`, when it is one.
fn resume_id(req: &HttpRequest) -> Option<String> {
    let v = req.headers().get("Last-Event-ID")?.to_str().ok()?;
    let (ms, seq) = v.split_once('-')?;
    (ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok()).then(|| v.to_string())
}

struct Reader {
    conn: redis::aio::MultiplexedConnection,
    keys: crate::repository::Keys,
    /// Last id read per stream (identity, campaign).
    last: [String; 2],
    started: bool,
    _slot: OwnedSemaphorePermit,
}

/// `GET /api/events`.
pub async fn events(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    let Ok(slot) = state.event_slots.clone().try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open event streams",
        );
    };
    let mut conn = match connect(&state.client, RESPONSE_TIMEOUT).await {
        Ok(c) => c,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")),
    };
    // "Now" is pinned to the newest ids, so a later read misses nothing.
    let last = match resume_id(&req) {
        Some(id) => [id.clone(), id],
        None => match newest_ids(&mut conn, &state.keys).await {
            Ok(ids) => ids,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")),
        },
    };
    let reader = Reader {
        conn,
        keys: state.keys.clone(),
        last,
        started: false,
        _slot: slot,
    };
    let body = futures_util::stream::unfold(reader, |mut r| async move {
        if !r.started {
            r.started = true;
            return Some((
                Ok::<_, actix_web::Error>(web::Bytes::from("retry: 3000\n\n")),
                r,
            ));
        }
        match read_after(&mut r.conn, &r.keys, &mut r.last, BLOCK_MS, READ_COUNT).await {
            Ok(events) if events.is_empty() => Some((Ok(web::Bytes::from(": keep-alive\n\n")), r)),
            Ok(events) => {
                let text: String = events.iter().map(message).collect();
                Some((Ok(web::Bytes::from(text)), r))
            }
            Err(e) => {
                debug!(error = %e, "event stream reader stopped");
                None
            }
        }
    });
    // `Connection: close`: the socket is never reused, so a browser that
    // leaves the page closes it instead of draining an endless body while
    // it holds one of its six connections to this host.
    HttpResponse::Ok()
        .force_close()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::events::raw_json;
    use serde_json::json;

    #[test]
    fn a_message_is_one_data_line() {
        let e = Followed {
            stream: "identity",
            id: "1-0".into(),
            ts: "t".into(),
            topic: "identity.formed".into(),
            payload: raw_json(json!({"x": "a\nb<script>"}).to_string()),
        };
        let m = message(&e);
        assert!(m.starts_with("id: 1-0\ndata: {"), "{m}");
        assert_eq!(m.matches('\n').count(), 3, "{m}");
    }
}
