//! [`SortedSet`]: an ordered set that is a sorted vector while small.
//!
//! The evidence model and the roll-ups hold millions of small sets (an
//! observation's fingerprints, a session's commands and credentials, an
//! identity's hashes), most of one to three values. A `BTreeSet` with even
//! one value allocates a node with room for eleven, which made the sets the
//! bulk of the daemon's memory; a vector holds exactly what it has. Past
//! [`SortedSet::LARGE`] values the set turns into a `BTreeSet`, so that a
//! hostile source piling thousands of distinct values onto one observation
//! costs logarithmic, not linear, time per insert. The small form is a
//! boxed slice of exactly its values and the large one a boxed tree, so a
//! set is 16 bytes (two words), not the 32 of a vector beside a tree: a
//! session alone holds six sets, most of them empty.
//!
//! It behaves as a `BTreeSet`: iteration in ascending order, no duplicates,
//! and it is written to JSON as the same array (input is sorted and
//! de-duplicated when read, so any array loads).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::collections::{btree_set, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};

/// An ordered set of `T`, stored as a sorted vector up to
/// [`SortedSet::LARGE`] values and as a `BTreeSet` beyond.
#[derive(Clone)]
pub struct SortedSet<T>(Repr<T>);

#[derive(Clone)]
enum Repr<T> {
    /// Sorted ascending, no duplicates, at most `LARGE` values.
    Small(Box<[T]>),
    /// More than `LARGE` values (a set never shrinks back). Boxed so that
    /// the set is two words: the rare large set pays one allocation more.
    #[allow(clippy::box_collection)]
    Large(Box<BTreeSet<T>>),
}

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        SortedSet(Repr::Small(Box::default()))
    }
}

impl<T> SortedSet<T> {
    /// Values above which the set is a `BTreeSet`.
    pub const LARGE: usize = 64;

    /// An empty set (allocates nothing).
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Small(v) => v.len(),
            Repr::Large(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values in ascending order.
    pub fn iter(&self) -> Iter<'_, T> {
        match &self.0 {
            Repr::Small(v) => Iter::Small(v.iter()),
            Repr::Large(s) => Iter::Large(s.iter()),
        }
    }

    /// The smallest value.
    pub fn first(&self) -> Option<&T> {
        self.iter().next()
    }
}

impl<T: Ord> SortedSet<T> {
    /// Whether `value` is in the set.
    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match &self.0 {
            Repr::Small(v) => v.binary_search_by(|x| x.borrow().cmp(value)).is_ok(),
            Repr::Large(s) => s.contains(value),
        }
    }

    /// Adds `value`; true when it was not there yet.
    pub fn insert(&mut self, value: T) -> bool {
        match &mut self.0 {
            Repr::Large(s) => s.insert(value),
            Repr::Small(v) => match v.binary_search(&value) {
                Ok(_) => false,
                Err(_) if v.len() >= Self::LARGE => {
                    let mut s: BTreeSet<T> = std::mem::take(v).into_vec().into_iter().collect();
                    s.insert(value);
                    self.0 = Repr::Large(Box::new(s));
                    true
                }
                Err(at) => {
                    // Grown one slot at a time (the slice holds exactly its
                    // values; at most `LARGE` are moved).
                    let mut grown = std::mem::take(v).into_vec();
                    grown.reserve_exact(1);
                    grown.insert(at, value);
                    *v = grown.into_boxed_slice();
                    true
                }
            },
        }
    }

    /// The set of `values` in a vector already sorted and de-duplicated.
    fn from_sorted(v: Vec<T>) -> Self {
        if v.len() > Self::LARGE {
            SortedSet(Repr::Large(Box::new(v.into_iter().collect())))
        } else {
            SortedSet(Repr::Small(v.into_boxed_slice()))
        }
    }
}

impl SortedSet<String> {
    /// The distinct values of borrowed strings, each allocated once
    /// however often it repeats (sorted and de-duplicated while borrowed).
    pub fn from_strs(mut values: Vec<&str>) -> Self {
        values.sort_unstable();
        values.dedup();
        Self::from_sorted(values.into_iter().map(str::to_string).collect())
    }
}

impl SortedSet<crate::evidence::Sym> {
    /// The distinct values of borrowed interned strings (sorted and
    /// de-duplicated while borrowed; a clone is a count, not a copy).
    pub fn from_syms(mut values: Vec<&crate::evidence::Sym>) -> Self {
        values.sort_unstable();
        values.dedup();
        Self::from_sorted(values.into_iter().cloned().collect())
    }
}

impl<T: Ord + Clone> SortedSet<T> {
    /// Adds every value of `other`; true when the set gained any. Two small
    /// sets are merged in one pass into a vector of exactly the joined size.
    pub fn union_with(&mut self, other: &SortedSet<T>) -> bool {
        let (Repr::Small(mine), Repr::Small(theirs)) = (&mut self.0, &other.0) else {
            let mut changed = false;
            for x in other.iter() {
                if !self.contains(x) {
                    changed |= self.insert(x.clone());
                }
            }
            return changed;
        };
        let new = theirs
            .iter()
            .filter(|x| mine.binary_search(x).is_err())
            .count();
        if new == 0 {
            return false;
        }
        let mut joined = Vec::with_capacity(mine.len() + new);
        let mut a = std::mem::take(mine).into_vec().into_iter().peekable();
        let mut b = theirs.iter().peekable();
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => match x.cmp(y) {
                    std::cmp::Ordering::Less => joined.push(a.next().expect("peeked")),
                    std::cmp::Ordering::Greater => joined.push(b.next().expect("peeked").clone()),
                    std::cmp::Ordering::Equal => {
                        joined.push(a.next().expect("peeked"));
                        b.next();
                    }
                },
                (Some(_), None) => joined.extend(a.by_ref()),
                (None, Some(_)) => joined.extend(b.by_ref().cloned()),
                (None, None) => break,
            }
        }
        *self = Self::from_sorted(joined);
        true
    }
}

impl<T: Ord> FromIterator<T> for SortedSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v: Vec<T> = iter.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Self::from_sorted(v)
    }
}

impl<T: Ord> Extend<T> for SortedSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for x in iter {
            self.insert(x);
        }
    }
}

impl<'a, T: Ord + Copy + 'a> Extend<&'a T> for SortedSet<T> {
    fn extend<I: IntoIterator<Item = &'a T>>(&mut self, iter: I) {
        self.extend(iter.into_iter().copied());
    }
}

impl<T: Ord, const N: usize> From<[T; N]> for SortedSet<T> {
    fn from(values: [T; N]) -> Self {
        values.into_iter().collect()
    }
}

impl<T: PartialEq> PartialEq for SortedSet<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for SortedSet<T> {}

impl<T: PartialOrd> PartialOrd for SortedSet<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.iter().partial_cmp(other.iter())
    }
}

impl<T: Ord> Ord for SortedSet<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.iter().cmp(other.iter())
    }
}

impl<T: Hash> Hash for SortedSet<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for x in self.iter() {
            x.hash(state);
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for SortedSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<T: Serialize> Serialize for SortedSet<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de, T: Deserialize<'de> + Ord> Deserialize<'de> for SortedSet<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(d).map(SortedSet::from_iter)
    }
}

/// Iterator over a [`SortedSet`] in ascending order.
#[derive(Clone)]
pub enum Iter<'a, T> {
    Small(std::slice::Iter<'a, T>),
    Large(btree_set::Iter<'a, T>),
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        match self {
            Iter::Small(i) => i.next(),
            Iter::Large(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Small(i) => i.size_hint(),
            Iter::Large(i) => i.size_hint(),
        }
    }
}

impl<T> DoubleEndedIterator for Iter<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(i) => i.next_back(),
            Iter::Large(i) => i.next_back(),
        }
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<'a, T> IntoIterator for &'a SortedSet<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// Owning iterator over a [`SortedSet`] in ascending order.
pub enum IntoIter<T> {
    Small(std::vec::IntoIter<T>),
    Large(btree_set::IntoIter<T>),
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self {
            IntoIter::Small(i) => i.next(),
            IntoIter::Large(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            IntoIter::Small(i) => i.size_hint(),
            IntoIter::Large(i) => i.size_hint(),
        }
    }
}

impl<T> IntoIterator for SortedSet<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        match self.0 {
            Repr::Small(v) => IntoIter::Small(v.into_vec().into_iter()),
            Repr::Large(s) => IntoIter::Large(s.into_iter()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn model(ops: &[u16]) -> BTreeSet<u16> {
        ops.iter().copied().collect()
    }

    proptest! {
        /// Inserting, extending, collecting and joining give what a
        /// `BTreeSet` gives, on both sides of the size switch.
        #[test]
        fn behaves_as_a_btreeset(a in prop::collection::vec(0u16..300, 0..200),
                                 b in prop::collection::vec(0u16..300, 0..200)) {
            let mut s = SortedSet::new();
            for (i, x) in a.iter().enumerate() {
                prop_assert_eq!(s.insert(*x), !a[..i].contains(x));
            }
            let ma = model(&a);
            prop_assert_eq!(s.iter().copied().collect::<Vec<_>>(), ma.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(s.len(), ma.len());
            prop_assert_eq!(s.first(), ma.first());
            for x in 0..300u16 {
                prop_assert_eq!(s.contains(&x), ma.contains(&x));
            }
            let other: SortedSet<u16> = b.iter().copied().collect();
            let mut joined = s.clone();
            let mut mjoined = ma.clone();
            mjoined.extend(b.iter().copied());
            prop_assert_eq!(joined.union_with(&other), mjoined.len() > ma.len());
            prop_assert_eq!(joined.iter().copied().collect::<Vec<_>>(), mjoined.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(joined.len(), mjoined.len());
            let mut extended = s.clone();
            extended.extend(b.iter().copied());
            prop_assert_eq!(&extended, &joined);
            prop_assert_eq!(extended.into_iter().collect::<Vec<_>>(), mjoined.into_iter().collect::<Vec<_>>());
        }

        /// JSON is the array a `BTreeSet` writes, and any array reads back
        /// as the sorted, de-duplicated set.
        #[test]
        fn json_is_a_btreesets(a in prop::collection::vec(0u16..300, 0..200)) {
            let s: SortedSet<u16> = a.iter().copied().collect();
            let json = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&model(&a)).unwrap());
            let raw = serde_json::to_string(&a).unwrap();
            prop_assert_eq!(serde_json::from_str::<SortedSet<u16>>(&raw).unwrap(), s);
        }
    }

    #[test]
    fn from_strs_is_the_set_of_the_strings() {
        let set = SortedSet::from_strs(vec!["b", "a", "b", "c", "a"]);
        assert_eq!(set, ["a", "b", "c"].map(String::from).into());
        let many: Vec<String> = (0..100).rev().map(|i| format!("{i:03}")).collect();
        let set = SortedSet::from_strs(many.iter().map(String::as_str).chain(["050"]).collect());
        assert_eq!(set, many.iter().cloned().collect());
        assert!(matches!(set.0, Repr::Large(_)));
    }

    #[test]
    fn a_small_and_a_large_set_of_the_same_values_are_equal() {
        let values: Vec<u32> = (0..100).collect();
        let large: SortedSet<u32> = values.iter().copied().collect();
        let mut grown = SortedSet::new();
        for x in values.iter().rev() {
            grown.insert(*x);
        }
        assert_eq!(large, grown);
        assert!(matches!(large.0, Repr::Large(_)));
        let small: SortedSet<u32> = [3, 1, 2, 1].into();
        assert!(matches!(small.0, Repr::Small(ref v) if **v == [1, 2, 3]));
        assert_ne!(small, large);
    }

    #[test]
    fn a_set_is_two_words() {
        assert_eq!(
            std::mem::size_of::<SortedSet<String>>(),
            2 * std::mem::size_of::<usize>()
        );
    }
}
