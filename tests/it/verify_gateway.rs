//! `verify.base_url`: the new key is verified through an OpenAI-compatible
//! gateway (the simulator's `/gateway/v1`, which counts its own calls)
//! while keys are still made and revoked at the provider.

use std::collections::BTreeMap;
use std::sync::Arc;

use rekey::policy::VerifyMode;
use rekey::providers::gateway::GatewayVerify;
use rekey::providers::{Provider, ProviderError};
use rekey::sim::{Api, Faults};
use secrecy::SecretString;

use crate::helpers::{Case, TestEnv, policy};

/// The provider's own verification endpoints must stay untouched.
const PROVIDER_VERIFY: [&str; 3] = ["whoami", "models", "chat"];

fn seeded(env: &TestEnv, api: Api) -> String {
    let (_, old) = env.seed_key_in(api, "existing");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    old
}

fn untouched(calls: &BTreeMap<String, u64>) -> bool {
    PROVIDER_VERIFY.iter().all(|e| !calls.contains_key(*e))
}

#[tokio::test]
async fn a_models_check_through_verify_base_url_goes_to_the_gateway_not_the_provider() {
    let env = TestEnv::new().await;
    let old = seeded(&env, Api::OpenRouter);
    let verify = format!(
        r#"verify = {{ mode = "models", base_url = "{}", timeout = "10s" }}"#,
        env.sim.gateway_url()
    );
    env.write_config(&policy(
        "p",
        r#"{ store = "files", secret_id = "k" }"#,
        &verify,
    ));

    env.cmd("rotate", &["p", "--now", "--grace", "0"])
        .await
        .assert_code(0);

    let new = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    assert_ne!(new, old);
    env.assert_settled(&new, &[]);
    assert_eq!(env.sim.sim.gateway_calls().get("models"), Some(&1));
    let calls = env.sim.sim.call_counts();
    assert!(
        untouched(&calls),
        "the provider verified nothing: {calls:?}"
    );
    assert_eq!(calls["create"], 1, "the key was still made at the provider");
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_chat_check_through_verify_base_url_serves_a_litellm_policy() {
    let env = TestEnv::new().await;
    let old = seeded(&env, Api::LiteLlm);
    let verify = format!(
        r#"verify = {{ mode = "chat", model = "team/default", base_url = "{}", timeout = "10s" }}"#,
        env.sim.gateway_url()
    );
    let case = Case::litellm();
    env.write_config_case(
        &case,
        &policy("p", r#"{ store = "files", secret_id = "k" }"#, &verify),
    );

    env.cmd("rotate", &["p", "--now", "--grace", "0"])
        .await
        .assert_code(0);

    let new = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    assert_ne!(new, old);
    env.assert_settled(&new, &[]);
    assert_eq!(env.sim.sim.gateway_calls().get("chat"), Some(&1));
    assert!(untouched(&env.sim.sim.call_counts()));
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_key_the_gateway_never_accepts_is_rolled_back() {
    let env = TestEnv::with_faults(Faults {
        reject_new_keys: true,
        ..Faults::default()
    })
    .await;
    let old = seeded(&env, Api::OpenRouter);
    let verify = format!(
        r#"verify = {{ mode = "models", base_url = "{}", timeout = "2s" }}"#,
        env.sim.gateway_url()
    );
    env.write_config(&policy(
        "p",
        r#"{ store = "files", secret_id = "k" }"#,
        &verify,
    ));

    let run = env.cmd("rotate", &["p", "--now", "--grace", "0"]).await;
    run.assert_code(1);
    assert!(run.stderr.contains("rolled back"), "{}", run.stderr);
    assert!(
        env.sim.sim.gateway_calls()["models"] >= 2,
        "retried while it might propagate"
    );
    assert!(untouched(&env.sim.sim.call_counts()));
    assert_eq!(std::fs::read_to_string(env.path("secrets/k")).unwrap(), old);
    env.assert_settled(&old, &[]);
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn the_gateway_client_classifies_answers_for_the_key_under_test() {
    let env = TestEnv::new().await;
    let config = rekey::config::ProviderConfig {
        name: "or".into(),
        kind: rekey::config::ProviderKind::OpenRouter,
        base_url: env.sim.url(Api::OpenRouter),
        management_key: rekey::config::SecretRef::Env("X".into()),
        request_timeout: std::time::Duration::from_secs(5),
        api: rekey::config::ApiShape::Reference,
        keys_path: None,
        workspace_id: None,
        limits: Default::default(),
    };
    let inner = rekey::providers::openrouter::OpenRouter::new(&config, env.mgmt_key.clone().into());
    let gateway = GatewayVerify::new(
        Arc::new(inner.unwrap()),
        &format!("{}/", env.sim.gateway_url()),
        reqwest::Client::new(),
    );
    let (_, arouter_key) = env.seed_key_in(Api::ARouter, "any-api-will-do");
    let key = SecretString::from(arouter_key);
    gateway.verify_key(&key, &VerifyMode::Models).await.unwrap();
    let chat = VerifyMode::Chat { model: "m".into() };
    gateway.verify_key(&key, &chat).await.unwrap();

    let stranger = SecretString::from("sk-not-known-anywhere-0000000000000000");
    let err = gateway
        .verify_key(&stranger, &VerifyMode::Models)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::KeyRejected { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("provider or:"), "{err}");
    let err = gateway
        .verify_key(&key, &VerifyMode::KeyInfo)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "permanent");
    assert_eq!(gateway.entry(), "or");
}

#[tokio::test]
async fn a_chat_check_through_the_gateway_passes_on_an_openai_reasoning_model() {
    let env = TestEnv::new().await;
    let config = rekey::config::ProviderConfig {
        name: "openai".into(),
        kind: rekey::config::ProviderKind::OpenAi,
        base_url: env.sim.url(Api::OpenAi),
        management_key: rekey::config::SecretRef::Env("X".into()),
        request_timeout: std::time::Duration::from_secs(5),
        api: rekey::config::ApiShape::Reference,
        keys_path: None,
        workspace_id: None,
        limits: Default::default(),
    };
    let inner = rekey::providers::openai::OpenAi::new(&config, env.mgmt_key.clone().into());
    let gateway = GatewayVerify::new(
        Arc::new(inner.unwrap()),
        &env.sim.gateway_url(),
        reqwest::Client::new(),
    );
    let (_, openai_key) = env.seed_key_in(Api::OpenAi, "app");
    let key = SecretString::from(openai_key.clone());
    for model in ["o3-mini", "openai/o4-mini", "gpt-5"] {
        let chat = VerifyMode::Chat {
            model: model.into(),
        };
        let verified = gateway.verify_key(&key, &chat).await;
        assert!(verified.is_ok(), "{model}: {verified:?}");
    }
    assert_eq!(env.sim.sim.gateway_calls().get("chat"), Some(&3));

    // What the gateway answers a ping that still sends max_tokens.
    let old_ping = serde_json::json!({
        "model": "o3-mini",
        "messages": [{ "role": "user", "content": "ping" }],
        "max_tokens": 1,
    });
    let answer = reqwest::Client::new()
        .post(format!("{}/chat/completions", env.sim.gateway_url()))
        .bearer_auth(&openai_key)
        .json(&old_ping)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_parameter");
}
