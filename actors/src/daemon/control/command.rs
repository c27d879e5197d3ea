//! Control commands (SPEC §7): commands arrive as JSON on `{p}:control`
//! (the listener is `repository::control`); this module parses each one
//! (every malformed or unknown one becomes a clear error, and changes
//! nothing) and shapes the one reply a request with a `request_id` gets.

use serde_json::{Map, Value};

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

/// Longest `request_id` or `requested_by` accepted (characters).
pub const MAX_ID_CHARS: usize = 128;

/// The JSON type of a value, for error messages (also the HTTP control
/// route's).
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An optional string field: absent is `None`; any other type, or a string
/// longer than `max` characters, is an error (never truncated).
fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<&'a str>, String> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() > max => {
            Err(format!("`{field}` is longer than {max} characters"))
        }
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("`{field}` must be a string, got {}", kind(other))),
    }
}

/// Parses one message from the control channel.
pub fn parse(raw: &[u8]) -> Result<Command, Rejected> {
    let reject = |request_id: Option<String>, error: String| Rejected { request_id, error };
    let v: Value = serde_json::from_slice(raw)
        .map_err(|e| reject(None, format!("command is not JSON: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(reject(
            None,
            format!("command must be a JSON object, got {}", kind(&v)),
        ));
    };
    // A request id that is not a usable string cannot be matched by its
    // sender: the command is refused (logged), never run.
    // An over-long one is echoed whole, so its sender can still match the
    // refusal.
    let request_id = opt_str(obj, "request_id", MAX_ID_CHARS)
        .map_err(|e| {
            let whole = obj.get("request_id").and_then(Value::as_str);
            reject(whole.map(str::to_string), e)
        })?
        .map(str::to_string);
    let fail = |e: String| reject(request_id.clone(), e);
    let action = match obj.get("action") {
        None => return Err(fail("`action` is missing".into())),
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(fail(format!(
                "`action` must be a string, got {}",
                kind(other)
            )))
        }
    };
    let target = opt_str(obj, "target", 64)
        .map_err(fail)?
        .unwrap_or("all")
        .to_string();
    if !TARGETS.contains(&target.as_str()) {
        return Err(fail(format!(
            "unknown target `{}`; known: {}",
            target.escape_debug(),
            TARGETS.join(", ")
        )));
    }
    let requested_by = opt_str(obj, "requested_by", MAX_ID_CHARS)
        .map_err(fail)?
        .unwrap_or("unknown")
        .to_string();
    let with_pair = |f: fn(String, String) -> Action| pair(&v).map(|(a, b)| f(a, b)).map_err(fail);
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
            return Err(fail(format!(
                "unknown action `{}`; known: status, pause, resume, tick, recluster, restart, stop, link, separate, forget",
                other.chars().take(40).collect::<String>().escape_debug()
            )))
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
    use serde_json::json;

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

    /// One value of every JSON type.
    fn every_type() -> Vec<Value> {
        vec![
            json!(null),
            json!(true),
            json!(42),
            json!(-1.5),
            json!("x"),
            json!([]),
            json!(["all"]),
            json!({}),
            json!({"a": 1}),
        ]
    }

    fn base() -> Map<String, Value> {
        json!({
            "action": "link",
            "target": "all",
            "request_id": "r1",
            "requested_by": "ana",
            "observation_uuids": ["a", "b"],
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn every_json_type_in_every_field_is_judged() {
        assert!(parse(Value::Object(base()).to_string().as_bytes()).is_ok());
        for field in [
            "action",
            "target",
            "request_id",
            "requested_by",
            "observation_uuids",
        ] {
            for value in every_type() {
                let mut cmd = base();
                cmd.insert(field.to_string(), value.clone());
                let raw = Value::Object(cmd).to_string();
                let r = parse(raw.as_bytes());
                // Only a string may stand in a string field, and "x" is no
                // known action or target; `observation_uuids` wants a pair.
                let fine = matches!(
                    (field, &value),
                    ("request_id" | "requested_by", Value::String(_))
                );
                assert_eq!(r.is_ok(), fine, "{field} = {value}: {r:?}");
                if let Err(e) = r {
                    assert!(e.error.contains(field), "{field} = {value}: {}", e.error);
                    // The reply names the request only when its id is usable.
                    let echoed = if field == "request_id" {
                        None
                    } else {
                        Some("r1")
                    };
                    assert_eq!(e.request_id.as_deref(), echoed, "{field} = {value}");
                }
            }
        }
    }

    #[test]
    fn non_string_request_ids_and_targets_never_run() {
        let e = parse(br#"{"action":"pause","request_id":42}"#).unwrap_err();
        assert_eq!(e.request_id, None);
        assert!(e.error.contains("must be a string, got a number"));
        for t in ["5", r#"["all"]"#, "{}", "null", "true"] {
            let raw = format!(r#"{{"action":"stop","target":{t},"request_id":"r"}}"#);
            let e = parse(raw.as_bytes()).unwrap_err();
            assert_eq!(e.request_id.as_deref(), Some("r"), "{t}");
            assert!(e.error.contains("`target` must be a string"), "{t}");
        }
        assert!(parse(br#"[1,2]"#).unwrap_err().error.contains("an array"));
    }

    #[test]
    fn over_long_ids_are_refused_not_cut() {
        let ok = "r".repeat(MAX_ID_CHARS);
        let raw = json!({"action": "status", "request_id": ok}).to_string();
        assert_eq!(parse(raw.as_bytes()).unwrap().request_id, Some(ok));
        let long = "r".repeat(MAX_ID_CHARS + 1);
        let raw = json!({"action": "status", "request_id": long}).to_string();
        let e = parse(raw.as_bytes()).unwrap_err();
        assert_eq!(e.request_id, Some(long.clone()));
        assert!(e.error.contains("longer than 128"));
        let raw = json!({"action": "status", "requested_by": long, "request_id": "r"});
        let e = parse(raw.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.request_id.as_deref(), Some("r"));
    }
}
