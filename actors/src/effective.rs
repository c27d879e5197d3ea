//! The effective configuration as the leader publishes it to `{p}:config`
//! (SPEC §3): every section as the daemon resolved it (defaults, file,
//! environment), secrets removed, and how a reader (`explain`, the console)
//! adopts the judging sections of it — the identity and campaign weights
//! and the clusterer names — so it judges as the daemon does.

use crate::settings::Settings;
use serde_json::{json, Value};

/// Key names whose values are secrets wherever they appear.
const SECRET_WORDS: &[&str] = &["password", "passwd", "token", "secret", "pass"];

fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_WORDS
        .iter()
        .any(|w| k == *w || k.ends_with(&format!("_{w}")) || k.starts_with(&format!("{w}_")))
}

/// A Redis URL without its password (the user name is kept) and without
/// password query parameters.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority_end, _) = rest
        .char_indices()
        .find(|(_, c)| *c == '/' || *c == '?')
        .unwrap_or((rest.len(), ' '));
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) if !name.is_empty() => format!("{name}@{host}"),
            Some(_) => host.to_string(),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|kv| !is_secret(kv.split('=').next().unwrap_or("")))
                .collect();
            if kept.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn scrub(key: &str, v: &toml::Value) -> Option<Value> {
    if is_secret(key) {
        return None;
    }
    Some(match v {
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .filter_map(|(k, v)| scrub(k, v).map(|v| (k.clone(), v)))
                .collect(),
        ),
        toml::Value::String(s) if key == "url" => Value::String(redact_url(s)),
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    })
}

/// The document written to `{p}:config`: the instance that wrote it, when,
/// its version, and every section with secrets removed.
pub fn document(settings: &Settings, instance: &str) -> Value {
    json!({
        "instance_id": instance,
        "written_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "version": env!("CARGO_PKG_VERSION"),
        "settings": scrub("", &toml::Value::Table(settings.layered.clone())),
    })
}

/// Where a reader's judging configuration came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The leader's `{p}:config`: its instance and when it was written.
    Daemon {
        instance: String,
        written_at: String,
    },
    /// No daemon has written one: this reader's own configuration.
    Local,
    /// One was written but cannot be used (the reason): own configuration.
    Unreadable(String),
}

impl Source {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Source::Daemon {
                instance,
                written_at,
            } => format!("the daemon's configuration (instance {instance}, written {written_at})"),
            Source::Local => "this command's own configuration: no daemon has written its configuration to Redis yet".into(),
            Source::Unreadable(why) => format!("this command's own configuration: the daemon's could not be used ({why})"),
        }
    }
}

/// `settings` with the judging sections of the published document (if
/// any) put in, and where they came from.
pub fn adopt(mut settings: Settings, raw: Option<&str>) -> (Settings, Source) {
    let Some(raw) = raw else {
        return (settings, Source::Local);
    };
    let parsed = (|| -> Result<(Settings, Source), String> {
        let doc: Value = serde_json::from_str(raw).map_err(|e| format!("not JSON: {e}"))?;
        let section = |name: &str| {
            doc["settings"]
                .get(name)
                .cloned()
                .ok_or(format!("no `{name}` section"))
        };
        let identity =
            serde_json::from_value(section("identity")?).map_err(|e| format!("identity: {e}"))?;
        let campaign: decnet_clusterd::campaign::CampaignWeights =
            serde_json::from_value(section("campaign")?).map_err(|e| format!("campaign: {e}"))?;
        campaign.validate().map_err(|e| format!("campaign.{e}"))?;
        let clustering = section("clustering")?;
        let name = |k: &str| {
            clustering[k]
                .as_str()
                .map(str::to_string)
                .ok_or(format!("clustering.{k} missing"))
        };
        settings.identity = identity;
        settings
            .identity
            .validate()
            .map_err(|e| format!("identity.{e}"))?;
        settings.identity.catalogue = crate::settings::load_catalogue(&settings.identity)
            .map_err(|e| format!("{}: {}", e.key, e.problem))?;
        settings.campaign = campaign;
        settings.campaign.catalogue = settings.identity.catalogue.clone();
        settings.clustering.clusterer = name("clusterer")?;
        settings.clustering.campaign_clusterer = name("campaign_clusterer")?;
        let source = Source::Daemon {
            instance: doc["instance_id"].as_str().unwrap_or("?").to_string(),
            written_at: doc["written_at"].as_str().unwrap_or("?").to_string(),
        };
        Ok((settings.clone(), source))
    })();
    match parsed {
        Ok(x) => x,
        Err(why) => (settings, Source::Unreadable(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_urls() {
        assert_eq!(
            redact_url("redis://u:s3cret@h:6379/0"),
            "redis://u@h:6379/0"
        );
        assert_eq!(redact_url("rediss://:s3cret@h"), "rediss://h");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(
            redact_url("unix:///run/redis.sock?db=1&pass=s3cret"),
            "unix:///run/redis.sock?db=1"
        );
        assert_eq!(redact_url("redis://a:b@c@h/1"), "redis://a@h/1");
    }

    #[test]
    fn the_document_has_no_secrets_and_round_trips() {
        let env = vec![
            (
                "REDIS_URL".to_string(),
                "redis://me:hunter2@127.0.0.1:6379".to_string(),
            ),
            (
                "CLUSTERD_CAMPAIGN__THRESHOLD".to_string(),
                "1.7".to_string(),
            ),
        ];
        let s = Settings::load(None, env).unwrap();
        let mut doc = document(&s, "inst-1");
        let text = doc.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(doc["settings"]["redis"]["url"], "redis://me@127.0.0.1:6379");
        assert_eq!(doc["settings"]["campaign"]["threshold"], 1.7);
        doc["settings"]["http"] = json!({"token": "t0k", "listen": "127.0.0.1:1"});
        let scrubbed = scrub("", &toml::Value::try_from(&doc).unwrap()).unwrap();
        assert!(!scrubbed.to_string().contains("t0k"));
        let local = Settings::load(None, Vec::new()).unwrap();
        let (adopted, source) = adopt(local.clone(), Some(&document(&s, "inst-1").to_string()));
        assert_eq!(adopted.campaign.threshold, 1.7);
        assert!(matches!(source, Source::Daemon { ref instance, .. } if instance == "inst-1"));
        let (same, source) = adopt(local.clone(), None);
        assert_eq!(
            (same.campaign, source),
            (local.campaign.clone(), Source::Local)
        );
        let (same, source) = adopt(local.clone(), Some("{\"settings\":{}}"));
        assert_eq!(same.campaign, local.campaign);
        assert!(matches!(source, Source::Unreadable(_)), "{source:?}");
    }
}
