//! `POST /api/control`: operator decisions over HTTP (SPEC §13), only when
//! `http.allow_control` is set — otherwise the route does not exist (404,
//! like any unknown path). The request carries `Authorization: Bearer
//! <http.token>` (compared in constant time) and a body of the decision
//! verbs of SPEC §7 only:
//!
//! ```json
//! {"action": "link", "observation_uuids": ["att-1f0c…", "203.0.113.7"]}
//! ```
//!
//! Observations are named as `clusterd ctl` names them (uuid, unique prefix
//! or IP, resolved by the CLI's own resolver in the API's snapshot). The
//! command goes out on `{p}:control` with `requested_by` = `http <peer>`,
//! and the daemon's reply on `{p}:control:reply` is the answer: 200 when it
//! applied the decision, 422 when it refused it, 503 when no daemon
//! listens, 504 when none answered within [`REPLY_TIMEOUT`].

use super::view::read_view;
use super::{assets, error, State};
use crate::cli::ctl::{command, no_listener, resolve_pair, validate};
use crate::cli::error::CliError;
use crate::daemon::control::command::kind;
use crate::repository::control::{request, Answer};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;
use tracing::{info, warn};

/// How long a request waits for the daemon's reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest body accepted (a decision is under 300 bytes).
pub const MAX_BODY: usize = 4096;
/// The verbs this route sends; every other §7 action stays on the control
/// channel (`clusterd ctl`).
pub const DECISIONS: &[&str] = &["link", "separate", "forget"];

/// Whether `given` is the configured token. Both sides are hashed first so
/// the comparison runs over two equal-length digests, byte for byte without
/// an early exit: its time says nothing about how much of a guess matched,
/// nor about the token's length.
pub fn token_matches(given: &[u8], token: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(token));
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

/// The bearer credential of an `Authorization` header value, if it is one.
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let scheme = header.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| header[7..].trim_ascii())
}

/// A decision as asked: the verb and the two observation arguments (not
/// yet resolved). Every error is the 400 message.
pub fn parse(body: &[u8]) -> Result<(String, Vec<String>), String> {
    if body.is_empty() {
        return Err(
            r#"the body is empty: send {"action": "link", "observation_uuids": [a, b]}"#.into(),
        );
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Some(obj) = v.as_object() else {
        return Err(format!("the body must be a JSON object, got {}", kind(&v)));
    };
    if let Some(extra) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "action" | "observation_uuids"))
    {
        return Err(format!(
            "unknown field `{}`: a decision holds `action` and `observation_uuids` only (the server sets target, request_id and requested_by)",
            crate::cli::render::clean(extra, 40)
        ));
    }
    let action = match obj.get("action") {
        None => return Err("`action` is missing".into()),
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(format!("`action` must be a string, got {}", kind(other))),
    };
    if !DECISIONS.contains(&action) {
        return Err(format!(
            "`action` must be one of {} over HTTP, got `{}`; other actions go through `clusterd ctl`",
            DECISIONS.join(", "),
            crate::cli::render::clean(action, 40)
        ));
    }
    let observations = match obj.get("observation_uuids") {
        None => return Err("`observation_uuids` is missing: give two observations".into()),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(format!(
                "`observation_uuids` must be an array of two strings, got {}",
                kind(other)
            ))
        }
    };
    let mut out = Vec::with_capacity(2);
    for o in observations {
        match o {
            Value::String(s) => out.push(s.clone()),
            other => {
                return Err(format!(
                    "`observation_uuids` holds {}, not a string (uuid, uuid prefix or IP)",
                    kind(other)
                ))
            }
        }
    }
    validate(action, &out, "all").map_err(|e| e.to_string())?;
    Ok((action.to_string(), out))
}

/// Reads the body, at most [`MAX_BODY`] bytes.
async fn body(mut payload: web::Payload) -> Result<Vec<u8>, HttpResponse> {
    let mut out = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("reading the body failed: {e}"),
            )
        })?;
        if out.len() + chunk.len() > MAX_BODY {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {MAX_BODY} bytes"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `POST /api/control`.
pub async fn control(
    state: web::Data<State>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let http = &state.settings.http;
    if !http.allow_control {
        return assets::not_found().await;
    }
    let peer = req
        .peer_addr()
        .map_or_else(|| "unknown".to_string(), |a| a.to_string());
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| bearer(h.as_bytes()));
    let Some(given) = given else {
        return unauthorized("send `Authorization: Bearer <http.token>`");
    };
    if !token_matches(given, http.token.as_bytes()) {
        warn!(%peer, "control request with a wrong token refused");
        return unauthorized("wrong token");
    }
    let raw = match body(payload).await {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let (action, observations) = match parse(&raw) {
        Ok(d) => d,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let resolved = match read_view(&state, |v| resolve_pair(v.store, &observations)).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let uuids = match resolved {
        Ok(u) => u,
        Err(CliError::Usage(m)) => return error(StatusCode::BAD_REQUEST, m),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let by = format!("http {peer}");
    let cmd = command(&action, "all", &request_id, &by, &uuids);
    info!(%action, by = %by, "control command from the console");
    match request(&state.client, &state.keys, &cmd, &request_id, REPLY_TIMEOUT).await {
        Ok(Answer::Reply(reply)) if reply["ok"] == true => HttpResponse::Ok().json(reply),
        Ok(Answer::Reply(reply)) => HttpResponse::UnprocessableEntity().json(reply),
        Ok(Answer::NoListener) => error(StatusCode::SERVICE_UNAVAILABLE, no_listener(&state.keys)),
        Ok(Answer::NoReply) => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "no reply within {} s from the daemon on prefix `{}`",
                REPLY_TIMEOUT.as_secs(),
                state.keys.prefix()
            ),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")),
    }
}

fn unauthorized(message: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", "Bearer"))
        .json(serde_json::json!({"error": message}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        let t = b"0123456789abcdef";
        assert!(token_matches(t, t));
        assert!(!token_matches(b"0123456789abcdeF", t));
        assert!(!token_matches(b"0123456789abcde", t));
        assert!(!token_matches(b"", t));
        assert!(!token_matches(b"0123456789abcdef0", t));
    }

    #[test]
    fn bearer_credentials_are_read() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bear"), None);
    }

    #[test]
    fn bodies_of_every_json_type_are_refused_clearly() {
        for (body, needle) in [
            (&b""[..], "empty"),
            (b"{", "not JSON"),
            (b"\xff\xfe", "not JSON"),
            (b"null", "got null"),
            (b"true", "got a boolean"),
            (b"7", "got a number"),
            (b"\"link\"", "got a string"),
            (b"[1,2]", "got an array"),
            (b"{}", "`action` is missing"),
            (br#"{"action": 1}"#, "must be a string"),
            (
                br#"{"action": "stop", "observation_uuids": []}"#,
                "one of link",
            ),
            (br#"{"action": "link"}"#, "missing"),
            (
                br#"{"action": "link", "observation_uuids": "a b"}"#,
                "array",
            ),
            (
                br#"{"action": "link", "observation_uuids": {"a": 1}}"#,
                "array",
            ),
            (
                br#"{"action": "link", "observation_uuids": [1, 2]}"#,
                "holds a number",
            ),
            (
                br#"{"action": "link", "observation_uuids": [null, "b"]}"#,
                "holds null",
            ),
            (
                br#"{"action": "link", "observation_uuids": ["a"]}"#,
                "takes 2",
            ),
            (
                br#"{"action": "link", "observation_uuids": ["a", "b", "c"]}"#,
                "takes 2",
            ),
            (
                br#"{"action": "link", "observation_uuids": ["a <b>", "c"]}"#,
                "malformed",
            ),
            (
                br#"{"action": "link", "observation_uuids": ["a", "b"], "requested_by": "me"}"#,
                "unknown field",
            ),
        ] {
            let e = parse(body).unwrap_err();
            assert!(
                e.contains(needle),
                "{:?}: {e}",
                String::from_utf8_lossy(body)
            );
        }
        let (a, o) =
            parse(br#"{"action": "forget", "observation_uuids": ["x1", "10.0.0.1"]}"#).unwrap();
        assert_eq!(
            (a.as_str(), o),
            ("forget", vec!["x1".to_string(), "10.0.0.1".to_string()])
        );
    }
}
