//! The simulator's HTTP surface, checked with plain requests.

use rekey::sim::{Faults, RateLimitFault, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{MANAGEMENT_KEY, http, spawn_sim};

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn error(code: u16, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

#[tokio::test]
async fn create_answers_201_with_the_secret_once_and_a_matching_label() {
    let sim = spawn_sim(Faults::default()).await;
    let url = format!("{}/keys", sim.base_url);
    let (status, body) = send(
        http()
            .post(&url)
            .bearer_auth(MANAGEMENT_KEY)
            .json(&json!({"name": "a"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let secret = body["key"].as_str().unwrap();
    assert!(secret.starts_with("sk-or-v1-") && secret.len() == 9 + 64);
    assert_eq!(body["data"]["label"], json!(sim.sim.keys()[0].label));
    assert!(
        body["data"].get("key").is_none(),
        "the key object never holds the secret"
    );

    let (_, listed) = send(http().get(&url).bearer_auth(MANAGEMENT_KEY)).await;
    assert!(!listed.to_string().contains(secret));
    assert_eq!(sim.sim.issued_secrets(), [secret]);
}

#[tokio::test]
async fn bad_requests_get_400_in_the_error_shape() {
    let sim = spawn_sim(Faults::default()).await;
    let url = format!("{}/keys", sim.base_url);
    let post = |body: &'static str| {
        let request = http().post(&url).bearer_auth(MANAGEMENT_KEY);
        request
            .header("content-type", "application/json")
            .body(body)
    };
    assert_eq!(
        send(post("{}")).await,
        (StatusCode::BAD_REQUEST, error(400, "name is required"))
    );
    let (status, body) = send(post("{not json")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!(400))
    );
}

#[tokio::test]
async fn each_kind_of_key_is_kept_to_its_own_endpoints() {
    let sim = spawn_sim(Faults::default()).await;
    let (_, normal) = sim.sim.insert_key("normal");
    let base = &sim.base_url;
    let only_management = error(403, "Only management keys can perform this operation");
    assert_eq!(
        send(http().get(format!("{base}/keys")).bearer_auth(&normal)).await,
        (StatusCode::FORBIDDEN, only_management)
    );
    let (status, _) = send(
        http()
            .get(format!("{base}/key"))
            .bearer_auth(MANAGEMENT_KEY),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let messages = json!([{ "role": "user", "content": "ping" }]);
    let ping = json!({ "model": "m", "messages": messages, "max_tokens": 1 });
    let chat = format!("{base}/chat/completions");
    let (status, _) = send(http().post(&chat).bearer_auth(MANAGEMENT_KEY).json(&ping)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = send(http().post(&chat).bearer_auth(&normal).json(&ping)).await;
    assert_eq!(
        (status, &body["object"]),
        (StatusCode::OK, &json!("chat.completion"))
    );
    let (status, _) = send(http().get(format!("{base}/keys"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no key at all");
}

#[tokio::test]
async fn models_answer_without_any_key() {
    let sim = spawn_sim(Faults::default()).await;
    let (status, body) = send(http().get(format!("{}/models", sim.base_url))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn whoami_reports_limits_and_usage_of_the_calling_key() {
    let sim = spawn_sim(Faults::default()).await;
    let (hash, normal) = sim.sim.insert_key("who");
    let patch = http()
        .patch(format!("{}/keys/{hash}", sim.base_url))
        .bearer_auth(MANAGEMENT_KEY);
    let (status, body) = send(patch.json(&json!({ "limit": 5.0, "name": "renamed" }))).await;
    assert_eq!(
        (status, &body["data"]["name"]),
        (StatusCode::OK, &json!("renamed"))
    );

    let (status, body) = send(
        http()
            .get(format!("{}/key", sim.base_url))
            .bearer_auth(&normal),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["limit"], json!(5.0));
    assert_eq!(body["data"]["limit_remaining"], json!(5.0));
    assert_eq!(body["data"]["is_management_key"], json!(false));
    assert_eq!(body["data"]["label"], json!(sim.sim.keys()[0].label));
}

#[tokio::test]
async fn listing_omits_disabled_keys_unless_asked_and_delete_is_final() {
    let sim = spawn_sim(Faults::default()).await;
    let (off, _) = sim.sim.insert_key("off");
    let (on, _) = sim.sim.insert_key("on");
    let keys = format!("{}/keys", sim.base_url);
    let patch = http()
        .patch(format!("{keys}/{off}"))
        .bearer_auth(MANAGEMENT_KEY);
    send(patch.json(&json!({ "disabled": true }))).await;

    let names = |body: Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(send(http().get(&keys).bearer_auth(MANAGEMENT_KEY)).await.1),
        ["on"]
    );
    let all = http()
        .get(format!("{keys}?include_disabled=true"))
        .bearer_auth(MANAGEMENT_KEY);
    assert_eq!(names(send(all).await.1), ["off", "on"]);

    let delete = || {
        http()
            .delete(format!("{keys}/{on}"))
            .bearer_auth(MANAGEMENT_KEY)
    };
    assert_eq!(
        send(delete()).await,
        (StatusCode::OK, json!({ "deleted": true }))
    );
    assert_eq!(
        send(delete()).await,
        (StatusCode::NOT_FOUND, error(404, "Key not found"))
    );
}

#[tokio::test]
async fn rate_limit_faults_send_retry_after_and_calls_are_counted() {
    let fault = RateLimitFault {
        count: 2,
        retry_after_secs: 17,
    };
    let sim = spawn_sim(Faults {
        rate_limit: [("models".into(), fault)].into(),
        ..Faults::default()
    })
    .await;
    let url = format!("{}/models", sim.base_url);
    for _ in 0..2 {
        let response = http().get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "17");
    }
    assert_eq!(
        http().get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(sim.sim.call_counts()["models"], 3);
}

#[tokio::test]
async fn the_control_endpoints_seed_keys_set_faults_and_show_state() {
    let sim = spawn_sim(Faults::default()).await;
    let control = sim.base_url.replace("/api/v1", "/_sim");
    let (status, seeded) = send(
        http()
            .post(format!("{control}/keys"))
            .json(&json!({ "name": "s" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(sim.sim.key_works(seeded["key"].as_str().unwrap()));

    let faults = json!({ "error_rate": { "whoami": 1.0 } });
    let (status, _) = send(http().put(format!("{control}/faults")).json(&faults)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let whoami = http()
        .get(format!("{}/key", sim.base_url))
        .bearer_auth(seeded["key"].as_str().unwrap());
    assert_eq!(send(whoami).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, _) = send(
        http()
            .put(format!("{control}/faults"))
            .json(&json!({ "typo": 1 })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown knobs are refused");

    let (_, state) = send(http().get(format!("{control}/state"))).await;
    assert_eq!(state["keys"][0]["hash"], seeded["hash"]);
    assert_eq!(state["issued"], json!([seeded["key"]]));
    assert_eq!(state["calls"], json!({ "whoami": 1 }));
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let handle = Simulator::new(MANAGEMENT_KEY).spawn().await.unwrap();
    let url = format!("{}/models", handle.base_url);
    assert!(reqwest::get(&url).await.is_ok());
    drop(handle);
    let mut stopped = false;
    for _ in 0..50 {
        // A fresh client each time: a pooled connection could outlive the listener.
        if reqwest::Client::new().get(&url).send().await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        stopped,
        "the simulator still answers after its handle was dropped"
    );
}
