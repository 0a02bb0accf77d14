//! LiteLLM (`/litellm`): `/key/generate` answers 200 with the secret at
//! `key` and the id at `token`; `/key/delete` takes a list; `/key/list`
//! pages by `page` and `size` and says how many pages there are.

use std::collections::HashSet;

use rekey::sim::{Api, SimHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    Answer, MANAGEMENT_KEY, PROMPT_CREATE_MODES, assert_spoiled, http, names_in_state,
    set_after_effect, spawn,
};

fn url(sim: &SimHandle, path: &str) -> String {
    format!("{}{path}", sim.url(Api::LiteLlm))
}

async fn generate(sim: &SimHandle, alias: &str) -> Answer {
    let post = http().post(url(sim, "/key/generate"));
    Answer::of(
        post.bearer_auth(MANAGEMENT_KEY)
            .json(&json!({ "key_alias": alias })),
    )
    .await
}

fn is_litellm_503(body: &Value) -> bool {
    body["error"]["code"] == "503" && body["error"]["type"] == "internal_server_error"
}

#[tokio::test]
async fn each_create_mode_makes_the_key_then_answers_badly_once() {
    let sim = spawn().await;
    for mode in PROMPT_CREATE_MODES {
        set_after_effect(&sim, json!({ "create": { "mode": mode, "count": 1 } })).await;
        let alias = format!("made-under-{mode}");
        let spoiled = generate(&sim, &alias).await;
        assert_spoiled(
            mode,
            &spoiled,
            StatusCode::OK,
            ("/key", "/token"),
            is_litellm_503,
        );
        assert!(names_in_state(&sim, "litellm").await.contains(&alias));
        let next = generate(&sim, "next").await;
        assert!(next.json()["key"].is_string() && next.json()["token"].is_string());
    }
}

#[tokio::test]
async fn delete_answers_404_and_deletes_nothing_then_deletes() {
    let sim = spawn().await;
    let (token, secret) = sim.sim.insert_key_in(Api::LiteLlm, "doomed");
    set_after_effect(
        &sim,
        json!({ "delete": { "mode": "not_found", "count": 1 } }),
    )
    .await;
    let delete = || {
        let post = http()
            .post(url(&sim, "/key/delete"))
            .bearer_auth(MANAGEMENT_KEY);
        Answer::of(post.json(&json!({ "keys": [token] })))
    };
    let lied = delete().await;
    assert_eq!(lied.status, StatusCode::NOT_FOUND);
    assert_eq!(lied.json()["error"]["code"], "404");
    assert!(sim.sim.key_works(&secret), "the key still lives");
    let done = delete().await;
    assert_eq!(
        (done.status, done.json()),
        (StatusCode::OK, json!({ "deleted_keys": [token] }))
    );
    assert!(!sim.sim.key_works(&secret));
}

#[tokio::test]
async fn an_endless_listing_always_claims_one_page_more() {
    let sim = spawn().await;
    sim.sim.insert_key_in(Api::LiteLlm, "real");
    set_after_effect(&sim, json!({ "list": { "mode": "endless", "count": 1 } })).await;
    let list = |page: usize| {
        let get = http().get(url(&sim, &format!("/key/list?page={page}&size=10")));
        Answer::of(get.bearer_auth(MANAGEMENT_KEY))
    };
    let mut seen = HashSet::new();
    for page in 1..=4 {
        let answer = list(page).await.json();
        let tokens = answer["keys"].as_array().unwrap();
        assert_eq!(tokens.len(), 10, "page {page} is full");
        assert!(
            tokens.iter().all(|t| seen.insert(t.clone())),
            "page {page} repeats"
        );
        assert_eq!(
            (&answer["current_page"], &answer["total_pages"]),
            (&json!(page), &json!(page + 1))
        );
    }
    let again = list(1).await.json();
    assert_eq!(
        (
            again["keys"].as_array().unwrap().len(),
            &again["total_pages"]
        ),
        (1, &json!(1))
    );
}
