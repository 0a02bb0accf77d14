//! The simulator's `after_effect` knobs over real HTTP, set through
//! `PUT /_sim/faults` as a test in another process would: each call takes
//! effect (seen in `/_sim/state` or a later listing) and answers as the knob
//! says, a counted knob runs out, and the call after it is normal.

mod arouter;
mod cli;
mod clients;
mod litellm;
mod openai;
mod openrouter;

use std::time::Duration;

use rekey::sim::{SimHandle, Simulator};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

pub const MANAGEMENT_KEY: &str =
    "sk-or-v1-ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff02";

/// The create modes that answer at once (`hang` is tested apart).
pub const PROMPT_CREATE_MODES: [&str; 5] = [
    "invalid_json",
    "missing_secret",
    "missing_id",
    "html",
    "unavailable",
];

pub async fn spawn() -> SimHandle {
    Simulator::new(MANAGEMENT_KEY)
        .spawn()
        .await
        .expect("simulator binds")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// Replaces the knobs with `{"after_effect": knobs}` over HTTP.
pub async fn set_after_effect(sim: &SimHandle, knobs: Value) {
    let url = format!("{}/_sim/faults", sim.origin);
    let body = json!({ "after_effect": knobs });
    let response = http().put(url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT, "knobs {body}");
}

/// One answer, whatever its body: status, content type and raw text.
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
}

impl Answer {
    pub async fn of(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the simulator answers");
        let content_type = (response.headers().get(CONTENT_TYPE))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        Answer {
            status: response.status(),
            content_type,
            text: response.text().await.expect("a body"),
        }
    }

    /// The body as JSON; `Value::Null` if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// Names of the keys `api` holds, from `/_sim/state`.
pub async fn names_in_state(sim: &SimHandle, api: &str) -> Vec<String> {
    let url = format!("{}/_sim/state", sim.origin);
    let state: Value = http().get(url).send().await.unwrap().json().await.unwrap();
    let keys = state["keys"].as_array().cloned().unwrap_or_default();
    (keys.iter())
        .filter(|k| k["api"] == api)
        .filter_map(|k| k["name"].as_str().map(str::to_string))
        .collect()
}

/// Checks a create answer spoiled by `mode`: the status the API answers
/// success with, the two JSON pointers that hold the secret and the id, and
/// a check of the API's 503 error body.
pub fn assert_spoiled(
    mode: &str,
    answer: &Answer,
    success: StatusCode,
    (secret, id): (&str, &str),
    unavailable: impl Fn(&Value) -> bool,
) {
    let body = answer.json();
    let has = |pointer: &str| body.pointer(pointer).is_some_and(|v| !v.is_null());
    let ok = match mode {
        "invalid_json" => {
            answer.status == success
                && answer.content_type.starts_with("application/json")
                && serde_json::from_str::<Value>(&answer.text).is_err()
                && !answer.text.is_empty()
        }
        "missing_secret" => answer.status == success && !has(secret) && has(id),
        "missing_id" => answer.status == success && has(secret) && !has(id),
        "html" => {
            answer.status == StatusCode::OK
                && answer.content_type.starts_with("text/html")
                && answer.text.starts_with("<!DOCTYPE html>")
        }
        "unavailable" => answer.status == StatusCode::SERVICE_UNAVAILABLE && unavailable(&body),
        other => panic!("no check for mode {other}"),
    };
    assert!(
        ok,
        "{mode}: {} {} {}",
        answer.status, answer.content_type, answer.text
    );
}

/// Waits until `api` holds a key named `name`, or fails after 5 s.
pub async fn wait_for_key(sim: &SimHandle, api: &str, name: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !names_in_state(sim, api).await.iter().any(|n| n == name) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{api} never held a key named {name}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
