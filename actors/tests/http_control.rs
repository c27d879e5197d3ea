//! Operator decisions over HTTP (`POST /api/control`, SPEC §13) against a
//! running daemon that serves the console (`http.listen`,
//! `http.allow_control`, `http.token`): a link through HTTP changes the
//! identity and is recorded as `http <peer>`; a missing or wrong token is
//! 401; hostile bodies of every JSON type are 400 with a clear error; the
//! route does not exist (404) when control is not allowed; and with no
//! daemon listening the answer is 503.

mod browser;
mod common;

use browser::{free_port, request};
use clusterd::repository::Keys;
use common::*;
use redis::Commands;
use serde_json::{json, Value};

const TOKEN: &str = "console-token-0123456789";

/// POSTs `body` to `/api/control` with `auth` as the Authorization header;
/// (status, JSON answer — `Null` when it is not JSON).
fn post(port: u16, auth: Option<&str>, body: &[u8]) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    let (status, text) =
        request("POST", port, "/api/control", &headers, body).expect("the server answers");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn answers(port: u16) -> bool {
    request("GET", port, "/health", &[], b"").is_ok()
}

#[test]
fn decisions_over_http_need_the_token_and_reach_the_daemon() {
    let prefix = Prefix::new("http-control");
    let p = prefix.0.as_str();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let daemon = start_with(
        p,
        &[
            ("CLUSTERD_HTTP__LISTEN", listen.as_str()),
            ("CLUSTERD_HTTP__ALLOW_CONTROL", "true"),
            ("CLUSTERD_HTTP__TOKEN", TOKEN),
        ],
    );
    observe(p, "hc-a", "tool-one");
    observed(
        p,
        r#"{"uuid":"hc-b","ip":"198.51.100.23","fingerprints":[{"kind":"ja3","value":"tool-two"}]}"#,
    );
    eventually("two identities", 30, || {
        let (a, b) = (identity_of(p, "hc-a"), identity_of(p, "hc-b"));
        a.is_some() && b.is_some() && a != b
    });
    eventually("the console to answer", 30, || answers(port));
    // The overview tells the page that decisions are allowed.
    let (_, overview) = request("GET", port, "/api/overview", &[], b"").unwrap();
    let overview: Value = serde_json::from_str(&overview).unwrap();
    assert_eq!(overview["control"], true, "{overview}");

    let link = json!({"action": "link", "observation_uuids": ["hc-a", "198.51.100.23"]});
    let link = link.to_string();

    // No token, another scheme, a wrong token, a prefix of the token.
    for auth in [
        None,
        Some("Basic aGM6aGM=".to_string()),
        Some("Bearer wrong-token-0123456789".to_string()),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Bearer {TOKEN}x")),
        Some("Bearer ".to_string()),
    ] {
        let (status, v) = post(port, auth.as_deref(), link.as_bytes());
        assert_eq!(status, 401, "{auth:?}: {v}");
        assert!(v["error"].is_string(), "{auth:?}: {v}");
    }
    assert_ne!(
        identity_of(p, "hc-a"),
        identity_of(p, "hc-b"),
        "a refused request changed nothing"
    );

    // Hostile bodies: every JSON type, broken JSON, bytes that are not
    // UTF-8, other actions, unknown observations.
    let auth = bearer();
    let hostile: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "empty"),
        (b"{\"action\":".to_vec(), "not JSON"),
        (b"\xff\xfe\x00".to_vec(), "not JSON"),
        (b"null".to_vec(), "got null"),
        (b"false".to_vec(), "got a boolean"),
        (b"-1e999".to_vec(), "not JSON"),
        (b"42".to_vec(), "got a number"),
        (b"\"link hc-a hc-b\"".to_vec(), "got a string"),
        (b"[\"hc-a\", \"hc-b\"]".to_vec(), "got an array"),
        (b"{}".to_vec(), "`action` is missing"),
        (br#"{"action": ["link"]}"#.to_vec(), "must be a string"),
        (br#"{"action": "stop", "observation_uuids": []}"#.to_vec(), "one of link"),
        (br#"{"action": "status"}"#.to_vec(), "one of link"),
        (br#"{"action": "link", "observation_uuids": "hc-a"}"#.to_vec(), "array"),
        (br#"{"action": "link", "observation_uuids": [1, true]}"#.to_vec(), "not a string"),
        (br#"{"action": "link", "observation_uuids": ["hc-a"]}"#.to_vec(), "takes 2"),
        (br#"{"action": "link", "observation_uuids": ["hc-a", "<script>"]}"#.to_vec(), "malformed"),
        (br#"{"action": "link", "observation_uuids": ["hc-a", "hc-a"]}"#.to_vec(), "both arguments"),
        (br#"{"action": "link", "observation_uuids": ["hc-a", "nobody-here"]}"#.to_vec(), "no observation"),
        (br#"{"action": "link", "observation_uuids": ["hc-a", "hc-b"], "requested_by": "mallory"}"#.to_vec(), "unknown field"),
    ];
    for (body, needle) in &hostile {
        let (status, v) = post(port, Some(&auth), body);
        assert_eq!(status, 400, "{:?}: {v}", String::from_utf8_lossy(body));
        let e = v["error"].as_str().unwrap_or_default();
        assert!(
            e.contains(needle),
            "{:?}: {e}",
            String::from_utf8_lossy(body)
        );
    }
    let big = format!(
        r#"{{"action": "link", "observation_uuids": ["{}", "b"]}}"#,
        "a".repeat(5000)
    );
    assert_eq!(post(port, Some(&auth), big.as_bytes()).0, 413);

    // The link itself: the daemon's reply comes back, the identity changes,
    // and the decision records who asked.
    let (status, reply) = post(port, Some(&auth), link.as_bytes());
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ok"], true, "{reply}");
    eventually("the link to apply", 30, || {
        identity_of(p, "hc-a").is_some() && identity_of(p, "hc-a") == identity_of(p, "hc-b")
    });
    let stored: String = conn()
        .hget(Keys::new(p).decisions(), "hc-a|hc-b")
        .expect("the decision is stored");
    let d: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(d["kind"], "link");
    let by = d["requested_by"].as_str().unwrap_or_default();
    assert!(by.starts_with("http 127.0.0.1:"), "{by}");
    // Forget it again, by the other names.
    let forget = json!({"action": "forget", "observation_uuids": ["198.51.100.23", "hc-a"]});
    let (status, reply) = post(port, Some(&auth), forget.to_string().as_bytes());
    assert_eq!(status, 200, "{reply}");
    eventually("the link to be forgotten", 30, || {
        identity_of(p, "hc-a") != identity_of(p, "hc-b")
    });

    // A server without allow_control has no such route.
    let closed = free_port();
    let _closed = serve(p, closed, &[]);
    eventually("the read-only console to answer", 30, || answers(closed));
    let (status, v) = post(closed, Some(&auth), link.as_bytes());
    assert_eq!(status, 404, "{v}");
    let (_, overview) = request("GET", closed, "/api/overview", &[], b"").unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&overview).unwrap()["control"],
        false
    );

    // With the daemon gone nobody listens on the channel: 503, said so.
    assert_eq!(daemon.stop(), 0);
    let open = free_port();
    let _open = serve(
        p,
        open,
        &[
            ("CLUSTERD_HTTP__ALLOW_CONTROL", "true"),
            ("CLUSTERD_HTTP__TOKEN", TOKEN),
        ],
    );
    eventually("the console without a daemon to answer", 30, || {
        answers(open)
    });
    let (status, v) = post(open, Some(&auth), link.as_bytes());
    assert_eq!(status, 503, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no daemon is listening"),
        "{v}"
    );
}
