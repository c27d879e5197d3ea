//! A real Cowrie with real SSH clients (`tests/cowrie/lab.py`, known
//! truth), its log imported with `clusterd import cowrie`, the daemon run
//! until settled, and the identity and campaign scores against the truth
//! printed and required to be 1.0 at both levels. Needs `.ci/cowrie-setup` to have run (Cowrie 3.1.4 and the
//! client libraries in virtualenvs) and the Redis at 127.0.0.1:6379.

mod common;

use clusterd::repository::Keys;
use common::{conn, eventually, predictions, settled, Daemon, Prefix};
use decnet_clusterd::metrics::score;
use decnet_clusterd::sensor::cowrie::observation_uuid;
use redis::Commands;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn cowrie_venv() -> String {
    let root =
        std::env::var("CLUSTERD_COWRIE_ROOT").unwrap_or_else(|_| "/opt/clusterd-cowrie".into());
    std::env::var("CLUSTERD_COWRIE_VENV").unwrap_or_else(|_| format!("{root}/venv"))
}

#[test]
fn a_real_cowrie_world_imports_and_scores() {
    let venv = cowrie_venv();
    assert!(
        Path::new(&venv).join("bin/twistd").is_file(),
        "no Cowrie virtualenv at {venv}: run .ci/cowrie-setup first (as root)"
    );
    let out = std::env::temp_dir().join(format!(
        "clusterd-cowrie-world-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let lab = Command::new("python3")
        .arg(format!("{REPO}/tests/cowrie/lab.py"))
        .arg("--out")
        .arg(&out)
        .args(["--seed", "1"])
        .status()
        .expect("python3 runs");
    assert!(lab.success(), "tests/cowrie/lab.py failed ({lab})");
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("truth.json")).unwrap()).unwrap();
    let sources = truth["sources"].as_object().unwrap();

    let p = Prefix::new("cowrie-world");
    let mut import = Command::new(env!("CARGO_BIN_EXE_clusterd"));
    import.args(["import", "cowrie"]);
    for s in truth["sensors"].as_array().unwrap() {
        import.arg(out.join(format!("{}.json", s.as_str().unwrap())));
    }
    let imported = import
        .arg("--ttylog-dir")
        .arg(out.join("state"))
        .env("CLUSTERD_KEY_PREFIX", &p.0)
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&imported.stdout).to_string();
    println!("{summary}");
    assert_eq!(imported.status.code(), Some(0), "{summary}");
    assert!(
        summary.contains(" 0 malformed lines, 0 unknown event ids"),
        "{summary}"
    );

    let mut ident_truth = BTreeMap::new();
    let mut camp_truth = BTreeMap::new();
    for (ip, t) in sources {
        let uuid = observation_uuid(&ip.parse().unwrap());
        ident_truth.insert(uuid.clone(), t["identity"].as_str().unwrap().to_string());
        camp_truth.insert(uuid, t["campaign"].as_str().unwrap().to_string());
    }
    let daemon = Daemon::start(&p.0);
    eventually("the daemon settled on the Cowrie world", 120, || {
        settled(&p.0, ident_truth.len())
    });
    let stored: BTreeSet<String> = conn().smembers(Keys::new(&p.0).attackers()).unwrap();
    let want: BTreeSet<String> = ident_truth.keys().cloned().collect();
    assert_eq!(
        stored, want,
        "every truth IP is an observation, and nothing else"
    );

    let (ids, camps) = predictions(&p.0);
    let identity = score(&ident_truth, &ids);
    let campaign = score(&camp_truth, &camps);
    println!(
        "cowrie world (seed 1, {} IPs): identity ARI {:.3} homogeneity {:.3} completeness {:.3}; \
         campaign ARI {:.3} homogeneity {:.3} completeness {:.3}",
        want.len(),
        identity.ari,
        identity.homogeneity,
        identity.completeness,
        campaign.ari,
        campaign.homogeneity,
        campaign.completeness
    );
    // The bar: every library scanner its own identity, each
    // operator one identity across its IPs and client libraries, and the
    // three operators one campaign through the phase hand-off (A → C) and
    // the planted key (A → B) among the scanners.
    assert!(identity.perfect(), "identity: {identity:?}");
    assert!(campaign.perfect(), "campaign: {campaign:?}");

    // Phases were inferred from the operators' commands.
    let inferred = sources
        .iter()
        .filter(|(_, t)| t["identity"] == "operator-a" || t["identity"] == "operator-c")
        .any(|(ip, _)| {
            let uuid = observation_uuid(&ip.parse().unwrap());
            let o = Command::new(env!("CARGO_BIN_EXE_clusterd"))
                .args(["inspect", "observation", &uuid, "--json"])
                .env("CLUSTERD_KEY_PREFIX", &p.0)
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            v["observation"]["sessions"]
                .as_object()
                .unwrap()
                .values()
                .any(|s| s["phase_inferred"] == true && s["phase"].is_string())
        });
    assert!(inferred, "an operator session has an inferred phase");
    assert_eq!(daemon.stop(), 0);
    let _ = std::fs::remove_dir_all(out);
}
