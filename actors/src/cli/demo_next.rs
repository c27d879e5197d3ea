//! The commands `clusterd demo --keep` suggests next, written so they run
//! as printed: the program as it was started (`cargo run --release --`
//! under cargo, the binary's name when it is on the PATH, else its path),
//! the demo's key prefix, and real uuids and an IP from the stored result.

use decnet_clusterd::evidence::Sym;
use decnet_clusterd::store::Store;
use std::collections::BTreeMap;
use std::path::Path;

/// How to start this program again from a shell.
pub fn program() -> String {
    if std::env::var_os("CARGO").is_some() && std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
        return if cfg!(debug_assertions) {
            "cargo run --".into()
        } else {
            "cargo run --release --".into()
        };
    }
    let Ok(exe) = std::env::current_exe() else {
        return "clusterd".into();
    };
    let on_path = exe.parent().is_some_and(|dir| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| Path::new(&d) == dir))
    });
    if on_path {
        exe.file_name()
            .map_or("clusterd".into(), |n| n.to_string_lossy().into_owned())
    } else {
        exe.to_string_lossy().into_owned()
    }
}

/// The suggested commands, one a line, each with what it shows.
pub fn next_steps(prefix: &str, store: &Store) -> String {
    let mut by: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for o in store.observations.keys() {
        if let Some(i) = store.effective_identity(o) {
            by.entry(i).or_default().push(o);
        }
    }
    // The identity of most observations (ties: the smallest uuid).
    let largest = by
        .iter()
        .max_by(|a, b| a.1.len().cmp(&b.1.len()).then(b.0.cmp(a.0)));
    let run = program();
    // A uuid's first 8 characters, as long as no other row of its kind shares them.
    let short = |uuid: &str, keys: &mut dyn Iterator<Item = &str>| -> String {
        match uuid.get(..8) {
            Some(p) if keys.filter(|k| k.starts_with(p)).count() == 1 => p.to_string(),
            _ => uuid.to_string(),
        }
    };
    let mut steps: Vec<(String, &str)> = vec![
        (
            format!("{run} run"),
            "the daemon again, in another terminal",
        ),
        (format!("{run} ctl status"), "workers, queues, leader"),
        (
            format!("{run} list campaigns --min-size 2"),
            "the campaigns that join several identities",
        ),
        (format!("{run} watch"), "changes as they happen"),
    ];
    if let Some((identity, members)) = largest {
        steps.push((
            format!(
                "{run} inspect identity {}",
                short(identity, &mut store.identities.keys().map(String::as_str))
            ),
            "members, roll-ups, edges",
        ));
        let ip = store.observations.get(members[0]).and_then(|o| o.ip());
        let alone = |ip: &str| {
            store
                .observations
                .values()
                .filter(|o| o.ip() == Some(ip))
                .count()
                == 1
        };
        if let Some(ip) = ip.filter(|ip| alone(ip)) {
            steps.push((
                format!("{run} inspect observation {ip}"),
                "an observation found by its IP",
            ));
        }
        if let [a, b, ..] = members.as_slice() {
            let a = short(a, &mut store.observations.keys().map(Sym::as_str));
            let b = short(b, &mut store.observations.keys().map(Sym::as_str));
            steps.push((
                format!("{run} explain {a} {b}"),
                "why two observations are one identity",
            ));
            steps.push((
                format!("{run} ctl separate {a} {b}"),
                "overrule it (undo with ctl forget)",
            ));
        }
    }
    steps.push((
        format!("{run} export --format dot | dot -Tsvg > graph.svg"),
        "the campaign graph as a picture",
    ));
    let width = steps
        .iter()
        .map(|(c, _)| c.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = format!("  export CLUSTERD_KEY_PREFIX={prefix}\n");
    for (c, why) in &steps {
        out.push_str(&format!("  {c:<width$}  # {why}\n"));
    }
    out
}
