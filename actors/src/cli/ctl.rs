//! `clusterd ctl`: checks one control command (SPEC §7) as far as it can
//! before sending it — the action, its argument count, the target, the
//! observations (uuid, unique prefix or IP, resolved in the repository) —
//! sends it to the running daemon, waits for its reply and prints it.
//! The console's `POST /api/control` (SPEC §13) builds its commands with the
//! same checks ([`validate`], [`resolve_pair`], [`command`]).

use super::config::settings;
use super::error::CliError;
use super::render::clean;
use super::render_ctl::{control_reply, Counts};
use super::resolve::{resolve, Kind};
use crate::cli::out::{errln, out, outln};
use crate::daemon::control::command::TARGETS;
use crate::repository::control::{request, Answer};
use crate::repository::health::row_counts;
use crate::repository::Keys;
use decnet_clusterd::store::Store;
use serde_json::Value;
use std::path::Path;

/// The actions and how many observations each takes.
const ACTIONS: &[(&str, usize)] = &[
    ("status", 0),
    ("pause", 0),
    ("resume", 0),
    ("tick", 0),
    ("recluster", 0),
    ("restart", 0),
    ("stop", 0),
    ("link", 2),
    ("separate", 2),
    ("forget", 2),
];

/// Whether `s` may be sent as an observation argument: what the daemon
/// accepts as a uuid (SPEC §7), which covers prefixes and IPs too.
fn well_formed(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c))
}

/// The checks that need no Redis: action, argument count, target, form.
pub fn validate(action: &str, observations: &[String], target: &str) -> Result<(), CliError> {
    let known: Vec<&str> = ACTIONS.iter().map(|(a, _)| *a).collect();
    let Some((_, wants)) = ACTIONS.iter().find(|(a, _)| *a == action) else {
        return Err(CliError::Usage(format!(
            "unknown action `{}`; known: {}",
            clean(action, 40),
            known.join(", ")
        )));
    };
    if observations.len() != *wants {
        return Err(CliError::Usage(if *wants == 0 {
            format!("`{action}` takes no arguments, got {}", observations.len())
        } else {
            format!(
                "`{action}` takes {wants} observations (uuid, uuid prefix or IP), got {}",
                observations.len()
            )
        }));
    }
    if !TARGETS.contains(&target) {
        return Err(CliError::Usage(format!(
            "unknown target `{}`; known: {}",
            clean(target, 40),
            TARGETS.join(", ")
        )));
    }
    if let Some(bad) = observations.iter().find(|o| !well_formed(o)) {
        return Err(CliError::Usage(format!(
            "malformed observation `{}`: a uuid holds letters, digits and . _ : - (at most 128)",
            clean(bad, 64)
        )));
    }
    Ok(())
}

/// The two observations of a decision, each resolved in `store` (uuid,
/// unique prefix or IP); naming the same observation twice is an error.
pub fn resolve_pair(store: &Store, observations: &[String]) -> Result<Vec<String>, CliError> {
    let mut uuids = Vec::new();
    for o in observations {
        uuids.push(resolve(store, Kind::Observation, o)?);
    }
    if uuids.len() == 2 && uuids[0] == uuids[1] {
        return Err(CliError::Usage(format!(
            "both arguments name observation {}",
            clean(&uuids[0], 64)
        )));
    }
    Ok(uuids)
}

/// The §7 command as published: `observation_uuids` only when given.
pub fn command(action: &str, target: &str, request_id: &str, by: &str, uuids: &[String]) -> Value {
    let mut command = serde_json::json!({
        "action": action, "target": target, "request_id": request_id, "requested_by": by,
    });
    if !uuids.is_empty() {
        command["observation_uuids"] = serde_json::json!(uuids);
    }
    command
}

/// Why a command got no answer because nobody subscribes to the channel.
pub fn no_listener(keys: &Keys) -> String {
    format!(
        "no daemon is listening on prefix `{}` (is `clusterd run` running with that prefix?)",
        keys.prefix()
    )
}

/// `clusterd ctl`: check, publish one command, wait for its reply, print it.
pub fn ctl(
    action: &str,
    observations: &[String],
    target: &str,
    by: &str,
    json: bool,
    timeout: u64,
    config: Option<&Path>,
) -> Result<i32, CliError> {
    validate(action, observations, target)?;
    let s = settings(config)?;
    let keys = Keys::new(&s.redis.key_prefix);
    let request_id = uuid::Uuid::new_v4().to_string();
    let system = actix_rt::System::new();
    let outcome = system.block_on(async {
        let client = redis::Client::open(s.redis.url.as_str()).map_err(anyhow::Error::from)?;
        let mut uuids = Vec::new();
        if !observations.is_empty() {
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(anyhow::Error::from)?;
            let store = crate::repository::load(&mut conn, &keys, |_, _| {})
                .await
                .map_err(anyhow::Error::from)?;
            uuids = resolve_pair(&store, observations)?;
        }
        let command = command(action, target, &request_id, by, &uuids);
        let wait = std::time::Duration::from_secs(timeout);
        let answer = request(&client, &keys, &command, &request_id, wait)
            .await
            .map_err(anyhow::Error::from)?;
        let counts = match (&answer, action) {
            (Answer::Reply(_), "status") => {
                let mut conn = client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(anyhow::Error::from)?;
                row_counts(&mut conn, &keys).await.ok().map(Counts::from)
            }
            _ => None,
        };
        Ok::<_, CliError>((answer, counts))
    });
    let (answer, counts) = outcome.map_err(|e| match e {
        CliError::Runtime(e) => CliError::Runtime(
            e.context(format!("talking to Redis at the {} prefix", keys.prefix())),
        ),
        usage => usage,
    })?;
    let reply = match answer {
        Answer::Reply(v) => v,
        Answer::NoListener => return Err(CliError::Runtime(anyhow::anyhow!(no_listener(&keys)))),
        Answer::NoReply => {
            return Err(CliError::Runtime(anyhow::anyhow!(
                "no reply within {timeout} s from the daemon on prefix `{}`",
                keys.prefix()
            )))
        }
    };
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&reply).unwrap_or_default()
        );
    } else if reply["ok"] == true {
        out!("{}", control_reply(action, &reply["result"], counts));
    } else {
        errln!(
            "clusterd: {action} refused: {}",
            clean(reply["error"].as_str().unwrap_or("no reason given"), 300)
        );
    }
    Ok(if reply["ok"] == true { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_checked_before_sending() {
        let two = vec!["a".to_string(), "b".to_string()];
        assert!(validate("status", &[], "all").is_ok());
        assert!(validate("link", &two, "all").is_ok());
        assert!(validate("explode", &[], "all").is_err());
        assert!(validate("link", &two[..1], "all").is_err());
        assert!(validate("tick", &two, "all").is_err());
        assert!(validate("pause", &[], "everyone").is_err());
        assert!(validate("restart", &[], "publisher").is_ok());
        let bad = vec!["a b".to_string(), "c".to_string()];
        assert!(validate("separate", &bad, "all")
            .unwrap_err()
            .to_string()
            .contains("malformed"));
    }
}
