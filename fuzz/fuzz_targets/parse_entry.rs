//! Fuzz target: the input parser (`parse_entry`, SPEC §4) on arbitrary
//! stream entries. The first bytes choose how the rest is cut into
//! field/value pairs; a parse may refuse an entry but never panic, and an
//! accepted entry parses the same way twice.

#![no_main]

use decnet_clusterd::evidence::event::{parse_entry, Limits};
use libfuzzer_sys::fuzz_target;

/// The field names a real entry has, so the fuzzer reaches the payload.
const NAMES: &[&[u8]] = &[b"topic", b"payload", b"event_id", b"ts", b"x"];

fuzz_target!(|data: &[u8]| {
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut rest = data;
    while let Some((&head, tail)) = rest.split_first() {
        let name = NAMES[usize::from(head) % NAMES.len()];
        let len = usize::from(head >> 3).min(tail.len());
        let cut = if head & 4 == 0 { tail.len() } else { len };
        fields.push((name.to_vec(), tail[..cut].to_vec()));
        rest = &tail[cut..];
    }
    let limits = Limits::default();
    let first = parse_entry(&fields, &limits);
    let again = parse_entry(&fields, &limits);
    assert_eq!(format!("{first:?}"), format!("{again:?}"));
});
