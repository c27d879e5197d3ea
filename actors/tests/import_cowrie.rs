//! `clusterd import cowrie` against the Redis at 127.0.0.1:6379 (own key
//! prefix): file imports, idempotence, `--follow` across rotation and
//! truncation, and a restart after SIGKILL mid-file.

mod common;

use clusterd::repository::Keys;
use common::{conn, eventually, Prefix};
use decnet_clusterd::sensor::cowrie::observation_uuid;
use redis::Commands;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/cowrie");

fn lab() -> String {
    std::fs::read_to_string(format!("{DATA}/lab-small.json")).unwrap()
}

fn import(prefix: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .args(["import", "cowrie"])
        .args(args)
        .env("CLUSTERD_KEY_PREFIX", prefix)
        .output()
        .unwrap()
}

fn follower(prefix: &str, file: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_clusterd"))
        .args([
            "import",
            "cowrie",
            "--follow",
            "--poll-ms",
            "50",
            "--source",
            "t",
        ])
        .arg(file)
        .env("CLUSTERD_KEY_PREFIX", prefix)
        .env("CLUSTERD_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Event ids and observation uuids in the input stream.
fn published(prefix: &str) -> (Vec<String>, BTreeSet<String>) {
    let entries: redis::streams::StreamRangeReply =
        conn().xrange_all(Keys::new(prefix).input()).unwrap();
    let mut ids = Vec::new();
    let mut obs = BTreeSet::new();
    for e in entries.ids {
        ids.push(e.get::<String>("event_id").unwrap());
        let p: serde_json::Value =
            serde_json::from_str(&e.get::<String>("payload").unwrap()).unwrap();
        obs.insert(p["uuid"].as_str().unwrap().to_string());
    }
    (ids, obs)
}

fn clean_run_ids() -> BTreeSet<String> {
    let p = Prefix::new("import-clean");
    let out = import(&p.0, &[&format!("{DATA}/lab-small.json")]);
    assert_eq!(out.status.code(), Some(0));
    published(&p.0).0.into_iter().collect()
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "clusterd-import-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn append(path: &Path, lines: &[&str]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(lines.concat().as_bytes()).unwrap();
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_file_import_publishes_every_session_once() {
    let p = Prefix::new("import-file");
    let files = [
        format!("{DATA}/lab-small.json"),
        format!("{DATA}/edge-cases.json"),
    ];
    let out = import(&p.0, &[&files[0], &files[1]]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("18 sessions"), "{stdout}");
    assert!(
        stdout.contains("1 malformed lines, 1 unknown event ids"),
        "{stdout}"
    );
    let (ids, obs) = published(&p.0);
    assert_eq!(ids.len(), 18);
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{DATA}/lab-small.truth.json")).unwrap(),
    )
    .unwrap();
    let mut want: BTreeSet<String> = truth["sources"]
        .as_object()
        .unwrap()
        .keys()
        .map(|ip| observation_uuid(&ip.parse().unwrap()))
        .collect();
    want.insert(observation_uuid(&"198.51.100.20".parse().unwrap()));
    want.insert(observation_uuid(&"203.0.113.77".parse().unwrap()));
    assert_eq!(obs, want);
    // Twice, and overlapping: nothing new.
    let again = import(&p.0, &[&files[1], &files[0]]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("0 events published") && stdout.contains("18 duplicates skipped"),
        "{stdout}"
    );
    assert_eq!(published(&p.0).0.len(), 18);
}

#[test]
fn bad_usage_and_missing_files_exit_2() {
    let p = Prefix::new("import-usage");
    let out = import(&p.0, &["/nonexistent/cowrie.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cowrie.json: no such file"));
    assert_eq!(import(&p.0, &[]).status.code(), Some(2));
}

#[test]
fn follow_survives_rotation_and_truncation() {
    let clean = clean_run_ids();
    let p = Prefix::new("import-rotate");
    let dir = tmp("rotate");
    let log = dir.join("cowrie.json");
    let text = lab();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let half = lines.len() / 2;
    append(&log, &lines[..half]);
    let _f = Killed(follower(&p.0, &log));
    eventually("the first half published", 20, || {
        !published(&p.0).0.is_empty()
    });
    // Rotation by rename: the rest goes into a new file at the same path.
    std::fs::rename(&log, dir.join("cowrie.json.1")).unwrap();
    append(&log, &lines[half..]);
    eventually("every session after rotation", 20, || {
        published(&p.0).0.into_iter().collect::<BTreeSet<_>>() == clean
    });
    // Truncation: the file starts again with other records.
    std::fs::write(&log, b"").unwrap();
    append(
        &log,
        &[&std::fs::read_to_string(format!("{DATA}/edge-cases.json")).unwrap()],
    );
    // Both edge-case sessions close, so both are published.
    eventually("the truncated file read", 20, || {
        published(&p.0).0.len() == clean.len() + 2
    });
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_restart_after_sigkill_neither_loses_nor_replays() {
    let clean = clean_run_ids();
    let p = Prefix::new("import-restart");
    let dir = tmp("restart");
    let log = dir.join("cowrie.json");
    let text = lab();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let cut = lines.len() * 2 / 5;
    append(&log, &lines[..cut]);
    let mut first = Killed(follower(&p.0, &log));
    let pos_key = Keys::new(&p.0).import_position("t", &log.display().to_string());
    eventually("a saved position", 20, || {
        conn().hget::<_, _, Option<u64>>(&pos_key, "until").unwrap()
            == Some(lines[..cut].concat().len() as u64)
    });
    let open: String = conn().hget(&pos_key, "open").unwrap();
    assert_ne!(open, "[]", "sessions open at the cut");
    first.0.kill().unwrap(); // SIGKILL
    first.0.wait().unwrap();
    append(&log, &lines[cut..]);
    let _second = Killed(follower(&p.0, &log));
    eventually("every session after the restart", 20, || {
        published(&p.0).0.len() >= clean.len()
    });
    let (ids, _) = published(&p.0);
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set, clean);
    assert_eq!(ids.len(), clean.len(), "no event published twice");
    let _ = std::fs::remove_dir_all(dir);
}
