//! One line of Cowrie's JSON log read defensively: NUL padding and
//! surrounding blanks removed, the envelope (`eventid`, `session`,
//! `sensor`, `src_ip`, `timestamp`) checked, the event id classified. Every
//! byte is attacker-influenced (commands, passwords, client versions).

use crate::evidence::time::parse_timestamp;
use crate::evidence::Millis;
use serde_json::{Map, Value};
use std::net::IpAddr;

/// Longest line read; a longer one is malformed.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Longest string kept from a record (commands, passwords, versions).
pub const MAX_FIELD_BYTES: usize = 1_024;
/// Longest sensor or session name.
const MAX_NAME_BYTES: usize = 64;

/// What a record is, by its `eventid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Connect,
    Version,
    Kex,
    LoginSuccess,
    LoginFailed,
    Command,
    Download,
    DownloadFailed,
    Upload,
    LogClosed,
    Closed,
    /// A real Cowrie event id that carries nothing this importer uses.
    Ignored,
}

impl Kind {
    /// `None` for an event id no Cowrie version is known to write.
    pub fn of(eventid: &str) -> Option<Kind> {
        Some(match eventid {
            "cowrie.session.connect" => Kind::Connect,
            "cowrie.client.version" => Kind::Version,
            "cowrie.client.kex" => Kind::Kex,
            "cowrie.login.success" => Kind::LoginSuccess,
            "cowrie.login.failed" => Kind::LoginFailed,
            "cowrie.command.input" => Kind::Command,
            "cowrie.session.file_download" => Kind::Download,
            "cowrie.session.file_download.failed" => Kind::DownloadFailed,
            "cowrie.session.file_upload" => Kind::Upload,
            "cowrie.log.closed" => Kind::LogClosed,
            "cowrie.session.closed" => Kind::Closed,
            "cowrie.client.fingerprint"
            | "cowrie.client.var"
            | "cowrie.client.size"
            | "cowrie.session.params"
            | "cowrie.command.failed"
            | "cowrie.command.success"
            | "cowrie.session.input"
            | "cowrie.client.malformed_packet"
            | "cowrie.direct-tcpip.request"
            | "cowrie.direct-tcpip.data"
            | "cowrie.direct-tcpip.redirect"
            | "cowrie.direct-tcpip.tunnel"
            | "cowrie.direct-tcpip.ja4"
            | "cowrie.direct-tcpip.ja4h"
            | "cowrie.log.open"
            | "cowrie.virustotal.scanfile"
            | "cowrie.virustotal.scanurl"
            | "cowrie.abuseipdb.reportedip" => Kind::Ignored,
            _ => return None,
        })
    }
}

/// A record whose envelope is sound.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub kind: Kind,
    pub sensor: String,
    pub session: String,
    /// The source address, canonical (`src_ip` parsed).
    pub src_ip: Option<IpAddr>,
    pub ts: Option<Millis>,
    pub fields: Map<String, Value>,
}

/// Why a line is not a usable record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineError {
    /// Not a JSON object, cut off, over the size limit, or without a sound
    /// `eventid`/`session`: counted as a malformed line.
    Malformed(String),
    /// A well-formed record with an event id no Cowrie writes.
    UnknownEventId(String),
}

/// Reads one line. `default_sensor` names records without `sensor`.
pub fn parse_line(line: &[u8], default_sensor: &str) -> Result<Record, LineError> {
    let line = trim(line);
    if line.len() > MAX_LINE_BYTES {
        return Err(LineError::Malformed(format!(
            "line of {} bytes",
            line.len()
        )));
    }
    let value: Value =
        serde_json::from_slice(line).map_err(|e| LineError::Malformed(format!("not JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(LineError::Malformed("not a JSON object".into()));
    };
    let eventid = name(&fields, "eventid").ok_or_else(|| missing("eventid"))?;
    let kind = Kind::of(&eventid).ok_or_else(|| LineError::UnknownEventId(eventid.clone()))?;
    let session = name(&fields, "session").ok_or_else(|| missing("session"))?;
    let sensor = name(&fields, "sensor").unwrap_or_else(|| default_sensor.to_string());
    let src_ip = text(&fields, "src_ip").and_then(|s| s.parse::<IpAddr>().ok());
    let ts = fields.get("timestamp").and_then(timestamp);
    Ok(Record {
        kind,
        sensor,
        session,
        src_ip,
        ts,
        fields,
    })
}

/// Cowrie's `timestamp`: RFC 3339, or with a `+0000` offset (no colon)
/// when Cowrie does not run in UTC.
fn timestamp(v: &Value) -> Option<Millis> {
    parse_timestamp(v).ok().or_else(|| {
        let s = v.as_str()?;
        let at = s
            .len()
            .checked_sub(5)
            .filter(|at| s.is_char_boundary(*at))?;
        let (head, off) = s.split_at(at);
        let colon = off.starts_with(['+', '-']) && off[1..].bytes().all(|b| b.is_ascii_digit());
        let fixed = format!("{head}{}:{}", &off[..3], &off[3..]);
        colon
            .then(|| parse_timestamp(&Value::String(fixed)).ok())
            .flatten()
    })
}

fn missing(field: &str) -> LineError {
    LineError::Malformed(format!("no usable `{field}`"))
}

/// Removes blanks and the NUL bytes a truncated, padded file ends with.
fn trim(line: &[u8]) -> &[u8] {
    let keep = |b: &u8| !(b.is_ascii_whitespace() || *b == 0);
    let start = line.iter().position(keep).unwrap_or(line.len());
    let end = line.iter().rposition(keep).map_or(start, |p| p + 1);
    &line[start..end]
}

/// A short printable name (sensor, session): no controls, bounded.
fn name(fields: &Map<String, Value>, key: &str) -> Option<String> {
    let s = text(fields, key)?;
    let ok = s.len() <= MAX_NAME_BYTES && !s.chars().any(char::is_control);
    ok.then(|| s.to_string())
}

/// A non-empty string field with trailing NUL padding removed.
pub fn text<'a>(fields: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    let s = fields.get(key)?.as_str()?.trim_end_matches('\0');
    (!s.is_empty()).then_some(s)
}

/// A string field cut to [`MAX_FIELD_BYTES`] on a character boundary.
pub fn bounded(fields: &Map<String, Value>, key: &str) -> Option<String> {
    let s = text(fields, key)?;
    let mut end = s.len().min(MAX_FIELD_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(s[..end].to_string())
}

/// A duration in milliseconds: `duration_ms` (Cowrie ≥ 3.0.10, integer) or
/// `duration` (earlier, float seconds).
pub fn duration_ms(fields: &Map<String, Value>) -> Option<i64> {
    let ms = match fields.get("duration_ms").and_then(Value::as_f64) {
        Some(ms) => ms,
        None => fields.get("duration").and_then(Value::as_f64)? * 1000.0,
    };
    (ms.is_finite() && (0.0..=1e12).contains(&ms)).then(|| ms.round() as i64)
}
