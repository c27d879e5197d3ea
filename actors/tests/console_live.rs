//! The console inside `clusterd run` (`http.listen`) answers from the
//! daemon's engine, and says so (`X-Clusterd-Source: engine`); a standalone
//! `clusterd serve` over the same repository answers from its snapshot
//! (`snapshot`). Once the daemon has settled, both give the same answers on
//! every page of the API — the campaign list, each campaign with its edges
//! and timeline, each identity with its members and why each belongs — so
//! the live state the console now reads is the state Redis holds. And an
//! identity whose member sent a catalogued library's fingerprint shows that
//! library by name (`tooling_labels`).

mod browser;
mod common;

use browser::{exchange, free_port, Answer};
use common::*;
use serde_json::Value;

/// paramiko 2.12.0's HASSH, as `config/tooling.toml` catalogues it.
const PARAMIKO_HASSH: &str = "a704be057881f0b1d623cd263e477a8b";

fn get(port: u16, path: &str) -> Option<Answer> {
    exchange("GET", port, path, &[], b"")
        .ok()
        .filter(|a| a.status == 200)
}

fn json(a: &Answer) -> Value {
    serde_json::from_str(&a.body).unwrap_or(Value::Null)
}

/// Every API page both servers can answer, by path, once the campaign list
/// is known.
fn pages(port: u16) -> Option<Vec<(String, Value, String)>> {
    let mut out = Vec::new();
    let list = get(port, "/api/campaigns?limit=500")?;
    let v = json(&list);
    let source = list.header("x-clusterd-source")?.to_string();
    out.push(("/api/campaigns?limit=500".to_string(), v.clone(), source));
    for c in v["items"].as_array()? {
        let path = format!("/api/campaigns/{}", c["uuid"].as_str()?);
        let page = get(port, &path)?;
        let pv = json(&page);
        let source = page.header("x-clusterd-source")?.to_string();
        for i in pv["identities"].as_array()? {
            let ipath = format!("/api/identities/{}", i["uuid"].as_str()?);
            let ip = get(port, &ipath)?;
            let source = ip.header("x-clusterd-source")?.to_string();
            out.push((ipath, json(&ip), source));
        }
        out.push((path, pv, source));
    }
    Some(out)
}

#[test]
fn the_in_process_console_reads_the_engine_and_agrees_with_the_repository() {
    let prefix = Prefix::new("console-live");
    let p = prefix.0.clone();
    let g = publish(&p, "multi_operator");
    let live_port = free_port();
    let listen = format!("127.0.0.1:{live_port}");
    let _daemon = start_with(&p, &[("CLUSTERD_HTTP__LISTEN", listen.as_str())]);
    observed(
        &p,
        &format!(
            r#"{{"uuid":"live-paramiko","ip":"198.51.100.77","fingerprints":[{{"kind":"hassh","value":"{PARAMIKO_HASSH}"}}]}}"#
        ),
    );
    let observations = g.truth.identity.len() + 1;
    eventually("the daemon to settle", 60, || settled(&p, observations));

    let snap_port = free_port();
    let _serve = serve(&p, snap_port, &[]);

    // The two read the same state by different roads; poll until both
    // answer every page (the snapshot is built on the first request).
    let mut both = None;
    eventually("both servers to answer every page", 60, || {
        both = pages(live_port).zip(pages(snap_port));
        both.is_some()
    });
    let (live, snap) = both.unwrap();
    assert!(
        live.len() > 1,
        "campaigns and identities to compare: {live:?}"
    );
    assert_eq!(live.len(), snap.len());
    for ((lp, lv, ls), (sp, sv, ss)) in live.iter().zip(&snap) {
        assert_eq!(ls, "engine", "{lp} in `clusterd run`");
        assert_eq!(ss, "snapshot", "{sp} in `clusterd serve`");
        assert_eq!(lp, sp);
        assert_eq!(lv, sv, "{lp}: the engine and the repository disagree");
    }

    // The paramiko member's identity names the library.
    let (_, obs) = browser::get_json(live_port, "/api/observations/live-paramiko");
    let identity = obs["observation"]["identity_uuid"]
        .as_str()
        .unwrap_or_else(|| panic!("the observation has an identity: {obs}"))
        .to_string();
    let (_, id) = browser::get_json(live_port, &format!("/api/identities/{identity}"));
    let summary = &id["identity"];
    assert_eq!(
        summary["tooling"],
        serde_json::json!([format!("hassh:{PARAMIKO_HASSH}")]),
        "{id}"
    );
    assert_eq!(
        summary["tooling_labels"],
        serde_json::json!(["paramiko 2.12.0"]),
        "{id}"
    );
}
