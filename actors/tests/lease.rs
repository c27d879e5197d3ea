//! The leader lease and the fence: a stale leader's commit is refused
//! (also when the lease moves between the check and the transaction), a
//! commit of thousands of arguments lands whole, and a standby takes over
//! when the leader dies.
//! Each test that writes uses its own key prefix and deletes its keys at
//! the end.

mod common;

use clusterd::repository::{CommitError, Keys, Op, Prepared};
use common::*;
use decnet_clusterd::metrics::score;
use redis::Commands;

#[test]
fn a_stale_leaders_commit_is_refused() {
    let prefix = Prefix::new("fence");
    let keys = Keys::new(&prefix.0);
    block_on(async {
        let mut conn = async_conn().await;
        let old = lease(&keys, "old", 300);
        let new = lease(&keys, "new", 5_000);
        assert!(old.acquire(&mut conn).await.unwrap());
        assert!(
            !new.acquire(&mut conn).await.unwrap(),
            "a held lease cannot be taken"
        );
        let op = |v: &str| add_member(&keys, v);
        assert_eq!(old.commit(&mut conn, &op("by-old")).await.unwrap(), 1);
        tokio::time::sleep(std::time::Duration::from_millis(400)).await; // old leader pauses
        assert!(
            new.acquire(&mut conn).await.unwrap(),
            "the lease expired: a standby takes over"
        );
        assert!(matches!(
            old.commit(&mut conn, &op("late")).await,
            Err(CommitError::Fenced)
        ));
        assert!(!old.renew(&mut conn).await.unwrap());
        new.commit(&mut conn, &op("by-new")).await.unwrap();
        assert_eq!(index_members(&mut conn, &keys).await, ["by-new", "by-old"]);
    });
}

#[test]
fn the_fence_refuses_a_takeover_between_the_lease_check_and_the_transaction_not_a_renewal() {
    let prefix = Prefix::new("fence-race");
    let keys = Keys::new(&prefix.0);
    block_on(async {
        let mut conn = async_conn().await;
        let mut other = async_conn().await;
        let old = lease(&keys, "old", 300);
        let new = lease(&keys, "new", 5_000);
        assert!(old.acquire(&mut conn).await.unwrap());
        // The holder renews its lease while one of its commits is in flight.
        let n = old
            .commit_checked(
                &mut conn,
                &Prepared::new(&add_member(&keys, "kept"), &[]),
                || async {
                    assert!(old.renew(&mut other).await.unwrap());
                },
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
        // The old leader checked the lease, then paused before its
        // transaction reached Redis; a standby took over meanwhile.
        let late = add_member(&keys, "late");
        let r = old
            .commit_checked(&mut conn, &Prepared::new(&late, &[]), || async {
                tokio::time::sleep(std::time::Duration::from_millis(400)).await;
                assert!(new.acquire(&mut other).await.unwrap());
            })
            .await;
        assert!(matches!(r, Err(CommitError::Fenced)), "{r:?}");
        assert_eq!(
            index_members(&mut conn, &keys).await,
            ["kept"],
            "nothing of the refused commit landed"
        );
        // The connection is usable afterwards, and the new leader commits.
        new.commit(&mut conn, &late).await.unwrap();
        assert_eq!(index_members(&mut conn, &keys).await, ["kept", "late"]);
    });
}

#[test]
fn a_commit_with_thousands_of_arguments_per_operation_lands_whole() {
    // A pass over a large backlog adds tens of thousands of members to an
    // index set in one commit (an earlier commit script failed on these:
    // Redis's Lua unpacks only about 8,000 values at once).
    let prefix = Prefix::new("bigcommit");
    let keys = Keys::new(&prefix.0);
    block_on(async {
        let mut conn = async_conn().await;
        let lease = lease(&keys, "big", 5_000);
        assert!(lease.acquire(&mut conn).await.unwrap());
        let mut sadd = vec![keys.attackers()];
        sadd.extend((0..20_000).map(|i| format!("m{i}")));
        let mut hset = vec![keys.attacker("wide")];
        hset.extend((0..3_000).flat_map(|i| [format!("f{i}"), i.to_string()]));
        let ops = vec![
            Op {
                cmd: "SADD",
                args: sadd,
            },
            Op {
                cmd: "HSET",
                args: hset,
            },
        ];
        lease.commit(&mut conn, &ops).await.unwrap();
        let members: usize = redis::cmd("SCARD")
            .arg(keys.attackers())
            .query_async(&mut conn)
            .await
            .unwrap();
        let fields: usize = redis::cmd("HLEN")
            .arg(keys.attacker("wide"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!((members, fields), (20_000, 3_000));
    });
}

#[test]
fn a_standby_takes_over_when_the_leader_dies() {
    let prefix = Prefix::new("failover");
    let p = prefix.0.as_str();
    let mut c = conn();
    let keys = Keys::new(p);
    let mut first = Daemon::start(p);
    eventually("a leader", 20, || {
        c.get::<_, Option<String>>(keys.leader())
            .ok()
            .flatten()
            .is_some()
    });
    let leader: String = c.get(keys.leader()).unwrap();
    let (second, log) = start_logged(p);
    // The second instance has found the lease held and stands by.
    wait_for_line(&log, "waiting as standby", 20);
    assert_eq!(
        c.get::<_, String>(keys.leader()).unwrap(),
        leader,
        "one leader at a time"
    );
    let health: String = c.get(keys.health("clusterd")).unwrap();
    assert!(health.contains(&leader), "the leader writes the heartbeat");
    kill9(&mut first);
    // The lease period is 2 s in these tests: the standby must lead within it (plus polling slack).
    eventually("the standby to take over", 6, || {
        c.get::<_, Option<String>>(keys.leader())
            .ok()
            .flatten()
            .is_some_and(|l| l != leader)
    });
    let g = publish(p, "tool_upgrade");
    eventually("the new leader to cluster", 30, || {
        settled(p, g.truth.identity.len())
    });
    assert!(score(&g.truth.identity, &predictions(p).0).perfect());
    assert_eq!(second.stop(), 0);
}
