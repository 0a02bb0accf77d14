//! OpenAI (`/openai/v1`): creating a service account answers 200 with its
//! id at `id` and its key's value at `api_key.value`; lists are cursor-paged
//! (`after`, `has_more`, `last_id`).

use std::collections::HashSet;

use rekey::sim::{Api, SIM_OPENAI_PROJECT, SimHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    Answer, MANAGEMENT_KEY, PROMPT_CREATE_MODES, assert_spoiled, http, names_in_state,
    set_after_effect, spawn,
};

fn accounts(sim: &SimHandle) -> String {
    let base = sim.url(Api::OpenAi);
    format!("{base}/organization/projects/{SIM_OPENAI_PROJECT}/service_accounts")
}

fn is_openai_503(body: &Value) -> bool {
    body["error"]["type"] == "server_error" && body["error"]["message"].is_string()
}

#[tokio::test]
async fn each_create_mode_makes_the_service_account_then_answers_badly_once() {
    let sim = spawn().await;
    for mode in PROMPT_CREATE_MODES {
        set_after_effect(&sim, json!({ "create": { "mode": mode, "count": 1 } })).await;
        let name = format!("made-under-{mode}");
        let post = http().post(accounts(&sim)).bearer_auth(MANAGEMENT_KEY);
        let spoiled = Answer::of(post.json(&json!({ "name": name }))).await;
        let pointers = ("/api_key/value", "/id");
        assert_spoiled(mode, &spoiled, StatusCode::OK, pointers, is_openai_503);
        assert!(names_in_state(&sim, "openai").await.contains(&name));

        let post = http().post(accounts(&sim)).bearer_auth(MANAGEMENT_KEY);
        let next = Answer::of(post.json(&json!({ "name": "next" })))
            .await
            .json();
        assert!(next["api_key"]["value"].is_string() && next["id"].is_string());
    }
}

#[tokio::test]
async fn delete_answers_404_while_the_service_account_lives() {
    let sim = spawn().await;
    let (id, secret) = sim.sim.insert_key_in(Api::OpenAi, "doomed");
    set_after_effect(
        &sim,
        json!({ "delete": { "mode": "not_found", "count": 1 } }),
    )
    .await;
    let delete = || {
        let request = http().delete(format!("{}/{id}", accounts(&sim)));
        Answer::of(request.bearer_auth(MANAGEMENT_KEY))
    };
    let lied = delete().await;
    assert_eq!(lied.status, StatusCode::NOT_FOUND);
    assert_eq!(lied.json()["error"]["type"], "invalid_request_error");
    assert!(sim.sim.key_works(&secret), "the key still lives");
    assert_eq!(delete().await.json()["deleted"], true);
    assert!(!sim.sim.key_works(&secret));
}

#[tokio::test]
async fn an_endless_cursor_listing_always_has_more_with_a_new_cursor() {
    let sim = spawn().await;
    sim.sim.insert_key_in(Api::OpenAi, "real");
    set_after_effect(&sim, json!({ "list": { "mode": "endless" } })).await;
    let base = sim.url(Api::OpenAi);
    let keys = format!("{base}/organization/projects/{SIM_OPENAI_PROJECT}/api_keys?limit=5");
    let (mut after, mut seen) = (None::<String>, HashSet::new());
    for page in 0..4 {
        let cursor = after
            .as_ref()
            .map(|a| format!("&after={a}"))
            .unwrap_or_default();
        let get = http()
            .get(format!("{keys}{cursor}"))
            .bearer_auth(MANAGEMENT_KEY);
        let answer = Answer::of(get).await.json();
        let ids: Vec<String> = (answer["data"].as_array().unwrap().iter())
            .map(|k| k["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            (ids.len(), &answer["has_more"]),
            (5, &json!(true)),
            "page {page}"
        );
        assert!(
            ids.iter().all(|id| seen.insert(id.clone())),
            "page {page} repeats"
        );
        assert_eq!(answer["last_id"], json!(ids[4]));
        after = Some(ids[4].clone());
    }
}
