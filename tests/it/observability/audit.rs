//! The audit log after a rotation, a rollback and a crash-resume: one
//! record per state change with the right rotation id, trigger and keys,
//! and no key material. A log that cannot be written does not stop rotations.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use rekey::rotation::{Request, RunOutcome, Until, run_policy};
use rekey::secret::redacted_label;
use rekey::sim::Faults;
use rekey::state::Trigger;

use super::{audit_records, in_process, sample, scrape, with_audit_log};
use crate::helpers::{TestEnv, policy};

/// A seeded key in the file store and policy `p` over it. Returns (id, secret).
fn seeded(env: &TestEnv, extra: &str) -> (String, String) {
    let (id, old) = env.seed_key("legacy");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    env.write_config(&policy(
        "p",
        r#"{ store = "files", secret_id = "k" }"#,
        extra,
    ));
    (id, old)
}

fn field<'a>(records: &'a [serde_json::Value], name: &str) -> Vec<&'a str> {
    records
        .iter()
        .map(|r| r[name].as_str().unwrap_or("-"))
        .collect()
}

fn secret_id(env: &TestEnv, secret: &str) -> String {
    let keys = env.sim.sim.keys();
    keys.into_iter()
        .find(|k| k.secret == secret)
        .expect("key at the provider")
        .hash
}

#[tokio::test]
async fn a_rotation_leaves_one_audit_record_per_step_with_its_id_trigger_and_keys() {
    let env = TestEnv::new().await;
    let (old_id, old) = seeded(&env, "");
    let log = env.path("audit/nested/rekey.jsonl");
    with_audit_log(&env, &log);

    env.cmd("rotate", &["p", "--now", "--grace", "0"])
        .await
        .assert_code(0);

    let new = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    env.assert_settled(&new, &[]);
    let records = audit_records(&env, &log);
    let (adopt, rotation) = records.split_first().expect("records written");
    assert_eq!(adopt["step"], "adopt", "the seeded key is adopted first");
    assert_eq!(adopt["new_key"]["id"], old_id.as_str());
    assert_eq!(
        adopt["new_key"]["label"],
        redacted_label(&old.clone().into())
    );
    assert_eq!(
        field(rotation, "step"),
        ["begin", "create", "stage", "verify", "promote", "revoke"]
    );
    assert_eq!(
        field(rotation, "outcome"),
        ["ok", "ok", "ok", "ok", "ok", "rotated"]
    );
    let rotation_id = env.journal("p")["history"][0]["rotation_id"].clone();
    let new_id = secret_id(&env, &new);
    for record in rotation {
        assert_eq!(record["rotation_id"], rotation_id, "{record}");
        assert_eq!(record["trigger"], "manual", "{record}");
        assert_eq!(record["policy"], "p");
        assert_eq!(record["provider"], "sim");
        assert_eq!(record["old_key"]["id"], old_id.as_str());
        assert!(record["error"].is_null() && record["error_kind"].is_null());
        let time = record["time"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
    }
    for record in &rotation[1..] {
        assert_eq!(record["new_key"]["id"], new_id.as_str(), "{record}");
        assert_eq!(
            record["new_key"]["label"],
            redacted_label(&new.clone().into())
        );
    }
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the audit log is private to rekey");
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_rollback_is_audited_with_its_error_kind_and_message() {
    let faults = Faults {
        reject_new_keys: true,
        ..Faults::default()
    };
    let env = TestEnv::with_faults(faults).await;
    let verify = r#"verify = { mode = "chat", model = "openai/gpt-4o-mini", timeout = "1s" }"#;
    let (_, old) = seeded(&env, verify);
    let log = env.path("audit.jsonl");
    with_audit_log(&env, &log);

    env.cmd("rotate", &["p", "--now", "--grace", "0"])
        .await
        .assert_code(1);

    env.assert_settled(&old, &[]);
    let records = audit_records(&env, &log);
    assert_eq!(
        field(&records, "step"),
        ["adopt", "begin", "create", "stage", "rollback"],
        "no verify record: the new key never worked"
    );
    let rollback = records.last().unwrap();
    assert_eq!(rollback["outcome"], "rolled_back");
    assert_eq!(rollback["error_kind"], "verify_failed");
    let message = rollback["error"].as_str().unwrap();
    assert!(message.contains("no success within 1s"), "{message}");
    assert!(message.contains("key rejected"), "{message}");
    assert_eq!(rollback["rotation_id"], records[1]["rotation_id"]);
    assert!(
        rollback["new_key"]["id"].is_string(),
        "names the deleted key"
    );
    assert_eq!(rollback["failures"], 1);
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_crash_and_its_resume_are_audited_by_both_processes() {
    let env = TestEnv::new().await;
    seeded(&env, r#"revoke = { grace = "0s" }"#);
    let log = env.path("audit.jsonl");
    with_audit_log(&env, &log);

    let config = env.config_path();
    let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];
    let mut crashing = env.command(&args, &[("REKEY_FAILPOINT", "stage")]);
    let out = tokio::time::timeout(Duration::from_secs(60), crashing.output())
        .await
        .expect("finished within 60s")
        .expect("ran");
    assert_eq!(env.keep(out).code, None, "aborted at the failpoint");
    env.cmd("run", &["--once"]).await.assert_code(0);

    let new = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    env.assert_settled(&new, &[]);
    let records = audit_records(&env, &log);
    let rotation: Vec<_> = records
        .into_iter()
        .filter(|r| r["rotation_id"].is_string())
        .collect();
    assert_eq!(
        field(&rotation, "step"),
        ["begin", "create", "stage", "verify", "promote", "revoke"]
    );
    assert_eq!(
        rotation.last().unwrap()["outcome"],
        "rotated",
        "the resume completed"
    );
    let (before, after) = rotation.split_at(3);
    let pid = |r: &serde_json::Value| r["pid"].as_u64().unwrap();
    assert!(before.iter().all(|r| pid(r) == pid(&before[0])));
    assert!(after.iter().all(|r| pid(r) == pid(&after[0])));
    assert_ne!(pid(&before[0]), pid(&after[0]), "written by two processes");
    assert!(
        rotation
            .iter()
            .all(|r| r["rotation_id"] == rotation[0]["rotation_id"])
    );
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn an_audit_log_that_cannot_be_written_is_counted_and_the_rotation_goes_on() {
    let env = TestEnv::new().await;
    seeded(&env, "");
    // Opens fine, and every write fails with ENOSPC.
    with_audit_log(&env, std::path::Path::new("/dev/full"));
    let app = in_process(&env).await;
    let policy = app.config.policy("p").unwrap().clone();

    let request = Request::Manual {
        grace: Some(Duration::ZERO),
        trigger: Trigger::Manual,
    };
    let outcome = run_policy(&app.ctx(&policy), &policy, request, Until::Revoked).await;

    assert!(
        matches!(outcome, Ok(RunOutcome::Rotated { .. })),
        "{outcome:?}"
    );
    let new = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    env.assert_settled(&new, &[]);
    let failures = sample(&scrape(&env, &app), "rekey_audit_write_failures_total", &[]);
    assert_eq!(failures, Some(7.0), "adopt and the six steps, each counted");
    env.assert_no_secret_leaked();
}
