//! Closed pipes never kill anything: a daemon whose log reader goes away
//! keeps leading, clustering and answering, then stops cleanly and releases
//! the lease; `demo | head -2` and `export | head -c 100` end without a
//! panic, and the demo still removes its keys.
//! Each test uses its own key prefix and deletes its keys at the end.

mod common;

use clusterd::repository::Keys;
use common::*;
use redis::Commands;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

#[test]
fn a_daemon_whose_log_pipe_closes_keeps_working_and_stops_cleanly() {
    let prefix = Prefix::new("logpipe");
    let p = prefix.0.as_str();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .arg("run")
        .env("REDIS_URL", URL)
        .env("CLUSTERD_KEY_PREFIX", p)
        .env("CLUSTERD_LEASE__PERIOD_MS", "2000")
        .env("CLUSTERD_HEARTBEAT__INTERVAL_MS", "200")
        .env("CLUSTERD_INGEST__BLOCK_MS", "100")
        .env("CLUSTERD_LOG__LEVEL", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    stderr.read_line(&mut first).unwrap();
    // Plain text when the log is not a terminal.
    assert!(
        !first.contains('\u{1b}'),
        "ANSI colour in a piped log: {first:?}"
    );
    drop(stderr);
    let mut daemon = Daemon(child);
    // Logging at debug goes on writing into the closed pipe while it works.
    let g = publish(p, "vpn_hopping");
    eventually("settled with the log pipe closed", 60, || {
        settled(p, g.truth.identity.len())
    });
    assert!(daemon.0.try_wait().unwrap().is_none(), "the daemon died");
    let (code, out, err) = verb(p, &["export"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.len() > 100);
    let mut export = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .arg("export")
        .env("REDIS_URL", URL)
        .env("CLUSTERD_KEY_PREFIX", p)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    export.stdout.take().unwrap().read_exact(&mut head).unwrap();
    let status = export.wait().unwrap();
    let mut err = String::new();
    export
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(status.code(), Some(101), "{err}");
    kill_term(&daemon);
    let code = wait_exit(&mut daemon);
    assert_eq!(code, 0);
    let leader: Option<String> = conn().get(Keys::new(p).leader()).unwrap();
    assert_eq!(leader, None, "the lease was released");
}

fn kill_term(d: &Daemon) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(d.0.id().to_string())
        .status();
}

fn wait_exit(d: &mut Daemon) -> i32 {
    let mut code = None;
    eventually("the daemon to exit", 10, || {
        code = d.0.try_wait().unwrap().map(|s| s.code().unwrap_or(-1));
        code.is_some()
    });
    code.unwrap()
}

#[test]
fn demo_into_a_closed_pipe_cleans_up() {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .arg("demo")
        .env("REDIS_URL", URL)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(demo.stdout.take().unwrap());
    let mut lines = String::new();
    for _ in 0..2 {
        out.read_line(&mut lines).unwrap();
    }
    drop(out);
    let prefix = lines
        .split('`')
        .nth(1)
        .filter(|p| p.starts_with("demo-"))
        .unwrap_or_else(|| panic!("no demo prefix in {lines:?}"))
        .to_string();
    let mut d = Daemon(demo);
    let code = wait_exit_long(&mut d);
    let mut err = String::new();
    d.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(code, 0, "{err}");
    let left: Vec<String> = conn()
        .scan_match::<_, String>(format!("{prefix}:*"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert!(left.is_empty(), "the demo left {} keys", left.len());
}

fn wait_exit_long(d: &mut Daemon) -> i32 {
    let mut code = None;
    eventually("the demo to end", 120, || {
        code = d.0.try_wait().unwrap().map(|s| s.code().unwrap_or(-1));
        code.is_some()
    });
    code.unwrap()
}
