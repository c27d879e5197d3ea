//! The command-line splitter (`split_command_line`): separators, redirections,
//! quotes, escapes and substitutions, comments, hostile lines, and a property
//! test against an independent reading of its grammar.

#[path = "phase_rules/table.rs"]
mod table;

use decnet_clusterd::phase_rules::split_command_line;
use proptest::prelude::*;
use table::shipped;

#[test]
fn splitter_separators() {
    assert_eq!(
        split_command_line("a; b && c || d | e & f\ng"),
        ["a", "b", "c", "d", "e", "f", "g"]
    );
    assert_eq!(split_command_line("  ;; ; &&  "), Vec::<String>::new());
    assert_eq!(split_command_line(""), Vec::<String>::new());
    assert_eq!(split_command_line("  uname -a  "), ["uname -a"]);
    assert_eq!(split_command_line("a |& b"), ["a", "b"]);
}

#[test]
fn splitter_keeps_redirections_whole() {
    assert_eq!(
        split_command_line("nohup ./x >/dev/null 2>&1 &"),
        ["nohup ./x >/dev/null 2>&1"]
    );
    assert_eq!(
        split_command_line("./x &>/dev/null; y <&3"),
        ["./x &>/dev/null", "y <&3"]
    );
    assert_eq!(split_command_line("echo a >| f"), ["echo a >| f"]);
}

#[test]
fn splitter_respects_quotes_escapes_and_substitutions() {
    assert_eq!(
        split_command_line(r#"echo "a;b" 'c|d' e\;f; g"#),
        [r#"echo "a;b" 'c|d' e\;f"#, "g"]
    );
    assert_eq!(
        split_command_line(r#"echo "say \"x; y\"" ; z"#),
        [r#"echo "say \"x; y\"""#, "z"]
    );
    assert_eq!(
        split_command_line("awk '{print $2;}' | xargs kill -9"),
        ["awk '{print $2;}'", "xargs kill -9"]
    );
    assert_eq!(
        split_command_line("echo $(id; uname -a | tr a b) `whoami; w`; ls"),
        ["echo $(id; uname -a | tr a b) `whoami; w`", "ls"]
    );
    assert_eq!(
        split_command_line(r#"x "$(echo "a;b")"; y"#),
        [r#"x "$(echo "a;b")""#, "y"]
    );
    // A backslash-newline continues the line.
    assert_eq!(
        split_command_line("wget \\\nhttp://h/x; y"),
        ["wget \\\nhttp://h/x", "y"]
    );
    // An unterminated quote runs to the end.
    assert_eq!(split_command_line("echo 'a; b"), ["echo 'a; b"]);
    // Non-ASCII text stays intact.
    assert_eq!(split_command_line("echo é;ü"), ["echo é", "ü"]);
}

#[test]
fn splitter_drops_comments() {
    assert_eq!(
        split_command_line("id # ; rm -rf /\nw; echo a#b"),
        ["id", "w", "echo a#b"]
    );
    assert_eq!(split_command_line("#!/bin/sh\nuname"), ["uname"]);
}

/// Counts the bytes this thread asks the allocator for, so the linearity
/// check below measures work done, not time (machine speed plays no part).
struct Counting;

thread_local! {
    static ALLOCATED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is a const-initialised thread-local `Cell` (no allocation, no drop).
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + layout.size()));
        // SAFETY: same layout contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + new));
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Bytes allocated on this thread while `f` runs.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATED.with(|a| a.get());
    let out = f();
    (ALLOCATED.with(|a| a.get()) - before, out)
}

#[test]
fn splitter_is_linear_on_hostile_lines() {
    // Separators, and nested substitutions with every quote kind, at two
    // sizes four times apart. The splitter's allocations (the spans and the
    // copied commands) must grow with the input, not with its square, and
    // stay within a small multiple of it; a splitter that copied the rest
    // of the line at each separator, or the context at each nesting level,
    // would allocate quadratically. The speed figure is in
    // `benches/command_split.rs`.
    let rules = shipped();
    let mut per_byte = Vec::new();
    for scale in [1usize, 4] {
        let line = "a;&|\n ".repeat(12_500 * scale) + &"x".repeat((1 << 18) * scale);
        let nested = "$(".repeat(75_000 * scale) + &"\"'`".repeat(25_000 * scale);
        let (bytes, parts) = allocated_by(|| split_command_line(&line));
        assert_eq!(parts.len(), 12_500 * scale + 1);
        let (nested_bytes, one) = allocated_by(|| split_command_line(&nested));
        assert_eq!(one.len(), 1);
        let (infer_bytes, _) = allocated_by(|| rules.infer(&[line.as_str(), nested.as_str()]));
        let input = line.len() + nested.len();
        let total = bytes + nested_bytes + infer_bytes;
        assert!(
            total <= 64 * input,
            "{total} bytes allocated for {input} bytes of input at scale {scale}"
        );
        per_byte.push(total as f64 / input as f64);
    }
    // Linear work: the same bytes per input byte at both sizes (within a
    // factor of 2 for the allocator's doubling); quadratic work would
    // quadruple it.
    assert!(
        per_byte[1] <= 2.0 * per_byte[0],
        "allocation per input byte grew from {:.2} to {:.2}",
        per_byte[0],
        per_byte[1]
    );
}

/// Whether `s` has a separator outside quotes, backquotes and `$( )`,
/// by the splitter's documented grammar, written again independently.
fn has_bare_separator(s: &str) -> bool {
    let b = s.as_bytes();
    let mut stack: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let top = stack.last().copied();
        if top == Some(b'\'') {
            if c == b'\'' {
                stack.pop();
            }
        } else if c == b'\\' {
            i += 1;
        } else if top == Some(b'`') {
            if c == b'`' {
                stack.pop();
            }
        } else if c == b'"' && top == Some(b'"') {
            stack.pop();
        } else if c == b'`' {
            stack.push(b'`');
        } else if c == b'$' && b.get(i + 1) == Some(&b'(') {
            stack.push(b'(');
            i += 1;
        } else if top == Some(b'"') {
        } else if c == b'"' || c == b'\'' {
            stack.push(c);
        } else if top == Some(b'(') {
            if c == b'(' {
                stack.push(b'(');
            } else if c == b')' {
                stack.pop();
            }
        } else if c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return true; // a comment never survives into a command
        } else {
            let prev = i.checked_sub(1).map(|j| b[j]);
            let next = b.get(i + 1).copied();
            let sep = match c {
                b';' | b'\n' => true,
                b'|' => prev != Some(b'>'),
                b'&' => !matches!(prev, Some(b'>' | b'<')) && next != Some(b'>'),
                _ => false,
            };
            if sep {
                return true;
            }
        }
        i += 1;
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn splitting_never_panics_and_leaves_no_bare_separator(
        line in proptest::collection::vec(
            prop_oneof![
                Just(";"), Just("&"), Just("&&"), Just("|"), Just("||"), Just("\n"),
                Just("'"), Just("\""), Just("\\"), Just("`"), Just("$("), Just(")"),
                Just("("), Just("#"), Just(" "), Just(">"), Just("<"), Just("2>&1"),
                Just("uname -a"), Just("wget http://h/x"), Just("é"), Just("\t"),
                Just("\u{b}"), Just("\u{a0}"),
            ],
            0..40,
        ).prop_map(|parts| parts.concat())
    ) {
        let parts = split_command_line(&line);
        for p in &parts {
            prop_assert!(!p.is_empty());
            prop_assert_eq!(p.trim_matches(|c: char| c.is_ascii_whitespace()), p.as_str());
            prop_assert!(!has_bare_separator(p), "{:?} from {:?}", p, line);
            prop_assert!(line.contains(p.as_str()));
        }
        let _ = shipped().infer(&[line.as_str()]);
    }

    #[test]
    fn splitting_arbitrary_text_never_panics(line in ".{0,200}") {
        for p in split_command_line(&line) {
            prop_assert!(!p.is_empty());
            prop_assert!(line.contains(p.as_str()));
            prop_assert!(!has_bare_separator(&p), "{:?} from {:?}", p, line);
        }
    }
}
