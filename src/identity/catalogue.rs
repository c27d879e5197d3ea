//! The catalogues of what says nothing about *who* (SPEC §8, Rarity and
//! Behaviour): known client-library fingerprints (`config/tooling.toml`,
//! measured by the project from the real clients) and stock behaviour
//! (`config/behaviour.toml`: wordlist passwords and credential pairs, stock
//! commands). A catalogued value is tooling or background however few
//! observations carry it; a value outside the catalogues falls back to the
//! count rule (and, for passwords, to their strength).
//!
//! Both files are compiled into the binary; operators lay files of their own
//! over them (`identity.tooling_file`, `identity.behaviour_file`), which add
//! entries (a catalogue only grows: removing a shipped entry would make a
//! library's scanners one operator again).

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Deserialize;
use std::sync::{Arc, OnceLock};

/// The shipped fingerprint catalogue.
pub const TOOLING_TOML: &str = include_str!("../../config/tooling.toml");
/// The shipped behaviour catalogue.
pub const BEHAVIOUR_TOML: &str = include_str!("../../config/behaviour.toml");

/// Fingerprint kinds a catalogue entry may name.
pub const CATALOGUE_KINDS: [&str; 4] = ["hassh", "ja3", "ja4", "ssh_client_version"];

/// Longest accepted string in a catalogue entry, in bytes.
const MAX_VALUE_LEN: usize = 4096;

/// Why a catalogue file was refused; names the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("not a valid catalogue file: {0}")]
    Toml(String),
    #[error("unsupported catalogue version {0} (this build reads version 1)")]
    Version(u32),
    #[error("{entry} #{index}: {problem}")]
    Entry {
        entry: &'static str,
        index: usize,
        problem: String,
    },
}

/// What a catalogued fingerprint is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Library {
    pub client: String,
    pub client_version: String,
}

impl Library {
    /// `paramiko 3.5.1`.
    pub fn label(&self) -> String {
        if self.client_version.is_empty() {
            self.client.clone()
        } else {
            format!("{} {}", self.client, self.client_version)
        }
    }
}

/// The merged catalogues.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalogue {
    /// `(kind, value)` → the libraries measured with it (several versions
    /// of one library often share a fingerprint).
    fingerprints: FxHashMap<(String, String), Vec<Library>>,
    /// Passwords any scanner may try, whatever the user name.
    passwords: FxHashSet<String>,
    /// `(user, password)` pairs (device and image defaults).
    pairs: FxHashSet<(String, String)>,
    /// Stock command lines, whitespace-normalised.
    commands: FxHashSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolingFile {
    version: u32,
    #[serde(default)]
    fingerprint: Vec<FingerprintEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FingerprintEntry {
    kind: String,
    value: String,
    client: String,
    #[serde(default)]
    client_version: String,
    measured: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BehaviourFile {
    version: u32,
    #[serde(default)]
    password: Vec<PasswordEntry>,
    #[serde(default)]
    credential: Vec<CredentialEntry>,
    #[serde(default)]
    command: Vec<CommandEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordEntry {
    value: String,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialEntry {
    user: String,
    password: String,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandEntry {
    value: String,
    source: String,
}

fn entry_err(entry: &'static str, index: usize, problem: impl Into<String>) -> CatalogueError {
    CatalogueError::Entry {
        entry,
        index: index + 1,
        problem: problem.into(),
    }
}

/// A required, bounded string field.
fn field(
    entry: &'static str,
    index: usize,
    name: &str,
    v: &str,
    may_be_empty: bool,
) -> Result<(), CatalogueError> {
    if !may_be_empty && v.trim().is_empty() {
        return Err(entry_err(
            entry,
            index,
            format!("`{name}` must not be empty"),
        ));
    }
    if v.len() > MAX_VALUE_LEN {
        return Err(entry_err(
            entry,
            index,
            format!("`{name}` is longer than {MAX_VALUE_LEN} bytes"),
        ));
    }
    Ok(())
}

/// A command line as the catalogue compares it: runs of whitespace are one
/// space, no leading or trailing space.
pub fn normalise_command(c: &str) -> String {
    c.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Catalogue {
    /// The shipped catalogues (parsed once per process).
    pub fn embedded() -> Arc<Catalogue> {
        static EMBEDDED: OnceLock<Arc<Catalogue>> = OnceLock::new();
        EMBEDDED
            .get_or_init(|| {
                let mut c = Catalogue::default();
                // The shipped files are tested (`shipped_catalogues_parse`);
                // a broken one must not stop the daemon, it only weakens rarity.
                if let Err(e) = c.add_tooling(TOOLING_TOML) {
                    warn_shipped(&format!("config/tooling.toml: {e}"));
                }
                if let Err(e) = c.add_behaviour(BEHAVIOUR_TOML) {
                    warn_shipped(&format!("config/behaviour.toml: {e}"));
                }
                Arc::new(c)
            })
            .clone()
    }

    /// Adds the entries of a fingerprint catalogue file.
    pub fn add_tooling(&mut self, text: &str) -> Result<usize, CatalogueError> {
        let f: ToolingFile =
            toml::from_str(text).map_err(|e| CatalogueError::Toml(e.to_string()))?;
        if f.version != 1 {
            return Err(CatalogueError::Version(f.version));
        }
        let n = f.fingerprint.len();
        let mut staged = Vec::with_capacity(n);
        for (i, e) in f.fingerprint.into_iter().enumerate() {
            if !CATALOGUE_KINDS.contains(&e.kind.as_str()) {
                return Err(entry_err(
                    "fingerprint",
                    i,
                    format!(
                        "unknown kind {:?} (expected one of {})",
                        e.kind,
                        CATALOGUE_KINDS.join(", ")
                    ),
                ));
            }
            field("fingerprint", i, "value", &e.value, false)?;
            field("fingerprint", i, "client", &e.client, false)?;
            field("fingerprint", i, "client_version", &e.client_version, true)?;
            field("fingerprint", i, "measured", &e.measured, false)?;
            staged.push(e);
        }
        for e in staged {
            let lib = Library {
                client: e.client,
                client_version: e.client_version,
            };
            let libs = self.fingerprints.entry((e.kind, e.value)).or_default();
            if !libs.contains(&lib) {
                libs.push(lib);
            }
        }
        Ok(n)
    }

    /// Adds the entries of a behaviour catalogue file.
    pub fn add_behaviour(&mut self, text: &str) -> Result<usize, CatalogueError> {
        let f: BehaviourFile =
            toml::from_str(text).map_err(|e| CatalogueError::Toml(e.to_string()))?;
        if f.version != 1 {
            return Err(CatalogueError::Version(f.version));
        }
        for (i, e) in f.password.iter().enumerate() {
            field("password", i, "value", &e.value, true)?;
            field("password", i, "source", &e.source, false)?;
        }
        for (i, e) in f.credential.iter().enumerate() {
            field("credential", i, "user", &e.user, true)?;
            field("credential", i, "password", &e.password, true)?;
            field("credential", i, "source", &e.source, false)?;
        }
        for (i, e) in f.command.iter().enumerate() {
            field("command", i, "value", &e.value, false)?;
            field("command", i, "source", &e.source, false)?;
        }
        let n = f.password.len() + f.credential.len() + f.command.len();
        self.passwords
            .extend(f.password.into_iter().map(|e| e.value));
        self.pairs
            .extend(f.credential.into_iter().map(|e| (e.user, e.password)));
        self.commands
            .extend(f.command.into_iter().map(|e| normalise_command(&e.value)));
        Ok(n)
    }

    /// The libraries a fingerprint value was measured from, if catalogued.
    pub fn library(&self, kind: &str, value: &str) -> Option<&[Library]> {
        self.fingerprints
            .get(&(kind.to_string(), value.to_string()))
            .map(Vec::as_slice)
    }

    /// A tooling value as a person reads it: the catalogued libraries that
    /// send it by name (`paramiko 5.1.0`), `None` for an uncatalogued one.
    pub fn library_label(&self, kind: &str, value: &str) -> Option<String> {
        self.library(kind, value).map(|libs| {
            libs.iter()
                .map(|l| l.label())
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    /// Whether a credential pair is stock (its password or the pair is
    /// catalogued).
    pub fn stock_credential(&self, user: &str, password: &str) -> bool {
        self.passwords.contains(password)
            || self
                .pairs
                .contains(&(user.to_string(), password.to_string()))
    }

    /// Whether a command line is stock. Called for every command of every
    /// roll-up, so a command already in normal form (the usual case) is
    /// looked up without building a string.
    pub fn stock_command(&self, command: &str) -> bool {
        let normal = !command.starts_with(' ')
            && !command.ends_with(' ')
            && !command.contains("  ")
            && !command.contains(|c: char| c.is_whitespace() && c != ' ');
        if normal {
            self.commands.contains(command)
        } else {
            self.commands.contains(&normalise_command(command))
        }
    }

    /// Number of entries: fingerprints, passwords, pairs, commands.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.fingerprints.len(),
            self.passwords.len(),
            self.pairs.len(),
            self.commands.len(),
        )
    }
}

/// The core has no logger. A broken shipped file is caught by the tests
/// (`shipped_catalogues_parse`); should one ever ship, it is said on stderr.
fn warn_shipped(msg: &str) {
    eprintln!("clusterd: shipped catalogue refused: {msg}");
}

/// A shared catalogue handle that compares by content and defaults to the
/// shipped catalogues, so it can sit inside the identity weights.
#[derive(Clone)]
pub struct CatalogueRef(pub Arc<Catalogue>);

impl std::fmt::Debug for CatalogueRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (fps, pws, pairs, cmds) = self.0.counts();
        write!(
            f,
            "Catalogue({fps} fingerprints, {pws} passwords, {pairs} pairs, {cmds} commands)"
        )
    }
}

impl Default for CatalogueRef {
    fn default() -> Self {
        CatalogueRef(Catalogue::embedded())
    }
}

impl PartialEq for CatalogueRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

impl std::ops::Deref for CatalogueRef {
    type Target = Catalogue;
    fn deref(&self) -> &Catalogue {
        &self.0
    }
}

/// How guessable a password is, as the share of identity evidence it can
/// carry (0 = a wordlist would try it, 1 = nobody else would): 0 when it is
/// empty or equals the user name, otherwise a ramp over its brute-force
/// strength in bits (length × log2 of the character pool its classes span)
/// from `weak_bits` (0) to `strong_bits` (1). Catalogued passwords are
/// decided before this.
pub fn password_strength(user: &str, password: &str, weak_bits: f64, strong_bits: f64) -> f64 {
    if password.is_empty() || password.eq_ignore_ascii_case(user) {
        return 0.0;
    }
    let (mut lower, mut upper, mut digit, mut other) = (false, false, false, false);
    let mut len = 0usize;
    for ch in password.chars() {
        len += 1;
        if ch.is_ascii_lowercase() {
            lower = true
        } else if ch.is_ascii_uppercase() {
            upper = true
        } else if ch.is_ascii_digit() {
            digit = true
        } else {
            other = true
        }
    }
    let pool = 26 * lower as u32 + 26 * upper as u32 + 10 * digit as u32 + 33 * other as u32;
    let bits = len as f64 * (pool.max(2) as f64).log2();
    if bits <= weak_bits {
        0.0
    } else if bits >= strong_bits {
        1.0
    } else {
        (bits - weak_bits) / (strong_bits - weak_bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_catalogues_parse() {
        let mut c = Catalogue::default();
        assert!(c.add_tooling(TOOLING_TOML).unwrap() > 20);
        assert!(c.add_behaviour(BEHAVIOUR_TOML).unwrap() > 20);
        assert_eq!(c, *Catalogue::embedded());
        let paramiko = c
            .library("hassh", "4c94058d5e9e31659879f79fd5b46084")
            .expect("paramiko 5.1.0's HASSH is catalogued");
        assert_eq!(paramiko[0].label(), "paramiko 5.1.0");
        assert!(c.stock_credential("root", "123456"));
        assert!(c.stock_credential("pi", "raspberry"));
        assert!(!c.stock_credential("root", "Vx!9qLm#2026-kx"));
        assert!(c.stock_command("uname  -a"));
        assert!(c.stock_command("uname -a"));
        assert!(c.stock_command(" uname\t-a "));
        assert!(!c.stock_command("echo a7f3c9e1"));
    }

    #[test]
    fn bad_entries_are_named() {
        let mut c = Catalogue::default();
        let e = c
            .add_tooling("version = 1\n[[fingerprint]]\nkind = \"jarm\"\nvalue = \"x\"\nclient = \"c\"\nmeasured = \"m\"\n")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("fingerprint #1: unknown kind \"jarm\""),
            "{e}"
        );
        let e = c
            .add_tooling("version = 1\n[[fingerprint]]\nkind = \"hassh\"\nvalue = \"x\"\nclient = \"c\"\nmeasured = \" \"\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "fingerprint #1: `measured` must not be empty"
        );
        assert_eq!(
            c.add_behaviour("version = 2\n").unwrap_err(),
            CatalogueError::Version(2)
        );
        let e = c
            .add_behaviour("version = 1\n[[command]]\nvalue = \"ls\"\n")
            .unwrap_err();
        assert!(matches!(e, CatalogueError::Toml(_)), "{e}");
        assert_eq!(c, Catalogue::default(), "a refused file adds nothing");
    }

    #[test]
    fn password_strength_ramps_with_bits() {
        let s = |u, p| password_strength(u, p, 40.0, 60.0);
        assert_eq!(s("root", ""), 0.0);
        assert_eq!(s("admin", "Admin"), 0.0);
        assert_eq!(s("root", "12345678"), 0.0); // 26.6 bits
        assert_eq!(s("root", "Vx!9qLm#2026-kx"), 1.0); // 98 bits
        let mid = s("root", "qwerty123"); // 9 × log2(36) = 46.5 bits
        assert!(mid > 0.3 && mid < 0.35, "{mid}");
    }
}
