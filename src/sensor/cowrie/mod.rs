//! The Cowrie importer's core (SPEC §12): lines of Cowrie's JSON log in,
//! finished sessions out, each becoming SPEC §4 `attacker.observed` events
//! with ids derived from their content. Pure: the caller reads the files
//! (the log, the TTY logs) and keeps the positions.
//!
//! `record` reads one line, `session` gathers one session's evidence and
//! writes its events, `keys` finds SSH keys and URLs, `ttylog` turns TTY
//! logs into a keystroke-timing SimHash.

pub mod keys;
pub mod record;
pub mod session;
#[cfg(test)]
mod tests;
pub mod ttylog;

use crate::evidence::Millis;
use record::{parse_line, Kind, LineError};
pub use session::{observation_uuid, Evidence, ImportEvent, TtyLog};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::net::IpAddr;

/// A session with no record for this long (log time) is flushed as if it
/// had closed: Cowrie restarted without writing its close.
pub const SESSION_IDLE_MS: Millis = 3_600_000;
/// How many closed sessions are remembered, to tell late records.
const RECENTLY_CLOSED: usize = 65_536;

/// Counts over everything read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lines that held a usable record.
    pub records: u64,
    /// Lines that were not a usable record (not JSON, cut off, no
    /// `eventid` or `session`).
    pub malformed: u64,
    /// Records with an event id no Cowrie version writes (skipped).
    pub unknown_event_ids: u64,
    /// Sessions finished (closed, idle or flushed at the end).
    pub sessions: u64,
    /// Distinct source addresses of finished sessions.
    pub observations: u64,
    /// Records for a session that had already closed.
    pub late: u64,
    /// Sessions dropped because no record named a source address.
    pub without_ip: u64,
}

/// Where a restart resumes a file: sessions open then are re-read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replay {
    /// Sessions open when the position was saved.
    pub open: BTreeSet<String>,
    /// The offset up to which records had been read before.
    pub until: u64,
}

/// Gathers records into sessions.
#[derive(Debug, Default)]
pub struct Assembler {
    default_sensor: String,
    open: BTreeMap<String, (u64, Evidence)>,
    closed: HashSet<String>,
    closed_order: VecDeque<String>,
    ips: BTreeSet<IpAddr>,
    replay: Option<(Replay, BTreeSet<String>)>,
    idle_checked: Millis,
    stats: Stats,
}

impl Assembler {
    /// `default_sensor` names records without a `sensor` field.
    pub fn new(default_sensor: &str) -> Assembler {
        Assembler {
            default_sensor: default_sensor.to_string(),
            ..Default::default()
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Reads one line found at byte `offset` of the current file; returns
    /// the sessions it finished. Never fails: bad lines are counted.
    pub fn push_line(&mut self, line: &[u8], offset: u64) -> Vec<Evidence> {
        if line.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
            return Vec::new();
        }
        let r = match parse_line(line, &self.default_sensor) {
            Ok(r) => r,
            Err(LineError::Malformed(_)) => {
                self.stats.malformed += 1;
                return Vec::new();
            }
            Err(LineError::UnknownEventId(_)) => {
                self.stats.unknown_event_ids += 1;
                return Vec::new();
            }
        };
        let key = format!("{}:{}", r.sensor, r.session);
        if !self.replaying_accepts(&key, r.kind, offset) {
            return Vec::new();
        }
        self.stats.records += 1;
        let mut done = Vec::new();
        if let Some(t) = r.ts {
            done.extend(self.flush_idle(t));
        }
        if self.closed.contains(&key) && !self.open.contains_key(&key) {
            // After its close: its own small report, joined by session id.
            self.stats.late += 1;
            let mut e = Evidence::new(&r.sensor, &r.session);
            e.add(&r);
            done.extend(e.ip.is_some().then_some(e));
            return done;
        }
        let entry = self
            .open
            .entry(key.clone())
            .or_insert_with(|| (offset, Evidence::new(&r.sensor, &r.session)));
        entry.1.add(&r);
        if r.kind == Kind::Closed {
            if let Some((_, e)) = self.open.remove(&key) {
                self.remember_closed(key);
                done.extend(self.finished(e));
            }
        }
        done
    }

    /// Every session still open, in key order (the end of the input).
    pub fn finish(&mut self) -> Vec<Evidence> {
        let open = std::mem::take(&mut self.open);
        open.into_values()
            .flat_map(|(_, e)| self.finished(e))
            .collect()
    }

    /// Where a restart must resume the current file when `consumed` bytes
    /// of it have been read: the start of the oldest open session.
    pub fn resume_offset(&self, consumed: u64) -> u64 {
        self.open
            .values()
            .map(|(o, _)| *o)
            .min()
            .map_or(consumed, |o| o.min(consumed))
    }

    /// The sessions open now, in key order.
    pub fn open_sessions(&self) -> Vec<String> {
        self.open.keys().cloned().collect()
    }

    /// Resumes after a restart: up to `replay.until`, only the sessions
    /// open at the save and those that connect again are read, so records
    /// of sessions already published are not published again in part.
    pub fn replay(&mut self, replay: Replay) {
        self.replay = Some((replay, BTreeSet::new()));
    }

    /// The file was rotated or truncated: the open sessions continue in the
    /// new file, whose first byte is where a restart re-reads them from.
    pub fn rebase(&mut self) {
        for (o, _) in self.open.values_mut() {
            *o = 0;
        }
        self.replay = None;
    }

    fn replaying_accepts(&mut self, key: &str, kind: Kind, offset: u64) -> bool {
        let Some((replay, begun)) = &mut self.replay else {
            return true;
        };
        if offset >= replay.until {
            self.replay = None;
            return true;
        }
        if replay.open.contains(key) || begun.contains(key) {
            return true;
        }
        if kind == Kind::Connect {
            begun.insert(key.to_string());
            return true;
        }
        false
    }

    fn flush_idle(&mut self, now: Millis) -> Vec<Evidence> {
        if now - self.idle_checked < 60_000 {
            return Vec::new();
        }
        self.idle_checked = now;
        let idle: Vec<String> = self
            .open
            .iter()
            .filter(|(_, (_, e))| e.last_ts.is_some_and(|t| now - t > SESSION_IDLE_MS))
            .map(|(k, _)| k.clone())
            .collect();
        let mut done = Vec::new();
        for k in idle {
            if let Some((_, e)) = self.open.remove(&k) {
                self.remember_closed(k);
                done.extend(self.finished(e));
            }
        }
        done
    }

    fn remember_closed(&mut self, key: String) {
        if self.closed.insert(key.clone()) {
            self.closed_order.push_back(key);
        }
        while self.closed_order.len() > RECENTLY_CLOSED {
            if let Some(old) = self.closed_order.pop_front() {
                self.closed.remove(&old);
            }
        }
    }

    fn finished(&mut self, e: Evidence) -> Option<Evidence> {
        let Some(ip) = e.ip else {
            self.stats.without_ip += 1;
            return None;
        };
        self.stats.sessions += 1;
        if self.ips.insert(ip) {
            self.stats.observations += 1;
        }
        Some(e)
    }
}
