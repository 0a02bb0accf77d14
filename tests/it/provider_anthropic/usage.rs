//! Anthropic: the Admin API's key object carries no usage (only the
//! organization usage report does), so every key says "no usage signal"
//! explicitly — also after the key was used.

use std::time::Duration;

use rekey::config::{ApiShape, ProviderConfig, ProviderKind, SecretRef};
use rekey::policy::VerifyMode;
use rekey::providers::{self, KeyUsage, UsageSignal};
use rekey::sim::{Api, Faults, Simulator};
use secrecy::SecretString;

const ADMIN_KEY: &str = "sk-ant-admin01-ffffffffffffffffffffffffffffffff01";

#[tokio::test]
async fn every_key_says_no_usage_signal_even_after_it_was_used() {
    let sim = Simulator::new(ADMIN_KEY)
        .with_faults(Faults::default())
        .spawn()
        .await
        .expect("simulator binds");
    let config = ProviderConfig {
        name: "anthropic-usage".into(),
        kind: ProviderKind::Anthropic,
        base_url: sim.url(Api::Anthropic),
        management_key: SecretRef::Env("X".into()),
        request_timeout: Duration::from_secs(5),
        api: ApiShape::Reference,
        keys_path: None,
        workspace_id: None,
        limits: Default::default(),
    };
    let client = providers::build(&config, SecretString::from(ADMIN_KEY)).expect("builds");
    let (id, secret) = sim.sim.insert_key_in(Api::Anthropic, "console-made");

    client
        .verify_key(&SecretString::from(secret), &VerifyMode::Models)
        .await
        .unwrap();
    assert!(sim.sim.keys()[0].last_used_at.is_some(), "the key was used");

    let listed = client.list_keys().await.unwrap();
    assert_eq!(listed.len(), 1);
    let usage = listed[0].usage.clone().expect("says so explicitly");
    assert_eq!(usage, KeyUsage::no_signal());
    assert_eq!(usage.signal, UsageSignal::NoSignal);
    assert!(!usage.signal.has_spend() && !usage.signal.has_last_use());
    let got = client.get_key(&id).await.unwrap().expect("exists");
    assert_eq!(got.usage, Some(KeyUsage::no_signal()));
}
