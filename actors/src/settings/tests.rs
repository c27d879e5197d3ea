//! Tests of the settings: layering, validation, every JSON type.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn catalogue_files_extend_the_shipped_ones_and_a_bad_one_is_named() {
    let shipped = Settings::load(None, env(&[])).unwrap();
    assert!(shipped.identity.catalogue.stock_command("uname -a"));
    assert!(!shipped.identity.catalogue.stock_command("busybox tftp -g"));
    let dir = std::env::temp_dir().join(format!("clusterd-catalogue-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let own = dir.join("behaviour.toml");
    std::fs::write(
        &own,
        "version = 1\n[[command]]\nvalue = \"busybox tftp -g\"\nsource = \"every bot here\"\n",
    )
    .unwrap();
    let s = Settings::load(
        None,
        env(&[("CLUSTERD_IDENTITY__BEHAVIOUR_FILE", own.to_str().unwrap())]),
    )
    .unwrap();
    assert!(s.identity.catalogue.stock_command("busybox  tftp -g"));
    assert!(
        s.identity.catalogue.stock_command("uname -a"),
        "shipped entries stay"
    );
    let tool = dir.join("tooling.toml");
    std::fs::write(
        &tool,
        "version = 1\n[[fingerprint]]\nkind = \"hassh\"\nvalue = \"x\"\nclient = \"c\"\n",
    )
    .unwrap();
    let e = Settings::load(
        None,
        env(&[("CLUSTERD_IDENTITY__TOOLING_FILE", tool.to_str().unwrap())]),
    )
    .unwrap_err();
    assert_eq!(e.key, "identity.tooling_file");
    assert!(e.problem.contains("measured"), "{}", e.problem);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn phase_rules_load_and_a_bad_rule_file_is_named() {
    let s = Settings::load(None, env(&[])).unwrap();
    let rules = s.phase_rules.expect("compiled at load");
    assert!(rules.infer(&["uname -a"]).is_some());
    let dir = std::env::temp_dir().join(format!("clusterd-phases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[rule]]\nid = \"x\"\npattern = \"(\"\ntactic = \"TA0007\"\nphase = \"discovery\"\ncomment = \"c\"\n").unwrap();
    let e = Settings::load(
        None,
        env(&[("CLUSTERD_PHASES__FILE", bad.to_str().unwrap())]),
    )
    .unwrap_err();
    assert_eq!(e.key, "phases.file");
    assert!(e.problem.contains('x'), "{}", e.problem);
    let missing = Settings::load(
        None,
        env(&[("CLUSTERD_PHASES__FILE", "/nonexistent/p.toml")]),
    )
    .unwrap_err();
    assert_eq!(missing.key, "phases.file");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn defaults_load() {
    let s = Settings::load(None, env(&[])).unwrap();
    assert_eq!(s.redis.key_prefix, "decnet");
    assert_eq!(s.identity, IdentityWeights::default());
    assert_eq!(s.campaign, CampaignWeights::default());
    assert_eq!(s.limits, Limits::default());
}

#[test]
fn env_overlays_and_names_bad_keys() {
    let s = Settings::load(
        None,
        env(&[
            ("REDIS_URL", "rediss://u:p@h:6380/0"),
            ("CLUSTERD_KEY_PREFIX", "t1"),
            ("CLUSTERD_INGEST__BATCH", "7"),
        ]),
    )
    .unwrap();
    assert_eq!(s.redis.url, "rediss://u:p@h:6380/0");
    assert_eq!(s.redis.key_prefix, "t1");
    for ok in ["{decnet}", "{t}:1", "a{b}c"] {
        let s = Settings::load(None, env(&[("CLUSTERD_KEY_PREFIX", ok)])).unwrap();
        assert_eq!(s.redis.key_prefix, ok);
    }
    for bad in ["{}", "}a{", "{a", "a}", "{a}{b}", "{{a}}"] {
        let e = Settings::load(None, env(&[("CLUSTERD_KEY_PREFIX", bad)])).unwrap_err();
        assert_eq!(e.key, "redis.key_prefix", "{bad}");
    }
    assert_eq!(s.ingest.batch, 7);
    assert!(s.ingest.trim_acked, "trimming is the default");
    let s = Settings::load(None, env(&[("CLUSTERD_INGEST__TRIM_ACKED", "false")])).unwrap();
    assert!(!s.ingest.trim_acked);
    let e = Settings::load(None, env(&[("CLUSTERD_INGEST__TRIM_ACKED", "sometimes")])).unwrap_err();
    assert!(
        e.key.contains("ingest.trim_acked") && e.problem.contains("boolean"),
        "{e}"
    );
    let e = Settings::load(None, env(&[("CLUSTERD_INGEST__BATCH", "0")])).unwrap_err();
    assert_eq!(e.key, "ingest.batch");
    let e = Settings::load(None, env(&[("CLUSTERD_INGEST__NOPE", "1")])).unwrap_err();
    assert!(e.key.contains("ingest.nope"), "{e}");
    let e = Settings::load(None, env(&[("DECNET_CLUSTERER_TYPE", "louvain")])).unwrap_err();
    assert!(e.to_string().contains("connected_components"), "{e}");
    let e = Settings::load(None, env(&[("CLUSTERD_IDENTITY__RARITY_ZERO_AT", "10")])).unwrap_err();
    assert_eq!(e.key, "identity.rarity_zero_at");
    let e = Settings::load(None, env(&[("CLUSTERD_HEARTBEAT__INTERVAL_MS", "soon")])).unwrap_err();
    assert!(e.to_string().contains("interval_ms"), "{e}");
}

#[test]
fn http_settings_are_checked() {
    let s = Settings::load(None, env(&[])).unwrap();
    assert_eq!(s.http.address().unwrap().to_string(), DEFAULT_LISTEN);
    let e = Settings::load(None, env(&[("CLUSTERD_HTTP__LISTEN", "0.0.0.0:80")])).unwrap_err();
    assert!(
        e.key.contains("http.listen") && e.problem.contains("loopback"),
        "{e}"
    );
    let s = Settings::load(
        None,
        env(&[
            ("CLUSTERD_HTTP__LISTEN", "0.0.0.0:80"),
            ("CLUSTERD_HTTP__PUBLIC", "true"),
        ]),
    )
    .unwrap();
    assert_eq!(s.http.address().unwrap().port(), 80);
    let e = Settings::load(None, env(&[("CLUSTERD_HTTP__LISTEN", "localhost")])).unwrap_err();
    assert!(e.key.contains("http.listen"), "{e}");
    let e = Settings::load(None, env(&[("CLUSTERD_HTTP__ALLOW_CONTROL", "true")])).unwrap_err();
    assert_eq!(e.key, "http.token");
}

#[test]
fn file_overlay() {
    let dir = std::env::temp_dir().join(format!("clusterd-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("c.toml");
    std::fs::write(&f, "[lease]\nperiod_ms = 2000\n").unwrap();
    let s = Settings::load(Some(&f), env(&[])).unwrap();
    assert_eq!(s.lease.period_ms, 2000);
    std::fs::write(&f, "[bogus]\nx = 1\n").unwrap();
    assert_eq!(Settings::load(Some(&f), env(&[])).unwrap_err().key, "bogus");
    std::fs::remove_dir_all(&dir).unwrap();
}
