//! LiteLLM proxy: the client against the simulator over HTTP (`client`), and
//! whole rotations through the real binary on files and Secrets Manager,
//! with rollback and the crash matrix (`rotation`).

mod client;
mod rotation;
mod usage;

use std::time::Duration;

use rekey::config::{ApiShape, ProviderConfig, ProviderKind, SecretRef};
use rekey::providers::litellm::LiteLlm;
use rekey::sim::{Api, Faults, SimHandle, Simulator};
use secrecy::SecretString;

pub const MASTER_KEY: &str = "sk-master-ffffffffffffffffffffffffffffffff01";

pub async fn spawn_sim(faults: Faults) -> SimHandle {
    Simulator::new(MASTER_KEY)
        .with_faults(faults)
        .spawn()
        .await
        .expect("simulator binds")
}

pub fn client_at(base_url: &str, master_key: &str) -> LiteLlm {
    let config = ProviderConfig {
        name: "llm-test".into(),
        kind: ProviderKind::LiteLlm,
        base_url: base_url.to_string(),
        management_key: SecretRef::Env("X".into()),
        request_timeout: Duration::from_secs(5),
        api: ApiShape::Reference,
        keys_path: None,
        workspace_id: None,
        limits: Default::default(),
    };
    LiteLlm::new(&config, SecretString::from(master_key)).expect("client builds")
}

pub fn client(sim: &SimHandle) -> LiteLlm {
    client_at(&sim.url(Api::LiteLlm), MASTER_KEY)
}
