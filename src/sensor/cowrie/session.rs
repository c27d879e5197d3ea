//! One Cowrie session's evidence while its records arrive, and the SPEC §4
//! `attacker.observed` events it becomes when it ends: one observation per
//! source IP (uuid from the IP alone), one session per Cowrie session.

use super::keys::{keys_in, planted_keys, url_host, url_hosts};
use super::record::{bounded, duration_ms, text, Kind, Record, MAX_FIELD_BYTES};
use crate::evidence::time::format_timestamp;
use crate::evidence::Millis;
use crate::phase_rules::split_command_line;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use uuid::Uuid;

/// Namespace of observation uuids: `v5(OBSERVATIONS, canonical IP)`.
const OBSERVATIONS: Uuid = Uuid::from_u128(0x6b1f_3c2e_8d4a_4f0b_9e57_c1a2_d3e4_f501);
/// Namespace of event ids: `v5(EVENTS, payload JSON)`.
const EVENTS: Uuid = Uuid::from_u128(0x6b1f_3c2e_8d4a_4f0b_9e57_c1a2_d3e4_f502);
/// Most commands / credential pairs kept for one session.
const MAX_ITEMS: usize = 2_000;
/// Bytes of commands and credentials per event, under the daemon's
/// default entry limit (64 KiB) with room for the rest of the payload.
const CHUNK_BYTES: usize = 40_000;
/// Items per event, under the daemon's default list limit (512).
const CHUNK_ITEMS: usize = 400;

/// The observation uuid of a source address: the same for every sensor,
/// file and replay.
pub fn observation_uuid(ip: &std::net::IpAddr) -> String {
    Uuid::new_v5(&OBSERVATIONS, ip.to_string().as_bytes()).to_string()
}

/// A TTY log a session's `log.closed` named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TtyLog {
    /// As logged: relative to Cowrie's working directory.
    pub path: String,
    /// Cowrie had a log with the same input already: the file holds the
    /// earlier session's timing, not this one's.
    pub duplicate: bool,
}

/// A session's evidence so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evidence {
    pub sensor: String,
    pub session: String,
    pub ip: Option<std::net::IpAddr>,
    pub connect_at: Option<Millis>,
    pub closed_at: Option<Millis>,
    pub first_ts: Option<Millis>,
    pub last_ts: Option<Millis>,
    pub duration_ms: Option<i64>,
    pub client_version: Option<String>,
    pub hassh: Option<String>,
    /// In order of appearance, without repeats.
    pub credentials: Vec<(String, String)>,
    /// The commands a shell would run, in the order typed, without repeats.
    pub commands: Vec<String>,
    pub payload_hashes: BTreeSet<String>,
    pub c2_hosts: BTreeSet<String>,
    pub auth_keys: BTreeSet<String>,
    pub planted_keys: BTreeSet<String>,
    pub ttylogs: Vec<TtyLog>,
    pub records: u64,
}

impl Evidence {
    pub fn new(sensor: &str, session: &str) -> Evidence {
        Evidence {
            sensor: sensor.to_string(),
            session: session.to_string(),
            ..Default::default()
        }
    }

    /// Adds one record of this session.
    pub fn add(&mut self, r: &Record) {
        self.records += 1;
        if self.ip.is_none() {
            self.ip = r.src_ip;
        }
        if let Some(t) = r.ts {
            self.first_ts = Some(self.first_ts.map_or(t, |f| f.min(t)));
            self.last_ts = Some(self.last_ts.map_or(t, |l| l.max(t)));
        }
        let f = &r.fields;
        match r.kind {
            Kind::Connect => self.connect_at = self.connect_at.or(r.ts),
            Kind::Version => self.client_version = bounded(f, "version"),
            Kind::Kex => {
                if let Some(h) = text(f, "hassh").filter(|h| is_hex(h, 32)) {
                    self.hassh = Some(h.to_ascii_lowercase());
                }
            }
            Kind::LoginSuccess | Kind::LoginFailed => {
                let user = bounded(f, "username").unwrap_or_default();
                if let Some(pass) = f.get("password").and_then(Value::as_str) {
                    let pass = pass.trim_end_matches('\0');
                    push_new(&mut self.credentials, (user, cut(pass).to_string()));
                } else if r.kind == Kind::LoginSuccess {
                    if let Some(key) = text(f, "key") {
                        self.auth_keys.extend(keys_in(key));
                    }
                }
            }
            Kind::Command => {
                if let Some(line) = text(f, "input") {
                    self.command_line(line);
                }
            }
            Kind::Download | Kind::Upload => {
                if let Some(h) = text(f, "shasum").filter(|h| is_hex(h, 64)) {
                    self.payload_hashes.insert(h.to_ascii_lowercase());
                }
                self.c2_hosts.extend(text(f, "url").and_then(url_host));
            }
            Kind::DownloadFailed => self.c2_hosts.extend(text(f, "url").and_then(url_host)),
            Kind::LogClosed => {
                if let Some(path) = text(f, "ttylog") {
                    let duplicate = f.get("duplicate").and_then(Value::as_bool) == Some(true);
                    self.ttylogs.push(TtyLog {
                        path: path.to_string(),
                        duplicate,
                    });
                }
            }
            Kind::Closed => {
                self.closed_at = self.closed_at.or(r.ts);
                self.duration_ms = duration_ms(f);
            }
            Kind::Ignored => {}
        }
    }

    fn command_line(&mut self, line: &str) {
        self.c2_hosts.extend(url_hosts(line));
        self.planted_keys.extend(planted_keys(line));
        for c in split_command_line(line) {
            if self.commands.len() >= MAX_ITEMS {
                break;
            }
            push_new(&mut self.commands, cut(&c).to_string());
        }
    }

    /// The session's start: its connect, else its first record.
    pub fn started_at(&self) -> Option<Millis> {
        self.connect_at.or(self.first_ts)
    }

    /// The session's end: its close, else start plus Cowrie's duration.
    pub fn ended_at(&self) -> Option<Millis> {
        self.closed_at
            .or_else(|| Some(self.started_at()? + self.duration_ms?))
            .or(self.last_ts)
    }

    /// The session as `attacker.observed` events: none without a source
    /// IP; several when its commands or credentials exceed one entry's
    /// limits. `simhash` is the keystroke SimHash of its TTY logs.
    pub fn events(&self, simhash: Option<u64>) -> Vec<ImportEvent> {
        let Some(ip) = self.ip else { return Vec::new() };
        let chunks = chunks(&self.commands, &self.credentials);
        let ts = self.ended_at();
        chunks
            .iter()
            .enumerate()
            .map(|(i, (cmds, creds))| {
                let mut p = Map::new();
                p.insert("uuid".into(), observation_uuid(&ip).into());
                p.insert("ip".into(), ip.to_string().into());
                if let Some(t) = self.started_at() {
                    p.insert("first_seen".into(), format_timestamp(t).into());
                }
                if let Some(t) = ts {
                    p.insert("last_seen".into(), format_timestamp(t).into());
                }
                let mut fps = Vec::new();
                if let Some(h) = &self.hassh {
                    fps.push(json!({"kind": "hassh", "value": h}));
                }
                if let Some(v) = &self.client_version {
                    fps.push(json!({"kind": "ssh_client_version", "value": v}));
                }
                p.insert("fingerprints".into(), fps.into());
                let sessions = self.session_entries(i == 0, cmds, creds, simhash);
                p.insert("sessions".into(), sessions.into());
                let payload = Value::Object(p).to_string();
                ImportEvent {
                    event_id: Uuid::new_v5(&EVENTS, payload.as_bytes()).to_string(),
                    ts: ts.map(format_timestamp),
                    payload,
                }
            })
            .collect()
    }

    fn session_entries(
        &self,
        first: bool,
        cmds: &[String],
        creds: &[(String, String)],
        simhash: Option<u64>,
    ) -> Vec<Value> {
        let mut base = Map::new();
        base.insert(
            "session_id".into(),
            format!("{}:{}", self.sensor, self.session).into(),
        );
        base.insert("decky_id".into(), self.sensor.clone().into());
        if let Some(t) = self.started_at() {
            base.insert("started_at".into(), format_timestamp(t).into());
        }
        if let Some(t) = self.ended_at() {
            base.insert("ended_at".into(), format_timestamp(t).into());
        }
        let mut head = base.clone();
        head.insert("commands".into(), json!(cmds));
        head.insert("credentials".into(), json!(creds));
        if first && !self.planted_keys.is_empty() {
            head.insert("planted_keys".into(), json!(self.planted_keys));
        }
        if let (true, Some(h)) = (first, simhash) {
            head.insert("kd_digraph_simhash".into(), format!("{h:016x}").into());
        }
        // The wire's singular fields: one entry per value past the first.
        let mut extra: Vec<(&str, &String)> = Vec::new();
        if first {
            extra.extend(self.payload_hashes.iter().map(|h| ("payload_hash", h)));
            extra.extend(self.c2_hosts.iter().map(|h| ("c2_callback", h)));
            extra.extend(self.auth_keys.iter().map(|k| ("auth_key", k)));
        }
        let mut out = vec![Value::Object(head)];
        for (k, v) in extra {
            let mut e = base.clone();
            e.insert(k.into(), v.clone().into());
            out.push(Value::Object(e));
        }
        out
    }
}

/// One input event, ready for the stream (SPEC §3 entry fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportEvent {
    pub event_id: String,
    pub ts: Option<String>,
    /// The `attacker.observed` payload, JSON.
    pub payload: String,
}

/// The commands and credentials one event carries.
type Chunk<'a> = (&'a [String], &'a [(String, String)]);

/// Splits commands and credentials into per-event chunks (at least one).
fn chunks<'a>(cmds: &'a [String], creds: &'a [(String, String)]) -> Vec<Chunk<'a>> {
    let cost = |s: &str| serde_json::to_string(s).map_or(s.len(), |j| j.len()) + 1;
    let split = |sizes: Vec<usize>| -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let (mut from, mut bytes) = (0, 0);
        for (i, n) in sizes.iter().enumerate() {
            if i > from && (bytes + n > CHUNK_BYTES || i - from >= CHUNK_ITEMS) {
                out.push((from, i));
                (from, bytes) = (i, 0);
            }
            bytes += n;
        }
        out.push((from, sizes.len()));
        out
    };
    let c = split(cmds.iter().map(|c| cost(c)).collect());
    let k = split(creds.iter().map(|(u, p)| cost(u) + cost(p) + 3).collect());
    (0..c.len().max(k.len()))
        .map(|i| {
            let cs = c.get(i).map_or(&cmds[0..0], |&(a, b)| &cmds[a..b]);
            let ks = k.get(i).map_or(&creds[0..0], |&(a, b)| &creds[a..b]);
            (cs, ks)
        })
        .collect()
}

fn push_new<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if v.len() < MAX_ITEMS && !v.contains(&x) {
        v.push(x);
    }
}

/// `s` cut to [`MAX_FIELD_BYTES`] on a character boundary.
fn cut(s: &str) -> &str {
    let mut end = s.len().min(MAX_FIELD_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}
