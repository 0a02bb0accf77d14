//! OpenRouter (`/openrouter/api/v1`): every create mode, the lying delete,
//! the endless, repeating and lagging listings, and how knobs are refused.

use std::collections::HashSet;
use std::time::Duration;

use rekey::providers::Provider;
use rekey::sim::{Api, SimHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    Answer, MANAGEMENT_KEY, PROMPT_CREATE_MODES, assert_spoiled, http, names_in_state,
    set_after_effect, spawn, wait_for_key,
};
use crate::sim_openrouter::client_with;

fn keys_url(sim: &SimHandle) -> String {
    format!("{}/keys", sim.url(Api::OpenRouter))
}

async fn create(sim: &SimHandle, name: &str) -> Answer {
    let request = http().post(keys_url(sim)).bearer_auth(MANAGEMENT_KEY);
    Answer::of(request.json(&json!({ "name": name }))).await
}

async fn list_page(sim: &SimHandle, offset: usize) -> Vec<Value> {
    let url = format!("{}?offset={offset}", keys_url(sim));
    let answer = Answer::of(http().get(url).bearer_auth(MANAGEMENT_KEY)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json()["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn field(page: &[Value], name: &str) -> Vec<String> {
    (page.iter())
        .filter_map(|k| k[name].as_str().map(str::to_string))
        .collect()
}

fn is_openrouter_503(body: &Value) -> bool {
    body["error"]["code"] == 503 && body["error"]["message"].is_string()
}

#[tokio::test]
async fn each_create_mode_makes_the_key_then_answers_badly_once() {
    let sim = spawn().await;
    for mode in PROMPT_CREATE_MODES {
        set_after_effect(&sim, json!({ "create": { "mode": mode, "count": 1 } })).await;
        let name = format!("made-under-{mode}");
        let spoiled = create(&sim, &name).await;
        let pointers = ("/key", "/data/hash");
        assert_spoiled(
            mode,
            &spoiled,
            StatusCode::CREATED,
            pointers,
            is_openrouter_503,
        );
        let listed = field(&list_page(&sim, 0).await, "name");
        assert!(
            listed.contains(&name),
            "{mode}: the key was made: {listed:?}"
        );

        let next = create(&sim, &format!("after-{mode}")).await;
        assert_eq!(
            next.status,
            StatusCode::CREATED,
            "{mode}: the count ran out"
        );
        assert!(next.json()["key"].is_string() && next.json()["data"]["hash"].is_string());
    }
    assert_eq!(sim.sim.keys().len(), 2 * PROMPT_CREATE_MODES.len());
}

#[tokio::test]
async fn a_refused_create_does_not_spend_the_count() {
    let sim = spawn().await;
    set_after_effect(
        &sim,
        json!({ "create": { "mode": "unavailable", "count": 1 } }),
    )
    .await;
    let nameless = http().post(keys_url(&sim)).bearer_auth(MANAGEMENT_KEY);
    let refused = Answer::of(nameless.json(&json!({}))).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        create(&sim, "k").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(names_in_state(&sim, "openrouter").await, ["k"]);
}

#[tokio::test]
async fn a_hanging_create_makes_the_key_before_the_client_gives_up() {
    let sim = spawn().await;
    let knob = json!({ "create": { "mode": "hang", "hang_ms": 5_000, "count": 1 } });
    set_after_effect(&sim, knob).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let request = impatient.post(keys_url(&sim)).bearer_auth(MANAGEMENT_KEY);
    let err = request.json(&json!({ "name": "slow" })).send().await;
    assert!(
        err.is_err_and(|e| e.is_timeout()),
        "the answer came in time"
    );
    wait_for_key(&sim, "openrouter", "slow").await;

    let started = std::time::Instant::now();
    let next = create(&sim, "fast").await;
    assert_eq!(next.status, StatusCode::CREATED);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the next call hung too"
    );
}

#[tokio::test]
async fn delete_answers_404_while_the_key_lives_then_deletes() {
    let sim = spawn().await;
    let (hash, secret) = sim.sim.insert_key("doomed");
    set_after_effect(
        &sim,
        json!({ "delete": { "mode": "not_found", "count": 1 } }),
    )
    .await;
    let delete = |id: String| {
        let url = format!("{}/{id}", keys_url(&sim));
        Answer::of(http().delete(url).bearer_auth(MANAGEMENT_KEY))
    };
    // A key that does not exist is a true 404 and does not spend the count.
    assert_eq!(delete("0".repeat(64)).await.status, StatusCode::NOT_FOUND);

    let lied = delete(hash.clone()).await;
    assert_eq!(lied.status, StatusCode::NOT_FOUND);
    assert_eq!(
        lied.json(),
        json!({ "error": { "code": 404, "message": "Key not found" } })
    );
    assert!(sim.sim.key_works(&secret), "the key still lives");
    assert_eq!(
        field(&list_page(&sim, 0).await, "hash"),
        std::slice::from_ref(&hash)
    );

    let done = delete(hash).await;
    assert_eq!(
        (done.status, done.json()),
        (StatusCode::OK, json!({ "deleted": true }))
    );
    assert!(!sim.sim.key_works(&secret));
}

#[tokio::test]
async fn an_endless_listing_pages_fresh_keys_forever_until_its_count_is_spent() {
    let sim = spawn().await;
    let (first, _) = sim.sim.insert_key("real-1");
    let (second, _) = sim.sim.insert_key("real-2");
    set_after_effect(&sim, json!({ "list": { "mode": "endless", "count": 1 } })).await;
    let mut seen = HashSet::new();
    for page_no in 0..5 {
        let page = list_page(&sim, page_no * 100).await;
        assert_eq!(page.len(), 100, "page {page_no} is full");
        if page_no == 0 {
            assert_eq!(field(&page[..2], "hash"), [first.clone(), second.clone()]);
        }
        for hash in field(&page, "hash") {
            assert!(seen.insert(hash), "page {page_no} repeats a key");
        }
    }
    let phantom = field(&list_page(&sim, 100).await, "hash").remove(0);
    let get = http().get(format!("{}/{phantom}", keys_url(&sim)));
    let get = Answer::of(get.bearer_auth(MANAGEMENT_KEY)).await;
    assert_eq!(
        get.status,
        StatusCode::NOT_FOUND,
        "phantoms exist only in listings"
    );

    // A new listing starts at offset 0: the count is spent, it ends.
    assert_eq!(field(&list_page(&sim, 0).await, "hash"), [first, second]);
    assert!(list_page(&sim, 100).await.is_empty());
}

#[tokio::test]
async fn the_real_client_stops_a_repeating_listing_and_sees_each_key_once() {
    let sim = spawn().await;
    for name in ["a", "b", "c"] {
        sim.sim.insert_key(name);
    }
    set_after_effect(&sim, json!({ "list": { "mode": "repeating" } })).await;
    let page = list_page(&sim, 0).await;
    assert_eq!(page.len(), 100);
    assert_eq!(field(&page[..4], "name"), ["a", "b", "c", "a"]);
    assert_eq!(field(&list_page(&sim, 300).await[..1], "name"), ["a"]);

    let client = client_with(&sim.url(Api::OpenRouter), MANAGEMENT_KEY);
    let listed = client
        .list_keys()
        .await
        .expect("the client ends the paging");
    let names: Vec<&str> = listed.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_lagging_listing_leaves_out_new_keys_that_get_still_finds() {
    let sim = spawn().await;
    let made = create(&sim, "new").await.json();
    let hash = made["data"]["hash"].as_str().unwrap().to_string();
    set_after_effect(
        &sim,
        json!({ "list": { "mode": "lagging", "lag_ms": 60_000, "count": 1 } }),
    )
    .await;
    assert!(
        list_page(&sim, 0).await.is_empty(),
        "the new key is not listed yet"
    );
    let get = http().get(format!("{}/{hash}", keys_url(&sim)));
    assert_eq!(
        Answer::of(get.bearer_auth(MANAGEMENT_KEY)).await.status,
        StatusCode::OK
    );
    assert_eq!(field(&list_page(&sim, 0).await, "hash"), [hash]);
}

#[tokio::test]
async fn knobs_of_the_wrong_endpoint_or_missing_their_duration_are_refused() {
    let sim = spawn().await;
    let url = format!("{}/_sim/faults", sim.origin);
    for knobs in [
        json!({ "create": { "mode": "hang" } }),
        json!({ "delete": { "mode": "html" } }),
        json!({ "list": { "mode": "endless", "hang_ms": 3 } }),
        json!({ "update": { "mode": "not_found" } }),
    ] {
        let body = json!({ "after_effect": knobs });
        let answer = Answer::of(http().put(&url).json(&body)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(answer.text.contains("after_effect") || answer.text.contains("update"));
    }
    // Nothing was set: a create answers normally.
    assert_eq!(create(&sim, "k").await.status, StatusCode::CREATED);
}
