//! Unit tests of the input parser: every topic, every kind of error and
//! path step, the limits, raw bytes and repeated fields.

use super::*;
use crate::phase::Phase;

fn entry(topic: &str, payload: &str) -> Vec<(String, String)> {
    vec![
        ("topic".into(), topic.into()),
        ("event_id".into(), "e-1".into()),
        ("ts".into(), "2026-01-01T03:00:00Z".into()),
        ("payload".into(), payload.into()),
    ]
}

fn parse(topic: &str, payload: &str) -> Result<ParsedEntry, EntryError> {
    parse_entry(&entry(topic, payload), &Limits::default())
}

fn err(topic: &str, payload: &str) -> String {
    parse(topic, payload).unwrap_err().reason()
}

#[test]
fn a_field_named_twice_counts_once_its_last_value() {
    let mut fields = entry("attacker.rumoured", r#"{"uuid":"a"}"#);
    fields.push(("topic".into(), "attacker.observed".into()));
    let p = parse_entry(&fields, &Limits::default()).unwrap();
    assert_eq!(p.topic, Topic::Observed);
    fields.push(("payload".into(), "not json".into()));
    assert!(matches!(
        parse_entry(&fields, &Limits::default()),
        Err(EntryError::InvalidJson(_))
    ));
}

#[test]
fn full_observation_parses() {
    let p = parse(
        "attacker.observed",
        r#"{"uuid":"att-1","ip":"203.0.113.7","asn":64512,"first_seen":"2026-01-01T03:00:00Z",
            "last_seen":1767236400.5,"fingerprints":[{"kind":"JA3","value":"771,4865"}],
            "sessions":[{"session_id":"s-1","decky_id":"decky-03","started_at":"2026-01-01T03:01:00Z",
            "ended_at":"2026-01-01T03:04:10Z","tactic":"TA0007","commands":["whoami","uname -a"],
            "credentials":[["root","toor"]],"payload_hash":"9f86","c2_callback":"c2.example.net",
            "kd_digraph_simhash":"a1b2c3d4e5f60718"}]}"#,
    )
    .unwrap();
    let o = p.observation;
    assert_eq!(o.ip(), Some("203.0.113.7"));
    assert_eq!(o.asn(), Some(64512));
    assert_eq!(o.last_seen, Some(1_767_236_400_500));
    assert_eq!(o.ip.as_ref().unwrap().at, 1_767_236_400_500);
    assert!(o.fingerprints.iter().any(|f| f.kind == "ja3"));
    let s = &o.sessions["s-1"];
    assert_eq!(s.phase, Some(Phase::Discovery));
    assert_eq!(s.kd_digraph_simhash, Some(0xa1b2c3d4e5f60718));
    assert!(s.extras.c2_endpoints.contains("c2.example.net"));
    assert_eq!(p.ts, Some(1_767_236_400_000));
}

#[test]
fn other_topics() {
    let p = parse(
        "attacker.fingerprinted",
        r#"{"uuid":"a","kind":"hassh","value":"ec73"}"#,
    )
    .unwrap();
    assert_eq!(p.observation.fingerprints.len(), 1);
    let p = parse(
        "attacker.session.ended",
        r#"{"uuid":"a","session":{"session_id":"s","phase":"persistence"}}"#,
    )
    .unwrap();
    assert_eq!(p.observation.sessions["s"].phase, Some(Phase::Persistence));
    let p = parse("attacker.scored", r#"{"uuid":"a","score":99,"junk":[1,2]}"#).unwrap();
    assert_eq!(p.observation, Observation::new("a"));
    let e = parse("attacker.unknown", "{}").unwrap_err();
    assert!(e.is_unknown_topic());
}

#[test]
fn errors_name_the_field() {
    assert_eq!(err("attacker.observed", "{}"), "uuid: is missing");
    assert!(err("attacker.observed", "not json").starts_with("payload is not valid JSON"));
    assert_eq!(
        err("attacker.observed", "[1]"),
        "payload: must be a JSON object"
    );
    assert!(err("attacker.observed", r#"{"uuid":"a b"}"#).contains("only [A-Za-z0-9._:-]"));
    assert!(err("attacker.observed", r#"{"uuid":"a","ip":"999.1.1.1"}"#).starts_with("ip:"));
    assert!(err("attacker.observed", r#"{"uuid":"a","asn":-1}"#).starts_with("asn:"));
    assert!(err(
        "attacker.observed",
        r#"{"uuid":"a","last_seen":"yesterday"}"#
    )
    .starts_with("last_seen:"));
    assert_eq!(
        err(
            "attacker.observed",
            r#"{"uuid":"a","sessions":[{"session_id":"s","phase":"hacking"}]}"#
        ),
        "sessions[0].phase: unknown UKC phase `hacking`"
    );
    assert!(err(
        "attacker.observed",
        r#"{"uuid":"a","sessions":[{"session_id":"s","tactic":"TA9999"}]}"#
    )
    .starts_with("sessions[0].tactic: unknown ATT&CK tactic"));
    assert!(err(
        "attacker.observed",
        r#"{"uuid":"a","sessions":[{"session_id":"s","phase":"discovery","tactic":"TA0003"}]}"#
    )
    .contains("disagree"));
    assert_eq!(
        err(
            "attacker.observed",
            r#"{"uuid":"a","sessions":[{"session_id":"s","commands":["ok",5]}]}"#
        ),
        "sessions[0].commands[1]: must be a string, got a number"
    );
    assert!(err(
        "attacker.observed",
        r#"{"uuid":"a","sessions":[{"session_id":"s","credentials":[["root"]]}]}"#
    )
    .starts_with("sessions[0].credentials[0]:"));
    assert!(err(
        "attacker.observed",
        r#"{"uuid":"a","sessions":[{"session_id":"s","kd_digraph_simhash":"xyz"}]}"#
    )
    .contains("16 hex"));
    assert!(err(
        "attacker.observed",
        r#"{"uuid":"a","fingerprints":[{"kind":"ja3"}]}"#
    )
    .starts_with("fingerprints[0].value"));
    // Every kind of path step, as written out in the error.
    assert_eq!(
        err(
            "attacker.observed",
            r#"{"uuid":"a","sessions":[{"session_id":"s"},{"session_id":"t","credentials":[["u","p"],["root",7]]}]}"#
        ),
        "sessions[1].credentials[1][1]: must be a string, got a number"
    );
    assert_eq!(
        err(
            "attacker.session.ended",
            r#"{"uuid":"a","session":{"session_id":""}}"#
        ),
        "session.session_id: must not be empty"
    );
    assert_eq!(
        err("attacker.fingerprinted", r#"{"uuid":"a","value":"x"}"#),
        "kind: is missing"
    );
}

#[test]
fn limits_are_enforced() {
    let limits = Limits {
        max_entry_bytes: 200,
        max_list_len: 2,
        max_string_len: 8,
        max_uuid_len: 4,
    };
    let big = entry(
        "attacker.observed",
        &format!(r#"{{"uuid":"a","x":"{}"}}"#, "x".repeat(300)),
    );
    assert!(matches!(
        parse_entry(&big, &limits),
        Err(EntryError::TooLarge { .. })
    ));
    let p = |payload: &str| {
        parse_entry(&entry("attacker.observed", payload), &limits)
            .unwrap_err()
            .reason()
    };
    assert!(p(r#"{"uuid":"abcde"}"#).contains("over the limit of 4"));
    assert!(
        p(r#"{"uuid":"a","sessions":[{"session_id":"s","commands":["1","2","3"]}]}"#)
            .contains("3 items")
    );
    assert!(
        p(r#"{"uuid":"a","sessions":[{"session_id":"s","commands":["123456789"]}]}"#)
            .contains("9 bytes")
    );
}

#[test]
fn raw_bytes_and_missing_fields() {
    let e = parse_entry(&[(b"topic".to_vec(), vec![0xff, 0xfe])], &Limits::default()).unwrap_err();
    assert_eq!(e, EntryError::NotUtf8 { field: "topic" });
    let e = parse_entry(&[("topic", "attacker.observed")], &Limits::default()).unwrap_err();
    assert_eq!(e, EntryError::MissingField { field: "payload" });
    let e = parse_entry(
        &[
            ("topic", "attacker.observed"),
            ("ts", "soon"),
            ("payload", "{}"),
        ],
        &Limits::default(),
    );
    assert!(e.unwrap_err().reason().starts_with("ts:"));
}

const KEY_A: &str = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";
const KEY_B: &str = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";

#[test]
fn ssh_keys_of_a_session_parse_into_one_spelling() {
    let payload = format!(
        r#"{{"uuid":"a","sessions":[{{"session_id":"s","auth_key":"{KEY_A}=",
            "planted_keys":["{KEY_B}","{KEY_B}"]}}]}}"#
    );
    let p = parse("attacker.observed", &payload).unwrap();
    let s = p.observation.sessions.values().next().unwrap();
    assert_eq!(s.extras.auth_keys.iter().collect::<Vec<_>>(), [KEY_A]);
    assert_eq!(s.extras.planted_keys.iter().collect::<Vec<_>>(), [KEY_B]);
}

#[test]
fn malformed_ssh_keys_are_refused_with_their_path() {
    for bad in [
        r#""MD5:aa:bb""#,
        r#""SHA256:short""#,
        r#""SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2<""#,
        "7",
    ] {
        let payload =
            format!(r#"{{"uuid":"a","sessions":[{{"session_id":"s","auth_key":{bad}}}]}}"#);
        let reason = err("attacker.observed", &payload);
        assert!(reason.contains("auth_key"), "{bad}: {reason}");
    }
    let reason = err(
        "attacker.observed",
        r#"{"uuid":"a","sessions":[{"session_id":"s","planted_keys":["SHA256:x"]}]}"#,
    );
    assert!(reason.contains("planted_keys[0]"), "{reason}");
}

#[test]
fn phases_are_inferred_in_command_order_unless_the_sensor_gave_one() {
    use crate::evidence::PhaseSource;
    let rules = crate::phase_rules::PhaseRules::embedded().unwrap();
    let payload = r#"{"uuid":"a","sessions":[
        {"session_id":"s1","commands":["cat /proc/version","echo k >> ~/.ssh/authorized_keys"]},
        {"session_id":"s2","phase":"exploitation","commands":["uname -a"]},
        {"session_id":"s3","commands":["make coffee"]}]}"#;
    let fields = entry("attacker.observed", payload);
    let p = parse_entry_with(&fields, &Limits::default(), Some(&rules)).unwrap();
    let s = |id: &str| p.observation.sessions.get(id).unwrap().clone();
    assert_eq!(s("s1").first_phase(), Some(Phase::Discovery));
    assert_eq!(s("s1").last_phase(), Some(Phase::Persistence));
    assert_eq!(s("s1").phase_source(), Some(PhaseSource::Inferred));
    assert_eq!(s("s2").first_phase(), Some(Phase::Exploitation));
    assert_eq!(s("s2").phase_source(), Some(PhaseSource::Sensor));
    assert_eq!(s("s3").phase, None);
    // Without rules, nothing is inferred.
    let plain = parse_entry(&fields, &Limits::default()).unwrap();
    assert_eq!(plain.observation.sessions.get("s1").unwrap().phase, None);
}
