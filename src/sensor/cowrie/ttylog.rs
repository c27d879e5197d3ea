//! Cowrie's TTY logs and the keystroke-timing SimHash computed from them.
//!
//! A TTY log is a run of records, each a 24-byte little-endian header (`op`
//! i32, `tty` u32, `length` i32, `direction` i32, `sec` u32, `usec` u32)
//! followed, for write records (`op` 3), by `length` bytes. Input records
//! (`direction` 1) are the client's packets as received: one per keystroke
//! for a typing client.
//!
//! The SimHash (64 bits): every pair of consecutive single-key input
//! records less than [`MAX_GAP_US`] apart is a digraph with an interval.
//! The interval is placed on a quarter-octave scale, `x = 4·log2(ms)`,
//! and shared between the two neighbouring steps `⌊x⌋` and `⌊x⌋+1` in
//! proportion to its distance from each (so a few milliseconds of jitter
//! moves weight smoothly instead of flipping a bucket). Each digraph gives
//! two features per step: the pair of key classes with the step (weight 3:
//! the rhythm, whatever was typed) and the pair of keys with the step
//! (weight 1: the typist's rhythm on those very keys). Every feature is
//! hashed to 64 bits (SplitMix64 over its packed fields); classic SimHash
//! then adds the feature's weight to each bit's tally where its hash has a
//! 1 and subtracts it where it has a 0, and sets the bits whose tally is
//! positive. Fewer than [`MIN_DIGRAPHS`] digraphs give no hash. Paste
//! records (several bytes), output and exec records end a run.

use std::collections::BTreeMap;

/// Intervals at least this long are pauses, not digraphs.
pub const MAX_GAP_US: u64 = 3_000_000;
/// Fewer digraphs than this carry too little rhythm for a hash.
pub const MIN_DIGRAPHS: usize = 8;
const HEADER: usize = 24;

/// One input record: its bytes and its time (unix microseconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub at_us: u64,
    pub bytes: Vec<u8>,
}

/// Why a TTY log could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TtyError {
    #[error("record at byte {0} is cut off")]
    Truncated(usize),
    #[error("record at byte {0} has a negative length")]
    BadLength(usize),
}

/// The input records of a TTY log, in file order.
pub fn inputs(log: &[u8]) -> Result<Vec<Input>, TtyError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < log.len() {
        let h = log.get(i..i + HEADER).ok_or(TtyError::Truncated(i))?;
        let word = |k: usize| u32::from_le_bytes([h[k], h[k + 1], h[k + 2], h[k + 3]]);
        let (op, len, dir) = (word(0) as i32, word(8) as i32, word(12) as i32);
        let at_us = u64::from(word(16)) * 1_000_000 + u64::from(word(20));
        let mut next = i + HEADER;
        if op == 3 {
            let len = usize::try_from(len).map_err(|_| TtyError::BadLength(i))?;
            let data = log.get(next..next + len).ok_or(TtyError::Truncated(i))?;
            if dir == 1 {
                out.push(Input {
                    at_us,
                    bytes: data.to_vec(),
                });
            }
            next += len;
        }
        i = next;
    }
    Ok(out)
}

/// Consecutive single-key inputs: `(previous key, key, interval µs)`.
pub fn digraphs(runs: &[Vec<Input>]) -> Vec<(u8, u8, u64)> {
    let mut out = Vec::new();
    for run in runs {
        for w in run.windows(2) {
            let [a, b] = w else { continue };
            let gap = b.at_us.saturating_sub(a.at_us);
            if a.bytes.len() == 1 && b.bytes.len() == 1 && gap > 0 && gap < MAX_GAP_US {
                out.push((a.bytes[0], b.bytes[0], gap));
            }
        }
    }
    out
}

/// The SimHash of a session's digraphs (see the module text).
pub fn simhash(digraphs: &[(u8, u8, u64)]) -> Option<u64> {
    if digraphs.len() < MIN_DIGRAPHS {
        return None;
    }
    let mut weights: BTreeMap<u64, f64> = BTreeMap::new();
    for &(a, b, gap_us) in digraphs {
        let x = 4.0 * (gap_us as f64 / 1000.0).max(0.5).log2();
        let step = x.floor();
        let frac = x - step;
        for (s, share) in [(step as i64, 1.0 - frac), (step as i64 + 1, frac)] {
            let s = (s + 64) as u64 & 0xff;
            let rhythm = (1 << 40) | (u64::from(class(a)) << 24) | (u64::from(class(b)) << 16) | s;
            let keys = (2 << 40) | (u64::from(a) << 24) | (u64::from(b) << 16) | s;
            *weights.entry(splitmix(rhythm)).or_default() += 3.0 * share;
            *weights.entry(splitmix(keys)).or_default() += share;
        }
    }
    let mut tally = [0f64; 64];
    for (h, w) in weights {
        for (bit, t) in tally.iter_mut().enumerate() {
            *t += if h >> bit & 1 == 1 { w } else { -w };
        }
    }
    Some(
        tally
            .iter()
            .enumerate()
            .filter(|(_, t)| **t > 0.0)
            .fold(0u64, |acc, (bit, _)| acc | 1 << bit),
    )
}

/// Key classes: lower, upper, digit, space, shell separator, other
/// punctuation, control (Enter, backspace, escapes).
fn class(b: u8) -> u8 {
    match b {
        b'a'..=b'z' => 0,
        b'A'..=b'Z' => 1,
        b'0'..=b'9' => 2,
        b' ' => 3,
        b';' | b'|' | b'&' => 4,
        0x21..=0x7e => 5,
        _ => 6,
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Largest TTY log read.
pub const MAX_TTYLOG_BYTES: u64 = 64 << 20;

/// Why a session's TTY log was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TtySkip {
    /// The log's path leaves the TTY directory (`..`, absolute).
    NotRelative(String),
    NotFound(String),
    Unreadable(String, String),
}

/// The keystroke SimHash of a session's TTY logs found under `dir` (as
/// `dir/<path>`, `dir/<sensor>/<path>` or `dir/<file name>`); duplicates
/// (another session's timing) are skipped, and every log not used is
/// reported to `skipped`.
pub fn session_simhash(
    e: &super::Evidence,
    dir: &std::path::Path,
    mut skipped: impl FnMut(TtySkip),
) -> Option<u64> {
    use std::io::Read;
    use std::path::{Component, Path};
    let mut runs = Vec::new();
    for t in e.ttylogs.iter().filter(|t| !t.duplicate) {
        let rel = Path::new(&t.path);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            skipped(TtySkip::NotRelative(t.path.clone()));
            continue;
        }
        let mut candidates = vec![dir.join(rel), dir.join(&e.sensor).join(rel)];
        if let Some(name) = rel.file_name() {
            candidates.push(dir.join(name));
        }
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            skipped(TtySkip::NotFound(t.path.clone()));
            continue;
        };
        let mut bytes = Vec::new();
        let read = std::fs::File::open(path)
            .and_then(|f| f.take(MAX_TTYLOG_BYTES).read_to_end(&mut bytes));
        match read
            .map_err(|e| e.to_string())
            .and_then(|_| inputs(&bytes).map_err(|e| e.to_string()))
        {
            Ok(ins) => runs.push(ins),
            Err(err) => skipped(TtySkip::Unreadable(path.display().to_string(), err)),
        }
    }
    simhash(&digraphs(&runs))
}
