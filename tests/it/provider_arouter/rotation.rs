//! Whole ARouter rotations through the real binary: the file store and
//! Secrets Manager in the API-reference shape, the file store in the
//! rotation-guide shape; what the policy asks for reaches the key; rollback;
//! the crash matrix.

use std::time::Duration;

use rekey::sim::{Api, Faults};

use super::reference_key;
use crate::crash_matrix::{FAILPOINTS, Store, crash_matrix};
use crate::helpers::{Case, TestEnv, policy};
use crate::moto::{sm_client, unique_secret_name};

/// Limit and allow-lists every rotation here asks for, checked by chat.
const KEY: &str = r#"key = { name = "it-{policy}-{rotation}", limit = 5.0, allowed_providers = ["openai"], allowed_models = ["openai/gpt-4o-mini"] }"#;
const CHAT: &str = r#"verify = { mode = "chat", model = "openai/gpt-4o-mini", timeout = "10s" }"#;

/// A key made by hand at ARouter, written to `secrets/k`; returns its secret.
fn seeded_file(env: &TestEnv) -> String {
    let (_, old) = env.seed_key_in(Api::ARouter, "made-by-hand");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    old
}

fn file_policy(extra: &str) -> String {
    policy("p", r#"{ store = "files", secret_id = "k" }"#, extra)
}

/// The new key carries what the policy asked for, as ARouter holds it.
async fn assert_key_as_asked(env: &TestEnv, secret: &str) {
    let held = env.sim.sim.keys();
    let key = held
        .iter()
        .find(|k| k.secret == secret)
        .expect("new key at ARouter");
    assert_eq!(key.api, "arouter");
    assert!(key.name.starts_with("it-p-"), "{}", key.name);
    let seen = reference_key(&env.sim, &env.mgmt_key, &key.hash).await;
    assert_eq!(seen["limit"], 5.0);
    assert_eq!(seen["allowed_providers"], serde_json::json!(["openai"]));
    assert_eq!(
        seen["allowed_models"],
        serde_json::json!(["openai/gpt-4o-mini"])
    );
}

/// Rotates now with a 1s grace, checks mid-grace, then lets the grace pass.
async fn rotate_and_retire(env: &TestEnv, old: &str) {
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    let new = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    assert_ne!(new, old, "the key changed");
    assert_key_as_asked(env, &new).await;
    env.assert_settled(&new, &[old]);
    assert!(env.works(old), "the old key keeps working during the grace");

    tokio::time::sleep(Duration::from_millis(1200)).await;
    env.cmd("run", &["--once"]).await.assert_code(0);
    assert!(
        !env.live_secrets().contains(&old.to_string()),
        "the old key is gone"
    );
    env.assert_settled(&new, &[]);
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn an_arouter_rotation_on_the_file_store_sends_limit_and_allow_lists_and_revokes_after_grace()
{
    for case in [Case::arouter(), Case::arouter_guide()] {
        let env = TestEnv::new().await;
        let old = seeded_file(&env);
        let extra = format!("{KEY}\n{CHAT}\nrevoke = {{ grace = \"1s\" }}");
        env.write_config_case(&case, &file_policy(&extra));

        rotate_and_retire(&env, &old).await;
        let history = &env.journal("p")["history"][0];
        assert_eq!(history["old_key"]["adopted"], true, "{case:?}");
    }
}

/// ARouter has no get-by-id: the key `adopt.key_id` names is found by
/// listing (here past the default page of 20), recorded with its id and
/// revoked by the first rotation, in both shapes.
#[tokio::test]
async fn a_key_named_by_adopt_key_id_is_recorded_with_its_id_and_revoked_after_the_first_rotation()
{
    for (case, prefix) in [(Case::arouter(), ""), (Case::arouter_guide(), "key_")] {
        let env = TestEnv::new().await;
        for i in 0..30 {
            env.seed_key_in(Api::ARouter, &format!("someone-else-{i}"));
        }
        let (hash, old) = env.seed_key_in(Api::ARouter, "made-by-hand");
        std::fs::create_dir_all(env.path("secrets")).unwrap();
        std::fs::write(env.path("secrets/k"), &old).unwrap();
        let id = format!("{prefix}{hash}");
        let extra = format!("adopt = {{ key_id = \"{id}\" }}");
        env.write_config_case(&case, &file_policy(&extra));

        env.cmd("rotate", &["p", "--now", "--grace", "0"])
            .await
            .assert_code(0);
        let history = &env.journal("p")["history"][0];
        assert_eq!(history["old_key"]["id"], id.as_str(), "{case:?}");
        assert_eq!(history["old_key"]["adopted"], true, "{case:?}");
        assert!(!env.works(&old), "{case:?}: the adopted key is revoked");
        assert_eq!(
            env.live_secrets().len(),
            31,
            "{case:?}: the others are untouched"
        );
        env.assert_no_secret_leaked();
    }
}

#[tokio::test]
async fn an_arouter_rotation_into_secrets_manager_moves_current_and_revokes_after_grace() {
    let client = sm_client().await;
    let env = TestEnv::new().await;
    let (_, old) = env.seed_key_in(Api::ARouter, "legacy");
    let id = unique_secret_name("it/arouter");
    let initial = format!(r#"{{"AROUTER_API_KEY": "{old}", "OTHER": "kept"}}"#);
    client
        .create_secret()
        .name(&id)
        .secret_string(&initial)
        .send()
        .await
        .unwrap();
    let target = format!(
        r#"{{ store = "aws", secret_id = "{id}", format = "json", field = "AROUTER_API_KEY" }}"#
    );
    let extra = format!("{KEY}\n{CHAT}\nrevoke = {{ grace = \"1s\", mode = \"disable\" }}");
    env.write_config_case(&Case::arouter(), &policy("p", &target, &extra));

    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    let out = client
        .get_secret_value()
        .secret_id(&id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(out.secret_string().unwrap()).unwrap();
    assert_eq!(doc["OTHER"], "kept", "the other fields are kept");
    let new = doc["AROUTER_API_KEY"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_key_as_asked(&env, &new).await;
    env.assert_settled(&new, &[&old]);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    env.cmd("run", &["--once"]).await.assert_code(0);
    let old_key = env.sim.sim.keys().into_iter().find(|k| k.secret == old);
    assert!(
        old_key.expect("disabled, not deleted").disabled,
        "revoke mode disable"
    );
    assert!(!env.works(&old));
    assert!(env.works(&new));
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn an_arouter_key_that_never_verifies_is_rolled_back_and_the_old_key_stays_current() {
    let env = TestEnv::with_faults(Faults {
        reject_new_keys: true,
        ..Faults::default()
    })
    .await;
    let old = seeded_file(&env);
    let extra = r#"verify = { mode = "key-info", timeout = "2s" }"#;
    env.write_config_case(&Case::arouter_guide(), &file_policy(extra));

    let run = env.cmd("rotate", &["p", "--now", "--grace", "0"]).await;
    env.assert_rolled_back_on_file_k(&run, &old);
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_verify_model_the_allow_lists_forbid_rolls_back_at_once_without_retrying() {
    let env = TestEnv::new().await;
    let old = seeded_file(&env);
    let extra = format!(
        "{KEY}\nverify = {{ mode = \"chat\", model = \"anthropic/claude-3.5-haiku\", timeout = \"30s\" }}"
    );
    env.write_config_case(&Case::arouter(), &file_policy(&extra));

    let run = env.cmd("rotate", &["p", "--now", "--grace", "0"]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("provider_not_allowed"),
        "{}",
        run.stderr
    );
    assert_eq!(
        env.sim.sim.call_counts()["chat"],
        1,
        "a lasting refusal is not retried"
    );
    assert_eq!(std::fs::read_to_string(env.path("secrets/k")).unwrap(), old);
    env.assert_settled(&old, &[]);
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arouter_crash_at_any_step_boundary_is_resumed_or_rolled_back_on_the_file_store() {
    crash_matrix(&Case::arouter(), Store::Files, FAILPOINTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arouter_crash_at_any_step_boundary_is_resumed_or_rolled_back_on_secrets_manager() {
    crash_matrix(&Case::arouter(), Store::Aws, FAILPOINTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arouter_guide_crash_at_any_step_boundary_is_resumed_or_rolled_back_on_the_file_store() {
    crash_matrix(&Case::arouter_guide(), Store::Files, FAILPOINTS).await;
}
