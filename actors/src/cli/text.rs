//! The small pieces of text the verbs print with: aligned tables sized to
//! their content, counts with the right singular or plural, times as ISO
//! 8601, rounded numbers, short uuids, and `--since` times.

use decnet_clusterd::evidence::time::format_timestamp;
use decnet_clusterd::evidence::Millis;
use std::fmt::Write;

/// How a table column is aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table: each column as wide as its widest cell (in characters), two
/// spaces between columns, no trailing spaces. Cells are printed as given:
/// escape attacker strings before they get here.
pub fn table(headers: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|(h, _)| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, ((_, align), w)) in headers.iter().zip(&widths).enumerate() {
            let cell = row.get(i).map(String::as_str).unwrap_or("-");
            let pad = w.saturating_sub(cell.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            match align {
                Align::Left => {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                Align::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// "1 identity", "2 identities", "0 observations".
pub fn count(n: u64, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// A time as ISO 8601 UTC to the second, `-` when unknown.
pub fn iso(ms: Option<Millis>) -> String {
    match ms.map(format_timestamp) {
        Some(t) if !t.is_empty() => {
            // 2026-01-01T03:00:00.000Z → 2026-01-01T03:00:00Z
            match t.split_once('.') {
                Some((secs, _)) => format!("{secs}Z"),
                None => t,
            }
        }
        _ => "-".into(),
    }
}

/// An RFC 3339 string (as stored in the streams) shown like [`iso`].
pub fn iso_str(ts: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => iso(Some(t.timestamp_millis())),
        Err(_) => super::render::clean(ts, 40),
    }
}

/// A JSON number rounded for a person: integers as they are, others to
/// two decimals.
pub fn number(v: &serde_json::Value) -> String {
    match (v.as_i64(), v.as_u64(), v.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (_, Some(u), _) => u.to_string(),
        (_, _, Some(f)) => format!("{f:.2}"),
        _ => "-".into(),
    }
}

/// The first eight characters of a uuid, escaped (for streams where the
/// set of all uuids is not at hand).
pub fn short(uuid: &str) -> String {
    super::render::clean(&uuid.chars().take(8).collect::<String>(), 8)
}

/// The shortest prefix of each of `sorted` (at least `min` characters)
/// that no other member starts with, so a table's short uuids can be typed
/// back into any verb.
pub fn unique_prefixes<'a>(sorted: &[&'a str], min: usize) -> Vec<&'a str> {
    let common = |a: &str, b: &str| {
        a.char_indices()
            .zip(b.chars())
            .take_while(|((_, x), y)| x == y)
            .count()
    };
    (0..sorted.len())
        .map(|i| {
            let s = sorted[i];
            let before = i.checked_sub(1).map_or(0, |j| common(sorted[j], s));
            let after = sorted.get(i + 1).map_or(0, |n| common(s, n));
            let chars = (before.max(after) + 1).max(min);
            match s.char_indices().nth(chars) {
                Some((at, _)) => &s[..at],
                None => s,
            }
        })
        .collect()
}

/// `--since`: an RFC 3339 time, or an age (`90s`, `30m`, `12h`, `7d`)
/// before `now` (unix ms).
pub fn parse_since(s: &str, now: Millis) -> Result<Millis, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let unit = s.chars().last().unwrap_or(' ');
    let scale: i64 = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => 0,
    };
    match s[..s.len() - unit.len_utf8().min(s.len())].parse::<i64>() {
        Ok(n) if scale > 0 && n >= 0 => Ok(now - n.saturating_mul(scale)),
        _ => Err(format!(
            "--since `{}`: give an RFC 3339 time (2026-01-01T03:00:00Z) or an age (30m, 12h, 7d)",
            super::render::clean(s, 40)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sized_to_their_content() {
        let t = table(
            &[("name", Align::Left), ("n", Align::Right)],
            &[
                vec!["a".into(), "100".into()],
                vec!["longer".into(), "2".into()],
            ],
        );
        assert_eq!(t, "name      n\na       100\nlonger    2\n");
    }

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(1, "identity", "identities"), "1 identity");
        assert_eq!(count(2, "identity", "identities"), "2 identities");
        assert_eq!(count(0, "campaign", "campaigns"), "0 campaigns");
    }

    #[test]
    fn prefixes_are_unique_and_at_least_the_minimum() {
        let ids = ["abcdef01x", "abcdef02y", "zz"];
        assert_eq!(unique_prefixes(&ids, 4), vec!["abcdef01", "abcdef02", "zz"]);
        assert_eq!(unique_prefixes(&["abc"], 8), vec!["abc"]);
    }

    #[test]
    fn since_takes_times_and_ages() {
        assert_eq!(parse_since("30m", 3_600_000), Ok(1_800_000));
        assert_eq!(parse_since("1970-01-01T00:00:01Z", 0), Ok(1_000));
        assert!(parse_since("soon", 0).is_err());
        assert!(parse_since("", 0).is_err());
        assert_eq!(iso(Some(1_000)), "1970-01-01T00:00:01Z");
        assert_eq!(iso(None), "-");
        assert_eq!(number(&serde_json::json!(0.876)), "0.88");
    }
}
