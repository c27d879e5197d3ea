//! The other verbs as a user runs them: inspect, explain and export over the
//! repository (attacker strings escaped), the demo (with a private Redis
//! when none answers), simulate, score and every `--help`, and bad
//! configuration exiting 2 naming the key.
//! Each test that writes uses its own key prefix and deletes its keys at
//! the end.

mod common;

use clusterd::repository::Keys;
use common::*;
use decnet_clusterd::scenario::builtin;
use redis::Commands;
use std::process::{Command, Stdio};

#[test]
fn inspect_explain_and_export_read_the_repository_and_escape_attacker_strings() {
    let prefix = Prefix::new("verbs");
    let p = prefix.0.as_str();
    let daemon = Daemon::start(p);
    let g = publish(p, "multi_operator");
    eventually("settled", 30, || settled(p, g.truth.identity.len()));
    // Hostile strings in every free-text field an attacker controls.
    let hostile = r#"evil\" -> \"x\"; } digraph { \n\u0007\u001b[31m"#;
    for uuid in ["hostile-1", "hostile-2"] {
        let payload = format!(
            r#"{{"uuid":"{uuid}","fingerprints":[{{"kind":"ja3","value":"{hostile}"}}],"sessions":[{{"session_id":"s","decky_id":"{hostile}","phase":"persistence","commands":["{hostile}"],"c2_callback":"{hostile}","payload_hash":"{hostile}"}}]}}"#
        );
        let mut c = conn();
        let _: String = redis::cmd("XADD")
            .arg(Keys::new(p).input())
            .arg("*")
            .arg("topic")
            .arg("attacker.observed")
            .arg("payload")
            .arg(payload)
            .query(&mut c)
            .unwrap();
    }
    eventually("the hostile observations to cluster", 30, || {
        let ids = predictions(p).0;
        ids.contains_key("hostile-1") && ids.get("hostile-1") == ids.get("hostile-2")
    });
    daemon.stop();

    let (ids, camps) = predictions(p);
    let some_obs = g.truth.identity.keys().next().unwrap();
    let (code, out, err) = verb(p, &["inspect", "observation", some_obs]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(some_obs.as_str()));
    let identity = &ids[some_obs];
    let (code, out, _) = verb(p, &["inspect", "identity", identity, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["effective_identity"], identity.as_str());
    assert!(!v["members"].as_array().unwrap().is_empty());
    let history: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["topic"].as_str())
        .collect();
    assert!(history.contains(&"identity.formed"), "{history:?}");
    let (code, out, _) = verb(p, &["inspect", "campaign", &camps[some_obs]]);
    assert_eq!(code, 0);
    assert!(out.contains("campaign"));
    let (code, _, err) = verb(p, &["inspect", "identity", "no-such-identity"]);
    assert_eq!(code, 2);
    assert!(err.contains("no identity"));

    let (code, out, _) = verb(p, &["explain", "hostile-1", "hostile-2", "--json"]);
    assert_eq!(code, 0);
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["edge"], true);
    let (code, out, _) = verb(p, &["explain", "hostile-1", "hostile-2"]);
    assert_eq!(code, 0);
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{7}'),
        "control characters reached the terminal"
    );

    let (code, dot, _) = verb(p, &["export", "--format", "dot"]);
    assert_eq!(code, 0);
    assert!(dot.starts_with("digraph clusterd {") && dot.trim_end().ends_with('}'));
    assert!(!dot.contains('\u{1b}') && !dot.contains('\u{7}'));
    for line in dot.lines() {
        // Every quote inside a line is either a delimiter or escaped: count the unescaped ones.
        let unescaped = line
            .replace("\\\\", "")
            .replace("\\\"", "")
            .matches('"')
            .count();
        assert_eq!(unescaped % 2, 0, "unbalanced quotes in DOT line: {line}");
    }
    assert!(
        !dot.contains("digraph { \n"),
        "an attacker string broke out of its label"
    );
    // Where Graphviz is installed, the DOT must render.
    if Command::new("dot")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        use std::io::Write;
        let mut child = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(dot.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "Graphviz rejected the DOT: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (code, json, _) = verb(p, &["export", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(!v["campaigns"].as_array().unwrap().is_empty());
}

#[test]
fn the_demo_runs_end_to_end_and_cleans_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .arg("demo")
        .env("REDIS_URL", URL)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("691 observations → 648 identities → 647 campaigns"),
        "{stdout}"
    );
    assert!(
        stdout.contains("identity level   1.000        1.000         1.000             1.000"),
        "{stdout}"
    );
    assert!(
        stdout.contains("campaign level   1.000        1.000         1.000             1.000"),
        "{stdout}"
    );
    assert!(stdout.contains("hand-off on decky-07"), "{stdout}");
    let prefix = stdout
        .split("key prefix `")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .unwrap()
        .to_string();
    let mut c = conn();
    let left: Vec<String> = c
        .scan_match::<_, String>(format!("{prefix}:*"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert!(left.is_empty(), "the demo left keys behind: {left:?}");
}

#[test]
fn the_demo_starts_a_private_redis_when_none_answers() {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .arg("demo")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("started a private redis-server"),
        "{stdout}"
    );
    assert!(stdout.contains("campaign level   1.000"), "{stdout}");
}

#[test]
fn simulate_publishes_a_scenario_with_delivery_options() {
    let prefix = Prefix::new("simulate");
    let (code, out, err) = verb(
        &prefix.0,
        &[
            "simulate",
            "tool_upgrade",
            "--shuffle",
            "--duplicate",
            "0.5",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("published"), "{out}");
    let g = builtin("tool_upgrade").unwrap().generate();
    let published: usize = conn().xlen(Keys::new(&prefix.0).input()).unwrap();
    assert!(
        published > g.events.len(),
        "duplicates were added: {published}"
    );
    let (code, _, err) = verb(&prefix.0, &["simulate", "tool_upgrade", "--duplicate", "2"]);
    assert_eq!(code, 2);
    assert!(err.contains("--duplicate"), "{err}");
    let (code, _, err) = verb(&prefix.0, &["simulate", "no-such-scenario"]);
    assert_eq!(code, 2);
    assert!(err.contains("built-in scenario"), "{err}");
}

#[test]
fn score_and_help_as_a_user_runs_them() {
    let (code, out, err) = verb("unused", &["score", "--check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Identity level") && out.contains("Campaign level"),
        "{out}"
    );
    assert!(!out.contains("0.9"), "every score is 1.000: {out}");
    let (code, out, _) = verb("unused", &["score", "--list"]);
    assert_eq!(code, 0);
    assert!(out.contains("busy_fleet"));
    let (code, _, err) = verb("unused", &["score", "no-such-scenario"]);
    assert_eq!(code, 2, "{err}");
    // A world recorded from a real Cowrie scores like a scenario.
    let lab = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/cowrie/lab-seed1"
    );
    let (code, out, err) = verb("unused", &["score", lab, "--check", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["scenario"], "lab-seed1");
    assert_eq!(rows[0]["observations"], 36);
    assert_eq!(rows[0]["identity"]["ari"], 1.0, "{out}");
    assert_eq!(rows[0]["campaign"]["ari"], 1.0, "{out}");
    let empty = std::env::temp_dir().join(format!("clusterd-empty-world-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("truth.json"), "{\"sources\": 3}").unwrap();
    let (code, _, err) = verb("unused", &["score", empty.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("truth.json: no `sources` object"), "{err}");
    let _ = std::fs::remove_dir_all(&empty);
    for v in [
        "run",
        "demo",
        "ctl",
        "simulate",
        "inspect",
        "explain",
        "export",
        "list",
        "watch",
        "score",
        "bench",
        "bench-e2e",
    ] {
        let (code, out, _) = verb("unused", &[v, "--help"]);
        assert_eq!(code, 0, "{v} --help");
        assert!(out.contains("Usage:"), "{v}: {out}");
    }
    let (code, _, err) = verb("unused", &["frobnicate"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn bad_configuration_exits_2_naming_the_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .arg("run")
        .env("CLUSTERD_INGEST__BATCH", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingest.batch"));
    let out = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .arg("run")
        .env("DECNET_CLUSTERER_TYPE", "louvain")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("connected_components"));
}
