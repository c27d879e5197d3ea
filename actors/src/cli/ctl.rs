//! `clusterd ctl`: sends one control command (SPEC §7) to the running
//! daemon, waits for its reply and prints it.

use super::config::settings;
use super::error::CliError;
use super::render::control_reply;
use crate::cli::out::{errln, out, outln};
use crate::repository::control::request;
use crate::repository::Keys;
use anyhow::Context;
use std::path::Path;

/// `clusterd ctl`: publish one command, wait for its reply, print it.
pub fn ctl(
    action: &str,
    observations: &[String],
    target: &str,
    by: &str,
    json: bool,
    timeout: u64,
    config: Option<&Path>,
) -> Result<i32, CliError> {
    let s = settings(config)?;
    let keys = Keys::new(&s.redis.key_prefix);
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut command = serde_json::json!({
        "action": action, "target": target, "request_id": request_id, "requested_by": by,
    });
    if !observations.is_empty() {
        command["observation_uuids"] = serde_json::json!(observations);
    }
    let system = actix_rt::System::new();
    let reply: Option<serde_json::Value> = system
        .block_on(async {
            let client = redis::Client::open(s.redis.url.as_str())?;
            let wait = std::time::Duration::from_secs(timeout);
            request(&client, &keys, &command, &request_id, wait).await
        })
        .with_context(|| format!("talking to Redis at the {} prefix", keys.prefix()))?;
    let Some(reply) = reply else {
        return Err(CliError::Runtime(anyhow::anyhow!(
            "no reply within {timeout} s: is `clusterd run` running with prefix `{}`?",
            keys.prefix()
        )));
    };
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&reply).unwrap_or_default()
        );
    } else if reply["ok"] == true {
        out!("{}", control_reply(action, &reply["result"]));
    } else {
        errln!(
            "clusterd: {action} refused: {}",
            reply["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(if reply["ok"] == true { 0 } else { 1 })
}
