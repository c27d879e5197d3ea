//! [`Sessions`]: an observation's sessions, each once, ordered by id.
//!
//! Most observations have one to three sessions. They are kept in a vector
//! sorted by `session_id` (a B-tree map's node has room for eleven entries
//! and the id was stored twice, as key and in the session), and past
//! [`Sessions::LARGE`] in a B-tree map, so that a source reporting
//! thousands of sessions for one IP still costs logarithmic time per new
//! one. Written to JSON as the map from id to session it always was.

use super::Session;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{btree_map, BTreeMap};
use std::fmt;

/// An observation's sessions by `session_id`.
#[derive(Clone)]
pub struct Sessions(Repr);

#[derive(Clone)]
enum Repr {
    /// Sorted by `session_id`, ids distinct, at most `LARGE`: exactly its
    /// sessions (boxed slice and boxed map keep `Sessions` at two words).
    Small(Box<[Session]>),
    /// More than `LARGE` (never shrinks back).
    #[allow(clippy::box_collection)]
    Large(Box<BTreeMap<Box<str>, Box<Session>>>),
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions(Repr::Small(Box::default()))
    }
}

impl Sessions {
    /// Sessions above which they are kept in a B-tree map.
    pub const LARGE: usize = 64;

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Small(v) => v.len(),
            Repr::Large(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The session of this id.
    pub fn get(&self, id: &str) -> Option<&Session> {
        match &self.0 {
            Repr::Small(v) => v
                .binary_search_by(|s| (*s.session_id).cmp(id))
                .ok()
                .map(|i| &v[i]),
            Repr::Large(m) => m.get(id).map(|s| &**s),
        }
    }

    /// The sessions in ascending order of id.
    pub fn values(&self) -> Values<'_> {
        match &self.0 {
            Repr::Small(v) => Values::Small(v.iter()),
            Repr::Large(m) => Values::Large(m.values()),
        }
    }

    /// Adds a session, or merges it into the one of the same id (see
    /// [`Session::merge`]); true when anything changed.
    pub fn join(&mut self, session: Session) -> bool {
        match self.find(&session.session_id) {
            Ok(mine) => mine.merge(&session),
            Err(at) => {
                self.add(at, session);
                true
            }
        }
    }

    /// [`Sessions::join`] of a borrowed session (cloned only if new).
    pub fn join_ref(&mut self, session: &Session) -> bool {
        match self.find(&session.session_id) {
            Ok(mine) => mine.merge(session),
            Err(at) => {
                self.add(at, session.clone());
                true
            }
        }
    }

    /// The session of this id, or where a new one goes in the small vector
    /// (`None` when the sessions are large).
    fn find(&mut self, id: &str) -> Result<&mut Session, Option<usize>> {
        match &mut self.0 {
            Repr::Large(m) => m.get_mut(id).map(|s| &mut **s).ok_or(None),
            Repr::Small(v) => match v.binary_search_by(|s| (*s.session_id).cmp(id)) {
                Ok(i) => Ok(&mut v[i]),
                Err(i) => Err(Some(i)),
            },
        }
    }

    /// Adds a session whose id is not there yet; `at` is its place in the
    /// small vector (`None` when the sessions are large already).
    fn add(&mut self, at: Option<usize>, session: Session) {
        match (&mut self.0, at) {
            (Repr::Small(v), Some(at)) if v.len() < Self::LARGE => {
                let mut grown = std::mem::take(v).into_vec();
                grown.reserve_exact(1);
                grown.insert(at, session);
                *v = grown.into_boxed_slice();
            }
            (Repr::Small(v), _) => {
                let mut m: BTreeMap<Box<str>, Box<Session>> = std::mem::take(v)
                    .into_vec()
                    .into_iter()
                    .map(|s| (s.session_id.clone(), Box::new(s)))
                    .collect();
                m.insert(session.session_id.clone(), Box::new(session));
                self.0 = Repr::Large(Box::new(m));
            }
            (Repr::Large(m), _) => {
                m.insert(session.session_id.clone(), Box::new(session));
            }
        }
    }
}

/// Equal when they hold the same sessions, however they are kept.
impl PartialEq for Sessions {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.values().eq(other.values())
    }
}

impl Eq for Sessions {}

impl std::ops::Index<&str> for Sessions {
    type Output = Session;

    fn index(&self, id: &str) -> &Session {
        self.get(id).expect("no session of that id")
    }
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.values().map(|s| (&s.session_id, s)))
            .finish()
    }
}

impl Serialize for Sessions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.values().map(|x| (&x.session_id, x)))
    }
}

impl<'de> Deserialize<'de> for Sessions {
    /// Reads the map from id to session; a session is filed under its own
    /// `session_id`, and two entries of one id are merged.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Sessions;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of session id to session")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sessions, A::Error> {
                let mut out = Sessions::default();
                while map.next_key::<IgnoredAny>()?.is_some() {
                    out.join(map.next_value::<Session>()?);
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// The sessions of a [`Sessions`] in ascending order of id.
pub enum Values<'a> {
    Small(std::slice::Iter<'a, Session>),
    Large(btree_map::Values<'a, Box<str>, Box<Session>>),
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a Session;

    fn next(&mut self) -> Option<&'a Session> {
        match self {
            Values::Small(i) => i.next(),
            Values::Large(i) => i.next().map(|s| &**s),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Values::Small(i) => i.size_hint(),
            Values::Large(i) => i.size_hint(),
        }
    }
}

impl<'a> IntoIterator for &'a Sessions {
    type Item = &'a Session;
    type IntoIter = Values<'a>;

    fn into_iter(self) -> Values<'a> {
        self.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn session(id: u8, command: u8) -> Session {
        Session {
            session_id: format!("s{id:03}").into(),
            commands: [format!("c{command}").into()].into(),
            ..Default::default()
        }
    }

    proptest! {
        /// Joining sessions gives what a map from id to merged session
        /// gives, on both sides of the size switch, and the JSON is that
        /// map's.
        #[test]
        fn behaves_as_a_map_of_merged_sessions(reports in prop::collection::vec((0u8..120, 0u8..4), 0..300)) {
            let mut s = Sessions::default();
            let mut model: BTreeMap<String, Session> = BTreeMap::new();
            for (i, (id, c)) in reports.iter().enumerate() {
                let x = session(*id, *c);
                let changed = if i % 2 == 0 { s.join(x.clone()) } else { s.join_ref(&x) };
                let expected = match model.get_mut(&*x.session_id) {
                    Some(m) => m.merge(&x),
                    None => { model.insert(x.session_id.to_string(), x); true }
                };
                prop_assert_eq!(changed, expected);
            }
            prop_assert_eq!(s.len(), model.len());
            prop_assert_eq!(s.values().collect::<Vec<_>>(), model.values().collect::<Vec<_>>());
            for id in 0..120u8 {
                let id = format!("s{id:03}");
                prop_assert_eq!(s.get(&id), model.get(&id));
            }
            let json = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&model).unwrap());
            prop_assert_eq!(serde_json::from_str::<Sessions>(&json).unwrap(), s);
        }
    }

    #[test]
    fn a_session_is_read_under_its_own_id_and_one_id_twice_is_merged() {
        let (mut a, mut b) = (session(1, 1), session(1, 2));
        a.session_id = "s1".into();
        b.session_id = "s1".into();
        let json = serde_json::json!({ "x": a, "y": b }).to_string();
        let s: Sessions = serde_json::from_str(&json).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(
            s["s1"].commands.iter().collect::<Vec<_>>(),
            vec!["c1", "c2"]
        );
        assert!(s.get("x").is_none());
    }
}
