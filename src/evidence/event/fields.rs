//! Bounded readers of single payload values for the input parser: strings,
//! lists and ids checked against the [`Limits`], timestamps through the
//! codec, and the field path (`sessions[2].commands[0]`) an error names.

use super::{EntryError, Limits};
use crate::evidence::json::{Json, Object};
use crate::evidence::time::parse_json_timestamp;
use crate::evidence::Millis;
use std::fmt;

/// Where a value sits in a payload (`sessions[2].commands[0]`): written out
/// only when an error names it, so a valid entry allocates no paths.
#[derive(Clone, Copy)]
pub(super) enum Path<'a> {
    Key(&'a str),
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Key(k) => f.write_str(k),
            Path::Field(p, k) => write!(f, "{p}.{k}"),
            Path::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

pub(super) fn invalid(path: impl fmt::Display, problem: impl Into<String>) -> EntryError {
    EntryError::Invalid {
        path: path.to_string(),
        problem: problem.into(),
    }
}

/// Ids become parts of Redis keys: a safe charset and a bounded length.
pub(super) fn check_id<'a>(
    path: impl fmt::Display + Copy,
    s: &'a str,
    limits: &Limits,
) -> Result<&'a str, EntryError> {
    if s.is_empty() {
        return Err(invalid(path, "must not be empty"));
    }
    if s.len() > limits.max_uuid_len {
        return Err(invalid(
            path,
            format!(
                "is {} bytes, over the limit of {}",
                s.len(),
                limits.max_uuid_len
            ),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(invalid(
            path,
            format!(
                "contains `{}`; only [A-Za-z0-9._:-] are allowed",
                c.escape_default()
            ),
        ));
    }
    Ok(s)
}

pub(super) fn present<'o, 'a>(obj: &'o Object<'a>, key: &str) -> Option<&'o Json<'a>> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(super) fn string<'a>(
    path: impl fmt::Display + Copy,
    v: &'a Json<'_>,
    limits: &Limits,
) -> Result<&'a str, EntryError> {
    let s = v
        .as_str()
        .ok_or_else(|| invalid(path, format!("must be a string, got {}", v.kind())))?;
    if s.len() > limits.max_string_len {
        return Err(invalid(
            path,
            format!(
                "is {} bytes, over the limit of {}",
                s.len(),
                limits.max_string_len
            ),
        ));
    }
    Ok(s)
}

pub(super) fn req_str<'a>(
    obj: &'a Object<'_>,
    key: &str,
    limits: &Limits,
) -> Result<&'a str, EntryError> {
    let v = present(obj, key).ok_or_else(|| invalid(key, "is missing"))?;
    string(key, v, limits)
}

pub(super) fn nonempty<'a>(
    path: impl fmt::Display + Copy,
    v: &'a Json<'_>,
    limits: &Limits,
) -> Result<&'a str, EntryError> {
    let s = string(path, v, limits)?;
    if s.is_empty() {
        return Err(invalid(path, "must not be empty"));
    }
    Ok(s)
}

pub(super) fn list<'v, 'a>(
    path: impl fmt::Display + Copy,
    v: &'v Json<'a>,
    limits: &Limits,
) -> Result<&'v [Json<'a>], EntryError> {
    let a = v
        .as_array()
        .ok_or_else(|| invalid(path, format!("must be an array, got {}", v.kind())))?;
    if a.len() > limits.max_list_len {
        return Err(invalid(
            path,
            format!(
                "has {} items, over the limit of {}",
                a.len(),
                limits.max_list_len
            ),
        ));
    }
    Ok(a)
}

pub(super) fn time(
    obj: &Object,
    key: &str,
    path: impl fmt::Display + Copy,
) -> Result<Option<Millis>, EntryError> {
    match present(obj, key) {
        None => Ok(None),
        Some(v) => parse_json_timestamp(v)
            .map(Some)
            .map_err(|p| invalid(path, p)),
    }
}
