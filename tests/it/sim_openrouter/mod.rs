//! The simulator over real HTTP, and the OpenRouter client against it;
//! workspaces from the client to whole rotations (`workspace`).

mod provider;
mod provider_failures;
mod simulator;
mod usage;
mod workspace;

use std::time::Duration;

use rekey::config::{ApiShape, ProviderConfig, ProviderKind, SecretRef};
use rekey::providers::openrouter::OpenRouter;
use rekey::sim::{Faults, SimHandle, Simulator};
use secrecy::SecretString;

pub const MANAGEMENT_KEY: &str =
    "sk-or-v1-ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff01";

pub async fn spawn_sim(faults: Faults) -> SimHandle {
    Simulator::new(MANAGEMENT_KEY)
        .with_faults(faults)
        .spawn()
        .await
        .expect("simulator binds")
}

pub fn config(base_url: &str) -> ProviderConfig {
    ProviderConfig {
        name: "or-test".into(),
        kind: ProviderKind::OpenRouter,
        base_url: base_url.to_string(),
        management_key: SecretRef::Env("X".into()),
        request_timeout: Duration::from_secs(5),
        api: ApiShape::Reference,
        keys_path: None,
        workspace_id: None,
        limits: Default::default(),
    }
}

pub fn client_with(base_url: &str, management_key: &str) -> OpenRouter {
    OpenRouter::new(&config(base_url), SecretString::from(management_key)).expect("client builds")
}

pub fn client(sim: &SimHandle) -> OpenRouter {
    client_with(&sim.base_url, MANAGEMENT_KEY)
}

/// A plain HTTP client for poking the simulator directly.
pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}
