//! `clusterd import cowrie FILE… [--follow]`: reads Cowrie's JSON logs and
//! publishes their evidence as SPEC §4 events (SPEC §12). Files are read
//! here; the core (`decnet_clusterd::sensor::cowrie`) turns lines into
//! sessions and events; the repository publishes each event id once.
//! `import_follow.rs` tails live logs.

use super::config::settings;
use super::error::CliError;
use super::import_follow::follow;
use super::run::init_logging;
use crate::cli::out::outln;
use crate::repository::import::publish_once;
use crate::repository::Keys;
use anyhow::Context;
use decnet_clusterd::sensor::cowrie::record::MAX_LINE_BYTES;
use decnet_clusterd::sensor::cowrie::ttylog::{session_simhash, TtySkip};
use decnet_clusterd::sensor::cowrie::{Assembler, Evidence, ImportEvent, Stats};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};

/// What the importer was asked to do.
#[derive(Clone, Debug)]
pub struct ImportArgs {
    pub files: Vec<PathBuf>,
    pub follow: bool,
    pub source: String,
    pub ttylog_dir: Option<PathBuf>,
    pub poll_ms: u64,
}

/// What was read and published.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub published: usize,
    pub duplicates: usize,
}

/// `clusterd import <sensor> …`.
pub fn import(sensor: &str, args: &ImportArgs, config: Option<&Path>) -> Result<i32, CliError> {
    if sensor != "cowrie" {
        return Err(CliError::Usage(format!(
            "unknown sensor `{sensor}` (known: cowrie)"
        )));
    }
    if args.source.is_empty() || args.source.contains([':', '\n']) {
        return Err(CliError::Usage(
            "--source must be a non-empty name without `:`".into(),
        ));
    }
    for f in &args.files {
        if !f.is_file() {
            return Err(CliError::Usage(format!("{}: no such file", f.display())));
        }
    }
    let s = settings(config)?;
    init_logging(&s)?;
    let keys = Keys::new(&s.redis.key_prefix);
    let client = redis::Client::open(s.redis.url.as_str()).context("REDIS_URL")?;
    let mut conn = client
        .get_connection()
        .with_context(|| format!("connecting to {}", s.redis.url))?;
    if args.follow {
        return follow(&mut conn, &keys, args)
            .map(|_| 0)
            .map_err(CliError::Runtime);
    }
    let mut asm = Assembler::new(&args.source);
    let mut totals = Totals::default();
    let bar = progress(&args.files);
    for f in &args.files {
        bar.set_message(f.display().to_string());
        let file = std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
        let mut lines = Lines::new(file);
        let mut offset = 0u64;
        while let Some(line) = lines
            .next_line()
            .with_context(|| format!("reading {}", f.display()))?
        {
            let done = asm.push_line(&line.bytes, offset);
            offset += line.consumed;
            bar.inc(line.consumed);
            publish(&mut conn, &keys, args, &done, &mut totals)?;
        }
    }
    let rest = asm.finish();
    publish(&mut conn, &keys, args, &rest, &mut totals)?;
    bar.finish_and_clear();
    outln!("{}", summary(args.files.len(), asm.stats(), &totals, &keys));
    Ok(0)
}

/// Publishes finished sessions' events; counts the new and the known.
pub fn publish(
    conn: &mut redis::Connection,
    keys: &Keys,
    args: &ImportArgs,
    done: &[Evidence],
    totals: &mut Totals,
) -> Result<(), anyhow::Error> {
    let events: Vec<ImportEvent> = done
        .iter()
        .flat_map(|e| e.events(keystrokes(e, args.ttylog_dir.as_deref())))
        .collect();
    let new = publish_once(conn, keys, &events)
        .with_context(|| format!("publishing to {}", keys.input()))?;
    totals.published += new;
    totals.duplicates += events.len() - new;
    Ok(())
}

/// The summary line.
pub fn summary(files: usize, st: &Stats, t: &Totals, keys: &Keys) -> String {
    format!(
        "imported {files} file(s): {} records, {} sessions, {} observations; \
         {} events published to {}, {} duplicates skipped; {} malformed lines, {} unknown event ids",
        st.records,
        st.sessions,
        st.observations,
        t.published,
        keys.input(),
        t.duplicates,
        st.malformed,
        st.unknown_event_ids
    )
}

/// The keystroke SimHash of a session's TTY logs, when `dir` holds them
/// (read by the core; skipped logs are logged here).
fn keystrokes(e: &Evidence, dir: Option<&Path>) -> Option<u64> {
    session_simhash(e, dir?, |skip| match skip {
        TtySkip::NotRelative(path) => {
            tracing::warn!(session = %e.session, path = %path, "TTY log path not relative, skipped")
        }
        TtySkip::NotFound(path) => {
            tracing::debug!(session = %e.session, path = %path, "TTY log not found")
        }
        TtySkip::Unreadable(path, err) => {
            tracing::warn!(path = %path, error = %err, "TTY log unreadable, skipped")
        }
    })
}

fn progress(files: &[PathBuf]) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let total = files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("importing {bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// One line as read: its bytes (at most [`MAX_LINE_BYTES`] + 1, so a
/// longer one stays too long for the core, which counts it malformed), the
/// bytes it took in the file, and whether it ended with its newline.
pub struct Line {
    pub bytes: Vec<u8>,
    pub consumed: u64,
    pub complete: bool,
}

/// Lines of a file, bounded in memory whatever the file holds.
pub struct Lines<R> {
    reader: BufReader<R>,
}

impl<R: Read> Lines<R> {
    pub fn new(r: R) -> Lines<R> {
        Lines {
            reader: BufReader::with_capacity(1 << 16, r),
        }
    }

    /// The next line, `None` at the end.
    pub fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut bytes = Vec::new();
        let limit = MAX_LINE_BYTES as u64 + 1;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut bytes)?;
        if n == 0 {
            return Ok(None);
        }
        let mut consumed = n as u64;
        let mut complete = bytes.last() == Some(&b'\n');
        // Too long: skip the rest of it, up to its newline.
        let mut rest = Vec::new();
        while !complete && n as u64 == limit {
            rest.clear();
            let m = (&mut self.reader)
                .take(1 << 20)
                .read_until(b'\n', &mut rest)?;
            consumed += m as u64;
            complete = rest.last() == Some(&b'\n');
            if m == 0 {
                break;
            }
        }
        Ok(Some(Line {
            bytes,
            consumed,
            complete,
        }))
    }
}
