//! Full rotations into the local file store, all three formats; rollback on
//! failed verification; first key; adoption of a key rekey did not create.

use std::time::Duration;

use rekey::sim::Faults;

use crate::helpers::{TestEnv, extract, policy};

struct Case {
    format: &'static str,
    secret_id: &'static str,
    initial: fn(&str) -> String,
    /// Text that must survive the rotation untouched.
    kept: &'static [&'static str],
}

const FIELD: &str = "OPENROUTER_API_KEY";

fn cases() -> Vec<Case> {
    vec![
        Case {
            format: "raw",
            secret_id: "app/raw",
            initial: |k| k.to_string(),
            kept: &[],
        },
        Case {
            format: "json",
            secret_id: "app/creds.json",
            initial: |k| {
                format!(
                    r#"{{"DB_URL": "postgres://db/x", "ratio": 1.10, "OPENROUTER_API_KEY": "{k}", "n": 12345678901234567890}}"#
                )
            },
            kept: &[
                r#""DB_URL": "postgres://db/x""#,
                r#""ratio": 1.10"#,
                r#""n": 12345678901234567890"#,
            ],
        },
        Case {
            format: "env",
            secret_id: "app.env",
            initial: |k| {
                format!("# app settings\nLOG_LEVEL=debug\nOPENROUTER_API_KEY={k}\nOTHER=1\n")
            },
            kept: &["# app settings\n", "LOG_LEVEL=debug\n", "OTHER=1\n"],
        },
    ]
}

#[tokio::test]
async fn a_rotation_on_the_file_store_replaces_only_the_key_and_revokes_the_old_one_after_grace() {
    for case in cases() {
        let env = TestEnv::new().await;
        let (_, old) = env.seed_key("made-by-hand");
        let current_path = env.path(&format!("secrets/{}", case.secret_id));
        std::fs::create_dir_all(current_path.parent().unwrap()).unwrap();
        std::fs::write(&current_path, (case.initial)(&old)).unwrap();
        let field = if case.format == "raw" {
            String::new()
        } else {
            format!(", field = \"{FIELD}\"")
        };
        let target = format!(
            r#"{{ store = "files", secret_id = "{}", format = "{}"{field} }}"#,
            case.secret_id, case.format
        );
        env.write_config(&policy("p", &target, "revoke = { grace = \"1s\" }"));

        env.cmd("rotate", &["p", "--now"]).await.assert_code(0);

        let content = std::fs::read_to_string(&current_path).unwrap();
        let new = extract(&content, case.format, FIELD).expect("current holds a key");
        assert_ne!(new, old, "{}: the key changed", case.format);
        for kept in case.kept {
            assert!(content.contains(kept), "{}: {kept:?} survived", case.format);
        }
        let previous =
            std::fs::read_to_string(env.path(&format!("secrets/{}.previous", case.secret_id)))
                .unwrap();
        assert_eq!(
            extract(&previous, case.format, FIELD).as_deref(),
            Some(old.as_str())
        );
        assert!(
            !env.path(&format!("secrets/{}.pending", case.secret_id))
                .exists(),
            "no pending left"
        );
        env.assert_settled(&new, &[&old]);
        assert!(
            env.works(&old),
            "{}: the old key keeps working during the grace",
            case.format
        );

        tokio::time::sleep(Duration::from_millis(1200)).await;
        env.cmd("run", &["--once"]).await.assert_code(0);
        assert!(
            !env.live_secrets().contains(&old),
            "{}: the old key is gone after the grace",
            case.format
        );
        env.assert_settled(&new, &[]);

        let status = env.cmd("status", &["--json"]).await;
        let rows: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        assert_eq!(rows[0]["last_result"]["kind"], "rotated");
        assert!(rows[0]["in_flight"].is_null());
        env.assert_no_secret_leaked();
    }
}

#[tokio::test]
async fn verify_failure_rolls_back_and_keeps_the_old_key_current() {
    let env = TestEnv::with_faults(Faults {
        reject_new_keys: true,
        ..Faults::default()
    })
    .await;
    let (_, old) = env.seed_key("existing");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    let target = r#"{ store = "files", secret_id = "k" }"#;
    env.write_config(&policy(
        "p",
        target,
        "verify = { mode = \"key-info\", timeout = \"2s\" }",
    ));

    let run = env.cmd("rotate", &["p", "--now", "--grace", "0"]).await;
    env.assert_rolled_back_on_file_k(&run, &old);
    let journal = env.journal("p");
    assert_eq!(journal["failures"], 1);
    assert!(journal["in_flight"].is_null());
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn an_empty_store_gets_its_first_key_on_the_first_run() {
    let env = TestEnv::new().await;
    env.write_config(&policy(
        "p",
        r#"{ store = "files", secret_id = "fresh", create = true }"#,
        "",
    ));

    env.cmd("run", &["--once"]).await.assert_code(0);

    let key = std::fs::read_to_string(env.path("secrets/fresh")).unwrap();
    env.assert_settled(key.trim(), &[]);
    assert_eq!(env.journal("p")["history"][0]["trigger"], "first_key");
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_key_rekey_did_not_create_is_adopted_and_revoked_after_the_first_rotation() {
    let env = TestEnv::new().await;
    let (hash, old) = env.seed_key("legacy");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    env.write_config(&policy("p", r#"{ store = "files", secret_id = "k" }"#, ""));

    env.cmd("rotate", &["p", "--now", "--grace", "0"])
        .await
        .assert_code(0);

    let new = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    assert_ne!(new, old);
    env.assert_settled(&new, &[]);
    let history = &env.journal("p")["history"][0];
    assert_eq!(history["old_key"]["id"], hash.as_str());
    assert_eq!(history["old_key"]["adopted"], true);
    env.assert_no_secret_leaked();
}
