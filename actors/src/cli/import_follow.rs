//! `clusterd import cowrie --follow`: tails live logs like `tail -F` by
//! polling (a rename rotation is read to its end before the new file is
//! opened; a truncation restarts at its first byte), and saves after every
//! batch where a restart must resume (`{p}:import:{source}:{file}`): the
//! start of the oldest session still open, so a restart re-reads those
//! sessions whole, and the seen-set keeps the rest from being published
//! twice.

use super::import::{publish, ImportArgs, Line, Lines, Totals};
use crate::repository::import::{load_position, save_position, Position};
use crate::repository::Keys;
use anyhow::Context;
use decnet_clusterd::sensor::cowrie::{Assembler, Replay};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

/// Bytes read from one file per poll before the others get a turn.
const BYTES_PER_TURN: u64 = 8 << 20;

struct Follower {
    path: PathBuf,
    /// The name in the position key: the path as given, made absolute.
    name: String,
    file: Option<File>,
    dev: u64,
    ino: u64,
    /// Bytes of the open file read (always at a line boundary).
    pos: u64,
    asm: Assembler,
    totals: Totals,
}

/// Follows every file until killed (every state is saved as it goes).
pub fn follow(conn: &mut redis::Connection, keys: &Keys, args: &ImportArgs) -> anyhow::Result<()> {
    let mut followers = Vec::new();
    for path in &args.files {
        let abs = std::path::absolute(path).with_context(|| format!("{}", path.display()))?;
        let mut f = Follower {
            name: abs.display().to_string(),
            path: abs,
            file: None,
            dev: 0,
            ino: 0,
            pos: 0,
            asm: Assembler::new(&args.source),
            totals: Totals::default(),
        };
        f.open(load_position(conn, keys, &args.source, &f.name)?)?;
        followers.push(f);
    }
    tracing::info!(files = followers.len(), source = %args.source, "following");
    loop {
        let mut idle = true;
        for f in &mut followers {
            idle &= !f.turn(conn, keys, args)?;
        }
        if idle {
            std::thread::sleep(Duration::from_millis(args.poll_ms));
        }
    }
}

impl Follower {
    /// Opens the file at its path, resuming from `saved` when it is the
    /// same file (device and inode) and not shorter than was read.
    fn open(&mut self, saved: Option<Position>) -> anyhow::Result<()> {
        let mut file =
            File::open(&self.path).with_context(|| format!("opening {}", self.path.display()))?;
        let meta = file.metadata()?;
        (self.dev, self.ino, self.pos) = (meta.dev(), meta.ino(), 0);
        if let Some(p) =
            saved.filter(|p| p.dev == meta.dev() && p.ino == meta.ino() && p.until <= meta.len())
        {
            tracing::info!(file = %self.name, offset = p.offset, until = p.until, open = p.open.len(), "resuming");
            file.seek(SeekFrom::Start(p.offset))?;
            self.pos = p.offset;
            self.asm.replay(Replay {
                open: p.open,
                until: p.until,
            });
        }
        self.file = Some(file);
        Ok(())
    }

    /// One poll: reads what is new, publishes, saves. Returns whether
    /// anything was read.
    fn turn(
        &mut self,
        conn: &mut redis::Connection,
        keys: &Keys,
        args: &ImportArgs,
    ) -> anyhow::Result<bool> {
        let read = self.read_new(conn, keys, args)?;
        // Rotation or truncation, judged after the old file was drained.
        match std::fs::metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) != (self.dev, self.ino) => {
                tracing::info!(file = %self.name, "rotated: reading the new file");
                self.asm.rebase();
                self.open(None)?;
                self.read_new(conn, keys, args)?;
            }
            Ok(m) if m.len() < self.pos => {
                tracing::info!(file = %self.name, "truncated: reading from the start");
                self.asm.rebase();
                self.open(None)?;
                self.read_new(conn, keys, args)?;
            }
            _ => {}
        }
        Ok(read)
    }

    fn read_new(
        &mut self,
        conn: &mut redis::Connection,
        keys: &Keys,
        args: &ImportArgs,
    ) -> anyhow::Result<bool> {
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        file.seek(SeekFrom::Start(self.pos))?;
        let mut lines = Lines::new(&*file);
        let (start, mut done) = (self.pos, Vec::new());
        while self.pos - start < BYTES_PER_TURN {
            let Some(Line {
                bytes,
                consumed,
                complete,
            }) = lines.next_line()?
            else {
                break;
            };
            if !complete {
                break; // Cowrie is still writing it.
            }
            done.extend(self.asm.push_line(&bytes, self.pos));
            self.pos += consumed;
        }
        if self.pos == start {
            return Ok(false);
        }
        publish(conn, keys, args, &done, &mut self.totals)?;
        let p = Position {
            offset: self.asm.resume_offset(self.pos),
            until: self.pos,
            dev: self.dev,
            ino: self.ino,
            open: self.asm.open_sessions().into_iter().collect(),
        };
        save_position(conn, keys, &args.source, &self.name, &p)?;
        let st = self.asm.stats();
        tracing::info!(
            file = %self.name, records = st.records, sessions = st.sessions,
            published = self.totals.published, duplicates = self.totals.duplicates,
            malformed = st.malformed, unknown_event_ids = st.unknown_event_ids, "read"
        );
        Ok(true)
    }
}
