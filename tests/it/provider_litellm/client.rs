//! The LiteLLM client against the simulated proxy: a key's life by its
//! alias (the proxy's token, a hash of the key, never shows), what reaches
//! the proxy, paging, verification and how the proxy's error answers are
//! classified.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::routing::{get, post};
use rekey::policy::VerifyMode;
use rekey::providers::litellm::LiteLlm;
use rekey::providers::{KeySpec, Provider, ProviderError};
use rekey::secret::{label_matches, redacted_label};
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

/// Every way the client reports on `id`, joined for "is the token in it" checks.
async fn everything_said_about(llm: &LiteLlm, id: &str) -> String {
    let listed = llm.list_keys().await.unwrap();
    let got = llm.get_key(id).await;
    let disabled = llm.disable_key(id).await.unwrap_err();
    format!("{listed:?} {got:?} {disabled} {disabled:?}")
}

#[tokio::test]
async fn a_key_is_known_by_its_alias_from_generate_to_delete_and_its_token_never_shows() {
    let sim = spawn_sim(Faults::default()).await;
    let llm = client(&sim);

    let created = llm.create_key(&spec("it-p-0190")).await.unwrap();
    let held = &sim.sim.keys()[0];
    assert_eq!(held.api, "litellm");
    assert_eq!(created.secret.expose_secret(), held.secret);
    assert_eq!(
        (created.id.as_str(), created.name.as_str()),
        ("it-p-0190", "it-p-0190")
    );
    assert_eq!(created.label, redacted_label(&created.secret));
    assert!(label_matches(&created.label, &created.secret));
    let token = held.hash.clone();
    assert_eq!(token.len(), 64, "the proxy's token is a sha256 hex");

    let listed = llm.list_keys().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].name.as_str()),
        ("it-p-0190", "it-p-0190")
    );
    let tail = &held.secret[held.secret.len() - 3..];
    assert_eq!(
        listed[0].label,
        format!("sk-...{tail}"),
        "cut to 3 characters"
    );
    assert!(
        label_matches(&listed[0].label, &created.secret),
        "adoption can find it"
    );
    let got = llm.get_key(&created.id).await.unwrap().expect("key exists");
    assert_eq!((got.id.as_str(), got.disabled), ("it-p-0190", false));

    let said = format!(
        "{created:?} {}",
        everything_said_about(&llm, &created.id).await
    );
    assert!(!said.contains(&token[..12]), "the token shows: {said}");
    let err = llm.disable_key(&created.id).await.unwrap_err();
    assert_eq!(err.kind(), "permanent", "the proxy offers no disable");

    llm.delete_key(&created.id).await.unwrap();
    assert!(sim.sim.keys().is_empty());
    assert_eq!(llm.get_key(&created.id).await.unwrap(), None);
    llm.delete_key(&created.id).await.unwrap();
}

#[tokio::test]
async fn a_key_an_older_version_recorded_by_its_token_is_still_found_and_deleted() {
    let sim = spawn_sim(Faults::default()).await;
    let llm = client(&sim);
    let (token, _) = sim.sim.insert_key_in(Api::LiteLlm, "old-alias");
    let got = llm.get_key(&token).await.unwrap().expect("found by token");
    assert_eq!(got.id, "old-alias", "from now on it is known by its alias");
    let said = everything_said_about(&llm, &token).await;
    assert!(!said.contains(&token[..12]), "the token shows: {said}");
    llm.delete_key(&token).await.unwrap();
    assert!(sim.sim.keys().is_empty(), "not taken for gone: deleted");
}

#[tokio::test]
async fn a_key_made_without_alias_is_known_by_its_creation_time() {
    let sim = spawn_sim(Faults::default()).await;
    let answer = reqwest::Client::new()
        .post(format!("{}/key/generate", sim.url(Api::LiteLlm)))
        .bearer_auth(MASTER_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    let llm = client(&sim);
    let listed = llm.list_keys().await.unwrap();
    let id = &listed[0].id;
    assert!(id.starts_with("unaliased@20"), "{id}");
    assert_eq!(listed[0].name, "");
    assert_eq!(llm.get_key(id).await.unwrap().as_ref(), Some(&listed[0]));
    llm.delete_key(id).await.unwrap();
    assert!(sim.sim.keys().is_empty());
}

#[tokio::test]
async fn two_keys_under_one_alias_are_neither_got_nor_deleted() {
    let sim = spawn_sim(Faults::default()).await;
    let llm = client(&sim);
    sim.sim.insert_key_in(Api::LiteLlm, "twin");
    sim.sim.insert_key_in(Api::LiteLlm, "twin");
    let err = llm.get_key("twin").await.unwrap_err();
    assert!(err.to_string().contains("2 keys"), "{err}");
    let err = llm.delete_key("twin").await.unwrap_err();
    assert_eq!(err.kind(), "permanent", "{err}");
    assert_eq!(sim.sim.keys().len(), 2, "neither was deleted");
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
    let mut seeded: Vec<String> = (0..230).map(|i| format!("k{i}")).collect();
    for alias in &seeded {
        sim.sim.insert_key_in(Api::LiteLlm, alias);
    }
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
        let token = crate::helpers::sha256_hex(key);
        assert!(
            !format!("{err} {err:?}").contains(&token[..12]),
            "the proxy's message quotes the token: it is scrubbed ({err})"
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

    // Get lists the keys: on a proxy that lists fine, the master key is checked.
    let sim = spawn_sim(Faults::default()).await;
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

const FAKE_TOKEN: &str = "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589";

/// A proxy version that refuses to delete a key with `status`, quoting the
/// token it was given; the key is listed until the refusal, and after it
/// only when `key_still_there`.
async fn refusing_proxy(
    status: StatusCode,
    key_still_there: bool,
) -> (String, tokio::task::JoinHandle<()>) {
    let gone = Arc::new(AtomicBool::new(false));
    let refusal = json!({ "error": {
        "message": format!("Failed to delete all keys. Keys passed in={FAKE_TOKEN}"),
        "type": "x", "param": "None", "code": "400",
    }});
    let listed = gone.clone();
    let list = move || async move {
        let key = json!({ "token": FAKE_TOKEN, "key_alias": "a", "key_name": "sk-...abcd" });
        let keys = match listed.load(Ordering::SeqCst) {
            true => vec![],
            false => vec![key],
        };
        Json(json!({ "keys": keys, "total_pages": 1 }))
    };
    let delete = move || async move {
        gone.store(!key_still_there, Ordering::SeqCst);
        (status, Json(refusal.clone()))
    };
    let app = axum::Router::new()
        .route("/key/delete", post(delete))
        .route("/key/list", get(list));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (
        base,
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
    )
}

#[tokio::test]
async fn a_refused_delete_of_a_key_the_proxy_no_longer_lists_counts_as_done() {
    for status in [
        StatusCode::NOT_FOUND,
        StatusCode::BAD_REQUEST,
        StatusCode::INTERNAL_SERVER_ERROR,
    ] {
        let (base, server) = refusing_proxy(status, false).await;
        client_at(&base, MASTER_KEY).delete_key("a").await.unwrap();
        server.abort();
    }
    for status in [StatusCode::NOT_FOUND, StatusCode::BAD_REQUEST] {
        let (base, server) = refusing_proxy(status, true).await;
        let err = client_at(&base, MASTER_KEY)
            .delete_key("a")
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::Permanent { status: Some(s), .. } if s == status.as_u16()),
            "{err:?}"
        );
        let said = format!("{err} {err:?}");
        assert!(!said.contains(&FAKE_TOKEN[..12]), "the token shows: {said}");
        server.abort();
    }
}

/// A proxy whose `/key/generate` answers `answer`.
async fn generating_proxy(answer: serde_json::Value) -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().route(
        "/key/generate",
        post(move || async move { Json(answer.clone()) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, server)
}

#[tokio::test]
async fn a_generate_answer_is_read_for_its_key_and_alias_never_its_token() {
    let secret = "sk-3333333333333333333333333333333333333333";
    let answer = json!({ "key": secret, "token": FAKE_TOKEN, "key_alias": "a" });
    let (base, server) = generating_proxy(answer).await;
    let created = client_at(&base, MASTER_KEY)
        .create_key(&spec("a"))
        .await
        .unwrap();
    assert_eq!(created.id, "a");
    assert!(!format!("{created:?}").contains(&FAKE_TOKEN[..12]));
    server.abort();

    let (base, server) = generating_proxy(json!({ "key": secret })).await;
    let created = client_at(&base, MASTER_KEY)
        .create_key(&spec("requested"))
        .await
        .unwrap();
    assert_eq!(
        (created.id.as_str(), created.name.as_str()),
        ("requested", "requested")
    );
    server.abort();
}

#[tokio::test]
async fn a_generate_answer_without_a_key_is_permanent_and_quotes_nothing() {
    let answer = json!({ "token": FAKE_TOKEN, "key_alias": "a", "key_name": "sk-...3333" });
    let (base, server) = generating_proxy(answer).await;
    let err = client_at(&base, MASTER_KEY)
        .create_key(&spec("a"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing key"), "{err}");
    assert!(!format!("{err} {err:?}").contains(&FAKE_TOKEN[..12]));
    server.abort();
}
