//! A stored row that cannot be read is quarantined, not an outage: the
//! daemon restarted over corrupt observation, identity and campaign rows
//! names each in `{p}:stream:quarantine` with its reason, counts them in
//! the clusterer's heartbeat, keeps the rows as they are, and loads and
//! clusters the rest.
//! The test uses its own key prefix and deletes its keys at the end.

mod common;

use clusterd::repository::Keys;
use common::*;
use redis::Commands;

#[test]
fn corrupt_rows_are_quarantined_and_the_rest_clusters() {
    let prefix = Prefix::new("quarantine");
    let p = prefix.0.as_str();
    let keys = Keys::new(p);
    let mut c = conn();
    let daemon = Daemon::start(p);
    for (o, j) in [
        ("q-a", "j-1"),
        ("q-b", "j-1"),
        ("q-c", "j-2"),
        ("q-d", "j-3"),
        ("q-e", "j-4"),
        ("q-g", "j-5"),
        ("q-h", "j-6"),
    ] {
        observe(p, o, j);
    }
    eventually("seven identities with campaigns", 30, || settled(p, 7));
    assert_eq!(daemon.stop(), 0);

    let identity_c = identity_of(p, "q-c").unwrap();
    let identity_d = identity_of(p, "q-d").unwrap();
    let campaign: String = c.hget(keys.identity(&identity_d), "campaign_id").unwrap();
    // q-e's evidence key holding another observation's (valid) evidence.
    let q_e: String = c.get(keys.evidence("q-e")).unwrap();
    let q_e_as_q_z = q_e.replacen("\"q-e\"", "\"q-z\"", 1);
    assert_ne!(q_e, q_e_as_q_z);
    // (the row's key, the key written, its field or None for a string key,
    // the value: None deletes it)
    let corrupt: [(String, String, Option<&str>, Option<&str>); 7] = [
        (keys.attacker("q-a"), keys.evidence("q-a"), None, Some("{}")),
        (
            keys.attacker("q-b"),
            keys.evidence("q-b"),
            None,
            Some("not json"),
        ),
        (
            keys.attacker("q-e"),
            keys.evidence("q-e"),
            None,
            Some(&q_e_as_q_z),
        ),
        // No evidence at all.
        (keys.attacker("q-g"), keys.evidence("q-g"), None, None),
        // The `evidence` field of an earlier version, corrupt.
        (
            keys.attacker("q-h"),
            keys.attacker("q-h"),
            Some("evidence"),
            Some("~2{"),
        ),
        (
            keys.identity(&identity_c),
            keys.identity(&identity_c),
            Some("observation_count"),
            Some("many"),
        ),
        (
            keys.campaign(&campaign),
            keys.campaign(&campaign),
            Some("confidence"),
            Some("[]"),
        ),
    ];
    for (_, key, field, value) in &corrupt {
        let _: () = match (field, value) {
            (Some(f), Some(v)) => c.hset(key, f, v).unwrap(),
            (None, Some(v)) => c.set(key, v).unwrap(),
            (_, None) => c.del(key).unwrap(),
        };
    }
    let daemon = Daemon::start(p);
    eventually(
        "every corrupt row named in the quarantine stream",
        30,
        || {
            let n: usize = c.xlen(keys.quarantine()).unwrap_or(0);
            n >= corrupt.len()
        },
    );
    let entries: redis::streams::StreamRangeReply = c.xrange_all(keys.quarantine()).unwrap();
    let named: Vec<(String, String)> = entries
        .ids
        .iter()
        .map(|e| (e.get("key").unwrap(), e.get("reason").unwrap()))
        .collect();
    for (key, _, field, value) in &corrupt {
        let reason = named
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{key} not quarantined: {named:?}"));
        let expected = match (key.ends_with("q-e"), field, value) {
            (true, _, _) => "names uuid `q-z`",
            (false, None, None) => "its evidence key is missing",
            (false, None, Some(_)) => "its evidence key is not valid",
            (false, Some(f), _) if *f == "evidence" => "`evidence` is not valid",
            (false, Some(f), _) => f,
        };
        assert!(reason.contains(expected), "{key}: {reason}");
    }
    eventually("the heartbeat counting them", 20, || {
        health_of(p, "clusterer")["quarantined"] == corrupt.len() as u64
    });
    // The rows are kept as they were.
    for (_, key, field, value) in &corrupt {
        let now: Option<String> = match field {
            Some(f) => c.hget(key, f).unwrap(),
            None => c.get(key).unwrap(),
        };
        assert_eq!(now.as_deref(), *value, "{key} was rewritten");
    }
    // The rest loads and clusters: new evidence joins an intact identity.
    observe(p, "q-f", "j-3");
    eventually("q-f clustered with q-d", 30, || {
        identity_of(p, "q-f").is_some() && identity_of(p, "q-f") == identity_of(p, "q-d")
    });
    assert_eq!(health_of(p, "clusterer")["restarts"], 0);
    assert_eq!(daemon.stop(), 0);
}
