//! rekey's own provider clients against every create mode: whatever the
//! spoiled answer, `create_key` is an error (never a key it half-read), the
//! error quotes no secret, and the key it made is at the provider — the
//! "maybe done" create that the rotation must settle by listing.

use std::sync::Arc;
use std::time::Duration;

use rekey::config::{ApiShape, ProviderConfig, ProviderKind, SecretRef};
use rekey::providers::openai::OpenAi;
use rekey::providers::{KeySpec, Provider};
use rekey::sim::{Api, SIM_OPENAI_PROJECT, SimHandle};
use secrecy::SecretString;
use serde_json::json;

use super::{MANAGEMENT_KEY, PROMPT_CREATE_MODES, names_in_state, set_after_effect, spawn};

/// Shorter than the hang below, so that `hang` times out.
const TIMEOUT: Duration = Duration::from_millis(700);
const HANG_MS: u64 = 3_000;

fn config(sim: &SimHandle, kind: ProviderKind, api: Api, shape: ApiShape) -> ProviderConfig {
    ProviderConfig {
        name: format!("{}-{shape:?}", api.as_str()).into(),
        kind,
        base_url: sim.url(api),
        management_key: SecretRef::Env("X".into()),
        request_timeout: TIMEOUT,
        api: shape,
        keys_path: None,
        workspace_id: None,
        limits: Default::default(),
    }
}

/// Each client that creates keys, with the API whose account it uses.
fn clients(sim: &SimHandle) -> Vec<(Arc<dyn Provider>, Api)> {
    let key = || SecretString::from(MANAGEMENT_KEY);
    let build = |kind, api, shape| {
        let config = config(sim, kind, api, shape);
        (
            rekey::providers::build(&config, key()).expect("client builds"),
            api,
        )
    };
    let openai = config(sim, ProviderKind::OpenAi, Api::OpenAi, ApiShape::Reference);
    let openai = OpenAi::new(&openai, key()).expect("client builds");
    vec![
        build(
            ProviderKind::OpenRouter,
            Api::OpenRouter,
            ApiShape::Reference,
        ),
        build(ProviderKind::ARouter, Api::ARouter, ApiShape::Reference),
        build(ProviderKind::ARouter, Api::ARouter, ApiShape::Guide),
        build(ProviderKind::LiteLlm, Api::LiteLlm, ApiShape::Reference),
        (Arc::new(openai.in_project(SIM_OPENAI_PROJECT)), Api::OpenAi),
    ]
}

#[tokio::test]
async fn every_spoiled_create_is_an_error_that_quotes_no_secret_while_the_key_exists() {
    let sim = spawn().await;
    let modes = PROMPT_CREATE_MODES.map(|mode| json!({ "mode": mode, "count": 1 }));
    let hang = json!({ "mode": "hang", "hang_ms": HANG_MS, "count": 1 });
    for (client, api) in clients(&sim) {
        for knob in modes.iter().chain([&hang]) {
            set_after_effect(&sim, json!({ "create": knob })).await;
            let name = format!("it-{}-{}", client.entry(), knob["mode"].as_str().unwrap());
            let spec = KeySpec {
                name: name.clone(),
                ..KeySpec::default()
            };
            // LiteLLM's key is known by the alias rekey sent, never by the
            // token in the answer: an answer without the token is complete.
            let id_unused = api == Api::LiteLlm && knob["mode"] == "missing_id";
            let err = match client.create_key(&spec).await {
                Ok(key) if id_unused => {
                    assert_eq!(key.id, name, "{name}: known by its alias");
                    super::wait_for_key(&sim, api.as_str(), &name).await;
                    continue;
                }
                Ok(_) => panic!("{name}: a spoiled create was read as a key"),
                Err(err) => format!("{err} {err:?}"),
            };
            for secret in sim.sim.issued_secrets() {
                assert!(
                    !err.contains(&secret),
                    "{name}: the error quotes a secret: {err}"
                );
            }
            super::wait_for_key(&sim, api.as_str(), &name).await;
        }
    }
    assert_eq!(names_in_state(&sim, "openai").await.len(), 6);
}
