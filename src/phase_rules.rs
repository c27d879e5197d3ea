//! Phase inference: the rule table of `config/phases.toml` (command pattern →
//! ATT&CK tactic → UKC phase), its validation and overlays, the shell-like
//! command-line splitter, and the pure matcher that gives a session without a
//! sensor-given phase its first and last phase (SPEC §4, §12). Sits beside the
//! evidence model: the importer splits command lines with
//! [`split_command_line`], the daemon calls [`PhaseRules::infer`] on a
//! session's commands.
//!
//! # Matching
//!
//! A rule's `pattern` is a regular expression (the `regex` crate's syntax:
//! linear time, no look-around, no back-references) matched, unanchored,
//! against **one** shell command: a command line is first split into the
//! commands a shell would run ([`split_command_line`]). When one command
//! matches several rules, the rule that comes **first in the table** wins, so
//! a table lists specific rules before general ones. A session's commands are
//! taken in the order typed; the first and the last command that match any
//! rule give the session's first and last phase.
//!
//! # Overlays
//!
//! An operator file has the same shape. With `replace = true` its rules are
//! the whole table. Otherwise each of its rules whose `id` is already in the
//! table replaces that rule in place (same precedence slot), and its other
//! rules are put *before* the existing ones, in the file's order, so an
//! operator can refine a general shipped rule without copying the table.

use crate::phase::Phase;
use regex::{Regex, RegexSet, RegexSetBuilder};
use serde::Deserialize;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

/// The shipped rule table, compiled into the binary.
pub const EMBEDDED_TOML: &str = include_str!("../config/phases.toml");

/// Longest accepted rule id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Compiled size limit for the whole table (bytes of automaton), so an
/// overlay cannot make start-up allocate without bound.
const SET_SIZE_LIMIT: usize = 64 << 20;

/// Why a rule table was refused. Every variant is fatal (a configuration
/// error to fix, never worth a retry) and names the rule when there is one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhaseRulesError {
    #[error("phase rules: not a valid rule file: {0}")]
    Toml(String),
    #[error("phase rules: a rule id must be 1-{MAX_ID_LEN} characters of a-z, 0-9, '.', '_' or '-', got {id:?}")]
    BadId { id: String },
    #[error("phase rules: rule {id:?} appears more than once")]
    DuplicateId { id: String },
    #[error("phase rules: rule {id:?}: unknown phase {phase:?} (expected a UKC name of SPEC §8, e.g. \"discovery\")")]
    UnknownPhase { id: String, phase: String },
    #[error("phase rules: rule {id:?}: unknown tactic {tactic:?} (expected an ATT&CK tactic id of SPEC §8, e.g. \"TA0007\")")]
    UnknownTactic { id: String, tactic: String },
    #[error("phase rules: rule {id:?}: tactic {tactic} maps to phase {maps_to}, not {phase}")]
    TacticPhaseMismatch {
        id: String,
        tactic: String,
        maps_to: Phase,
        phase: Phase,
    },
    #[error("phase rules: rule {id:?}: bad pattern: {message}")]
    BadPattern { id: String, message: String },
    #[error("phase rules: rule {id:?}: pattern matches the empty command, so it would match every command")]
    MatchesEmpty { id: String },
    #[error("phase rules: rule {id:?}: a comment saying what the rule catches is required")]
    MissingComment { id: String },
    #[error("phase rules: the table does not compile within the size limit: {0}")]
    TooLarge(String),
}

/// One validated rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable name, shown with an inferred phase and used by overlays.
    pub id: Arc<str>,
    /// The regular expression, as written.
    pub pattern: String,
    /// The ATT&CK tactic id; always the one [`Phase::tactic`] gives for `phase`.
    pub tactic: &'static str,
    pub phase: Phase,
    /// What the rule catches and why.
    pub comment: String,
}

/// One end of a session's inferred phase range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseMatch {
    pub phase: Phase,
    pub tactic: &'static str,
    /// The id of the rule that matched.
    pub rule: Arc<str>,
    /// Index, in the slice given to [`PhaseRules::infer`], of the entry the
    /// matching command came from.
    pub position: usize,
}

/// The phases inferred from a session's commands: the first and the last
/// matching command, by the order typed (the same match when only one did).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inferred {
    pub first: PhaseMatch,
    pub last: PhaseMatch,
}

/// A validated, compiled rule table.
#[derive(Clone, Debug)]
pub struct PhaseRules {
    rules: Vec<Rule>,
    set: RegexSet,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    replace: bool,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    pattern: String,
    tactic: String,
    phase: String,
    comment: String,
}

impl PhaseRules {
    /// The shipped table (`config/phases.toml`).
    pub fn embedded() -> Result<PhaseRules, PhaseRulesError> {
        PhaseRules::from_toml_str(EMBEDDED_TOML)
    }

    /// A table from TOML text (a `replace` key, if present, is ignored: a
    /// table on its own is always the whole table).
    pub fn from_toml_str(text: &str) -> Result<PhaseRules, PhaseRulesError> {
        let (_, rules) = parse(text)?;
        PhaseRules::compile(rules)
    }

    /// This table with an operator file laid over it (see the module docs:
    /// `replace = true` replaces, otherwise same-id rules override in place
    /// and new rules take precedence over the existing ones).
    pub fn overlay(&self, text: &str) -> Result<PhaseRules, PhaseRulesError> {
        let (replace, extra) = parse(text)?;
        if replace {
            return PhaseRules::compile(extra);
        }
        let mut rules = self.rules.clone();
        let mut added = Vec::new();
        for rule in extra {
            match rules.iter_mut().find(|r| r.id == rule.id) {
                Some(slot) => *slot = rule,
                None => added.push(rule),
            }
        }
        added.extend(rules);
        PhaseRules::compile(added)
    }

    fn compile(rules: Vec<Rule>) -> Result<PhaseRules, PhaseRulesError> {
        let set = RegexSetBuilder::new(rules.iter().map(|r| r.pattern.as_str()))
            .size_limit(SET_SIZE_LIMIT)
            .build()
            .map_err(|e| PhaseRulesError::TooLarge(e.to_string()))?;
        Ok(PhaseRules { rules, set })
    }

    /// The rules in precedence order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule one command (already split) matches, by precedence.
    pub fn classify(&self, command: &str) -> Option<&Rule> {
        // `matches` reports indices in increasing order: the first is the
        // rule listed first.
        self.set
            .matches(command)
            .iter()
            .next()
            .map(|i| &self.rules[i])
    }

    /// The first and last phase of an ordered list of commands. Each entry
    /// is split as a command line first, so both pre-split commands and
    /// whole typed lines work. `None` when no command matches a rule.
    pub fn infer<S: AsRef<str>>(&self, commands: &[S]) -> Option<Inferred> {
        let mut first: Option<(usize, &Rule)> = None;
        let mut last: Option<(usize, &Rule)> = None;
        for (position, entry) in commands.iter().enumerate() {
            let entry = entry.as_ref();
            for span in command_spans(entry) {
                if let Some(rule) = self.classify(&entry[span]) {
                    if first.is_none() {
                        first = Some((position, rule));
                    }
                    last = Some((position, rule));
                }
            }
        }
        let hit = |(position, rule): (usize, &Rule)| PhaseMatch {
            phase: rule.phase,
            tactic: rule.tactic,
            rule: rule.id.clone(),
            position,
        };
        Some(Inferred {
            first: hit(first?),
            last: hit(last?),
        })
    }
}

fn parse(text: &str) -> Result<(bool, Vec<Rule>), PhaseRulesError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| PhaseRulesError::Toml(e.to_string()))?;
    let mut seen = HashSet::new();
    let mut rules = Vec::with_capacity(raw.rule.len());
    for r in raw.rule {
        let id_ok = !r.id.is_empty()
            && r.id.len() <= MAX_ID_LEN
            && r.id.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if !id_ok {
            return Err(PhaseRulesError::BadId { id: r.id });
        }
        if !seen.insert(r.id.clone()) {
            return Err(PhaseRulesError::DuplicateId { id: r.id });
        }
        let Some(phase) = Phase::from_name(&r.phase) else {
            return Err(PhaseRulesError::UnknownPhase {
                id: r.id,
                phase: r.phase,
            });
        };
        let Some(maps_to) = Phase::from_tactic(&r.tactic) else {
            return Err(PhaseRulesError::UnknownTactic {
                id: r.id,
                tactic: r.tactic,
            });
        };
        if maps_to != phase {
            return Err(PhaseRulesError::TacticPhaseMismatch {
                id: r.id,
                tactic: r.tactic,
                maps_to,
                phase,
            });
        }
        // `from_tactic` found `phase` by this very tactic, so `tactic()` is
        // `Some`; the fallback only keeps the path panic-free.
        let Some(tactic) = phase.tactic() else {
            return Err(PhaseRulesError::UnknownTactic {
                id: r.id,
                tactic: r.tactic,
            });
        };
        let regex = Regex::new(&r.pattern).map_err(|e| PhaseRulesError::BadPattern {
            id: r.id.clone(),
            message: e.to_string(),
        })?;
        if regex.is_match("") {
            return Err(PhaseRulesError::MatchesEmpty { id: r.id });
        }
        if r.comment.trim().is_empty() {
            return Err(PhaseRulesError::MissingComment { id: r.id });
        }
        rules.push(Rule {
            id: r.id.into(),
            pattern: r.pattern,
            tactic,
            phase,
            comment: r.comment,
        });
    }
    Ok((raw.replace, rules))
}

/// The commands a shell would run for one typed line, as written (quotes
/// and escapes kept), trimmed of ASCII whitespace, empties dropped.
///
/// Separators are `;`, `&`, `|` and newlines, so `&&`, `||` and `|&` split
/// too; an `&` that belongs to a redirection (`2>&1`, `<&3`, `&>file`) and the
/// `|` of `>|` do not. Nothing splits inside single quotes, double quotes,
/// backquotes or `$( … )` (nested to any depth), after a backslash, or in a
/// `#` comment (a word that starts with `#` runs to the end of the line).
/// An unterminated quote runs to the end of the line. One pass, linear in
/// the length of the line.
pub fn split_command_line(line: &str) -> Vec<String> {
    command_spans(line)
        .map(|span| line[span].to_owned())
        .collect()
}

/// Where a nested context of the splitter ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Single,
    Double,
    Backquote,
    /// `$(` … `)`, and plain parentheses inside one.
    Subst,
}

/// Byte ranges of the commands of `line` (see [`split_command_line`]); every
/// boundary sits on an ASCII byte, so each range slices `line` cleanly.
fn command_spans(line: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let bytes = line.as_bytes();
    let mut stack: Vec<Ctx> = Vec::new();
    let mut i = 0;
    let mut start = 0;
    let mut spans = Vec::new();
    let push = |from: usize, to: usize, spans: &mut Vec<Range<usize>>| {
        // ASCII whitespace only, the same set that starts a `#` comment:
        // shells do not treat other Unicode spaces as blanks either.
        let text = &line[from..to];
        let blank = |c: char| c.is_ascii_whitespace();
        let trimmed = text.trim_matches(blank);
        if !trimmed.is_empty() {
            let lead = text.len() - text.trim_start_matches(blank).len();
            spans.push(from + lead..from + lead + trimmed.len());
        }
    };
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        match stack.last().copied() {
            Some(Ctx::Single) => {
                if b == b'\'' {
                    stack.pop();
                }
            }
            Some(Ctx::Double) => match b {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'`' => stack.push(Ctx::Backquote),
                b'$' if next == Some(b'(') => {
                    stack.push(Ctx::Subst);
                    i += 1;
                }
                _ => {}
            },
            Some(Ctx::Backquote) => match b {
                b'\\' => i += 1,
                b'`' => {
                    stack.pop();
                }
                _ => {}
            },
            Some(Ctx::Subst) => match b {
                b'\\' => i += 1,
                b'\'' => stack.push(Ctx::Single),
                b'"' => stack.push(Ctx::Double),
                b'`' => stack.push(Ctx::Backquote),
                b'(' => stack.push(Ctx::Subst),
                b'$' if next == Some(b'(') => {
                    stack.push(Ctx::Subst);
                    i += 1;
                }
                b')' => {
                    stack.pop();
                }
                _ => {}
            },
            None => match b {
                b'\\' => i += 1,
                b'\'' => stack.push(Ctx::Single),
                b'"' => stack.push(Ctx::Double),
                b'`' => stack.push(Ctx::Backquote),
                b'$' if next == Some(b'(') => {
                    stack.push(Ctx::Subst);
                    i += 1;
                }
                b'#' if i == start || bytes[i - 1].is_ascii_whitespace() => {
                    push(start, i, &mut spans);
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                    // `i` is at the newline (or the end): it starts the next command.
                    start = i;
                    continue;
                }
                b';' | b'\n' => {
                    push(start, i, &mut spans);
                    start = i + 1;
                }
                b'|' if i == 0 || bytes[i - 1] != b'>' => {
                    push(start, i, &mut spans);
                    start = i + 1;
                }
                b'&' if !is_redirection_ampersand(bytes, i) => {
                    push(start, i, &mut spans);
                    start = i + 1;
                }
                _ => {}
            },
        }
        i += 1;
    }
    if start < bytes.len() {
        push(start, bytes.len(), &mut spans);
    }
    spans.into_iter()
}

/// An `&` right after `>` or `<` (`2>&1`, `<&3`) or right before `>`
/// (`&>file`, `&>>file`) is part of a redirection, not a separator.
fn is_redirection_ampersand(bytes: &[u8], i: usize) -> bool {
    let before = i.checked_sub(1).map(|j| bytes[j]);
    let after = bytes.get(i + 1).copied();
    matches!(before, Some(b'>' | b'<')) || after == Some(b'>')
}
