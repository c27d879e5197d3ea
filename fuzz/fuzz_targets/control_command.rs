//! Fuzz target: control command parsing (SPEC §7) on arbitrary bytes. The
//! parser is the daemon's own file, compiled in here alone (it depends on
//! serde_json only), so the fuzz build needs none of the daemon's I/O
//! stack. A command may be refused but never panics; one that parses names
//! a known target and ids within their bounds.

#![no_main]

#[path = "../../actors/src/daemon/control/command.rs"]
#[allow(dead_code)]
mod command;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match command::parse(data) {
        Ok(c) => {
            assert!(command::TARGETS.contains(&c.target.as_str()));
            assert!(c.requested_by.chars().count() <= command::MAX_ID_CHARS);
            if let Some(id) = &c.request_id {
                assert!(id.chars().count() <= command::MAX_ID_CHARS);
                let reply = command::reply(id, Err("x".into()));
                assert_eq!(reply["request_id"], id.as_str());
            }
        }
        Err(r) => {
            assert!(!r.error.is_empty());
        }
    }
});
