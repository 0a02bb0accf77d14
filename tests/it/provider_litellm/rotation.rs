//! Whole LiteLLM rotations through the real binary: models and budget reach
//! the proxy, the old virtual key is deleted after the grace, a key that
//! never verifies is rolled back, and the crash matrix on both stores.

use std::time::Duration;

use rekey::sim::{Api, Faults};
use serde_json::json;

use crate::crash_matrix::{FAILPOINTS, Store, crash_matrix};
use crate::helpers::{Case, TestEnv, policy};
use crate::moto::{sm_client, unique_secret_name};

const KEY: &str = r#"key = { name = "it-{policy}-{rotation}", models = ["gpt-4o-mini"], max_budget = 25.0, budget_duration = "30d" }"#;
const CHAT: &str = r#"verify = { mode = "chat", model = "gpt-4o-mini", timeout = "10s" }"#;

/// The new key carries what the policy asked for, as the proxy holds it.
fn assert_key_as_asked(env: &TestEnv, secret: &str) {
    let held = env.sim.sim.keys();
    let key = held
        .iter()
        .find(|k| k.secret == secret)
        .expect("new key at the proxy");
    assert_eq!(key.api, "litellm");
    assert!(
        key.name.starts_with("it-p-"),
        "the alias carries the rotation: {}",
        key.name
    );
    assert_eq!(key.extra["models"], json!(["gpt-4o-mini"]));
    assert_eq!(key.extra["max_budget"], json!(25.0));
    assert_eq!(key.extra["budget_duration"], json!("30d"));
}

/// Rotates now with a 1s grace, checks mid-grace, lets the grace pass. The
/// old key was seeded under the alias `old_alias`.
async fn rotate_and_retire(
    env: &TestEnv,
    (old_alias, old): (&str, &str),
    current: impl AsyncFn() -> String,
) {
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    let new = current().await;
    assert_ne!(new, old, "the key changed");
    assert_key_as_asked(env, &new);
    env.assert_settled(&new, &[old]);
    assert!(env.works(old), "the old key keeps working during the grace");

    tokio::time::sleep(Duration::from_millis(1200)).await;
    env.cmd("run", &["--once"]).await.assert_code(0);
    assert!(
        !env.live_secrets().contains(&old.to_string()),
        "the old key is deleted"
    );
    env.assert_settled(&new, &[]);
    let history = &env.journal("p")["history"][0];
    assert_eq!(
        history["old_key"]["adopted"], true,
        "the hand-made key was found by label"
    );
    assert_eq!(
        history["old_key"]["id"], old_alias,
        "keys are recorded by alias, never by the proxy's token"
    );
    let new_id = history["new_key"]["id"].as_str().unwrap_or_default();
    assert!(new_id.starts_with("it-p-"), "{new_id}");
    env.cmd("status", &["--json"]).await.assert_code(0);
    // The leak check also looks for every key's sha256, the proxy's token.
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_litellm_rotation_on_the_file_store_sends_models_and_budget_and_deletes_the_old_key() {
    let env = TestEnv::new().await;
    let (_, old) = env.seed_key_in(Api::LiteLlm, "made-by-hand");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(
        env.path("secrets/app.env"),
        format!("LITELLM_API_KEY={old}\nOTHER=1\n"),
    )
    .unwrap();
    let target =
        r#"{ store = "files", secret_id = "app.env", format = "env", field = "LITELLM_API_KEY" }"#;
    let extra = format!("{KEY}\n{CHAT}\nrevoke = {{ grace = \"1s\" }}");
    env.write_config_case(&Case::litellm(), &policy("p", target, &extra));

    let path = env.path("secrets/app.env");
    let current = async || {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("OTHER=1\n"), "the other lines are kept");
        crate::helpers::extract(&text, "env", "LITELLM_API_KEY").unwrap()
    };
    rotate_and_retire(&env, ("made-by-hand", &old), current).await;
}

#[tokio::test]
async fn a_litellm_rotation_into_secrets_manager_sends_models_and_budget_and_deletes_the_old_key() {
    let client = sm_client().await;
    let env = TestEnv::new().await;
    let (_, old) = env.seed_key_in(Api::LiteLlm, "legacy");
    let id = unique_secret_name("it/litellm");
    client
        .create_secret()
        .name(&id)
        .secret_string(&old)
        .send()
        .await
        .unwrap();
    let target = format!(r#"{{ store = "aws", secret_id = "{id}" }}"#);
    let extra = format!("{KEY}\n{CHAT}\nrevoke = {{ grace = \"1s\" }}");
    env.write_config_case(&Case::litellm(), &policy("p", &target, &extra));

    let current = async || {
        let out = (client.get_secret_value().secret_id(&id))
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap();
        out.secret_string().unwrap().to_string()
    };
    rotate_and_retire(&env, ("legacy", &old), current).await;
}

#[tokio::test]
async fn a_litellm_key_that_never_verifies_is_rolled_back_and_the_old_key_stays_current() {
    let env = TestEnv::with_faults(Faults {
        reject_new_keys: true,
        ..Faults::default()
    })
    .await;
    let (_, old) = env.seed_key_in(Api::LiteLlm, "existing");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    let extra = r#"verify = { mode = "models", timeout = "2s" }"#;
    env.write_config_case(
        &Case::litellm(),
        &policy("p", r#"{ store = "files", secret_id = "k" }"#, extra),
    );

    let run = env.cmd("rotate", &["p", "--now", "--grace", "0"]).await;
    env.assert_rolled_back_on_file_k(&run, &old);
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_litellm_crash_at_any_step_boundary_is_resumed_or_rolled_back_on_the_file_store() {
    crash_matrix(&Case::litellm(), Store::Files, FAILPOINTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_litellm_crash_at_any_step_boundary_is_resumed_or_rolled_back_on_secrets_manager() {
    crash_matrix(&Case::litellm(), Store::Aws, FAILPOINTS).await;
}
