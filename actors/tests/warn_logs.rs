//! Refusals are logged, not only acceptances (issue 19): a dead-lettered
//! input entry and a refused control command each give one WARN line with
//! its fields, on a piped (so colourless) log.

mod common;

use clusterd::repository::Keys;
use common::*;
use redis::Commands;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The first line of `log` containing `needle`, within `secs`.
fn line_with(log: &Receiver<String>, needle: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line `{needle}` within {secs} s"),
        }
    }
}

#[test]
fn dead_letters_and_refused_commands_are_logged_at_warn() {
    let prefix = Prefix::new("warn-logs");
    let p = prefix.0.as_str();
    let keys = Keys::new(p);
    let (daemon, log) = start_logged(p);
    eventually("the daemon to lead and listen", 20, || {
        conn()
            .get::<_, Option<String>>(keys.leader())
            .ok()
            .flatten()
            .is_some()
            && health_of(p, "control")["state"] == "running"
    });
    observed(p, "{not json");
    let line = line_with(&log, "input entry dead-lettered", 30);
    assert!(line.contains(" WARN "), "{line}");
    assert!(
        line.contains("entry=") && line.contains("reason="),
        "{line}"
    );
    assert!(!line.contains('\u{1b}'), "{line}");
    let n: i64 = conn()
        .publish(
            keys.control(),
            r#"{"action":"explode","request_id":"warn-1"}"#,
        )
        .unwrap();
    assert_eq!(n, 1, "the daemon must be listening");
    let line = line_with(&log, "control command refused", 30);
    assert!(line.contains(" WARN "), "{line}");
    assert!(
        line.contains("warn-1") && line.contains("unknown action"),
        "{line}"
    );
    assert_eq!(daemon.stop(), 0);
}
