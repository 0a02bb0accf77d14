//! The ARouter client against the simulator: both key-management shapes,
//! what reaches the provider, and how ARouter's error answers are classified.

use std::time::Duration;

use axum::Json;
use axum::routing::post;
use rekey::config::ApiShape;
use rekey::policy::VerifyMode;
use rekey::providers::{KeySpec, Provider, ProviderError};
use rekey::sim::{Api, Faults, RateLimitFault};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{MANAGEMENT_KEY, client, client_with, config, reference_key, spawn_sim};

fn spec(name: &str) -> KeySpec {
    KeySpec {
        name: name.to_string(),
        ..KeySpec::default()
    }
}

fn chat(model: &str) -> VerifyMode {
    VerifyMode::Chat {
        model: model.to_string(),
    }
}

fn openai_only(name: &str) -> KeySpec {
    KeySpec {
        allowed_providers: Some(vec!["openai".into()]),
        ..spec(name)
    }
}

#[tokio::test]
async fn a_reference_key_goes_through_create_list_get_disable_and_delete() {
    let sim = spawn_sim(Faults::default()).await;
    let ar = client(&sim, ApiShape::Reference);

    let created = ar.create_key(&spec("app-1")).await.unwrap();
    let held = sim.sim.keys();
    assert_eq!((held.len(), held[0].api), (1, "arouter"));
    assert_eq!(created.id, held[0].hash, "the id is the key's hash");
    assert_eq!(created.secret.expose_secret(), held[0].secret);
    assert!(created.secret.expose_secret().starts_with("lr_live_"));
    assert_eq!(created.name, "app-1");

    let listed = ar.list_keys().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].name.as_str()),
        (created.id.as_str(), "app-1")
    );
    let got = ar.get_key(&created.id).await.unwrap().expect("key exists");
    assert!(!got.disabled && got.created_at.is_some());

    ar.disable_key(&created.id).await.unwrap();
    assert!(
        ar.list_keys().await.unwrap()[0].disabled,
        "disabled keys are listed"
    );
    assert!(!sim.sim.key_works(created.secret.expose_secret()));

    ar.delete_key(&created.id).await.unwrap();
    assert_eq!(ar.get_key(&created.id).await.unwrap(), None);
    assert!(sim.sim.keys().is_empty());
    ar.delete_key(&created.id).await.unwrap();
}

#[tokio::test]
async fn a_guide_key_is_known_by_its_key_id_and_its_secret_comes_from_data_key() {
    let sim = spawn_sim(Faults::default()).await;
    let ar = client(&sim, ApiShape::Guide);

    let created = ar.create_key(&spec("app-2")).await.unwrap();
    let held = &sim.sim.keys()[0];
    assert_eq!(created.id, format!("key_{}", held.hash));
    assert_eq!(created.secret.expose_secret(), held.secret);

    let listed = ar.list_keys().await.unwrap();
    assert_eq!(listed[0].id, created.id);
    ar.disable_key(&created.id).await.unwrap();
    assert!(ar.get_key(&created.id).await.unwrap().unwrap().disabled);
    ar.delete_key(&created.id).await.unwrap();
    assert!(
        sim.sim.keys().is_empty(),
        "the guide's 204 delete is accepted"
    );
    ar.delete_key(&created.id).await.unwrap();
}

#[tokio::test]
async fn the_limit_goes_out_under_each_shapes_field_name_with_the_allow_lists() {
    let sim = spawn_sim(Faults::default()).await;
    let limited = |name: &str| KeySpec {
        limit: Some(7.5),
        allowed_models: Some(vec!["openai/gpt-4o-mini".into()]),
        ..openai_only(name)
    };
    // The simulator refuses the other shape's field name with a 400.
    client(&sim, ApiShape::Reference)
        .create_key(&limited("ref"))
        .await
        .unwrap();
    client(&sim, ApiShape::Guide)
        .create_key(&limited("guide"))
        .await
        .unwrap();

    for key in sim.sim.keys() {
        let seen = reference_key(&sim, MANAGEMENT_KEY, &key.hash).await;
        assert_eq!(seen["limit"], json!(7.5), "{}", key.name);
        assert_eq!(seen["allowed_providers"], json!(["openai"]));
        assert_eq!(seen["allowed_models"], json!(["openai/gpt-4o-mini"]));
    }
}

#[tokio::test]
async fn keys_path_moves_the_key_collection() {
    let secret = "lr_live_2222222222222222222222222222222222222222";
    let answer = json!({ "data": { "hash": "h9", "name": "n" }, "key": secret });
    let app = axum::Router::new().route(
        "/custom/keys",
        post(move || async move { Json(answer.clone()) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut cfg = config(&base, ApiShape::Reference);
    cfg.keys_path = Some("/custom/keys".into());
    let created = client_with(&cfg, MANAGEMENT_KEY)
        .create_key(&spec("n"))
        .await
        .unwrap();
    assert_eq!(
        (created.id.as_str(), created.secret.expose_secret()),
        ("h9", secret)
    );
    server.abort();
}

#[tokio::test]
async fn every_verification_mode_accepts_a_working_key_and_only_chat_spends() {
    let sim = spawn_sim(Faults::default()).await;
    let ar = client(&sim, ApiShape::Reference);
    let created = ar.create_key(&spec("v")).await.unwrap();
    for mode in [VerifyMode::KeyInfo, VerifyMode::Models] {
        ar.verify_key(&created.secret, &mode).await.unwrap();
    }
    assert_eq!(sim.sim.keys()[0].usage, 0.0);
    ar.verify_key(&created.secret, &chat("openai/gpt-4o-mini"))
        .await
        .unwrap();
    assert!(sim.sim.keys()[0].usage > 0.0);
    assert!(sim.sim.keys()[0].last_used_at.is_some());
}

#[tokio::test]
async fn the_model_list_needs_a_key_and_a_key_still_propagating_is_rejected_not_failed() {
    let sim = spawn_sim(Faults {
        propagation_delay_ms: 60_000,
        ..Faults::default()
    })
    .await;
    let url = format!("{}/v1/models", sim.url(Api::ARouter));
    let anonymous = reqwest::get(url).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");

    let ar = client(&sim, ApiShape::Reference);
    let fresh = ar.create_key(&spec("fresh")).await.unwrap();
    let err = ar
        .verify_key(&fresh.secret, &VerifyMode::Models)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::KeyRejected { status: 401, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_model_outside_the_keys_allow_lists_fails_for_good() {
    let sim = spawn_sim(Faults::default()).await;
    let ar = client(&sim, ApiShape::Reference);
    let narrow = KeySpec {
        allowed_models: Some(vec!["openai/gpt-4o-mini".into()]),
        ..openai_only("narrow")
    };
    let created = ar.create_key(&narrow).await.unwrap();

    for (model, kind) in [
        ("anthropic/claude-3.5-haiku", "provider_not_allowed"),
        ("meta-llama/llama-3.1-8b-instruct", "provider_not_allowed"),
    ] {
        let err = ar
            .verify_key(&created.secret, &chat(model))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ProviderError::Permanent {
                    status: Some(403),
                    ..
                }
            ),
            "{model}: {err:?}"
        );
        assert!(err.to_string().contains(kind), "{err}");
    }
    let models_only = KeySpec {
        allowed_models: Some(vec!["openai/gpt-4o-mini".into()]),
        ..spec("models-only")
    };
    let created = ar.create_key(&models_only).await.unwrap();
    let err = ar
        .verify_key(&created.secret, &chat("anthropic/claude-3.5-haiku"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("model_not_allowed"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_spent_limit_is_402_and_permanent() {
    let sim = spawn_sim(Faults::default()).await;
    let ar = client(&sim, ApiShape::Reference);
    let broke = KeySpec {
        limit: Some(0.0),
        ..spec("broke")
    };
    let created = ar.create_key(&broke).await.unwrap();
    let err = ar
        .verify_key(&created.secret, &chat("openai/gpt-4o-mini"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Permanent {
                status: Some(402),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn management_failures_are_classified_the_way_callers_branch() {
    let limit = RateLimitFault {
        count: 1,
        retry_after_secs: 17,
    };
    let sim = spawn_sim(Faults {
        rate_limit: [("list".to_string(), limit)].into(),
        ..Faults::default()
    })
    .await;
    let ar = client(&sim, ApiShape::Reference);
    let err = ar.list_keys().await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(17)), "{err:?}");
    sim.sim.set_faults(Faults {
        error_rate: [("list".to_string(), 1.0)].into(),
        ..Faults::default()
    });
    // A get is a listing at ARouter, and fails as one.
    assert_eq!(ar.get_key("abc").await.unwrap_err().kind(), "transient");
    sim.sim.set_faults(Faults::default());

    let cfg = config(&sim.url(Api::ARouter), ApiShape::Guide);
    let wrong = client_with(&cfg, "lr_mgmt_wrong")
        .list_keys()
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, ProviderError::Unauthorized { status: 401, .. }),
        "{wrong:?}"
    );
    assert!(
        wrong
            .to_string()
            .contains("providers.ar-test.management_key"),
        "{wrong}"
    );

    let (_, normal) = sim.sim.insert_key_in(Api::ARouter, "normal");
    let err = client_with(&cfg, &normal)
        .create_key(&spec("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Unauthorized { status: 403, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn no_error_shows_a_key() {
    let sim = spawn_sim(Faults {
        propagation_delay_ms: 60_000,
        ..Faults::default()
    })
    .await;
    let ar = client(&sim, ApiShape::Reference);
    let fresh = ar.create_key(&openai_only("fresh")).await.unwrap();
    let cfg = config(&sim.url(Api::ARouter), ApiShape::Reference);
    let mut errors = vec![
        ar.verify_key(&fresh.secret, &VerifyMode::KeyInfo)
            .await
            .unwrap_err(),
        ar.verify_key(&fresh.secret, &chat("openai/gpt-4o-mini"))
            .await
            .unwrap_err(),
        client_with(&cfg, "lr_mgmt_wrong")
            .list_keys()
            .await
            .unwrap_err(),
        ar.verify_key(&SecretString::from(MANAGEMENT_KEY), &VerifyMode::Models)
            .await
            .unwrap_err(),
    ];
    sim.sim.set_faults(Faults {
        error_rate: [("*".to_string(), 1.0)].into(),
        ..Faults::default()
    });
    errors.push(ar.create_key(&spec("x")).await.unwrap_err());
    errors.push(ar.delete_key(&fresh.id).await.unwrap_err());

    let mut secrets = sim.sim.issued_secrets();
    secrets.extend([MANAGEMENT_KEY.to_string(), "lr_mgmt_wrong".to_string()]);
    for err in &errors {
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!secrets.iter().any(|s| text.contains(s.as_str())), "{text}");
        }
    }
    assert_eq!(errors.len(), 6);
}
