//! Each topic's payload read into evidence for the input parser: an
//! `attacker.observed` report (addresses, fingerprints, sessions), one
//! fingerprint, one session with its phase or tactic, commands,
//! credentials, payload/C2 values and keystroke SimHash.

use super::fields::{check_id, invalid, list, nonempty, present, string, time, Path};
use super::{EntryError, Limits};
use crate::evidence::json::{preview, Json, Object};
use crate::evidence::{Fingerprint, Millis, Observation, Session, Stamped, Sym};
use crate::phase::Phase;
use crate::phase_rules::PhaseRules;

pub(super) fn observed(
    obj: &Object,
    o: &mut Observation,
    ts: Option<Millis>,
    limits: &Limits,
    rules: Option<&PhaseRules>,
) -> Result<(), EntryError> {
    o.first_seen = time(obj, "first_seen", "first_seen")?;
    o.last_seen = time(obj, "last_seen", "last_seen")?;
    // "Latest value" fields are stamped with the report's own time, so the
    // merge keeps the most recent report whatever order events arrive in.
    let at = o.last_seen.or(ts).unwrap_or(0);
    if let Some(v) = present(obj, "ip") {
        let s = string("ip", v, limits)?;
        let ip: std::net::IpAddr = s.parse().map_err(|_| {
            invalid(
                "ip",
                format!("`{}` is not an IPv4 or IPv6 address", preview(s)),
            )
        })?;
        o.ip = Some(Stamped {
            at,
            value: Sym::unique(&ip.to_string()),
        });
    }
    if let Some(v) = present(obj, "asn") {
        o.asn = Some(Stamped { at, value: asn(v)? });
    }
    if let Some(v) = present(obj, "fingerprints") {
        let list_path = Path::Key("fingerprints");
        for (i, fp) in list(list_path, v, limits)?.iter().enumerate() {
            let path = Path::Index(&list_path, i);
            let fo = fp
                .as_object()
                .ok_or_else(|| invalid(path, format!("must be an object, got {}", fp.kind())))?;
            o.fingerprints.insert(fingerprint(Some(&path), fo, limits)?);
        }
    }
    if let Some(v) = present(obj, "sessions") {
        let list_path = Path::Key("sessions");
        for (i, s) in list(list_path, v, limits)?.iter().enumerate() {
            let s = session(&Path::Index(&list_path, i), s, limits, rules)?;
            o.sessions.join(s);
        }
    }
    Ok(())
}

fn asn(v: &Json) -> Result<u32, EntryError> {
    let bad = || {
        invalid(
            "asn",
            "must be an integer 0..=4294967295 or a string like \"AS64512\"",
        )
    };
    match v {
        Json::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(bad),
        Json::String(s) => {
            let digits = s
                .strip_prefix("AS")
                .or_else(|| s.strip_prefix("as"))
                .unwrap_or(s);
            if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad());
            }
            digits.parse().map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

/// A fingerprint object, at `at` (`None`: the payload itself).
pub(super) fn fingerprint(
    at: Option<&Path>,
    obj: &Object,
    limits: &Limits,
) -> Result<Fingerprint, EntryError> {
    let field = |k| match at {
        None => Path::Key(k),
        Some(p) => Path::Field(p, k),
    };
    let (kpath, vpath) = (field("kind"), field("value"));
    let k = nonempty(
        kpath,
        present(obj, "kind").ok_or_else(|| invalid(kpath, "is missing"))?,
        limits,
    )?;
    let v = nonempty(
        vpath,
        present(obj, "value").ok_or_else(|| invalid(vpath, "is missing"))?,
        limits,
    )?;
    Ok(Fingerprint {
        kind: Sym::from(k.to_lowercase()),
        value: Sym::new(v),
    })
}

pub(super) fn session(
    path: &Path,
    v: &Json,
    limits: &Limits,
    rules: Option<&PhaseRules>,
) -> Result<Session, EntryError> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid(path, format!("must be an object, got {}", v.kind())))?;
    let p = |k| Path::Field(path, k);
    let id_path = p("session_id");
    let id = present(obj, "session_id").ok_or_else(|| invalid(id_path, "is missing"))?;
    let id = check_id(id_path, string(id_path, id, limits)?, limits)?;
    let mut s = Session {
        session_id: id.into(),
        ..Default::default()
    };
    if let Some(d) = present(obj, "decky_id") {
        s.decky_id = Some(Sym::new(nonempty(p("decky_id"), d, limits)?));
    }
    s.started_at = time(obj, "started_at", p("started_at"))?;
    s.ended_at = time(obj, "ended_at", p("ended_at"))?;
    let phase = match present(obj, "phase") {
        Some(v) => {
            let name = string(p("phase"), v, limits)?;
            Some(Phase::from_name(name).ok_or_else(|| {
                invalid(p("phase"), format!("unknown UKC phase `{}`", preview(name)))
            })?)
        }
        None => None,
    };
    let tactic = match present(obj, "tactic") {
        Some(v) => {
            let id = string(p("tactic"), v, limits)?;
            Some(Phase::from_tactic(id).ok_or_else(|| {
                invalid(
                    p("tactic"),
                    format!("unknown ATT&CK tactic `{}`", preview(id)),
                )
            })?)
        }
        None => None,
    };
    s.phase = match (phase, tactic) {
        (Some(a), Some(b)) if a != b => {
            return Err(invalid(
                path,
                format!("phase `{a}` and tactic (phase `{b}`) disagree"),
            ));
        }
        (a, b) => a.or(b),
    };
    if let Some(v) = present(obj, "commands") {
        let list_path = p("commands");
        let mut ordered = Vec::new();
        for (i, c) in list(list_path, v, limits)?.iter().enumerate() {
            ordered.push(string(Path::Index(&list_path, i), c, limits)?);
        }
        // No sensor phase: inferred from the commands in the order given
        // (SPEC §12), here where that order is still known.
        if let (None, Some(rules)) = (s.phase, rules) {
            if let Some(inf) = rules.infer(&ordered) {
                s.phase = Some(inf.first.phase);
                s.last_phase = (inf.last.phase != inf.first.phase).then_some(inf.last.phase);
                s.phase_inferred = true;
            }
        }
        for c in ordered {
            s.commands.insert(Sym::new(c));
        }
    }
    if let Some(v) = present(obj, "credentials") {
        let list_path = p("credentials");
        for (i, c) in list(list_path, v, limits)?.iter().enumerate() {
            let cp = Path::Index(&list_path, i);
            let pair = c
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| invalid(cp, "must be a [user, password] pair"))?;
            let user = string(Path::Index(&cp, 0), &pair[0], limits)?;
            let pass = string(Path::Index(&cp, 1), &pair[1], limits)?;
            s.credentials.insert((Sym::new(user), Sym::new(pass)));
        }
    }
    if let Some(v) = present(obj, "payload_hash") {
        s.extras
            .payload_hashes
            .insert(Sym::new(nonempty(p("payload_hash"), v, limits)?));
    }
    if let Some(v) = present(obj, "c2_callback") {
        s.extras
            .c2_endpoints
            .insert(Sym::new(nonempty(p("c2_callback"), v, limits)?));
    }
    if let Some(v) = present(obj, "auth_key") {
        let kp = p("auth_key");
        s.extras
            .auth_keys
            .insert(key_fingerprint(kp, string(kp, v, limits)?)?);
    }
    if let Some(v) = present(obj, "planted_keys") {
        let list_path = p("planted_keys");
        for (i, k) in list(list_path, v, limits)?.iter().enumerate() {
            let kp = Path::Index(&list_path, i);
            s.extras
                .planted_keys
                .insert(key_fingerprint(kp, string(kp, k, limits)?)?);
        }
    }
    if let Some(v) = present(obj, "kd_digraph_simhash") {
        let hp = p("kd_digraph_simhash");
        let h = string(hp, v, limits)?;
        if h.len() != 16 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(hp, "must be exactly 16 hex characters"));
        }
        s.kd_digraph_simhash = Some(
            u64::from_str_radix(h, 16)
                .map_err(|_| invalid(hp, "must be exactly 16 hex characters"))?,
        );
    }
    Ok(s)
}

/// An SSH public key fingerprint as OpenSSH prints it: `SHA256:` and the
/// unpadded base64 of the key's SHA-256 digest (43 characters). Trailing
/// `=` padding is accepted and removed, so one key has one spelling.
pub(super) fn key_fingerprint(path: Path, v: &str) -> Result<Sym, EntryError> {
    let body = v
        .strip_prefix("SHA256:")
        .ok_or_else(|| invalid(path, "must be a `SHA256:` key fingerprint"))?
        .trim_end_matches('=');
    let base64 = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    if body.len() != 43 || !body.bytes().all(base64) {
        return Err(invalid(
            path,
            "must be `SHA256:` and 43 base64 characters (a key fingerprint)",
        ));
    }
    Ok(Sym::from(format!("SHA256:{body}")))
}
