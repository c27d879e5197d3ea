//! The Redis repository: the only code of the daemon package that spells
//! Redis keys, commands and encodings. The daemon (`crate::daemon`) and the
//! command line (`crate::cli`) hand it rows and ask it for rows; neither
//! builds a command of its own.
//!
//! ```text
//! keys.rs     every key name of SPEC §3, from the prefix
//! codec.rs    how values are spelled: timestamps, JSON fields, evidence,
//!             the decision field `{lo}|{hi}` (encode and decode)
//! write.rs    rows → write operations (`Op`)
//! lease.rs    the leader lease and the fenced MULTI/EXEC commit
//! load.rs     loading the whole store at start; the quarantine stream
//! rows.rs     one stored hash → a row, or why it cannot be read
//! stream.rs   the input stream: the consumer group, XREADGROUP, XAUTOCLAIM,
//!             XPENDING, the ack and the dead letter; publishing into it
//! trim.rs     trimming the input stream of what every consumer group acked
//! health.rs   heartbeat keys and the queue figures of `status`
//! control.rs  the control channel: the re-subscribing listener, replies
//! events.rs   the lifecycle events of the output streams, read back
//! import.rs   the importers: publish-once into the input stream, positions
//! config.rs   `{p}:config`, the leader's effective configuration
//! ```

pub mod codec;
pub mod config;
pub mod control;
pub mod events;
pub mod feed;
pub mod health;
pub mod import;
pub mod keys;
pub mod lease;
pub mod load;
pub mod rows;
pub mod stream;
pub mod trim;
pub mod write;

pub use keys::{Keys, CONSUMER_GROUP};
pub use lease::{CommitError, Lease, Prepared};
pub use load::{load, load_checked, load_decisions, report_quarantined, LoadError, Quarantined};
pub use write::{event_op, evidence, index_op, journal_ops, observation_op, Op};
