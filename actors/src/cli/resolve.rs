//! What the verbs accept where a row is meant: its uuid, a unique prefix
//! of one, or — where an observation is meant — the IP it was seen from
//! (observations carry their source IP; the Cowrie importer even derives
//! the uuid from it, but other sensors choose their own, so the IP is
//! looked up in the stored rows). An ambiguous prefix or an IP with several
//! observations is a usage error that lists the candidates; one that names
//! nothing is a usage error too.

use super::error::CliError;
use super::render::clean;
use decnet_clusterd::store::Store;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::ops::Bound;

/// The kind of row an argument names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Observation,
    Identity,
    Campaign,
}

impl Kind {
    /// `observation`, `identity` or `campaign`, as the verbs spell it.
    pub fn parse(s: &str) -> Result<Kind, CliError> {
        match s {
            "observation" | "observations" => Ok(Kind::Observation),
            "identity" | "identities" => Ok(Kind::Identity),
            "campaign" | "campaigns" => Ok(Kind::Campaign),
            other => Err(CliError::Usage(format!(
                "unknown kind `{}`: use observation, identity or campaign",
                clean(other, 32)
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Observation => "observation",
            Kind::Identity => "identity",
            Kind::Campaign => "campaign",
        }
    }
}

/// Candidates listed in an ambiguity error at most.
const LISTED: usize = 10;

fn plural(kind: Kind) -> &'static str {
    match kind {
        Kind::Observation => "observations",
        Kind::Identity => "identities",
        Kind::Campaign => "campaigns",
    }
}

fn candidates(kind: Kind, what: &str, found: &[String]) -> CliError {
    let mut list: Vec<String> = found.iter().take(LISTED).map(|c| clean(c, 64)).collect();
    if found.len() > LISTED {
        list.push(format!("… and {} more", found.len() - LISTED));
    }
    CliError::Usage(format!(
        "{what} names {}; name one of them by uuid:\n  {}",
        super::text::count(found.len() as u64, kind.name(), plural(kind)),
        list.join("\n  ")
    ))
}

fn by_prefix<K: Borrow<str> + Ord, V>(rows: &BTreeMap<K, V>, arg: &str) -> Vec<String> {
    rows.range::<str, _>((Bound::Included(arg), Bound::Unbounded))
        .map(|(k, _)| k.borrow())
        .take_while(|k| k.starts_with(arg))
        .map(str::to_string)
        .collect()
}

/// The uuid `arg` names among the rows of `kind` in `store`.
pub fn resolve(store: &Store, kind: Kind, arg: &str) -> Result<String, CliError> {
    if arg.is_empty() {
        return Err(CliError::Usage(format!(
            "an empty {} uuid names nothing",
            kind.name()
        )));
    }
    let found = match kind {
        Kind::Observation => {
            if store.observations.contains_key(arg) {
                return Ok(arg.to_string());
            }
            if arg.parse::<std::net::IpAddr>().is_ok() {
                let at_ip: Vec<String> = store
                    .observations
                    .values()
                    .filter(|o| o.ip() == Some(arg))
                    .map(|o| o.uuid.to_string())
                    .collect();
                return match at_ip.as_slice() {
                    [one] => Ok(one.clone()),
                    [] => Err(CliError::Usage(format!("no observation from IP {arg}"))),
                    _ => Err(candidates(kind, &format!("IP {arg}"), &at_ip)),
                };
            }
            by_prefix(&store.observations, arg)
        }
        Kind::Identity => {
            if store.identities.contains_key(arg) {
                return Ok(arg.to_string());
            }
            by_prefix(&store.identities, arg)
        }
        Kind::Campaign => {
            if store.campaigns.contains_key(arg) {
                return Ok(arg.to_string());
            }
            by_prefix(&store.campaigns, arg)
        }
    };
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(CliError::Usage(format!(
            "no {} `{}`{}",
            kind.name(),
            clean(arg, 64),
            if kind == Kind::Observation {
                " (by uuid, uuid prefix or IP)"
            } else {
                " (by uuid or uuid prefix)"
            }
        ))),
        _ => Err(candidates(
            kind,
            &format!("prefix `{}`", clean(arg, 64)),
            &found,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use decnet_clusterd::evidence::{Observation, Stamped};
    use decnet_clusterd::store::IdentityRow;

    fn store() -> Store {
        let mut s = Store::default();
        for (uuid, ip) in [
            ("aa11", "10.0.0.1"),
            ("aa12", "10.0.0.2"),
            ("b", "10.0.0.2"),
        ] {
            let mut o = Observation::new(uuid);
            o.ip = Some(Stamped {
                at: 0,
                value: ip.into(),
            });
            s.observations.insert(uuid.into(), Box::new(o));
        }
        s.identities.insert(
            "cafe".into(),
            IdentityRow {
                uuid: "cafe".into(),
                ..Default::default()
            },
        );
        s
    }

    #[test]
    fn uuids_prefixes_and_ips_resolve() {
        let s = store();
        assert_eq!(resolve(&s, Kind::Observation, "b").unwrap(), "b");
        assert_eq!(
            resolve(&s, Kind::Observation, "aa1")
                .unwrap_err()
                .exit_code(),
            2
        );
        assert_eq!(resolve(&s, Kind::Observation, "aa12").unwrap(), "aa12");
        assert_eq!(resolve(&s, Kind::Observation, "10.0.0.1").unwrap(), "aa11");
        let e = resolve(&s, Kind::Observation, "10.0.0.2").unwrap_err();
        assert!(
            e.to_string().contains("aa12") && e.to_string().contains("\n  b"),
            "{e}"
        );
        assert!(resolve(&s, Kind::Observation, "10.0.0.9").is_err());
        assert_eq!(resolve(&s, Kind::Identity, "ca").unwrap(), "cafe");
        let e = resolve(&s, Kind::Campaign, "ca").unwrap_err();
        assert!(e.to_string().contains("no campaign `ca`"), "{e}");
        assert!(resolve(&s, Kind::Identity, "").is_err());
    }
}
