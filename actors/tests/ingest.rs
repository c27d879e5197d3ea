//! Ingest against the real Redis: scenarios published as shuffled, split,
//! duplicated events settle to perfect identity and campaign scores read
//! back from the hashes, and a restart publishes and renames nothing;
//! poison entries are dead-lettered with a reason while good entries flow.
//! Each test that writes uses its own key prefix and deletes its keys at
//! the end.

mod common;

use clusterd::repository::Keys;
use common::*;
use decnet_clusterd::metrics::score;
use redis::Commands;

#[test]
fn scenarios_settle_perfectly_and_restarts_publish_nothing() {
    for name in [
        "multi_operator",
        "partial_evidence",
        "common_library",
        "busy_fleet",
    ] {
        let prefix = Prefix::new(name);
        let daemon = Daemon::start(&prefix.0);
        let g = publish(&prefix.0, name);
        let n = g.truth.identity.len();
        eventually(&format!("{name} to settle"), 60, || settled(&prefix.0, n));
        let (ids, camps) = predictions(&prefix.0);
        assert!(
            score(&g.truth.identity, &ids).perfect(),
            "{name} identity {:?}",
            score(&g.truth.identity, &ids)
        );
        assert!(
            score(&g.truth.campaign, &camps).perfect(),
            "{name} campaign {:?}",
            score(&g.truth.campaign, &camps)
        );
        assert_eq!(daemon.stop(), 0, "{name}: SIGTERM must exit 0");

        // Restart over the stored state: nothing renamed, nothing published.
        let mut c = conn();
        let keys = Keys::new(&prefix.0);
        let before: (usize, usize) = (
            c.xlen(keys.identity_stream()).unwrap(),
            c.xlen(keys.campaign_stream()).unwrap(),
        );
        let daemon = Daemon::start(&prefix.0);
        eventually("the restarted daemon to take the lease", 20, || {
            let h: Option<String> = c.get(keys.health("clusterd")).ok();
            h.is_some_and(|h| h.contains("\"running\"") && h.contains("\"ticks\":1"))
        });
        let after: (usize, usize) = (
            c.xlen(keys.identity_stream()).unwrap(),
            c.xlen(keys.campaign_stream()).unwrap(),
        );
        assert_eq!(before, after, "{name}: a restart published events");
        assert_eq!(
            predictions(&prefix.0),
            (ids, camps),
            "{name}: a restart renamed something"
        );
        assert_eq!(daemon.stop(), 0);
    }
}

#[test]
fn poison_entries_are_dead_lettered_while_good_ones_flow() {
    let prefix = Prefix::new("poison");
    let keys = Keys::new(&prefix.0);
    let daemon = Daemon::start(&prefix.0);
    let mut c = conn();
    // Thousands of tiny fields: more than one call of the commit script
    // takes, were they all copied into the dead letter.
    let names: Vec<String> = (0..6000).map(|i| format!("f{i}")).collect();
    let mut many: Vec<(&str, Vec<u8>)> = vec![
        ("topic", b"attacker.observed".to_vec()),
        ("payload", b"not json".to_vec()),
    ];
    many.extend(names.iter().map(|n| (n.as_str(), Vec::new())));
    let poison: Vec<Vec<(&str, Vec<u8>)>> = vec![
        many,
        vec![
            ("topic", b"attacker.observed".to_vec()),
            ("payload", b"not json".to_vec()),
        ],
        vec![
            ("topic", b"attacker.observed".to_vec()),
            ("payload", br#"{"ip":"1.2.3.4"}"#.to_vec()),
        ],
        vec![
            ("topic", b"attacker.observed".to_vec()),
            (
                "payload",
                br#"{"uuid":"a","sessions":[{"session_id":"s","phase":"hax"}]}"#.to_vec(),
            ),
        ],
        vec![("topic", vec![0xff, 0xfe]), ("payload", b"{}".to_vec())],
        vec![
            ("topic", b"attacker.observed".to_vec()),
            (
                "payload",
                format!(r#"{{"uuid":"big","x":"{}"}}"#, "x".repeat(70_000)).into_bytes(),
            ),
        ],
        vec![
            ("topic", b"attacker.observed".to_vec()),
            ("payload", br#"{"uuid":"a b\n{}"}"#.to_vec()),
        ],
    ];
    for fields in &poison {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(keys.input()).arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(v.as_slice());
        }
        let _: String = cmd.query(&mut c).unwrap();
    }
    let _: String = redis::cmd("XADD")
        .arg(keys.input())
        .arg("*")
        .arg("topic")
        .arg("attacker.rumoured")
        .arg("payload")
        .arg("{}")
        .query(&mut c)
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(keys.input())
        .arg("*")
        .arg("topic")
        .arg("attacker.observed")
        .arg("payload")
        .arg(r#"{"uuid":"good-1","ip":"198.51.100.1"}"#)
        .query(&mut c)
        .unwrap();
    // Field names are attacker bytes too: one that is not UTF-8 must not
    // stall the reads (an extra one is ignored; without a topic the entry
    // is dead-lettered).
    let _: String = redis::cmd("XADD")
        .arg(keys.input())
        .arg("*")
        .arg(&[0xffu8, 0x00, 0xc3][..])
        .arg("x")
        .query(&mut c)
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(keys.input())
        .arg("*")
        .arg("topic")
        .arg("attacker.observed")
        .arg(&[0xfeu8][..])
        .arg("extra")
        .arg("payload")
        .arg(r#"{"uuid":"good-2","ip":"198.51.100.2"}"#)
        .query(&mut c)
        .unwrap();
    eventually("the good entries to be stored", 30, || {
        c.sismember(keys.attackers(), "good-1").unwrap_or(false)
            && c.sismember(keys.attackers(), "good-2").unwrap_or(false)
    });
    eventually("every poison entry to be dead-lettered", 30, || {
        c.xlen::<_, usize>(keys.deadletter()).unwrap_or(0) == poison.len() + 1
    });
    let entries: redis::streams::StreamRangeReply = c.xrange_all(keys.deadletter()).unwrap();
    for e in &entries.ids {
        let reason: String = e.get("reason").expect("a reason");
        assert!(!reason.is_empty());
    }
    let dropped: Vec<String> = entries
        .ids
        .iter()
        .filter_map(|e| e.get("orig_fields_dropped"))
        .collect();
    assert_eq!(
        dropped,
        vec!["5002".to_string()],
        "6,002 fields, 1,000 kept"
    );
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(keys.input())
        .arg("clusterd")
        .query(&mut c)
        .unwrap();
    assert!(
        matches!(&pending, redis::Value::Array(v) if matches!(v.first(), Some(redis::Value::Int(0)))),
        "all acked: {pending:?}"
    );
    assert_eq!(daemon.stop(), 0);
}
