//! Stopping: SIGTERM in the middle of ingest commits and acks what was
//! read, leaves nothing pending, releases the lease and exits 0.
//! Each test that writes uses its own key prefix and deletes its keys at
//! the end.

mod common;

use clusterd::repository::Keys;
use common::*;
use decnet_clusterd::metrics::score;
use redis::Commands;

#[test]
fn sigterm_in_the_middle_of_ingest_commits_what_was_read_and_exits_0() {
    let prefix = Prefix::new("sigterm");
    let p = prefix.0.as_str();
    let daemon = start_with(p, &[("CLUSTERD_INGEST__BATCH", "20")]);
    let mut c = conn();
    let keys = Keys::new(p);
    eventually("the daemon to lead", 20, || {
        c.get::<_, Option<String>>(keys.leader())
            .ok()
            .flatten()
            .is_some()
    });
    let g = publish(p, "all_with_noise");
    eventually("ingest to start", 20, || {
        c.scard::<_, usize>(keys.attackers()).unwrap_or(0) > 0
    });
    assert_eq!(daemon.stop(), 0);
    // The batch in hand was committed and acked before the exit: nothing
    // the stopped daemon read is left pending in the consumer group.
    assert_eq!(pending(p), 0, "entries left pending after SIGTERM");
    // Everything acked was written: a second daemon finishes the rest.
    assert!(c.get::<_, Option<String>>(keys.leader()).unwrap().is_none());
    let again = start_with(p, &[]);
    eventually("settled after the restart", 60, || {
        settled(p, g.truth.identity.len())
    });
    let (ids, camps) = predictions(p);
    assert!(score(&g.truth.identity, &ids).perfect());
    assert!(score(&g.truth.campaign, &camps).perfect());
    assert_eq!(again.stop(), 0);
}
