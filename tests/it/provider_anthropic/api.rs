//! The Anthropic client against the simulated Admin API over real HTTP:
//! paging, hints, status changes, verification, and every error shape
//! mapped to the class callers branch on.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::routing::get;
use rekey::config::{ApiShape, ProviderConfig, ProviderKind, SecretRef};
use rekey::policy::VerifyMode;
use rekey::providers::{self, KeySpec, Provider, ProviderError};
use rekey::secret::label_matches;
use rekey::sim::{Api, Faults, RateLimitFault};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::TestEnv;

pub fn client(env: &TestEnv) -> Arc<dyn Provider> {
    client_with(env, &env.mgmt_key)
}

fn client_with(env: &TestEnv, admin_key: &str) -> Arc<dyn Provider> {
    client_at(&env.sim.url(Api::Anthropic), admin_key)
}

fn client_at(base_url: &str, admin_key: &str) -> Arc<dyn Provider> {
    let config = ProviderConfig {
        name: "anthropic-test".into(),
        kind: ProviderKind::Anthropic,
        base_url: base_url.to_string(),
        management_key: SecretRef::Env("X".into()),
        request_timeout: Duration::from_secs(5),
        api: ApiShape::Reference,
        keys_path: None,
        workspace_id: None,
        limits: Default::default(),
    };
    providers::build(&config, SecretString::from(admin_key.to_string())).expect("client builds")
}

fn calls(env: &TestEnv, endpoint: &str) -> u64 {
    env.sim
        .sim
        .call_counts()
        .get(endpoint)
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn the_key_list_is_paged_through_and_carries_each_hint_and_status() {
    let env = TestEnv::new().await;
    let seeded: Vec<(String, String)> = (0..230)
        .map(|i| env.seed_key_in(Api::Anthropic, &format!("k{i}")))
        .collect();
    let anthropic = client(&env);
    anthropic.disable_key(&seeded[7].0).await.unwrap();

    let keys = anthropic.list_keys().await.unwrap();
    assert_eq!(calls(&env, "list"), 3, "pages of 100");
    assert_eq!(keys.len(), seeded.len());
    for ((id, secret), key) in seeded.iter().zip(&keys) {
        assert_eq!(&key.id, id);
        assert!(label_matches(
            &key.label,
            &SecretString::from(secret.clone())
        ));
        assert!(key.created_at.is_some());
    }
    let disabled: Vec<&str> = keys
        .iter()
        .filter(|k| k.disabled)
        .map(|k| k.id.as_str())
        .collect();
    assert_eq!(disabled, vec![seeded[7].0.as_str()]);
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn get_finds_a_key_by_id_and_answers_none_for_an_unknown_one() {
    let env = TestEnv::new().await;
    let (id, _) = env.seed_key_in(Api::Anthropic, "console");
    let anthropic = client(&env);
    let key = anthropic.get_key(&id).await.unwrap().expect("found");
    assert_eq!((key.name.as_str(), key.disabled), ("console", false));
    assert_eq!(anthropic.get_key("apikey_unknown").await.unwrap(), None);
}

#[tokio::test]
async fn deactivating_and_archiving_set_the_status_and_can_be_repeated() {
    let env = TestEnv::new().await;
    let (id, secret) = env.seed_key_in(Api::Anthropic, "console");
    let anthropic = client(&env);
    let status = || {
        let key = env
            .sim
            .sim
            .keys()
            .into_iter()
            .find(|k| k.hash == id)
            .unwrap();
        key.extra["status"].as_str().unwrap().to_string()
    };

    anthropic.disable_key(&id).await.unwrap();
    anthropic.disable_key(&id).await.unwrap();
    assert_eq!(status(), "inactive");
    assert!(!env.works(&secret));
    anthropic.archive_key(&id).await.unwrap();
    anthropic.archive_key(&id).await.unwrap();
    assert_eq!(status(), "archived");
    anthropic
        .disable_key(&id)
        .await
        .expect("an archived key is retired already: nothing left to do");
    assert_eq!(status(), "archived");
    anthropic
        .disable_key("apikey_gone")
        .await
        .expect("404 = already gone");
    anthropic
        .archive_key("apikey_gone")
        .await
        .expect("404 = already gone");
}

#[tokio::test]
async fn verify_accepts_an_active_key_and_rejects_retired_unknown_and_admin_keys() {
    let env = TestEnv::new().await;
    let (_, live) = env.seed_key_in(Api::Anthropic, "live");
    let (dead_id, dead) = env.seed_key_in(Api::Anthropic, "dead");
    let anthropic = client(&env);
    anthropic.disable_key(&dead_id).await.unwrap();
    let verify = |key: &str| {
        let key = SecretString::from(key.to_string());
        let anthropic = anthropic.clone();
        async move { anthropic.verify_key(&key, &VerifyMode::Models).await }
    };

    verify(&live).await.expect("an active key verifies");
    let unknown = format!("sk-ant-api03-{}-abcdefAA", "0".repeat(64));
    for (what, key) in [
        ("inactive", dead.as_str()),
        ("unknown", &unknown),
        ("admin", &env.mgmt_key),
    ] {
        match verify(key).await {
            Err(ProviderError::KeyRejected {
                status: 401,
                message,
                ..
            }) => {
                assert!(
                    message.contains("authentication_error"),
                    "{what}: {message}"
                )
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    let chat = VerifyMode::Chat {
        model: "claude-haiku-4-5".into(),
    };
    let refused = anthropic
        .verify_key(&SecretString::from(live.clone()), &chat)
        .await;
    assert!(
        matches!(refused, Err(ProviderError::Permanent { .. })),
        "{refused:?}"
    );
    assert_eq!(calls(&env, "models"), 4, "a refused mode makes no call");
}

#[tokio::test]
async fn a_rejected_admin_key_is_unauthorized_with_the_error_type_named() {
    let env = TestEnv::new().await;
    let (_, normal) = env.seed_key_in(Api::Anthropic, "normal");
    let cases = [
        ("sk-ant-admin01-wrong", 401, "authentication_error"),
        (normal.as_str(), 403, "permission_error"),
    ];
    for (key, want, kind) in cases {
        match client_with(&env, key).list_keys().await {
            Err(e @ ProviderError::Unauthorized { status, .. }) => {
                assert_eq!(status, want);
                let text = e.to_string();
                assert!(
                    text.contains(kind) && text.contains("providers.anthropic-test.management_key"),
                    "{text}"
                );
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retryable() {
    let env = TestEnv::with_faults(Faults {
        rate_limit: [(
            "list".to_string(),
            RateLimitFault {
                count: 1,
                retry_after_secs: 7,
            },
        )]
        .into(),
        error_rate: [("get".to_string(), 1.0)].into(),
        ..Faults::default()
    })
    .await;
    let anthropic = client(&env);
    let limited = anthropic.list_keys().await.unwrap_err();
    assert!(
        matches!(limited, ProviderError::RateLimited { .. }),
        "{limited:?}"
    );
    assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
    let failed = anthropic.get_key("apikey_x").await.unwrap_err();
    assert!(
        matches!(failed, ProviderError::Transient { .. }),
        "{failed:?}"
    );
    assert!(failed.to_string().contains("api_error"), "{failed}");
    assert!(anthropic.list_keys().await.is_ok(), "the 429 was spent");
}

#[tokio::test]
async fn create_and_delete_are_refused_without_calling_the_api() {
    let env = TestEnv::new().await;
    let (id, _) = env.seed_key_in(Api::Anthropic, "console");
    let anthropic = client(&env);
    assert!(anthropic.assisted());
    let spec = KeySpec {
        name: "x".into(),
        ..KeySpec::default()
    };
    assert!(matches!(
        anthropic.create_key(&spec).await,
        Err(ProviderError::Permanent { .. })
    ));
    assert!(matches!(
        anthropic.delete_key(&id).await,
        Err(ProviderError::Permanent { .. })
    ));
    assert!(env.sim.sim.call_counts().is_empty(), "no request was sent");
    assert_eq!(env.sim.sim.keys().len(), 1);
}

#[tokio::test]
async fn the_simulator_answers_in_anthropic_error_shape_and_needs_its_headers() {
    let env = TestEnv::new().await;
    let url = format!("{}/v1/organizations/api_keys", env.sim.url(Api::Anthropic));
    let http = reqwest::Client::new();
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };

    let (status, body) = send(http.get(&url).header("x-api-key", &env.mgmt_key)).await;
    assert_eq!(status, 400, "no anthropic-version");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let bearer = http
        .get(&url)
        .header("anthropic-version", "2023-06-01")
        .bearer_auth(&env.mgmt_key);
    let (status, body) = send(bearer).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );
    let good = http
        .get(&url)
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", &env.mgmt_key);
    let (status, body) = send(good).await;
    assert_eq!((status, body["has_more"].as_bool()), (200, Some(false)));
    let missing = http
        .get(format!("{url}/apikey_nope"))
        .header("anthropic-version", "2023-06-01");
    let (status, body) = send(missing.header("x-api-key", &env.mgmt_key)).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (404, Some("not_found_error"))
    );
}

/// A stand-in Anthropic answering every key list with `status` and `body`.
async fn fake_anthropic(status: StatusCode, body: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/v1/organizations/api_keys",
        get(move || async move { (status, Json(body)) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn an_overloaded_answer_is_transient_and_names_its_error_type() {
    let body = json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } });
    let status = StatusCode::from_u16(529).unwrap();
    let url = fake_anthropic(status, body).await;
    let err = client_at(&url, "sk-ant-admin01-x")
        .list_keys()
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("overloaded_error: Overloaded"),
        "{err}"
    );
}

#[tokio::test]
async fn a_key_list_that_never_advances_is_an_error_not_a_partial_list() {
    let key = json!({ "id": "apikey_1", "partial_key_hint": "sk-ant-api03-R2D...igAA", "status": "active" });
    let page = json!({ "data": [key], "has_more": true, "last_id": "apikey_1" });
    let url = fake_anthropic(StatusCode::OK, page).await;
    let err = client_at(&url, "sk-ant-admin01-x")
        .list_keys()
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Permanent { .. }), "{err:?}");
    assert!(err.to_string().contains("has_more"), "{err}");
}
