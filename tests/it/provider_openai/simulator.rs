//! The simulator's OpenAI surface checked with plain HTTP: the shapes of
//! PROVIDERS.md, OpenAI's error object everywhere, and who may call what.

use rekey::sim::{Api, Faults, RateLimitFault, SIM_OPENAI_DEFAULT_PROJECT, SIM_OPENAI_PROJECT};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::client::{ADMIN_KEY, spawn};

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn accounts_url(base: &str, project: &str) -> String {
    format!("{base}/organization/projects/{project}/service_accounts")
}

/// `error.type` and `error.code` of an OpenAI error object, checking its shape.
fn kind_and_code(body: &Value) -> (&str, &Value) {
    let error = &body["error"];
    let fields: Vec<&String> = error.as_object().expect("an error object").keys().collect();
    assert_eq!(fields, ["code", "message", "param", "type"], "{body}");
    (error["type"].as_str().unwrap(), &error["code"])
}

#[tokio::test]
async fn create_returns_the_account_with_its_key_value_once() {
    let sim = spawn(Faults::default()).await;
    let url = accounts_url(&sim.url(Api::OpenAi), SIM_OPENAI_PROJECT);
    let create = reqwest::Client::new().post(&url).bearer_auth(ADMIN_KEY);
    let (status, body) = send(create.json(&json!({ "name": "app" }))).await;

    assert_eq!(status, StatusCode::OK);
    assert!(body["id"].as_str().unwrap().starts_with("svc_acct_"));
    assert_eq!(
        (body["name"].clone(), body["role"].clone()),
        (json!("app"), json!("member"))
    );
    let value = body["api_key"]["value"].as_str().unwrap();
    assert!(body["api_key"]["id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(sim.sim.issued_secrets(), [value]);

    let keys_url = format!(
        "{}/organization/projects/{SIM_OPENAI_PROJECT}/api_keys",
        sim.url(Api::OpenAi)
    );
    let (_, keys) = send(reqwest::Client::new().get(&keys_url).bearer_auth(ADMIN_KEY)).await;
    assert!(
        !keys.to_string().contains(value),
        "listings show only a redacted value"
    );
    let key = &keys["data"][0];
    assert_eq!(key["owner"]["type"], "service_account");
    assert_eq!(key["owner"]["service_account"]["id"], body["id"]);
    assert_eq!(key["redacted_value"], json!(sim.sim.keys()[0].label));
}

#[tokio::test]
async fn lists_are_cursor_paged_with_has_more_and_last_id() {
    let sim = spawn(Faults::default()).await;
    let ids: Vec<String> = (0..3)
        .map(|i| sim.sim.insert_key_in(Api::OpenAi, &format!("sa-{i}")).0)
        .collect();
    let url = accounts_url(&sim.url(Api::OpenAi), SIM_OPENAI_PROJECT);
    let get = |query: String| {
        reqwest::Client::new()
            .get(format!("{url}?{query}"))
            .bearer_auth(ADMIN_KEY)
    };

    let (_, first) = send(get("limit=2".into())).await;
    assert_eq!(
        (first["has_more"].clone(), first["last_id"].clone()),
        (json!(true), json!(ids[1]))
    );
    let (_, second) = send(get(format!("limit=2&after={}", ids[1]))).await;
    assert_eq!(second["data"][0]["id"], json!(ids[2]));
    assert_eq!(second["has_more"], false);
    let (status, body) = send(get("limit=500".into())).await;
    assert_eq!(
        (status, kind_and_code(&body).0),
        (StatusCode::BAD_REQUEST, "invalid_request_error")
    );
}

#[tokio::test]
async fn deleting_an_account_deletes_its_key_and_a_second_delete_is_404() {
    let sim = spawn(Faults::default()).await;
    let (id, secret) = sim.sim.insert_key_in(Api::OpenAi, "app");
    let url = format!(
        "{}/{id}",
        accounts_url(&sim.url(Api::OpenAi), SIM_OPENAI_PROJECT)
    );
    let delete = || reqwest::Client::new().delete(&url).bearer_auth(ADMIN_KEY);

    let (status, body) = send(delete()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "object": "organization.project.service_account.deleted", "id": id, "deleted": true })
    );
    assert!(!sim.sim.key_works(&secret));
    let (status, body) = send(delete()).await;
    assert_eq!(
        (status, kind_and_code(&body).0),
        (StatusCode::NOT_FOUND, "invalid_request_error")
    );
}

#[tokio::test]
async fn admin_endpoints_refuse_project_keys_and_models_refuses_unknown_keys_without_echoing_them()
{
    let sim = spawn(Faults::default()).await;
    let (_, project_key) = sim.sim.insert_key_in(Api::OpenAi, "app");
    let base = sim.url(Api::OpenAi);
    let http = reqwest::Client::new();

    let (status, _) = send(
        http.get(accounts_url(&base, SIM_OPENAI_PROJECT))
            .bearer_auth(&project_key),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let unknown = format!("{project_key}x");
    let (status, body) = send(http.get(format!("{base}/models")).bearer_auth(&unknown)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        kind_and_code(&body),
        ("invalid_request_error", &json!("invalid_api_key"))
    );
    assert!(!body.to_string().contains(project_key.as_str()), "{body}");
    let (status, body) = send(http.get(format!("{base}/models")).bearer_auth(&project_key)).await;
    assert_eq!(
        (status, body["object"].clone()),
        (StatusCode::OK, json!("list"))
    );
}

#[tokio::test]
async fn the_default_project_refuses_service_accounts_with_400() {
    let sim = spawn(Faults::default()).await;
    let url = accounts_url(&sim.url(Api::OpenAi), SIM_OPENAI_DEFAULT_PROJECT);
    let create = reqwest::Client::new().post(&url).bearer_auth(ADMIN_KEY);
    let (status, body) = send(create.json(&json!({ "name": "app" }))).await;
    assert_eq!(
        (status, kind_and_code(&body).0),
        (StatusCode::BAD_REQUEST, "invalid_request_error")
    );
    assert!(sim.sim.keys().is_empty());
}

#[tokio::test]
async fn injected_faults_answer_in_openais_error_shape() {
    let fault = RateLimitFault {
        count: 1,
        retry_after_secs: 4,
    };
    let sim = spawn(Faults {
        rate_limit: [("list".into(), fault)].into(),
        quota_exhausted: true,
        ..Faults::default()
    })
    .await;
    let (_, key) = sim.sim.insert_key_in(Api::OpenAi, "app");
    let base = sim.url(Api::OpenAi);
    let http = reqwest::Client::new();

    let response = http
        .get(accounts_url(&base, SIM_OPENAI_PROJECT))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "4");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        kind_and_code(&body),
        ("requests", &json!("rate_limit_exceeded"))
    );

    let chat = json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "ping" }], "max_tokens": 1 });
    let (status, body) = send(
        http.post(format!("{base}/chat/completions"))
            .bearer_auth(&key)
            .json(&chat),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        kind_and_code(&body),
        ("insufficient_quota", &json!("insufficient_quota"))
    );
}

#[tokio::test]
async fn chat_refuses_max_tokens_for_reasoning_models_as_openai_does() {
    let sim = spawn(Faults::default()).await;
    let (_, key) = sim.sim.insert_key_in(Api::OpenAi, "app");
    let url = format!("{}/chat/completions", sim.url(Api::OpenAi));
    let chat = |model: &str, cap: &str| {
        let body =
            json!({ "model": model, "messages": [{ "role": "user", "content": "ping" }], cap: 1 });
        reqwest::Client::new()
            .post(&url)
            .bearer_auth(&key)
            .json(&body)
    };

    for model in [
        "o1",
        "o3-mini",
        "o4-mini-2025-04-16",
        "gpt-5",
        "gpt-5.1-mini",
    ] {
        let (status, body) = send(chat(model, "max_tokens")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{model}");
        assert_eq!(
            kind_and_code(&body),
            ("invalid_request_error", &json!("unsupported_parameter")),
            "{model}"
        );
        assert_eq!(body["error"]["param"], "max_tokens");
        let (status, _) = send(chat(model, "max_completion_tokens")).await;
        assert_eq!(status, StatusCode::OK, "{model}");
    }
    for model in ["gpt-4o-mini", "gpt-4.1", "omni-moderation-latest"] {
        let (status, _) = send(chat(model, "max_tokens")).await;
        assert_eq!(status, StatusCode::OK, "{model} still takes max_tokens");
    }
}

#[tokio::test]
async fn the_key_listing_without_owner_project_access_may_leave_enabled_keys_out() {
    let sim = spawn(Faults::default()).await;
    let (by_hand, _) = sim.sim.insert_key_in(Api::OpenAi, "made-by-hand");
    let base = sim.url(Api::OpenAi);
    let (_, created) = send(
        reqwest::Client::new()
            .post(accounts_url(&base, SIM_OPENAI_PROJECT))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({ "name": "by-api" })),
    )
    .await;
    let keys = format!("{base}/organization/projects/{SIM_OPENAI_PROJECT}/api_keys");
    let owners = |query: &'static str| {
        let request = reqwest::Client::new()
            .get(format!("{keys}{query}"))
            .bearer_auth(ADMIN_KEY);
        async move {
            let (status, body) = send(request).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            let data = body["data"].as_array().unwrap().clone();
            let owner = |k: &Value| {
                k["owner"]["service_account"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            };
            data.iter().map(owner).collect::<Vec<String>>()
        }
    };
    let by_api = created["id"].as_str().unwrap().to_string();

    let all = [by_hand, by_api];
    assert_eq!(owners("").await, all[1..], "membership rules hide one");
    assert_eq!(owners("?owner_project_access=any").await, all);
    assert_eq!(owners("?owner_project_access=active&limit=100").await, all);
    assert!(owners("?owner_project_access=inactive").await.is_empty());

    let (status, body) = send(
        reqwest::Client::new()
            .get(format!("{keys}?owner_project_access=everyone"))
            .bearer_auth(ADMIN_KEY),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(kind_and_code(&body).0, "invalid_request_error");
}
