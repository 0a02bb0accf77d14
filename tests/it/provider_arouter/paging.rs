//! ARouter listings as its SDKs describe them: a small undocumented default
//! page, `page_size` honoured up to a cap, `next_page_token` while more keys
//! follow; and no get-by-id, so the client finds a key by listing.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::RawQuery;
use axum::routing::get;
use rekey::config::ApiShape;
use rekey::providers::Provider;
use rekey::sim::{Api, Faults, SimHandle};
use serde_json::{Value, json};

use super::{MANAGEMENT_KEY, client, client_with, config, list_page, spawn_sim};

/// Seeds `n` keys; returns their hashes in creation order.
fn seed(sim: &SimHandle, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| sim.sim.insert_key_in(Api::ARouter, &format!("k{i}")).0)
        .collect()
}

fn list_calls(sim: &SimHandle) -> u64 {
    sim.sim.call_counts().get("list").copied().unwrap_or(0)
}

#[tokio::test]
async fn a_listing_longer_than_the_default_page_is_read_to_the_end_in_both_shapes() {
    let sim = spawn_sim(Faults::default()).await;
    let hashes = seed(&sim, 150);
    // What rekey used to stop at: no page_size, and a first page shorter than 100.
    let first = list_page(&sim, MANAGEMENT_KEY, "").await;
    assert_eq!(first["data"].as_array().unwrap().len(), 20, "{first}");
    assert!(first["next_page_token"].is_string(), "{first}");

    for (shape, prefix) in [(ApiShape::Reference, ""), (ApiShape::Guide, "key_")] {
        let before = list_calls(&sim);
        let listed = client(&sim, shape).list_keys().await.unwrap();
        let ids: Vec<String> = listed.into_iter().map(|k| k.id).collect();
        let expected: Vec<String> = hashes.iter().map(|h| format!("{prefix}{h}")).collect();
        assert_eq!(ids, expected, "{shape:?}");
        assert_eq!(
            list_calls(&sim) - before,
            2,
            "{shape:?}: page_size=100 is sent and the token followed to the last page"
        );
    }
}

/// A server that pages by offset only, never more than `cap` keys a page
/// whatever is asked, and never sends a token: only an empty page ends it.
async fn capped_server(keys: usize, cap: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let queries = Arc::new(Mutex::new(Vec::new()));
    let seen = queries.clone();
    let list = move |RawQuery(query): RawQuery| {
        let query = query.unwrap_or_default();
        seen.lock().unwrap().push(query.clone());
        let offset: usize = (query.split('&'))
            .find_map(|p| p.strip_prefix("offset="))
            .map_or(0, |v| v.parse().unwrap());
        let data: Vec<Value> = (offset..keys.min(offset + cap))
            .map(|i| json!({ "hash": format!("h{i}"), "name": format!("k{i}") }))
            .collect();
        async move { Json(json!({ "data": data })) }
    };
    let app = axum::Router::new().route("/api/v1/keys", get(list));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, queries)
}

#[tokio::test]
async fn a_page_capped_below_the_asked_size_is_not_taken_for_the_last_one() {
    let (base, queries) = capped_server(70, 30).await;
    let ar = client_with(&config(&base, ApiShape::Reference), MANAGEMENT_KEY);
    let listed = ar.list_keys().await.unwrap();
    assert_eq!(listed.len(), 70, "every key, past pages of 30");
    let queries = queries.lock().unwrap().clone();
    assert_eq!(
        queries.len(),
        4,
        "30 + 30 + 10 + an empty page: {queries:?}"
    );
    assert!(
        queries
            .iter()
            .all(|q| q.contains("page_size=100") && q.contains("include_disabled=true")),
        "{queries:?}"
    );
}

#[tokio::test]
async fn the_simulator_caps_page_size_and_its_tokens_walk_every_key_once() {
    let sim = spawn_sim(Faults::default()).await;
    let hashes = seed(&sim, 130);
    let big = list_page(&sim, MANAGEMENT_KEY, "page_size=500").await;
    assert_eq!(big["data"].as_array().unwrap().len(), 100, "capped at 100");

    let mut seen = Vec::new();
    let mut query = "page_size=7".to_string();
    loop {
        let page = list_page(&sim, MANAGEMENT_KEY, &query).await;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 7);
        seen.extend(data.iter().map(|k| k["hash"].as_str().unwrap().to_string()));
        match page["next_page_token"].as_str() {
            Some(token) => query = format!("page_size=7&page_token={token}"),
            None => break,
        }
    }
    assert_eq!(seen, hashes, "each key once, in order, then no token");
    let offset = list_page(&sim, MANAGEMENT_KEY, "offset=125").await;
    assert_eq!(offset["data"].as_array().unwrap().len(), 5);
    assert!(offset.get("next_page_token").is_none(), "{offset}");

    for bad in ["page_size=0", "page_size=x", "page_token=nope"] {
        let url = format!("{}/api/v1/keys?{bad}", sim.url(Api::ARouter));
        let answer = reqwest::Client::new()
            .get(url)
            .bearer_auth(MANAGEMENT_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn there_is_no_get_by_id_so_a_key_is_found_by_listing() {
    let sim = spawn_sim(Faults::default()).await;
    let hashes = seed(&sim, 45);
    let last = hashes.last().unwrap();
    for path in [
        format!("/api/v1/keys/{last}"),
        format!("/v1/keys/key_{last}"),
    ] {
        let url = format!("{}{path}", sim.url(Api::ARouter));
        let answer = reqwest::Client::new()
            .get(url)
            .bearer_auth(MANAGEMENT_KEY)
            .send()
            .await
            .unwrap();
        assert!(
            [404, 405].contains(&answer.status().as_u16()),
            "{path}: {}",
            answer.status()
        );
    }

    let ar = client(&sim, ApiShape::Reference);
    ar.disable_key(last).await.unwrap();
    let found = ar
        .get_key(last)
        .await
        .unwrap()
        .expect("found past page one");
    assert_eq!((found.id.as_str(), found.disabled), (last.as_str(), true));
    let guide = client(&sim, ApiShape::Guide);
    let found = guide.get_key(&format!("key_{}", hashes[0])).await.unwrap();
    assert_eq!(found.map(|k| k.name), Some("k0".to_string()));
    assert_eq!(ar.get_key("not-a-key").await.unwrap(), None);
    ar.delete_key(last).await.unwrap();
    assert_eq!(ar.get_key(last).await.unwrap(), None, "gone once deleted");
    assert_eq!(sim.sim.call_counts().get("get"), None, "no get was served");
}
