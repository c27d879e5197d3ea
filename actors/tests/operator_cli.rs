//! The CLI as an operator uses it, against a real Redis on a prefix of
//! the test's own: `list` with its filters and JSON, uuid prefixes and IPs
//! wherever a row is named (unique, ambiguous, missing), readable
//! `inspect`, `export` with `--min-identities` and an unknown campaign,
//! `ctl` checking its arguments before sending and saying at once that no
//! daemon listens, the `ctl status` table, and `watch` printing an event
//! published after it started and ending cleanly on SIGINT.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Two observations from one IP, for the "several observations" case.
fn same_ip(prefix: &str) {
    for uuid in ["twin-1", "twin-2"] {
        observed(
            prefix,
            &format!(
                r#"{{"uuid":"{uuid}","ip":"192.0.2.77","asn":64999,"fingerprints":[{{"kind":"ja3","value":"twin-{uuid}"}}]}}"#
            ),
        );
    }
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn list_inspect_export_and_explain_find_rows_by_prefix_and_ip() {
    let prefix = Prefix::new("opcli");
    let p = prefix.0.as_str();
    let daemon = Daemon::start(p);
    let g = publish(p, "multi_operator");
    same_ip(p);
    // A library scanner: its HASSH is paramiko 5.1.0's in config/tooling.toml.
    observed(
        p,
        r#"{"uuid":"lib-1","ip":"192.0.2.78","fingerprints":[{"kind":"hassh","value":"4c94058d5e9e31659879f79fd5b46084"}]}"#,
    );
    let total = g.truth.identity.len() + 3;
    eventually("settled", 30, || settled(p, total));
    daemon.stop();
    let (ids, camps) = predictions(p);

    // list identities: largest first, a table with a count, JSON with every row.
    let (code, out, err) = verb(p, &["list", "identities", "--json", "--limit", "0"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    let distinct: std::collections::BTreeSet<&String> = ids.values().collect();
    assert_eq!(v["total"], distinct.len());
    let sizes: Vec<u64> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["observations"].as_u64().unwrap())
        .collect();
    assert!(
        sizes.windows(2).all(|w| w[0] >= w[1]),
        "largest first: {sizes:?}"
    );
    let (code, out, _) = verb(p, &["list", "identities", "--limit", "1"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("identity  observations"), "{out}");
    assert!(
        out.contains(&format!("(showing 1 of {} identities", distinct.len())),
        "{out}"
    );

    // Catalogued tooling is named by its library, in the table and in JSON.
    let (code, out, _) = verb(p, &["list", "identities", "--ip", "192.0.2.78"]);
    assert_eq!(code, 0);
    assert!(out.contains("paramiko 5.1.0"), "{out}");
    let (_, out, _) = verb(p, &["list", "identities", "--ip", "192.0.2.78", "--json"]);
    let row = &json(&out)["rows"][0];
    assert_eq!(row["tooling_labels"][0], "paramiko 5.1.0", "{out}");
    assert_eq!(row["tooling"][0], "4c94058d5e9e31659879f79fd5b46084");

    // Filters: IP, ASN, fingerprint, size.
    let (code, out, _) = verb(p, &["list", "observations", "--ip", "192.0.2.77", "--json"]);
    assert_eq!(code, 0);
    let uuids: Vec<String> = json(&out)["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uuid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(uuids.len(), 2, "{out}");
    let (_, out, _) = verb(p, &["list", "observations", "--asn", "AS64999"]);
    assert!(
        out.contains("twin-1") && out.contains("twin-2") && out.contains("(2 observations)"),
        "{out}"
    );
    let (_, out, _) = verb(
        p,
        &[
            "list",
            "identities",
            "--fingerprint",
            "twin-twin-1",
            "--json",
        ],
    );
    assert_eq!(json(&out)["total"], 1, "{out}");
    let (_, out, _) = verb(p, &["list", "campaigns", "--min-size", "2", "--json"]);
    let v = json(&out);
    assert!(
        v["total"].as_u64().unwrap() >= 1,
        "multi_operator joins two identities: {out}"
    );
    for r in v["rows"].as_array().unwrap() {
        assert!(r["identities"].as_array().unwrap().len() >= 2);
    }
    let (_, out, _) = verb(p, &["list", "campaigns", "--min-size", "1000"]);
    assert_eq!(out.trim(), "no campaigns match");
    assert_eq!(verb(p, &["list", "observations", "--min-size", "2"]).0, 2);
    assert_eq!(verb(p, &["list", "identities", "--since", "soon"]).0, 2);
    assert_eq!(verb(p, &["list", "people"]).0, 2);

    // A unique prefix, an IP, an ambiguous prefix, an IP of two, nothing.
    let some_obs = g.truth.identity.keys().next().unwrap();
    let identity = &ids[some_obs];
    let (code, out, err) = verb(p, &["inspect", "identity", &identity[..8]]);
    assert_eq!(code, 0, "{err}");
    for part in [
        "tooling:",
        "payloads:",
        "C2:",
        "ASNs:",
        "first seen",
        "members:",
    ] {
        assert!(out.contains(part), "{part}: {out}");
    }
    assert!(
        !out.contains("1 observations") && !out.contains("1 edges"),
        "{out}"
    );
    let (code, out, err) = verb(p, &["inspect", "observation", "twin-1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ip 192.0.2.77, AS64999") && out.contains("seen "),
        "{out}"
    );
    let (code, _, err) = verb(p, &["inspect", "observation", "twin-"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("2 observations") && err.contains("twin-1") && err.contains("twin-2"),
        "{err}"
    );
    let (code, _, err) = verb(p, &["inspect", "observation", "192.0.2.77"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("IP 192.0.2.77") && err.contains("twin-2"),
        "{err}"
    );
    let (code, _, err) = verb(p, &["inspect", "campaign", "no-such"]);
    assert_eq!(code, 2);
    assert!(err.contains("no campaign `no-such`"), "{err}");
    let ip_obs = g
        .truth
        .identity
        .keys()
        .find(|o| o.as_str() != "twin-1")
        .unwrap();
    let (code, out, _) = verb(p, &["list", "observations", "--json", "--limit", "0"]);
    assert_eq!(code, 0);
    let row = json(&out)["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uuid"] == ip_obs.as_str())
        .cloned()
        .unwrap();
    if let Some(ip) = row["ip"].as_str() {
        let (code, out, err) = verb(p, &["inspect", "observation", ip]);
        if code == 0 {
            assert!(out.contains(ip_obs.as_str()), "{out}");
        } else {
            assert!(err.contains("name one of them"), "{err}");
        }
    }

    // inspect campaign: each edge with its signals.
    let campaign = &camps[some_obs];
    let (code, out, err) = verb(p, &["inspect", "campaign", &campaign[..10]]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("hand-off on decky-07"), "{out}");

    // explain through prefixes.
    let (a, b) = (
        ids.keys().find(|o| ids[*o] == *identity).unwrap(),
        ids.keys().filter(|o| ids[*o] == *identity).nth(1),
    );
    if let Some(b) = b {
        let (code, out, err) = verb(p, &["explain", a, b, "--json"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(json(&out)["edge"], true);
    }

    // export: lone identities left out of the whole picture, unknown campaign exits 2.
    let (code, dot, _) = verb(p, &["export", "--format", "dot"]);
    assert_eq!(code, 0);
    let (_, all, _) = verb(p, &["export", "--format", "dot", "--min-identities", "1"]);
    assert!(
        dot.matches("subgraph").count() < all.matches("subgraph").count(),
        "{dot}"
    );
    assert!(dot.contains("2 identities"), "{dot}");
    let (code, _, err) = verb(p, &["export", "--campaign", "no-such"]);
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = verb(p, &["export", "--campaign", &campaign[..10]]);
    assert_eq!(code, 0);
    assert_eq!(json(&out)["campaigns"].as_array().unwrap().len(), 1);
}

#[test]
fn ctl_checks_its_arguments_and_says_when_no_daemon_listens() {
    let prefix = Prefix::new("opctl");
    let p = prefix.0.as_str();
    for (args, says) in [
        (&["explode"][..], "unknown action"),
        (&["link", "a"][..], "takes 2 observations"),
        (&["tick", "a"][..], "takes no arguments"),
        (&["separate", "a b", "c"][..], "malformed observation"),
        (&["pause", "--target", "nobody"][..], "unknown target"),
        (
            &["link", "missing-1", "missing-2"][..],
            "no observation `missing-1`",
        ),
    ] {
        let (code, _, err) = ctl(p, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let started = Instant::now();
    let (code, _, err) = ctl(p, &["status", "--timeout", "30"]);
    assert_eq!(code, 1);
    assert!(err.contains("no daemon is listening"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it waited for nobody"
    );
}

#[test]
fn ctl_status_is_a_table_and_watch_follows_new_events() {
    let prefix = Prefix::new("opwatch");
    let p = prefix.0.as_str();
    let daemon = Daemon::start(p);
    observe(p, "seed-1", "seed-tool");
    eventually("the seed to settle", 30, || settled(p, 1));
    let (code, out, err) = ctl(p, &["status"]);
    assert_eq!(code, 0, "{err}");
    for w in [
        "clusterd",
        "bus-ingest",
        "clusterer",
        "campaign-clusterer",
        "publisher",
        "heartbeat",
        "control",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(w) && l.contains("running")),
            "{w}: {out}"
        );
    }
    assert!(
        out.contains("stored: 1 observation, 1 identity, 1 campaign"),
        "{out}"
    );
    assert!(out.lines().next().unwrap().starts_with("leader: "), "{out}");

    for json_mode in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clusterd"));
        cmd.arg("watch")
            .env("REDIS_URL", URL)
            .env("CLUSTERD_KEY_PREFIX", p);
        if json_mode {
            cmd.arg("--json");
        }
        let mut watch = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = watch.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // The watcher starts "from now": publish new observations until one
        // of their events shows (a deadline, not a sleep, bounds the wait).
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut n = 0;
        let line = loop {
            assert!(Instant::now() < deadline, "watch printed nothing");
            n += 1;
            observe(
                p,
                &format!("late-{json_mode}-{n}"),
                &format!("late-tool-{json_mode}-{n}"),
            );
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(700)) {
                break l;
            }
        };
        if json_mode {
            let v = json(&line);
            assert!(v["topic"].as_str().unwrap().contains('.'), "{line}");
            assert!(
                v["stream"] == "identity" || v["stream"] == "campaign",
                "{line}"
            );
        } else {
            assert!(
                line.starts_with("20") && line.contains('T') && line.contains("Z  "),
                "ISO time first: {line}"
            );
            assert!(
                line.contains("identity ") || line.contains("campaign "),
                "{line}"
            );
        }
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(watch.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = watch.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "watch ignored SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0), "watch after SIGINT");
    }
    // --from the beginning reads the retained history, and a closed pipe ends it.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .args(["watch", "--from", "0"])
        .env("REDIS_URL", URL)
        .env("CLUSTERD_KEY_PREFIX", p)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(watch.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains(".formed"), "{first}");
    drop(watch.stdout.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    let status = loop {
        n += 1;
        observe(
            p,
            &format!("after-close-{n}"),
            &format!("after-close-tool-{n}"),
        );
        if let Some(s) = watch.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "watch kept writing into a closed pipe"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0));
    assert_eq!(watch_invalid(p), 2);
    daemon.stop();
}

fn watch_invalid(p: &str) -> i32 {
    verb(p, &["watch", "--from", "yesterday"]).0
}
