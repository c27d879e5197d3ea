//! A JSON value that borrows its strings from the input where it can: what
//! input validation reads a payload into. `serde_json::Value` copies every
//! key and string into its own allocation and every object into a tree map,
//! which cost as much as the rest of validating an entry; a payload is read
//! once and dropped, so this keeps objects as small vectors and strings as
//! slices of the payload (copied only when they hold escapes).
//!
//! It parses exactly what `serde_json::Value` parses (the same parser and
//! limits), and an object answers with the *last* value of a key given
//! twice, as `Value` does. `preview` is how an attacker string read from
//! it is quoted in an error message (by the parser and the timestamp codec).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// One JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// A JSON object: its members in input order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Object<'a> {
    /// The value of `key` (the last one when the key is given twice).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'a> Json<'a> {
    /// Parses one JSON document.
    pub fn parse(s: &'a str) -> Result<Json<'a>, serde_json::Error> {
        serde_json::from_str(s)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json<'a>, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        // serde_json hands over finite numbers only; `Value` would hold the
        // same `Number`.
        Ok(serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s.to_string())))
    }

    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some((k, v)) = map.next_entry::<Key<'de>, Json<'de>>()? {
            members.push((k.0, v));
        }
        Ok(Json::Object(Object(members)))
    }
}

/// An object key, borrowed when it holds no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'a>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Shortens an attacker string for an error message.
pub(crate) fn preview(s: &str) -> String {
    let mut out: String = s.chars().take(40).flat_map(char::escape_default).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The same document through `Value`, for comparison.
    fn same(j: &Json, v: &Value) -> bool {
        match (j, v) {
            (Json::Null, Value::Null) => true,
            (Json::Bool(a), Value::Bool(b)) => a == b,
            (Json::Number(a), Value::Number(b)) => a == b,
            (Json::String(a), Value::String(b)) => a == b,
            (Json::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
            }
            (Json::Object(a), Value::Object(b)) => {
                b.iter().all(|(k, y)| a.get(k).is_some_and(|x| same(x, y)))
                    && a.0.iter().all(|(k, _)| b.contains_key(k.as_ref()))
            }
            _ => false,
        }
    }

    #[test]
    fn parses_what_value_parses_and_refuses_what_it_refuses() {
        for doc in [
            r#"{"a":1,"b":[true,false,null,-3,2.5e3,"x\"y\u00e9"],"c":{"d":{}}}"#,
            r#"{"k":1,"k":2}"#,
            r#"{"esc\naped":"v","plain":"w"}"#,
            "18446744073709551615",
            "-9223372036854775808",
            "1e400",
            r#""\ud800""#,
            "[1,]",
            "{\"a\":1} trailing",
            "",
            "nul",
        ] {
            let j = Json::parse(doc);
            let v: Result<Value, _> = serde_json::from_str(doc);
            match (&j, &v) {
                (Ok(j), Ok(v)) => assert!(same(j, v), "{doc}: {j:?} vs {v:?}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{doc}"),
                _ => panic!("{doc}: {j:?} vs {v:?}"),
            }
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert_eq!(
            Json::parse(&deep).unwrap_err().to_string(),
            serde_json::from_str::<Value>(&deep)
                .unwrap_err()
                .to_string()
        );
    }

    fn arb_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                proptest::collection::btree_map(".{0,4}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_document_reads_as_value_reads_it(v in arb_value()) {
            let doc = v.to_string();
            let j = Json::parse(&doc).unwrap();
            let back: Value = serde_json::from_str(&doc).unwrap();
            proptest::prop_assert!(same(&j, &back), "{doc}");
        }
    }

    #[test]
    fn a_key_given_twice_answers_with_its_last_value() {
        let j = Json::parse(r#"{"k":1,"x":0,"k":"two"}"#).unwrap();
        assert_eq!(
            j.as_object().unwrap().get("k").unwrap().as_str(),
            Some("two")
        );
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let j = Json::parse(r#"{"a":"plain","b":"esc\"aped"}"#).unwrap();
        let o = j.as_object().unwrap();
        assert!(matches!(
            o.get("a"),
            Some(Json::String(Cow::Borrowed("plain")))
        ));
        assert!(matches!(o.get("b"), Some(Json::String(Cow::Owned(_)))));
    }
}
