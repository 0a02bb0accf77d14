//! ARouter: the client against the simulator over HTTP in both documented
//! shapes (`client`), listings that page and a get that lists (`paging`),
//! and whole rotations through the real binary on files and Secrets
//! Manager, with rollback, adoption by id and the crash matrix (`rotation`).

mod client;
mod paging;
mod quota;
mod rotation;
mod usage;

use std::time::Duration;

use rekey::config::{ApiShape, ProviderConfig, ProviderKind, SecretRef};
use rekey::providers::arouter::ARouter;
use rekey::sim::{Api, Faults, SimHandle, Simulator};
use secrecy::SecretString;
use serde_json::Value;

pub const MANAGEMENT_KEY: &str = "lr_mgmt_ffffffffffffffffffffffffffffffffffffffffffffffff01";

pub async fn spawn_sim(faults: Faults) -> SimHandle {
    Simulator::new(MANAGEMENT_KEY)
        .with_faults(faults)
        .spawn()
        .await
        .expect("simulator binds")
}

pub fn config(base_url: &str, api: ApiShape) -> ProviderConfig {
    ProviderConfig {
        name: "ar-test".into(),
        kind: ProviderKind::ARouter,
        base_url: base_url.to_string(),
        management_key: SecretRef::Env("X".into()),
        request_timeout: Duration::from_secs(5),
        api,
        keys_path: None,
        workspace_id: None,
        limits: Default::default(),
    }
}

pub fn client_with(config: &ProviderConfig, management_key: &str) -> ARouter {
    ARouter::new(config, SecretString::from(management_key)).expect("client builds")
}

pub fn client(sim: &SimHandle, api: ApiShape) -> ARouter {
    client_with(&config(&sim.url(Api::ARouter), api), MANAGEMENT_KEY)
}

/// A key as the simulator's API-reference listing shows it to the
/// management key (ARouter has no get-by-id).
pub async fn reference_key(sim: &SimHandle, management_key: &str, hash: &str) -> Value {
    let mut token = String::new();
    loop {
        let page = list_page(sim, management_key, &format!("page_size=100{token}")).await;
        let keys = page["data"].as_array().expect("data is a list");
        if let Some(key) = keys.iter().find(|k| k["hash"] == hash) {
            return key.clone();
        }
        let next = page["next_page_token"].as_str();
        token = format!("&page_token={}", next.expect("the key is listed"));
    }
}

/// One page of the simulator's API-reference listing, disabled keys included.
pub async fn list_page(sim: &SimHandle, management_key: &str, query: &str) -> Value {
    let url = format!(
        "{}/api/v1/keys?include_disabled=true&{query}",
        sim.url(Api::ARouter)
    );
    let answer = reqwest::Client::new()
        .get(url)
        .bearer_auth(management_key)
        .send()
        .await
        .expect("simulator answers");
    assert_eq!(answer.status(), 200, "the listing answers");
    answer.json().await.expect("JSON")
}
