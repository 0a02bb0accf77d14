//! ARouter (`/arouter`), both documented shapes: the reference at
//! `/api/v1/keys` (secret at top-level `key`, id `data.hash`) and the guide
//! at `/v1/keys` (secret at `data.key`, id `data.id`).

use std::collections::HashSet;

use rekey::sim::{Api, SimHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    Answer, MANAGEMENT_KEY, PROMPT_CREATE_MODES, assert_spoiled, http, names_in_state,
    set_after_effect, spawn,
};

/// (keys path, where the secret is, where the id is)
const SHAPES: [(&str, &str, &str); 2] = [
    ("/api/v1/keys", "/key", "/data/hash"),
    ("/v1/keys", "/data/key", "/data/id"),
];

fn url(sim: &SimHandle, path: &str) -> String {
    format!("{}{path}", sim.url(Api::ARouter))
}

fn is_arouter_503(body: &Value) -> bool {
    body["error"]["type"] == "server_error" && body["error"]["message"].is_string()
}

#[tokio::test]
async fn each_create_mode_of_both_shapes_makes_the_key_then_answers_badly_once() {
    let sim = spawn().await;
    for (path, secret, id) in SHAPES {
        for mode in PROMPT_CREATE_MODES {
            set_after_effect(&sim, json!({ "create": { "mode": mode, "count": 1 } })).await;
            let name = format!("{path}-{mode}");
            let post = http().post(url(&sim, path)).bearer_auth(MANAGEMENT_KEY);
            let spoiled = Answer::of(post.json(&json!({ "name": name }))).await;
            assert_spoiled(
                mode,
                &spoiled,
                StatusCode::CREATED,
                (secret, id),
                is_arouter_503,
            );
            assert!(names_in_state(&sim, "arouter").await.contains(&name));

            let post = http().post(url(&sim, path)).bearer_auth(MANAGEMENT_KEY);
            let next = Answer::of(post.json(&json!({ "name": "next" }))).await;
            let body = next.json();
            assert_eq!(
                next.status,
                StatusCode::CREATED,
                "{path} {mode}: count ran out"
            );
            assert!(body.pointer(secret).is_some() && body.pointer(id).is_some());
        }
    }
}

#[tokio::test]
async fn delete_of_either_shape_answers_404_while_the_key_lives() {
    let sim = spawn().await;
    let (hash, secret) = sim.sim.insert_key_in(Api::ARouter, "doomed");
    let knob = json!({ "delete": { "mode": "not_found", "count": 2 } });
    set_after_effect(&sim, knob).await;
    for id in [hash.clone(), format!("key_{hash}")] {
        let path = if id == hash {
            "/api/v1/keys"
        } else {
            "/v1/keys"
        };
        let delete = http().delete(format!("{}/{id}", url(&sim, path)));
        let lied = Answer::of(delete.bearer_auth(MANAGEMENT_KEY)).await;
        assert_eq!(lied.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(lied.json()["error"]["type"], "not_found");
        assert!(sim.sim.key_works(&secret), "{path}: the key still lives");
    }
    let delete = http().delete(format!("{}/key_{hash}", url(&sim, "/v1/keys")));
    let done = Answer::of(delete.bearer_auth(MANAGEMENT_KEY)).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    assert!(!sim.sim.key_works(&secret));
}

#[tokio::test]
async fn an_endless_guide_listing_pages_fresh_ids_forever() {
    let sim = spawn().await;
    sim.sim.insert_key_in(Api::ARouter, "real");
    set_after_effect(&sim, json!({ "list": { "mode": "endless" } })).await;
    let mut seen = HashSet::new();
    for offset in [0, 100, 200] {
        let get = http().get(format!(
            "{}?offset={offset}&page_size=100",
            url(&sim, "/v1/keys")
        ));
        let page = Answer::of(get.bearer_auth(MANAGEMENT_KEY)).await.json();
        let ids: Vec<&str> = (page["data"].as_array().unwrap().iter())
            .map(|k| k["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 100, "offset {offset}");
        assert!(
            ids.iter()
                .all(|id| id.starts_with("key_") && seen.insert(id.to_string()))
        );
    }
}
