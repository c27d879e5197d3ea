//! The console in a real browser: the daemon settles a scenario, `clusterd
//! serve` answers on a free loopback port, and headless Chromium (driven
//! through chromedriver) renders the campaign list, a campaign's graph and
//! timeline, an identity and an observation from the live data, sees a new
//! event arrive without a reload, and shows hostile sensor strings as text
//! without running them, and takes an operator decision from an identity
//! page (`http.allow_control`). Screenshots go to
//! `target/console-screenshots/`.
//! Needs the Debian packages `chromium chromium-driver` (fails naming them).

mod browser;
mod common;

use browser::{get_json, Browser};
use clusterd::repository::Keys;
use common::{conn, eventually, identity_of, publish, serve, start_with, Prefix};
use serde_json::json;
use std::path::PathBuf;

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots")
}

/// The console's `http.token` (decisions through the identity page).
const TOKEN: &str = "browser-test-token-0123";

/// Every hostile kind of string a sensor can send.
const SCRIPT: &str = "<script>window.__pwned='script'</script>";
const IMG: &str = "\"><img src=x onerror=\"window.__pwned='img'\">";
const QUOTE: &str = "' onmouseover='window.__pwned=1' x='";
const CONTROL: &str = "ctrl\u{1b}[31mred\u{7}bell\u{8}bs";

fn publish_hostile(prefix: &str, uuid: &str) {
    let payload = json!({
        "uuid": uuid, "ip": "203.0.113.66", "asn": 64500,
        "first_seen": "2026-01-02T03:00:00Z", "last_seen": "2026-01-02T03:10:00Z",
        "fingerprints": [{"kind": "ja3", "value": SCRIPT}, {"kind": "hassh", "value": QUOTE},
                         {"kind": IMG, "value": CONTROL}],
        "sessions": [{"session_id": "s-hostile-1", "decky_id": SCRIPT,
                      "started_at": "2026-01-02T03:00:00Z", "ended_at": "2026-01-02T03:10:00Z",
                      "phase": "discovery", "commands": [SCRIPT, IMG, QUOTE, CONTROL],
                      "credentials": [[SCRIPT, QUOTE]], "c2_callback": IMG}]
    });
    let _: String = redis::cmd("XADD")
        .arg(Keys::new(prefix).input())
        .arg("*")
        .arg("topic")
        .arg("attacker.observed")
        .arg("payload")
        .arg(payload.to_string())
        .query(&mut conn())
        .unwrap();
}

fn not_pwned(b: &Browser, page: &str) {
    let v = b.script("return [typeof window.__pwned, document.scripts.length, document.querySelectorAll('img').length];");
    assert_eq!(
        v,
        json!(["undefined", 1, 0]),
        "hostile strings ran or became markup on {page}"
    );
}

#[test]
fn the_console_renders_live_data_and_escapes_hostile_strings() {
    browser::require_browser();
    let prefix = Prefix::new("console");
    let p = prefix.0.clone();
    publish(&p, "multi_operator");
    let _daemon = start_with(&p, &[]);
    let port = browser::free_port();
    let _server = serve(
        &p,
        port,
        &[
            ("CLUSTERD_HTTP__ALLOW_CONTROL", "true"),
            ("CLUSTERD_HTTP__TOKEN", TOKEN),
        ],
    );
    eventually("a campaign of two identities in the API", 60, || {
        browser::http("GET", port, "/api/campaigns", None)
            .ok()
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["items"][0]["identity_count"] == 2)
    });
    let (_, list) = get_json(port, "/api/campaigns");
    let campaign = list["items"][0]["uuid"].as_str().unwrap().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let b = Browser::start(1400, 1000);

    // The campaign list.
    b.goto(&format!("{base}/"));
    b.wait_for(
        "#view[data-state=\"ready\"][data-view=\"campaigns\"]",
        1,
        30,
    );
    b.wait_for("#campaign-list tr[data-uuid]", 1, 10);
    assert_eq!(
        b.attr("#campaign-list tr[data-uuid]", "data-uuid")
            .as_deref(),
        Some(campaign.as_str())
    );
    b.wait_for("#workers .worker[data-worker]", 1, 10);
    b.screenshot(&shots().join("01-campaigns.png"));

    // A campaign: its graph (two identities and the edge between them,
    // labelled) and the timeline of their phases.
    b.goto(&format!("{base}/campaigns/{campaign}"));
    b.wait_for("#view[data-state=\"ready\"][data-view=\"campaign\"]", 1, 30);
    b.wait_for("#campaign-graph svg[data-nodes] .node[data-uuid]", 2, 10);
    b.wait_for("#campaign-graph line.edge[data-a][data-b]", 1, 10);
    b.wait_for(
        "#timeline svg[data-rows] g.trow[data-identity][data-decky]",
        2,
        10,
    );
    b.wait_for("#timeline g.seg[data-phase]", 2, 10);
    b.wait_for("#campaign-edges tr[data-a][data-b]", 1, 10);
    b.screenshot(&shots().join("02-campaign.png"));

    // An identity and its members with why they belong.
    let identity = b
        .attr("#campaign-graph .node[data-uuid]", "data-uuid")
        .unwrap();
    b.goto(&format!("{base}/identities/{identity}"));
    b.wait_for("#view[data-state=\"ready\"][data-view=\"identity\"]", 1, 30);
    b.wait_for("#identity-members tr[data-uuid]", 1, 10);
    b.screenshot(&shots().join("03-identity.png"));

    // A new event arrives on the open page without a reload, and the
    // hostile strings it carries are text.
    b.goto(&format!("{base}/"));
    b.wait_for("#view[data-state=\"ready\"]", 1, 30);
    b.wait_for("body[data-live=\"open\"]", 1, 20);
    b.script("window.__loaded = 'same page'; return null;");
    // Observation uuids are checked by the daemon; every other string is
    // not. A forged output-stream entry carries hostile text in its topic
    // and payload, as a compromised writer could.
    let hostile_uuid = "att-hostile-0001";
    publish_hostile(&p, hostile_uuid);
    b.wait_for(
        "#live-feed li[data-topic][data-stream][data-event-id]",
        1,
        30,
    );
    // The hostile observation forms a campaign of its own: the list grows.
    b.wait_for("#campaign-list tr[data-uuid]", 2, 30);
    let forged = json!({"identity_uuid": IMG, "observation_uuids": [SCRIPT, QUOTE, CONTROL]});
    let _: String = redis::cmd("XADD")
        .arg(Keys::new(&p).identity_stream())
        .arg("*")
        .arg("topic")
        .arg(format!("identity.formed{SCRIPT}"))
        .arg("ts")
        .arg(IMG)
        .arg("payload")
        .arg(forged.to_string())
        .query(&mut conn())
        .unwrap();
    eventually("the forged event in the live feed", 30, || {
        b.script("return document.querySelector('#live-feed').textContent;")
            .as_str()
            .is_some_and(|t| t.contains("onerror"))
    });
    assert_eq!(
        b.script("return window.__loaded;"),
        json!("same page"),
        "the page reloaded"
    );
    not_pwned(&b, "the live feed");
    b.screenshot(&shots().join("04-live.png"));

    // The hostile observation's page, reached through a search for it.
    let path = format!("/observations/{}", encode(hostile_uuid));
    eventually("the hostile observation in the API", 30, || {
        get_json(port, &format!("/api{path}")).0 == 200
    });
    // A search by its IP matches that one observation: the page goes to it
    // (its address replaced, so Back returns to where the search started).
    b.goto(&format!("{base}/search?q=203.0.113.66"));
    b.wait_for(
        "#view[data-state=\"ready\"][data-view=\"observation\"]",
        1,
        30,
    );
    assert_eq!(
        b.script("return location.pathname;"),
        json!(path),
        "a search with one match lands on that observation's page"
    );
    b.wait_for("#observation-fingerprints tr[data-kind]", 3, 10);
    b.wait_for("#observation-sessions .session[data-session]", 1, 10);
    let text = b.script("return document.querySelector('#view').textContent;");
    let text = text.as_str().unwrap_or("");
    assert!(
        text.contains("<script>") && text.contains("onerror"),
        "hostile strings are shown as text"
    );
    assert!(
        !text.contains('\u{1b}'),
        "control characters are made visible, not sent to the screen raw"
    );
    not_pwned(&b, "the observation page");
    b.screenshot(&shots().join("05-hostile-observation.png"));
    // The same search typed into the box of another page: the sixth page
    // this browser opened, so it passes only when the pages left behind
    // closed their event streams (a browser holds six connections to a
    // host; the request waited behind stale streams, "Loading…" forever).
    b.goto(&format!("{base}/"));
    b.wait_for(
        "#view[data-state=\"ready\"][data-view=\"campaigns\"]",
        1,
        30,
    );
    b.script("document.getElementById('search-q').value = '203.0.113.66'; document.getElementById('search').requestSubmit(); return null;");
    b.wait_for(
        "#view[data-state=\"ready\"][data-view=\"observation\"]",
        1,
        30,
    );
    // Search by ASN: the multi_operator observations share AS65002.
    b.goto(&format!("{base}/search?q=AS65002"));
    b.wait_for("#view[data-state=\"ready\"][data-view=\"search\"]", 1, 30);
    b.wait_for(
        "#search-results li[data-uuid][data-kind=\"observation\"]",
        2,
        10,
    );
    b.screenshot(&shots().join("06-search.png"));
    not_pwned(&b, "the search page");

    // An operator decision from an identity page (control is allowed on
    // this server): a wrong token is refused, then the hostile observation,
    // named by its IP, is linked to the identity's first member.
    b.goto(&format!("{base}/identities/{identity}"));
    b.wait_for("#view[data-state=\"ready\"][data-view=\"identity\"]", 1, 30);
    b.wait_for("#identity-decision form#decision", 1, 10);
    let first = b
        .attr("#identity-members tr[data-uuid]", "data-uuid")
        .unwrap();
    assert_eq!(
        b.script("return document.getElementById('decision-a').value;"),
        json!(first)
    );
    let send = |token: &str| {
        b.script(&format!(
            "document.getElementById('decision-action').value = 'link'; document.getElementById('decision-b').value = '203.0.113.66'; document.getElementById('decision-token').value = {}; document.getElementById('decision').requestSubmit(); return null;",
            json!(token)
        ));
    };
    send("not-the-token-0000000");
    b.wait_for("#decision-result[data-state=\"error\"]", 1, 30);
    let refused = b.script("return document.getElementById('decision-result').textContent;");
    assert!(
        refused.as_str().is_some_and(|t| t.contains("401")),
        "{refused}"
    );
    assert_ne!(identity_of(&p, hostile_uuid), identity_of(&p, &first));
    send(TOKEN);
    b.wait_for("#decision-result[data-state=\"ok\"]", 1, 30);
    eventually("the link made in the page to apply", 30, || {
        identity_of(&p, hostile_uuid).is_some()
            && identity_of(&p, hostile_uuid) == identity_of(&p, &first)
    });
    b.screenshot(&shots().join("07-decision.png"));
    not_pwned(&b, "the identity page after a decision");
}

/// Percent-encodes a path segment.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (c as char).to_string()
            }
            c => format!("%{c:02X}"),
        })
        .collect()
}
