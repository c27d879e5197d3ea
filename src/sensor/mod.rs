//! Sensors: readers of real honeypots' own logs that turn them into input
//! events (SPEC §4, §12). Pure: callers read the files and pass bytes in.

pub mod cowrie;
