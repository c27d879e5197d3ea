//! Parsing and validation of input stream entries (SPEC §4) into partial
//! observations. Every value here is attacker-controlled.
