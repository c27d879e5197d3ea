//! The control channel's Redis side (SPEC §7): the daemon's subscription
//! to `{p}:control`, which re-subscribes after a lost connection with a
//! capped exponential backoff; publishing a reply on `{p}:control:reply`;
//! and the `clusterd ctl` side, which subscribes to the replies, publishes
//! one command and waits for the reply that names its request.

use super::keys::Keys;
use futures_util::StreamExt;
use redis::aio::ConnectionLike;
use redis::RedisError;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::warn;

/// Longest wait between re-subscription attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Subscribes to `channel` and forwards every message's payload until the
/// receiver is dropped; re-subscribes after connection loss.
pub async fn listen(client: redis::Client, channel: String, tx: mpsc::Sender<Vec<u8>>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if let Err(e) = pubsub.subscribe(&channel).await {
                    warn!(error = %e, "control: subscribe failed");
                } else {
                    backoff = Duration::from_millis(100);
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        if tx.send(msg.get_payload_bytes().to_vec()).await.is_err() {
                            return;
                        }
                    }
                    warn!("control: subscription lost; re-subscribing");
                }
            }
            Err(e) => warn!(error = %e, "control: cannot connect"),
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Publishes one reply on `{p}:control:reply`.
pub async fn publish_reply<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    body: String,
) -> Result<(), RedisError> {
    let _: i64 = redis::cmd("PUBLISH")
        .arg(keys.control_reply())
        .arg(body)
        .query_async(conn)
        .await?;
    Ok(())
}

/// What became of a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// The reply that names the request.
    Reply(Value),
    /// Nobody is subscribed to the control channel: no daemon heard it.
    NoListener,
    /// Someone heard it, but no reply came within the timeout.
    NoReply,
}

/// Sends `command` (whose `request_id` is `request_id`) and waits up to
/// `timeout` for its reply.
pub async fn request(
    client: &redis::Client,
    keys: &Keys,
    command: &Value,
    request_id: &str,
    timeout: Duration,
) -> Result<Answer, RedisError> {
    let mut pubsub = client.get_async_pubsub().await?;
    // Subscribe before publishing so the reply cannot be missed.
    pubsub.subscribe(keys.control_reply()).await?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg(keys.control())
        .arg(command.to_string())
        .query_async(&mut conn)
        .await?;
    if receivers == 0 {
        return Ok(Answer::NoListener);
    }
    let mut messages = pubsub.on_message();
    let wait = async {
        while let Some(m) = messages.next().await {
            if let Ok(v) = serde_json::from_slice::<Value>(m.get_payload_bytes()) {
                if v["request_id"] == request_id {
                    return Some(v);
                }
            }
        }
        None
    };
    Ok(match tokio::time::timeout(timeout, wait).await {
        Ok(Some(v)) => Answer::Reply(v),
        _ => Answer::NoReply,
    })
}
