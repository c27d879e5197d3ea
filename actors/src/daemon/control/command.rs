//! Control commands (SPEC §7): commands arrive as JSON on `{p}:control`
//! (the listener is `repository::control`); this module parses each one
//! (every malformed or unknown one becomes a clear error, and changes
//! nothing) and shapes the one reply a request with a `request_id` gets.

use serde_json::Value;

/// A parsed command.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Status,
    Pause,
    Resume,
    Tick,
    Recluster,
    Restart,
    Stop,
    Link(String, String),
    Separate(String, String),
    Forget(String, String),
}

/// A command with its envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub action: Action,
    pub target: String,
    pub request_id: Option<String>,
    pub requested_by: String,
}

/// A command that cannot be run, with the request id to answer (if any).
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    pub request_id: Option<String>,
    pub error: String,
}

/// The workers a command may target.
pub const TARGETS: &[&str] = &[
    "all",
    "clusterd",
    "bus-ingest",
    "clusterer",
    "campaign-clusterer",
    "publisher",
    "heartbeat",
    "control",
];

fn pair(v: &Value) -> Result<(String, String), String> {
    let ids = v
        .get("observation_uuids")
        .and_then(Value::as_array)
        .ok_or("`observation_uuids` must be an array of two observation uuids")?;
    if ids.len() != 2 {
        return Err(format!(
            "`observation_uuids` must hold exactly two uuids, got {}",
            ids.len()
        ));
    }
    let mut out = Vec::new();
    for id in ids {
        let s = id.as_str().ok_or("`observation_uuids` must hold strings")?;
        if s.is_empty()
            || s.len() > 128
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c))
        {
            return Err("`observation_uuids`: not an observation uuid".to_string());
        }
        out.push(s.to_string());
    }
    if out[0] == out[1] {
        return Err("`observation_uuids` must name two different observations".into());
    }
    Ok((out[0].clone(), out[1].clone()))
}

/// Parses one message from the control channel.
pub fn parse(raw: &[u8]) -> Result<Command, Rejected> {
    let reject = |request_id: Option<String>, error: String| Rejected { request_id, error };
    let v: Value = serde_json::from_slice(raw)
        .map_err(|e| reject(None, format!("command is not JSON: {e}")))?;
    let request_id = v
        .get("request_id")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(128).collect::<String>());
    let Some(obj) = v.as_object() else {
        return Err(reject(request_id, "command must be a JSON object".into()));
    };
    let action = obj
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| reject(request_id.clone(), "`action` is missing".into()))?;
    let target = obj
        .get("target")
        .and_then(Value::as_str)
        .unwrap_or("all")
        .to_string();
    if !TARGETS.contains(&target.as_str()) {
        return Err(reject(
            request_id,
            format!(
                "unknown target `{}`; known: {}",
                target.chars().take(40).collect::<String>(),
                TARGETS.join(", ")
            ),
        ));
    }
    let requested_by = obj
        .get("requested_by")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .chars()
        .take(128)
        .collect();
    let with_pair = |f: fn(String, String) -> Action| {
        pair(&v)
            .map(|(a, b)| f(a, b))
            .map_err(|e| reject(request_id.clone(), e))
    };
    let action = match action {
        "status" => Action::Status,
        "pause" => Action::Pause,
        "resume" => Action::Resume,
        "tick" => Action::Tick,
        "recluster" => Action::Recluster,
        "restart" => Action::Restart,
        "stop" => Action::Stop,
        "link" => with_pair(Action::Link)?,
        "separate" => with_pair(Action::Separate)?,
        "forget" => with_pair(Action::Forget)?,
        other => {
            return Err(reject(
                request_id,
                format!(
                    "unknown action `{}`; known: status, pause, resume, tick, recluster, restart, stop, link, separate, forget",
                    other.chars().take(40).collect::<String>()
                ),
            ))
        }
    };
    Ok(Command {
        action,
        target,
        request_id,
        requested_by,
    })
}

/// The reply to one request.
pub fn reply(request_id: &str, result: Result<Value, String>) -> Value {
    match result {
        Ok(result) => {
            serde_json::json!({"request_id": request_id, "ok": true, "error": null, "result": result})
        }
        Err(error) => {
            serde_json::json!({"request_id": request_id, "ok": false, "error": error, "result": null})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_clearly() {
        let c = parse(br#"{"action":"link","request_id":"r1","requested_by":"ana","observation_uuids":["a","b"]}"#).unwrap();
        assert_eq!(c.action, Action::Link("a".into(), "b".into()));
        assert_eq!(c.requested_by, "ana");
        assert_eq!(parse(br#"{"action":"status"}"#).unwrap().target, "all");
        let e = parse(br#"{"action":"explode","request_id":"r2"}"#).unwrap_err();
        assert_eq!(e.request_id.as_deref(), Some("r2"));
        assert!(e.error.contains("unknown action"));
        assert!(parse(b"nope").unwrap_err().error.contains("not JSON"));
        assert!(parse(br#"{"request_id":"r"}"#)
            .unwrap_err()
            .error
            .contains("`action`"));
        assert!(parse(br#"{"action":"link","observation_uuids":["a"]}"#)
            .unwrap_err()
            .error
            .contains("exactly two"));
        assert!(
            parse(br#"{"action":"separate","observation_uuids":["a","a"]}"#)
                .unwrap_err()
                .error
                .contains("different")
        );
        assert!(parse(br#"{"action":"pause","target":"mars"}"#)
            .unwrap_err()
            .error
            .contains("unknown target"));
    }
}
