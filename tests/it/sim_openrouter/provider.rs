//! The OpenRouter client doing its job against the simulator.

use std::time::Duration;

use axum::Json;
use axum::routing::post;
use chrono::{TimeZone, Utc};
use rekey::policy::{LimitReset, VerifyMode};
use rekey::providers::{KeySpec, Provider, ProviderError};
use rekey::secret::redacted_label;
use rekey::sim::Faults;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{MANAGEMENT_KEY, client, client_with, http, spawn_sim};

fn spec(name: &str) -> KeySpec {
    KeySpec {
        name: name.to_string(),
        ..KeySpec::default()
    }
}

fn chat() -> VerifyMode {
    VerifyMode::Chat {
        model: "openai/gpt-4o-mini".into(),
    }
}

#[tokio::test]
async fn a_key_goes_through_create_list_get_disable_and_delete() {
    let sim = spawn_sim(Faults::default()).await;
    let or = client(&sim);

    let created = or.create_key(&spec("app-1")).await.unwrap();
    let held = sim.sim.keys();
    assert_eq!(held.len(), 1);
    assert_eq!(created.id, held[0].hash);
    assert_eq!(created.secret.expose_secret(), held[0].secret);
    assert_eq!(created.label, redacted_label(&created.secret));
    assert_eq!(created.name, "app-1");

    let listed = or.list_keys().await.unwrap();
    assert_eq!(
        listed.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        [created.id.as_str()]
    );
    let got = or.get_key(&created.id).await.unwrap().expect("key exists");
    assert_eq!((got.name.as_str(), got.disabled), ("app-1", false));
    assert!(got.created_at.is_some());

    or.disable_key(&created.id).await.unwrap();
    assert!(or.get_key(&created.id).await.unwrap().unwrap().disabled);
    assert!(
        or.list_keys().await.unwrap()[0].disabled,
        "listing includes disabled keys"
    );
    assert!(!sim.sim.key_works(created.secret.expose_secret()));

    or.delete_key(&created.id).await.unwrap();
    assert_eq!(or.get_key(&created.id).await.unwrap(), None);
    assert!(sim.sim.keys().is_empty());
}

#[tokio::test]
async fn create_sends_limit_reset_byok_and_expiry() {
    let sim = spawn_sim(Faults::default()).await;
    let expires = Utc.with_ymd_and_hms(2031, 5, 6, 7, 8, 9).unwrap();
    let spec = KeySpec {
        name: "limited".into(),
        limit: Some(12.5),
        limit_reset: Some(LimitReset::Weekly),
        include_byok_in_limit: Some(true),
        expires_at: Some(expires),
        ..KeySpec::default()
    };
    let created = client(&sim).create_key(&spec).await.unwrap();

    let url = format!("{}/keys/{}", sim.base_url, created.id);
    let body: Value = http()
        .get(url)
        .bearer_auth(MANAGEMENT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["limit"], json!(12.5));
    assert_eq!(body["data"]["limit_reset"], json!("weekly"));
    assert_eq!(body["data"]["include_byok_in_limit"], json!(true));
    assert_eq!(body["data"]["expires_at"], json!("2031-05-06T07:08:09Z"));
}

/// Serves one canned create answer, the way some official samples show it.
async fn canned_create(answer: Value) -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().route("/keys", post(move || async move { Json(answer) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (
        base,
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
    )
}

const SECRET_IN_DATA: &str =
    "sk-or-v1-1111111111111111111111111111111111111111111111111111111111111111";

#[tokio::test]
async fn a_secret_under_data_key_with_status_200_is_accepted() {
    let answer =
        json!({ "data": { "hash": "h1", "name": "n", "label": "", "key": SECRET_IN_DATA } });
    let (base, server) = canned_create(answer).await;
    let created = client_with(&base, MANAGEMENT_KEY)
        .create_key(&spec("n"))
        .await
        .unwrap();
    assert_eq!(created.secret.expose_secret(), SECRET_IN_DATA);
    assert_eq!(created.id, "h1");
    assert_eq!(
        created.label,
        redacted_label(&SecretString::from(SECRET_IN_DATA)),
        "label falls back"
    );
    server.abort();
}

#[tokio::test]
async fn a_create_answer_without_a_secret_is_permanent_and_quotes_nothing() {
    let data =
        json!({ "hash": "h1", "name": "n", "label": "sk-or-v1-111...111", "note": SECRET_IN_DATA });
    let answer = json!({ "data": data });
    let (base, server) = canned_create(answer).await;
    let err = client_with(&base, MANAGEMENT_KEY)
        .create_key(&spec("n"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Permanent {
                status: Some(200),
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("missing key"), "{text}");
    assert!(!text.contains(SECRET_IN_DATA) && !format!("{err:?}").contains(SECRET_IN_DATA));
    server.abort();
}

#[tokio::test]
async fn a_create_answer_of_the_wrong_shape_does_not_echo_the_body() {
    let answer = json!({ "data": { "hash": 5, "key": SECRET_IN_DATA }, "key": ["x"] });
    let (base, server) = canned_create(answer).await;
    let err = client_with(&base, MANAGEMENT_KEY)
        .create_key(&spec("n"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "permanent");
    assert!(!err.to_string().contains(SECRET_IN_DATA), "{err}");
    server.abort();
}

#[tokio::test]
async fn listing_pages_through_more_than_one_hundred_keys() {
    let sim = spawn_sim(Faults::default()).await;
    let mut seeded: Vec<String> = (0..230)
        .map(|i| sim.sim.insert_key(&format!("k{i}")).0)
        .collect();
    let or = client(&sim);
    or.disable_key(&seeded[150]).await.unwrap();

    let mut listed: Vec<String> = or
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(sim.sim.call_counts()["list"], 3, "pages of 100, 100 and 30");
    listed.sort();
    seeded.sort();
    assert_eq!(listed, seeded);
}

#[tokio::test]
async fn listing_exactly_one_full_page_asks_once_more_and_stops() {
    let sim = spawn_sim(Faults::default()).await;
    (0..100).for_each(|i| drop(sim.sim.insert_key(&format!("k{i}"))));
    assert_eq!(client(&sim).list_keys().await.unwrap().len(), 100);
    assert_eq!(sim.sim.call_counts()["list"], 2);
}

#[tokio::test]
async fn deleting_or_disabling_a_key_that_is_gone_succeeds() {
    let sim = spawn_sim(Faults::default()).await;
    let or = client(&sim);
    or.delete_key("0123abcd").await.unwrap();
    or.disable_key("0123abcd").await.unwrap();
    assert_eq!(or.get_key("0123abcd").await.unwrap(), None);
}

#[tokio::test]
async fn a_new_key_is_rejected_while_propagating_and_accepted_after() {
    let faults = Faults {
        propagation_delay_ms: 400,
        ..Faults::default()
    };
    let sim = spawn_sim(faults).await;
    let or = client(&sim);
    let created = or.create_key(&spec("fresh")).await.unwrap();

    for mode in [chat(), VerifyMode::KeyInfo] {
        let err = or.verify_key(&created.secret, &mode).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::KeyRejected { status: 401, .. }),
            "{err:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    or.verify_key(&created.secret, &chat()).await.unwrap();
    or.verify_key(&created.secret, &VerifyMode::KeyInfo)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_chat_ping_spends_usage_and_the_key_info_check_does_not() {
    let sim = spawn_sim(Faults::default()).await;
    let or = client(&sim);
    let created = or.create_key(&spec("u")).await.unwrap();
    or.verify_key(&created.secret, &VerifyMode::KeyInfo)
        .await
        .unwrap();
    assert_eq!(sim.sim.keys()[0].usage, 0.0);
    or.verify_key(&created.secret, &chat()).await.unwrap();
    assert!(sim.sim.keys()[0].usage > 0.0);
    assert_eq!(sim.sim.call_counts()["chat"], 1);
}
