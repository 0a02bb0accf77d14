//! ARouter's 403 `quota_exceeded`: the account's quota is used up, which
//! no retry fixes, so verification fails for good at once and says what to
//! do — unlike a 403 for a key that may still be propagating.

use rekey::config::ApiShape;
use rekey::policy::VerifyMode;
use rekey::providers::{KeySpec, Provider, ProviderError};
use rekey::sim::{Api, Faults};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{client, spawn_sim};
use crate::helpers::{Case, TestEnv, policy};

fn exhausted() -> Faults {
    Faults {
        quota_exhausted: true,
        ..Faults::default()
    }
}

fn calls(sim: &rekey::sim::SimHandle, endpoint: &str) -> u64 {
    sim.sim.call_counts().get(endpoint).copied().unwrap_or(0)
}

#[tokio::test]
async fn an_exceeded_quota_fails_verification_for_good_and_says_so() {
    let sim = spawn_sim(exhausted()).await;
    let ar = client(&sim, ApiShape::Reference);
    let spec = KeySpec {
        name: "app".into(),
        ..KeySpec::default()
    };
    let created = ar.create_key(&spec).await.expect("management still works");
    let chat = VerifyMode::Chat {
        model: "openai/gpt-4o-mini".into(),
    };
    for mode in [VerifyMode::Models, chat] {
        let err = ar.verify_key(&created.secret, &mode).await.unwrap_err();
        assert!(
            matches!(
                err,
                ProviderError::Permanent {
                    status: Some(403),
                    ..
                }
            ),
            "{mode:?}: {err:?}"
        );
        assert!(!err.is_retryable(), "{mode:?}");
        let text = err.to_string();
        assert!(
            text.contains("quota_exceeded") && text.contains("quota is used up"),
            "{text}"
        );
        assert!(!text.contains(created.secret.expose_secret()), "{text}");
    }
    assert_eq!((calls(&sim, "models"), calls(&sim, "chat")), (1, 1));
}

#[tokio::test]
async fn the_simulator_answers_quota_exceeded_in_arouters_error_shape() {
    let sim = spawn_sim(exhausted()).await;
    let (_, key) = sim.sim.insert_key_in(Api::ARouter, "app");
    let base = sim.url(Api::ARouter);
    let http = reqwest::Client::new();
    let ping = json!({
        "model": "openai/gpt-4o-mini",
        "messages": [{ "role": "user", "content": "ping" }],
        "max_tokens": 1,
    });
    let answers = [
        http.get(format!("{base}/v1/models")).bearer_auth(&key),
        http.post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&ping),
    ];
    for request in answers {
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 403);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["type"], "quota_exceeded", "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn a_403_without_quota_exceeded_is_still_a_key_that_may_be_propagating() {
    let sim = spawn_sim(Faults::default()).await;
    let ar = client(&sim, ApiShape::Reference);
    let stranger = SecretString::from("lr_live_0000000000000000000000000000000000000000");
    let err = ar
        .verify_key(&stranger, &VerifyMode::Models)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "key_rejected", "{err:?}");
}

#[tokio::test]
async fn a_rotation_on_an_exceeded_quota_rolls_back_after_one_check_and_says_so() {
    let env = TestEnv::with_faults(exhausted()).await;
    let (_, old) = env.seed_key_in(Api::ARouter, "made-by-hand");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    let verify = r#"verify = { mode = "chat", model = "openai/gpt-4o-mini", timeout = "30s" }"#;
    let target = r#"{ store = "files", secret_id = "k" }"#;
    env.write_config_case(&Case::arouter(), &policy("p", target, verify));

    let run = env.cmd("rotate", &["p", "--now", "--grace", "0"]).await;
    run.assert_code(1);
    assert!(run.stderr.contains("quota is used up"), "{}", run.stderr);
    assert_eq!(
        env.sim.sim.call_counts()["chat"],
        1,
        "an exceeded quota is not retried"
    );
    assert_eq!(std::fs::read_to_string(env.path("secrets/k")).unwrap(), old);
    env.assert_settled(&old, &[]);
    assert_eq!(env.journal("p")["last_result"]["kind"], "rolled_back");
    env.assert_no_secret_leaked();
}
