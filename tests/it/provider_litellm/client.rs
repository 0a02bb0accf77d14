//! The LiteLLM client against the simulated proxy: a key's life by token
//! and alias, what reaches the proxy, paging, verification and how the
//! proxy's error answers are classified.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::routing::{get, post};
use rekey::policy::VerifyMode;
use rekey::providers::{KeySpec, Provider, ProviderError};
use rekey::secret::label_matches;
use rekey::sim::{Api, Faults, RateLimitFault};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{MASTER_KEY, client, client_at, spawn_sim};

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

#[tokio::test]
async fn a_key_is_known_by_its_token_and_named_by_its_alias_from_generate_to_delete() {
    let sim = spawn_sim(Faults::default()).await;
    let llm = client(&sim);

    let created = llm.create_key(&spec("it-p-0190")).await.unwrap();
    let held = &sim.sim.keys()[0];
    assert_eq!(
        (held.api, created.id.as_str()),
        ("litellm", held.hash.as_str())
    );
    assert_eq!(created.secret.expose_secret(), held.secret);
    assert_eq!(created.name, "it-p-0190");
    assert!(
        label_matches(&created.label, &created.secret),
        "{}",
        created.label
    );

    let listed = llm.list_keys().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].name.as_str()),
        (created.id.as_str(), "it-p-0190")
    );
    assert!(
        label_matches(&listed[0].label, &created.secret),
        "adoption can find it"
    );
    let got = llm.get_key(&created.id).await.unwrap().expect("key exists");
    assert_eq!((got.id, got.disabled), (created.id.clone(), false));

    let err = llm.disable_key(&created.id).await.unwrap_err();
    assert_eq!(err.kind(), "permanent", "the proxy offers no disable");
    llm.delete_key(&created.id).await.unwrap();
    assert!(sim.sim.keys().is_empty());
    assert_eq!(llm.get_key(&created.id).await.unwrap(), None);
    llm.delete_key(&created.id).await.unwrap();
}

#[tokio::test]
async fn models_and_budget_reach_the_proxy_with_the_alias() {
    let sim = spawn_sim(Faults::default()).await;
    let spec = KeySpec {
        models: Some(vec!["gpt-4o-mini".into()]),
        max_budget: Some(12.5),
        budget_duration: Some("30d".into()),
        ..spec("budgeted")
    };
    client(&sim).create_key(&spec).await.unwrap();
    let key = &sim.sim.keys()[0];
    assert_eq!(key.name, "budgeted");
    assert_eq!(key.extra["models"], json!(["gpt-4o-mini"]));
    assert_eq!(key.extra["max_budget"], json!(12.5));
    assert_eq!(key.extra["budget_duration"], json!("30d"));
}

#[tokio::test]
async fn listing_pages_through_more_than_one_hundred_keys() {
    let sim = spawn_sim(Faults::default()).await;
    let mut seeded: Vec<String> = (0..230)
        .map(|i| sim.sim.insert_key_in(Api::LiteLlm, &format!("k{i}")).0)
        .collect();
    let mut listed: Vec<String> = (client(&sim).list_keys().await.unwrap())
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(sim.sim.call_counts()["list"], 3, "pages of 100, 100 and 30");
    listed.sort();
    seeded.sort();
    assert_eq!(listed, seeded);
}

#[tokio::test]
async fn verification_by_model_list_and_chat_accepts_a_working_key() {
    let sim = spawn_sim(Faults::default()).await;
    let llm = client(&sim);
    let created = llm.create_key(&spec("v")).await.unwrap();
    llm.verify_key(&created.secret, &VerifyMode::Models)
        .await
        .unwrap();
    assert_eq!(sim.sim.keys()[0].usage, 0.0);
    llm.verify_key(&created.secret, &chat("gpt-4o-mini"))
        .await
        .unwrap();
    assert!(sim.sim.keys()[0].usage > 0.0);
}

#[tokio::test]
async fn a_model_outside_the_key_or_a_spent_budget_fails_for_good() {
    let sim = spawn_sim(Faults::default()).await;
    let llm = client(&sim);
    let narrow = KeySpec {
        models: Some(vec!["gpt-4o-mini".into()]),
        ..spec("narrow")
    };
    let narrow = llm.create_key(&narrow).await.unwrap();
    let err = llm
        .verify_key(&narrow.secret, &chat("claude-3-5-haiku"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Permanent {
                status: Some(401),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("key_model_access_denied"), "{err}");

    let broke = KeySpec {
        max_budget: Some(0.0),
        ..spec("broke")
    };
    let broke = llm.create_key(&broke).await.unwrap();
    let err = llm
        .verify_key(&broke.secret, &chat("gpt-4o-mini"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Permanent {
                status: Some(400),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("budget_exceeded"), "{err}");
}

#[tokio::test]
async fn an_unknown_or_master_key_under_test_is_rejected_not_failed() {
    let sim = spawn_sim(Faults::default()).await;
    let llm = client(&sim);
    for key in ["sk-not-a-key-of-this-proxy-000000000000", MASTER_KEY] {
        let err = llm
            .verify_key(&SecretString::from(key), &VerifyMode::Models)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::KeyRejected { status: 401, .. }),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn management_failures_are_classified_the_way_callers_branch() {
    let limit = RateLimitFault {
        count: 1,
        retry_after_secs: 11,
    };
    let sim = spawn_sim(Faults {
        rate_limit: [("create".to_string(), limit)].into(),
        error_rate: [("list".to_string(), 1.0)].into(),
        ..Faults::default()
    })
    .await;
    let llm = client(&sim);
    let err = llm.create_key(&spec("x")).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(11)), "{err:?}");
    assert_eq!(llm.list_keys().await.unwrap_err().kind(), "transient");

    let base = sim.url(Api::LiteLlm);
    let wrong = client_at(&base, "sk-wrong-master")
        .get_key("t")
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, ProviderError::Unauthorized { status: 401, .. }),
        "{wrong:?}"
    );
    assert!(
        wrong
            .to_string()
            .contains("providers.llm-test.management_key"),
        "{wrong}"
    );
}

/// A proxy version that refuses to delete a key it no longer has, with `status`.
async fn refusing_proxy(
    status: StatusCode,
    key_still_there: bool,
) -> (String, tokio::task::JoinHandle<()>) {
    let refusal = json!({ "error": { "message": "Failed to delete all keys", "type": "x", "param": "None", "code": "400" } });
    let info = move || async move {
        match key_still_there {
            true => (
                StatusCode::OK,
                Json(json!({ "key": "t1", "info": { "key_alias": "a" } })),
            ),
            false => (
                StatusCode::NOT_FOUND,
                Json(json!({ "error": { "message": "Key not found" } })),
            ),
        }
    };
    let app = axum::Router::new()
        .route(
            "/key/delete",
            post(move || async move { (status, Json(refusal.clone())) }),
        )
        .route("/key/info", get(info));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (
        base,
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
    )
}

#[tokio::test]
async fn a_refused_delete_of_a_key_the_proxy_no_longer_has_counts_as_done() {
    for status in [StatusCode::BAD_REQUEST, StatusCode::INTERNAL_SERVER_ERROR] {
        let (base, server) = refusing_proxy(status, false).await;
        client_at(&base, MASTER_KEY).delete_key("t1").await.unwrap();
        server.abort();
    }
    let (base, server) = refusing_proxy(StatusCode::BAD_REQUEST, true).await;
    let err = client_at(&base, MASTER_KEY)
        .delete_key("t1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Permanent {
                status: Some(400),
                ..
            }
        ),
        "{err:?}"
    );
    server.abort();
}

#[tokio::test]
async fn a_generate_answer_without_a_token_is_permanent_and_quotes_nothing() {
    let secret = "sk-3333333333333333333333333333333333333333";
    let app = axum::Router::new().route(
        "/key/generate",
        post(move || async move { Json(json!({ "key": secret, "key_alias": "a" })) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let err = client_at(&base, MASTER_KEY)
        .create_key(&spec("a"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing token"), "{err}");
    assert!(!format!("{err} {err:?}").contains(secret));
    server.abort();
}
