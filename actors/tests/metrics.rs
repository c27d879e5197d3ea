//! `/metrics` and systemd notify against a running `clusterd run`: the
//! scrape validates with Prometheus's own `promtool check metrics` (Debian
//! package `prometheus`), its counters and histograms move when events
//! flow, a standalone `clusterd serve` serves the leader's metrics from
//! Redis, and the daemon sends READY, WATCHDOG and STOPPING to the socket
//! in `NOTIFY_SOCKET`.

mod common;

use common::{eventually, publish, Prefix, URL};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn clusterd(args: &[&str], prefix: &str, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clusterd"));
    cmd.args(args)
        .env("REDIS_URL", URL)
        .env("CLUSTERD_KEY_PREFIX", prefix)
        .env("CLUSTERD_LEASE__PERIOD_MS", "2000")
        .env("CLUSTERD_HEARTBEAT__INTERVAL_MS", "300")
        .env("CLUSTERD_INGEST__BLOCK_MS", "200")
        .env("CLUSTERD_LOG__LEVEL", "warn")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn clusterd")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `path` on 127.0.0.1:`port`: the status and the body.
fn get(port: u16, path: &str, accept: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The value of the sample line `series` (name and labels as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `promtool check metrics` on `text`; fails the test when promtool is
/// missing or finds a problem.
fn promtool(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool is needed to validate /metrics ({e}): install the Debian package `prometheus`"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metrics_validate_with_promtool_and_move_when_events_flow() {
    let prefix = Prefix::new("metrics");
    let port = free_port();
    let _daemon = Killed(clusterd(
        &["run"],
        &prefix.0,
        &[("CLUSTERD_HTTP__LISTEN", format!("127.0.0.1:{port}"))],
    ));
    let mut text = String::new();
    // /metrics answers as soon as the server is up; the lease is taken a
    // moment later, so wait for the leader state too.
    eventually(
        "/metrics to answer with the daemon leading",
        30,
        || match get(port, "/metrics", "text/plain") {
            Some((200, body)) if sample(&body, "clusterd_leader") == Some(1.0) => {
                text = body;
                true
            }
            _ => false,
        },
    );
    promtool(&text);
    assert_eq!(sample(&text, "clusterd_leader"), Some(1.0), "{text}");
    let before = sample(&text, "clusterd_entries_ingested_total").unwrap();
    assert_eq!(before, 0.0);

    let g = publish(&prefix.0, "shared_wordlist");
    let n = g.events.len() as f64;
    eventually("the counters to move", 30, || {
        text = get(port, "/metrics", "text/plain")
            .map(|r| r.1)
            .unwrap_or_default();
        sample(&text, "clusterd_entries_ingested_total") >= Some(n)
            && sample(
                &text,
                "clusterd_events_published_total{stream=\"identity\"}",
            ) > Some(0.0)
            && sample(
                &text,
                "clusterd_events_published_total{stream=\"campaign\"}",
            ) > Some(0.0)
    });
    promtool(&text);
    assert!(sample(&text, "clusterd_entries_read_total") >= Some(n));
    for h in [
        "clusterd_identity_pass_seconds",
        "clusterd_campaign_pass_seconds",
        "clusterd_commit_seconds",
        "clusterd_ingest_batch_seconds",
    ] {
        let count = sample(&text, &format!("{h}_count")).unwrap_or(0.0);
        assert!(count > 0.0, "{h} has no observations:\n{text}");
        let inf = sample(&text, &format!("{h}_bucket{{le=\"+Inf\"}}"));
        assert_eq!(
            inf,
            Some(count),
            "{h}: the +Inf bucket holds every observation"
        );
    }
    assert!(sample(&text, "clusterd_observations") >= Some(1.0));
    assert_eq!(
        sample(
            &text,
            "clusterd_actor_state{actor=\"bus-ingest\",state=\"running\"}"
        ),
        Some(1.0)
    );

    // A dead letter counts under its class, never its free-text reason.
    let mut c = common::conn();
    let keys = clusterd::repository::Keys::new(&prefix.0);
    let _: String = redis::cmd("XADD")
        .arg(keys.input())
        .arg("*")
        .arg("topic")
        .arg("attacker.observed")
        .arg("payload")
        .arg("{not json")
        .query(&mut c)
        .unwrap();
    eventually("the dead letter to be counted", 30, || {
        text = get(port, "/metrics", "text/plain")
            .map(|r| r.1)
            .unwrap_or_default();
        sample(
            &text,
            "clusterd_entries_dead_lettered_total{reason=\"invalid_json\"}",
        ) == Some(1.0)
    });

    // Prometheus asks for OpenMetrics first.
    let (status, om) = get(
        port,
        "/metrics",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE clusterd_entries_ingested counter\n"));

    // A standalone `serve` serves what the leader wrote beside its heartbeats.
    let serve_port = free_port();
    let _serve = Killed(clusterd(
        &["serve", "--listen", &format!("127.0.0.1:{serve_port}")],
        &prefix.0,
        &[],
    ));
    let mut served = String::new();
    eventually("serve's /metrics", 30, || {
        match get(serve_port, "/metrics", "text/plain") {
            Some((200, body)) if sample(&body, "clusterd_entries_ingested_total") >= Some(n) => {
                served = body;
                true
            }
            _ => false,
        }
    });
    promtool(&served);
    assert_eq!(sample(&served, "clusterd_leader"), Some(1.0));
}

#[test]
fn systemd_is_told_ready_watchdog_and_stopping() {
    let prefix = Prefix::new("notify");
    let path = std::env::temp_dir().join(format!("clusterd-notify-{}", uuid::Uuid::new_v4()));
    let socket = UnixDatagram::bind(&path).expect("bind a datagram socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut daemon = Killed(clusterd(
        &["run"],
        &prefix.0,
        &[("NOTIFY_SOCKET", path.display().to_string())],
    ));
    let mut seen: Vec<String> = Vec::new();
    let wait_for = |what: &str, seen: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                let hit = msg.lines().any(|l| l == what);
                seen.push(msg);
                if hit {
                    return;
                }
            }
        }
        panic!("no {what} within 30 s; got {seen:?}");
    };
    wait_for("READY=1", &mut seen);
    assert!(
        seen.last().unwrap().contains("STATUS=leader"),
        "READY comes once the leader runs: {seen:?}"
    );
    // Two watchdog pings after READY: the heartbeat keeps pinging.
    wait_for("WATCHDOG=1", &mut seen);
    wait_for("WATCHDOG=1", &mut seen);
    assert_eq!(
        seen.iter().filter(|m| m.contains("READY=1")).count(),
        1,
        "READY is sent once: {seen:?}"
    );
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(daemon.0.id().to_string())
        .status();
    wait_for("STOPPING=1", &mut seen);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Ok(Some(s)) = daemon.0.try_wait() {
            break s;
        }
        assert!(Instant::now() < deadline, "clusterd did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let _ = std::fs::remove_file(&path);
}
