//! [`Sym`]: an interned, shared, immutable string for the evidence model.
//!
//! Most strings an observation holds are shared by thousands of others:
//! fingerprint kinds, common tool fingerprints, decky ids, stock commands,
//! wordlist credentials. Held as `String`s each was its own allocation (24
//! bytes inline plus the text); a `Sym` is one pointer (`arcstr::ArcStr`,
//! 8 bytes, the count and length in front of the text) and every equal
//! string read through [`Sym::new`] shares one allocation.
//!
//! A `Sym` *is* its text: equality, order and hash are the `str`'s (so a
//! `SortedSet<Sym>` orders, and a `HashMap` keyed by `Sym` hashes, exactly
//! as with `String`), it derefs and borrows as `&str`, and serde writes and
//! reads it as a plain string. Interning changes only where the bytes live.
//!
//! # The interner
//!
//! A process-wide table, split into [`SHARDS`] mutex-guarded hash tables
//! so that threads interning at once rarely wait on each other. Hashing is
//! the standard library's keyed SipHash, since every string interned comes
//! from an attacker (a flood of crafted collisions must not turn a lookup
//! linear). The table holds one reference of each string; a string nobody
//! else holds any more is removed by a sweep that runs when a shard has
//! doubled since its last sweep, so the table stays within twice the live
//! strings and a hostile stream of unique values is not kept forever.
//! The sweep cannot race a new holder: only the table can hand out a
//! reference to a string whose count is one, and it does so under the
//! shard's lock. In front of the table each thread keeps a small cache of
//! the strings it interned last (a hit takes no lock); a cached string has
//! a count of two at least, so it is never swept while cached.

use arcstr::ArcStr;
use hashbrown::HashTable;
use serde::de::{Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};
use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::ops::Deref;
use std::sync::{LazyLock, Mutex};

/// An interned string (see the module doc).
/// Equality, order and hash are the text's (`ArcStr`'s are).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Sym(ArcStr);

impl Ord for Sym {
    /// The text's order; the same allocation is equal without reading it
    /// (a map keyed by uuids is mostly looked up with the key it holds).
    fn cmp(&self, other: &Sym) -> std::cmp::Ordering {
        if ArcStr::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.0.as_str().cmp(other.0.as_str())
    }
}

impl PartialOrd for Sym {
    fn partial_cmp(&self, other: &Sym) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Shards of the interner table; a power of two.
pub const SHARDS: usize = 32;

/// Entries a shard holds before its first sweep.
const FIRST_SWEEP_AT: usize = 1024;

/// Slots of each thread's cache of recently interned strings.
const RECENT_SLOTS: usize = 1024;

thread_local! {
    /// The strings this thread interned last, by hash: most are asked for
    /// again soon (a fingerprint kind, a decky id, a stock command), and a
    /// hit here takes no lock and probes no shared table. Each slot holds
    /// one reference, so at most `RECENT_SLOTS` strings per thread outlive
    /// their last holder until overwritten.
    static RECENT: RefCell<Vec<Option<(u64, ArcStr)>>> =
        RefCell::new(vec![None; RECENT_SLOTS]);
}

struct Shard {
    table: HashTable<ArcStr>,
    /// Entries after the last sweep; the next runs at twice as many.
    swept: usize,
}

struct Interner {
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

static INTERNER: LazyLock<Interner> = LazyLock::new(|| Interner {
    hasher: RandomState::new(),
    shards: (0..SHARDS)
        .map(|_| {
            Mutex::new(Shard {
                table: HashTable::new(),
                swept: 0,
            })
        })
        .collect(),
});

impl Interner {
    /// The interned `s`, whose hash is `hash`.
    fn intern(&self, s: &str, hash: u64) -> ArcStr {
        // The low bits pick the table's bucket; the high ones the shard.
        let shard = (hash >> (64 - SHARDS.trailing_zeros())) as usize;
        let mut guard = self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let shard = &mut *guard;
        if let Some(found) = shard.table.find(hash, |a| a.as_str() == s) {
            return found.clone();
        }
        if shard.table.len() >= (2 * shard.swept).max(FIRST_SWEEP_AT) {
            // Only the table holds a string of count one (and literals,
            // which have no count, are never in it).
            shard
                .table
                .retain(|a| ArcStr::strong_count(a).is_none_or(|n| n > 1));
            shard.swept = shard.table.len();
        }
        let a = ArcStr::from(s);
        let hasher = &self.hasher;
        shard
            .table
            .insert_unique(hash, a.clone(), |a| hasher.hash_one(a.as_str()));
        a
    }

    /// Strings in the table (live or not yet swept).
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.table.len()))
            .sum()
    }
}

impl Sym {
    /// The interned string equal to `s` (one allocation per distinct text
    /// while any holder lives; the empty string allocates nothing).
    pub fn new(s: &str) -> Sym {
        if s.is_empty() {
            return Sym::default();
        }
        let hash = INTERNER.hasher.hash_one(s);
        let slot = hash as usize % RECENT_SLOTS;
        RECENT.with(|recent| {
            let mut recent = recent.borrow_mut();
            if let Some((h, a)) = &recent[slot] {
                if *h == hash && a.as_str() == s {
                    return Sym(a.clone());
                }
            }
            let a = INTERNER.intern(s, hash);
            recent[slot] = Some((hash, a.clone()));
            Sym(a)
        })
    }

    /// `s` as a `Sym` of its own, not entered in the interner's table: for
    /// a text that is new where it is read and is then shared by cloning
    /// (an observation's uuid as an event names it: the store, the groups
    /// and the graphs all clone the stored observation's). Equality, order
    /// and hash are the text's as for every `Sym`; only the sharing of
    /// equal texts read elsewhere is given up, and the table is spared a
    /// probe and an entry per observation.
    pub fn unique(s: &str) -> Sym {
        if s.is_empty() {
            return Sym::default();
        }
        Sym(ArcStr::from(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address of the text: equal for clones, and unique among the
    /// strings alive (a key for memos that hold the `Sym` they key by).
    pub fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// Whether `a` and `b` share one allocation (true for any two equal
    /// interned strings).
    pub fn ptr_eq(a: &Sym, b: &Sym) -> bool {
        ArcStr::ptr_eq(&a.0, &b.0)
    }

    /// Strings the interner's table holds now, live or not yet swept (for
    /// tests and benches).
    pub fn interned() -> usize {
        INTERNER.len()
    }
}

impl Deref for Sym {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Sym {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Sym {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl From<&str> for Sym {
    fn from(s: &str) -> Sym {
        Sym::new(s)
    }
}

impl From<&String> for Sym {
    fn from(s: &String) -> Sym {
        Sym::new(s)
    }
}

impl From<String> for Sym {
    fn from(s: String) -> Sym {
        Sym::new(&s)
    }
}

impl From<&Sym> for Sym {
    fn from(s: &Sym) -> Sym {
        s.clone()
    }
}

impl From<Sym> for String {
    fn from(s: Sym) -> String {
        s.as_str().to_string()
    }
}

macro_rules! eq_with {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Sym {
            fn eq(&self, other: &$t) -> bool {
                self.as_str() == AsRef::<str>::as_ref(other)
            }
        }
        impl PartialEq<Sym> for $t {
            fn eq(&self, other: &Sym) -> bool {
                AsRef::<str>::as_ref(self) == other.as_str()
            }
        }
    )*};
}

eq_with!(str, &str, String);

impl Serialize for Sym {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Sym {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sym, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Sym;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E>(self, s: &str) -> Result<Sym, E> {
                Ok(Sym::new(s))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn equal_texts_share_one_allocation() {
        let a = Sym::new("uname -a");
        let b = Sym::from(String::from("uname -a"));
        let c: Sym = serde_json::from_str(r#""uname -a""#).unwrap();
        assert!(Sym::ptr_eq(&a, &b) && Sym::ptr_eq(&a, &c));
        assert!(!Sym::ptr_eq(&a, &Sym::new("uname")));
        assert_eq!(Sym::new(""), Sym::default());
    }

    #[test]
    fn a_unique_sym_is_its_text_but_not_in_the_table() {
        let interned = Sym::new("obs-unique-1");
        let unique = Sym::unique("obs-unique-1");
        assert!(!Sym::ptr_eq(&interned, &unique));
        // The table still hands out its own string, not the unique one.
        assert!(Sym::ptr_eq(&Sym::new("obs-unique-1"), &interned));
        let alone = Sym::unique("obs-unique-2");
        assert!(!Sym::ptr_eq(&Sym::new("obs-unique-2"), &alone));
        // Equal, ordered and hashed as the text, like any Sym.
        assert_eq!(interned, unique);
        assert_eq!(interned.cmp(&unique), std::cmp::Ordering::Equal);
        assert!(Sym::unique("a") < Sym::new("b") && Sym::new("a") < Sym::unique("b"));
        let state = RandomState::new();
        assert_eq!(state.hash_one(&interned), state.hash_one(&unique));
        let set: BTreeSet<Sym> = [interned.clone(), unique.clone()].into_iter().collect();
        assert_eq!(set.len(), 1);
        // A clone shares the allocation; the empty text is the default.
        assert!(Sym::ptr_eq(&unique, &unique.clone()));
        assert_eq!(unique.addr(), unique.clone().addr());
        assert_eq!(Sym::unique(""), Sym::default());
    }

    #[test]
    fn strings_no_one_holds_are_swept() {
        // Unique texts, dropped at once: however many, the table keeps
        // within twice the live strings of each shard (plus the first
        // sweep's allowance), not all of them.
        let live: Vec<Sym> = (0..100).map(|i| Sym::new(&format!("kept-{i}"))).collect();
        for i in 0..200_000 {
            drop(Sym::new(&format!("sweep-me-{i}")));
        }
        assert!(
            Sym::interned() < SHARDS * 2 * FIRST_SWEEP_AT,
            "{} strings in the table",
            Sym::interned()
        );
        for (i, s) in live.iter().enumerate() {
            assert!(Sym::ptr_eq(s, &Sym::new(&format!("kept-{i}"))));
        }
    }

    proptest! {
        /// Order, equality, hash and JSON are the `String`'s.
        #[test]
        fn behaves_as_its_string(a in prop::collection::vec(".{0,6}", 0..40)) {
            let strings: BTreeSet<String> = a.iter().cloned().collect();
            let syms: BTreeSet<Sym> = a.iter().map(Sym::from).collect();
            prop_assert_eq!(
                syms.iter().map(Sym::as_str).collect::<Vec<_>>(),
                strings.iter().map(String::as_str).collect::<Vec<_>>()
            );
            for (x, y) in a.iter().zip(a.iter().skip(1)) {
                let (sx, sy) = (Sym::from(x), Sym::from(y));
                prop_assert_eq!(sx == sy, x == y);
                prop_assert_eq!(sx.cmp(&sy), x.cmp(y));
                let h = RandomState::new();
                prop_assert_eq!(h.hash_one(&sx), h.hash_one(x.as_str()));
                prop_assert!(syms.contains(x.as_str()));
            }
            let json = serde_json::to_string(&syms).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&strings).unwrap());
            prop_assert_eq!(serde_json::from_str::<BTreeSet<Sym>>(&json).unwrap(), syms);
        }
    }
}
