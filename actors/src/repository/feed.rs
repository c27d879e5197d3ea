//! The repository's state version for the HTTP server: a cheap fingerprint
//! of the streams and index sets that tells the console's cache when to
//! rebuild (the live feed itself reads through `events.rs`).

use super::keys::Keys;

/// A cheap fingerprint of the repository's state: the newest entry id of
/// the input and both output streams, and the sizes of the index sets.
/// When it is unchanged, a snapshot built earlier still describes the data.
pub async fn state_version<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
) -> Result<String, redis::RedisError> {
    let newest = |stream: String| {
        let mut c = redis::cmd("XREVRANGE");
        c.arg(stream).arg("+").arg("-").arg("COUNT").arg(1);
        c
    };
    let (input, identity, campaign, obs, ids, camps): (
        redis::streams::StreamRangeReply,
        redis::streams::StreamRangeReply,
        redis::streams::StreamRangeReply,
        u64,
        u64,
        u64,
    ) = redis::pipe()
        .add_command(newest(keys.input()))
        .add_command(newest(keys.identity_stream()))
        .add_command(newest(keys.campaign_stream()))
        .scard(keys.attackers())
        .scard(keys.identities())
        .scard(keys.campaigns())
        .query_async(conn)
        .await?;
    let id = |r: &redis::streams::StreamRangeReply| {
        r.ids.first().map(|e| e.id.clone()).unwrap_or_default()
    };
    Ok(format!(
        "{}|{}|{}|{obs}|{ids}|{camps}",
        id(&input),
        id(&identity),
        id(&campaign)
    ))
}
