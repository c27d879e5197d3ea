//! A repository load that keeps failing backs off instead of spinning
//! through the restart budget (issue 19). `{p}:attackers` holding the wrong
//! type makes every load fail with WRONGTYPE; the clusterer restarts after
//! each failure and must wait 100 ms, 200 ms, 400 ms, … before loading
//! again. The delays are read from the daemon's own log timestamps and
//! only bounded from below, so a slow machine cannot fail the test: without
//! the backoff the failures follow each other within milliseconds.

mod common;

use clusterd::repository::Keys;
use common::*;
use redis::Commands;
use std::time::{Duration, Instant};

/// Seconds since midnight of a log line's leading RFC 3339 UTC timestamp
/// (`2026-12-02T21:20:36.234616Z …`).
fn seconds_of_day(line: &str) -> f64 {
    let time = line
        .split_whitespace()
        .next()
        .and_then(|ts| ts.split_once('T'))
        .map(|(_, t)| t.trim_end_matches('Z'))
        .unwrap_or_else(|| panic!("no timestamp on `{line}`"));
    let mut parts = time.split(':');
    let mut next = || -> f64 {
        parts
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bad timestamp on `{line}`"))
    };
    let (h, m, s) = (next(), next(), next());
    h * 3600.0 + m * 60.0 + s
}

#[test]
fn a_load_that_keeps_failing_backs_off() {
    let prefix = Prefix::new("load-backoff");
    let p = prefix.0.as_str();
    let keys = Keys::new(p);
    let _: () = conn().set(keys.attackers(), "not a set").unwrap();
    let (daemon, rx) = start_logged_with(
        p,
        &[
            ("CLUSTERD_HEARTBEAT__INTERVAL_MS", "200"),
            // A budget this test does not spend: the delays are what it checks.
            ("CLUSTERD_SUPERVISION__MAX_RESTARTS", "50"),
            ("CLUSTERD_SUPERVISION__WINDOW_MS", "600000"),
        ],
    );

    // Five failed loads; the waits between them are 100, 200, 400, 800 ms.
    let mut failures = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while failures.len() < 5 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("five failed loads within 60 s: saw {failures:?}"));
        if line.contains("identity clustering failed") {
            assert!(line.contains("WRONGTYPE"), "{line}");
            failures.push(seconds_of_day(&line));
        }
    }
    let gaps: Vec<f64> = failures
        .windows(2)
        .map(|w| {
            let d = w[1] - w[0];
            if d < 0.0 {
                d + 86_400.0
            } else {
                d
            }
        })
        .collect();
    for (k, gap) in gaps.iter().enumerate() {
        let least = 0.1 * f64::from(1u32 << k);
        assert!(
            *gap >= least,
            "the wait before load {} was {gap:.3} s, less than the backoff's {least:.1} s (gaps {gaps:?})",
            k + 2
        );
    }
    // Still running: the budget was not spent by a spin.
    eventually("the heartbeat to count the restarts", 30, || {
        health_of(p, "clusterer")["restarts"].as_u64().unwrap_or(0) >= 4
    });
    assert_eq!(daemon.stop(), 0);
}
