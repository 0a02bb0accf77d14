//! deploy/rekey.service: the hardening it promises, the reload and stop
//! behaviour the daemon relies on, and writable paths that match the config.
//! (`systemd-analyze verify` runs in .ci/run where the tool exists.)

use rekey::config::StateLocation;

use super::{configmap_config, example_config, read, seconds};

/// Every `Key=value` of the `[Service]` section, in order (keys repeat).
fn service() -> Vec<(String, String)> {
    let text = read("deploy/rekey.service");
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_string();
        } else if section == "[Service]" {
            let (k, v) = line.split_once('=').expect("Key=value");
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn values(key: &str) -> Vec<String> {
    service()
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect()
}

#[track_caller]
fn one(key: &str) -> String {
    let v = values(key);
    assert_eq!(v.len(), 1, "{key} set once: {v:?}");
    v[0].clone()
}

#[test]
fn the_unit_runs_a_transient_user_in_a_strict_sandbox() {
    for (key, expected) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "rekey"),
        ("LogsDirectory", "rekey"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictNamespaces", "yes"),
        ("CapabilityBoundingSet", ""),
        ("UMask", "0077"),
        ("Restart", "on-failure"),
    ] {
        assert_eq!(one(key), expected, "{key}");
    }
    assert!(values("SystemCallFilter").contains(&"@system-service".to_string()));
    let families = one("RestrictAddressFamilies");
    assert!(families.contains("AF_INET") && families.contains("AF_INET6"));
    assert!(!families.contains("AF_PACKET") && !families.contains("AF_NETLINK"));
}

#[test]
fn the_unit_checks_the_config_before_start_and_reloads_on_sighup() {
    let pre = one("ExecStartPre");
    let start = one("ExecStart");
    assert!(pre.contains("rekey check -c "), "{pre}");
    assert!(start.contains(" run -c "), "{start}");
    let config_of = |cmd: &str| {
        cmd.split(" -c ")
            .nth(1)
            .map(|s| s.split(' ').next().unwrap().to_string())
    };
    assert_eq!(
        config_of(&pre),
        config_of(&start),
        "checks the file it runs"
    );
    let reload = one("ExecReload");
    assert!(reload.ends_with("kill -HUP $MAINPID"), "{reload}");
    assert_eq!(
        one("RestartPreventExitStatus"),
        "2",
        "a bad config does not loop"
    );
}

#[test]
fn systemd_waits_longer_than_the_shutdown_timeout_before_sigkill() {
    let stop = seconds(&one("TimeoutStopSec"));
    for (name, config) in [
        ("config/rekey.example.toml", example_config()),
        ("the ConfigMap", configmap_config()),
    ] {
        let shutdown = config.daemon.shutdown_timeout;
        assert!(
            stop > shutdown,
            "TimeoutStopSec {stop:?} vs {name}'s shutdown_timeout {shutdown:?}"
        );
    }
}

#[test]
fn the_example_configs_state_and_audit_log_live_where_the_unit_lets_it_write() {
    let config = example_config();
    let StateLocation::File(state) = &config.daemon.state else {
        panic!("the example config keeps its state in files");
    };
    let dir = format!("/var/lib/{}", one("StateDirectory"));
    assert!(state.starts_with(&dir), "{} under {dir}", state.display());
    if let Some(audit) = &config.daemon.audit_log {
        let dir = format!("/var/log/{}", one("LogsDirectory"));
        assert!(audit.starts_with(&dir), "{} under {dir}", audit.display());
    }
}
