//! `clusterd list identities|campaigns|observations`: finds rows in the
//! repository by IP, ASN, fingerprint, decky, size and age, largest or
//! most recent first, as an aligned table (short uuids any verb takes
//! back) or as one JSON document (`--json`, full uuids).

use super::config::{settings, with_store};
use super::error::CliError;
use super::render::clean;
use super::resolve::Kind;
use super::text::{count, iso, parse_since, table, unique_prefixes, Align};
use crate::cli::out::{out, outln};
use decnet_clusterd::evidence::{Millis, Observation};
use decnet_clusterd::identity::catalogue::Catalogue;
use decnet_clusterd::store::Store;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The filters of `list` (all must hold).
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// An IP, or the start of one ending in `.` or `:`.
    pub ip: Option<String>,
    pub asn: Option<String>,
    /// A fingerprint value (ja3, hassh, SSH key, …) or its start.
    pub fingerprint: Option<String>,
    pub decky: Option<String>,
    pub min_size: Option<u64>,
    /// RFC 3339 or an age (`12h`).
    pub since: Option<String>,
}

/// The observation-level tests, parsed once.
struct Test {
    ip: Option<String>,
    asn: Option<u32>,
    fingerprint: Option<String>,
    decky: Option<String>,
    since: Option<Millis>,
}

impl Test {
    fn new(f: &Filters, now: Millis) -> Result<Test, String> {
        let asn = match &f.asn {
            None => None,
            Some(a) => Some(
                a.trim_start_matches("AS")
                    .trim_start_matches("as")
                    .parse::<u32>()
                    .map_err(|_| {
                        format!("--asn `{}`: give a number (64512 or AS64512)", clean(a, 20))
                    })?,
            ),
        };
        Ok(Test {
            ip: f.ip.clone(),
            asn,
            fingerprint: f.fingerprint.clone(),
            decky: f.decky.clone(),
            since: f
                .since
                .as_deref()
                .map(|s| parse_since(s, now))
                .transpose()?,
        })
    }

    fn matches(&self, o: &Observation) -> bool {
        let ip_ok = self.ip.as_deref().is_none_or(|want| {
            o.ip().is_some_and(|ip| {
                ip == want || ((want.ends_with('.') || want.ends_with(':')) && ip.starts_with(want))
            })
        });
        let fp_ok = self.fingerprint.as_deref().is_none_or(|want| {
            let hit = |v: &str| v.starts_with(want);
            o.fingerprints.iter().any(|f| hit(&f.value))
                || o.sessions.values().any(|s| {
                    s.extras.auth_keys.iter().any(|k| hit(k))
                        || s.extras.planted_keys.iter().any(|k| hit(k))
                })
        });
        let decky_ok = self.decky.as_deref().is_none_or(|want| {
            o.sessions
                .values()
                .any(|s| s.decky_id.as_deref() == Some(want))
        });
        let since_ok = self
            .since
            .is_none_or(|t| o.last_seen.or(o.first_seen).is_some_and(|l| l >= t));
        ip_ok && fp_ok && decky_ok && since_ok && self.asn.is_none_or(|a| o.asn() == Some(a))
    }
}

/// Effective identity → its observations, effective campaign → its identities.
type Groups<'a> = (
    BTreeMap<String, Vec<&'a Observation>>,
    BTreeMap<String, Vec<String>>,
);

/// Effective identities with their observations, effective campaigns with
/// their identities (merged-out rows are not listed).
fn groups(store: &Store) -> Groups<'_> {
    let mut identities: BTreeMap<String, Vec<&Observation>> = BTreeMap::new();
    for o in store.observations.values() {
        if let Some(i) = store.effective_identity(&o.uuid) {
            identities.entry(i).or_default().push(o);
        }
    }
    let mut campaigns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in identities.keys() {
        if let Some(c) = store.effective_campaign(i) {
            campaigns.entry(c).or_default().push(i.clone());
        }
    }
    (identities, campaigns)
}

fn shorts<K: std::borrow::Borrow<str>, V>(rows: &BTreeMap<K, V>) -> BTreeMap<&str, &str> {
    let keys: Vec<&str> = rows.keys().map(|k| k.borrow()).collect();
    keys.iter()
        .copied()
        .zip(unique_prefixes(&keys, 8))
        .collect()
}

/// Up to `n` values joined, with "+k" for the rest, each escaped.
fn some(values: &BTreeSet<String>, n: usize, width: usize) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let mut out: Vec<String> = values.iter().take(n).map(|v| clean(v, width)).collect();
    if values.len() > n {
        out.push(format!("+{}", values.len() - n));
    }
    out.join(" ")
}

fn asns<'a>(obs: impl Iterator<Item = &'a Observation>) -> BTreeSet<String> {
    obs.filter_map(|o| o.asn())
        .map(|a| format!("AS{a}"))
        .collect()
}

fn deckies<'a>(obs: impl Iterator<Item = &'a Observation>) -> BTreeSet<String> {
    obs.flat_map(|o| {
        o.sessions
            .values()
            .filter_map(|s| s.decky_id.clone().map(String::from))
    })
    .collect()
}

fn seen<'a>(
    obs: impl Iterator<Item = &'a Observation> + Clone,
) -> (Option<Millis>, Option<Millis>) {
    (
        obs.clone()
            .filter_map(|o| o.first_seen.or(o.last_seen))
            .min(),
        obs.filter_map(|o| o.last_seen.or(o.first_seen)).max(),
    )
}

/// One listing: the JSON rows and the table, before `--limit`.
struct Listing {
    noun: (&'static str, &'static str),
    headers: Vec<(&'static str, Align)>,
    rows: Vec<(Value, Vec<String>)>,
}

/// Tooling values as a person reads them: a catalogued library by its name
/// (`paramiko 5.1.0`), anything else by its value.
fn tooling_labels<'a>(
    cat: &Catalogue,
    values: impl Iterator<Item = (&'static str, &'a str)>,
) -> BTreeSet<String> {
    values
        .map(|(kind, v)| cat.library_label(kind, v).unwrap_or_else(|| v.to_string()))
        .collect()
}

fn listing(
    store: &Store,
    kind: Kind,
    f: &Filters,
    now: Millis,
    cat: &Catalogue,
) -> Result<Listing, String> {
    let test = Test::new(f, now)?;
    let (identities, campaigns) = groups(store);
    let (short_i, short_c) = (shorts(&store.identities), shorts(&store.campaigns));
    let sh = |m: &BTreeMap<&str, &str>, u: Option<&str>| {
        u.map_or("-".to_string(), |u| {
            clean(m.get(u).copied().unwrap_or(u), 64)
        })
    };
    let min = f.min_size.unwrap_or(0);
    let l = |s| (s, Align::Left);
    let r = |s| (s, Align::Right);
    match kind {
        Kind::Observation => {
            if f.min_size.is_some() {
                return Err(
                    "--min-size counts the members of identities and campaigns, not observations"
                        .into(),
                );
            }
            let short_o = shorts(&store.observations);
            let mut hits: Vec<&Observation> = store
                .observations
                .values()
                .map(|o| &**o)
                .filter(|o| test.matches(o))
                .collect();
            hits.sort_by_key(|o| {
                (
                    std::cmp::Reverse(o.last_seen.or(o.first_seen)),
                    o.uuid.clone(),
                )
            });
            let rows = hits.into_iter().map(|o| {
                let identity = store.effective_identity(&o.uuid);
                let campaign = identity.as_deref().and_then(|i| store.effective_campaign(i));
                let d = deckies(std::iter::once(o));
                let v = json!({"uuid": o.uuid, "ip": o.ip(), "asn": o.asn(), "sessions": o.sessions.len(),
                    "deckies": d, "first_seen": o.first_seen.map(|t| iso(Some(t))),
                    "last_seen": o.last_seen.map(|t| iso(Some(t))),
                    "identity": identity, "campaign": campaign});
                let cells = vec![sh(&short_o, Some(&o.uuid)), clean(o.ip().unwrap_or("-"), 40),
                    o.asn().map_or("-".into(), |a| format!("AS{a}")), o.sessions.len().to_string(),
                    some(&d, 2, 20), iso(o.last_seen.or(o.first_seen)),
                    sh(&short_i, identity.as_deref()), sh(&short_c, campaign.as_deref())];
                (v, cells)
            }).collect();
            Ok(Listing {
                noun: ("observation", "observations"),
                rows,
                headers: vec![
                    l("observation"),
                    l("ip"),
                    l("asn"),
                    r("sessions"),
                    l("deckies"),
                    l("last seen"),
                    l("identity"),
                    l("campaign"),
                ],
            })
        }
        Kind::Identity => {
            let mut hits: Vec<(&String, &Vec<&Observation>)> = identities
                .iter()
                .filter(|(_, m)| m.len() as u64 >= min && m.iter().any(|o| test.matches(o)))
                .collect();
            hits.sort_by_key(|(i, m)| {
                (
                    std::cmp::Reverse((m.len(), seen(m.iter().copied()).1)),
                    i.to_string(),
                )
            });
            let rows = hits.into_iter().map(|(i, m)| {
                let row = store.identities.get(i);
                let ips: BTreeSet<String> = m.iter().filter_map(|o| o.ip().map(str::to_string)).collect();
                let a = asns(m.iter().copied());
                let tooling: BTreeSet<String> = row.map(|r| r.ja3_hashes.iter().chain(r.hassh_hashes.iter()).map(|v| v.to_string()).collect()).unwrap_or_default();
                let labels = row.map(|r| tooling_labels(cat, r.ja3_hashes.iter().map(|v| ("ja3", v.as_str())).chain(r.hassh_hashes.iter().map(|v| ("hassh", v.as_str()))))).unwrap_or_default();
                let campaign = store.effective_campaign(i);
                let (first, last) = seen(m.iter().copied());
                let conf = row.map_or(0.0, |r| r.confidence);
                let v = json!({"uuid": i, "observations": m.len(), "ips": ips, "asns": a, "tooling": tooling, "tooling_labels": labels,
                    "campaign": campaign, "confidence": (conf * 100.0).round() / 100.0,
                    "first_seen": first.map(|t| iso(Some(t))), "last_seen": last.map(|t| iso(Some(t)))});
                let cells = vec![sh(&short_i, Some(i)), m.len().to_string(), some(&ips, 2, 40), some(&a, 3, 12),
                    some(&labels, 1, 16), sh(&short_c, campaign.as_deref()), format!("{conf:.2}"), iso(first), iso(last)];
                (v, cells)
            }).collect();
            Ok(Listing {
                noun: ("identity", "identities"),
                rows,
                headers: vec![
                    l("identity"),
                    r("observations"),
                    l("ips"),
                    l("asns"),
                    l("tooling"),
                    l("campaign"),
                    r("confidence"),
                    l("first seen"),
                    l("last seen"),
                ],
            })
        }
        Kind::Campaign => {
            let members = |c: &Vec<String>| -> Vec<&Observation> {
                c.iter()
                    .flat_map(|i| identities[i].iter().copied())
                    .collect()
            };
            let mut hits: Vec<(&String, &Vec<String>, Vec<&Observation>)> = campaigns
                .iter()
                .filter(|(_, ids)| ids.len() as u64 >= min)
                .map(|(c, ids)| (c, ids, members(ids)))
                .filter(|(_, _, m)| m.iter().any(|o| test.matches(o)))
                .collect();
            hits.sort_by_key(|(c, ids, m)| {
                (
                    std::cmp::Reverse((ids.len(), m.len(), seen(m.iter().copied()).1)),
                    c.to_string(),
                )
            });
            let rows = hits.into_iter().map(|(c, ids, m)| {
                let a = asns(m.iter().copied());
                let d = deckies(m.iter().copied());
                let (first, last) = seen(m.iter().copied());
                let conf = store.campaigns.get(c).map_or(0.0, |r| r.confidence);
                let v = json!({"uuid": c, "identities": ids, "observations": m.len(), "asns": a, "deckies": d,
                    "confidence": (conf * 100.0).round() / 100.0,
                    "first_seen": first.map(|t| iso(Some(t))), "last_seen": last.map(|t| iso(Some(t)))});
                let cells = vec![sh(&short_c, Some(c)), ids.len().to_string(), m.len().to_string(), some(&a, 3, 12),
                    some(&d, 3, 20), format!("{conf:.2}"), iso(first), iso(last)];
                (v, cells)
            }).collect();
            Ok(Listing {
                noun: ("campaign", "campaigns"),
                rows,
                headers: vec![
                    l("campaign"),
                    r("identities"),
                    r("observations"),
                    l("asns"),
                    l("deckies"),
                    r("confidence"),
                    l("first seen"),
                    l("last seen"),
                ],
            })
        }
    }
}

/// `clusterd list`.
pub fn list(
    kind: &str,
    filters: &Filters,
    limit: usize,
    json: bool,
    config: Option<&Path>,
) -> Result<i32, CliError> {
    let kind = Kind::parse(kind)?;
    let now = chrono::Utc::now().timestamp_millis();
    // Check the filters before reading anything.
    Test::new(filters, now).map_err(CliError::Usage)?;
    let cat = settings(config)?.identity.catalogue;
    with_store(config, |store| {
        let l = listing(store, kind, filters, now, &cat).map_err(CliError::Usage)?;
        let total = l.rows.len();
        let shown = if limit == 0 { total } else { total.min(limit) };
        let rows = &l.rows[..shown];
        if json {
            let doc = json!({"kind": l.noun.1, "total": total, "shown": shown,
                "rows": rows.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>()});
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            return Ok(0);
        }
        if total == 0 {
            outln!("no {} match", l.noun.1);
            return Ok(0);
        }
        let cells: Vec<Vec<String>> = rows.iter().map(|(_, c)| c.clone()).collect();
        out!("{}", table(&l.headers, &cells));
        if shown < total {
            outln!(
                "(showing {shown} of {}; --limit 0 shows all)",
                count(total as u64, l.noun.0, l.noun.1)
            );
        } else {
            outln!("({})", count(total as u64, l.noun.0, l.noun.1));
        }
        Ok(0)
    })
}
