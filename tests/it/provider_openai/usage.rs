//! OpenAI usage: the project key's `last_used_at`, joined to its service
//! account by `owner.service_account.id`, is the account's last use; it
//! moves when the key is used. OpenAI gives no spend per key.

use std::time::Duration;

use chrono::Utc;
use rekey::config::{ApiShape, ProviderConfig, ProviderKind, SecretRef};
use rekey::policy::VerifyMode;
use rekey::providers::openai::OpenAi;
use rekey::providers::{KeySpec, KeyUsage, Provider, UsageSignal};
use rekey::sim::{Api, Faults, SIM_OPENAI_PROJECT, SimHandle};
use secrecy::SecretString;

use super::client::{ADMIN_KEY, spawn};

fn client(sim: &SimHandle) -> OpenAi {
    let config = ProviderConfig {
        name: "openai-usage".into(),
        kind: ProviderKind::OpenAi,
        base_url: sim.url(Api::OpenAi),
        management_key: SecretRef::Env("X".into()),
        request_timeout: Duration::from_secs(5),
        api: ApiShape::Reference,
        keys_path: None,
        workspace_id: None,
        limits: Default::default(),
    };
    let client = OpenAi::new(&config, SecretString::from(ADMIN_KEY)).expect("client builds");
    client.in_project(SIM_OPENAI_PROJECT)
}

async fn usage_of(openai: &OpenAi, id: &str) -> KeyUsage {
    let accounts = openai.list_keys().await.unwrap();
    let account = accounts.into_iter().find(|a| a.id == id);
    account
        .expect("account listed")
        .usage
        .expect("last use reported")
}

#[tokio::test]
async fn the_keys_last_use_is_the_accounts_and_moves_when_the_key_is_used() {
    let sim = spawn(Faults::default()).await;
    let openai = client(&sim);
    let spec = KeySpec {
        name: "usage-svc".into(),
        ..KeySpec::default()
    };
    let created = openai.create_key(&spec).await.unwrap();
    let (other, other_secret) = sim.sim.insert_key_in(Api::OpenAi, "other");

    let fresh = usage_of(&openai, &created.id).await;
    assert_eq!(fresh, KeyUsage::last_use(None), "never used, no spend");
    assert_eq!(fresh.signal, UsageSignal::LastUse);

    // Unix seconds: compare at that precision.
    let before = Utc::now() - chrono::Duration::seconds(1);
    openai
        .verify_key(&created.secret, &VerifyMode::Models)
        .await
        .unwrap();
    let used = usage_of(&openai, &created.id).await;
    let at = used.last_used_at.expect("the model list used the key");
    assert!(at >= before && at <= Utc::now(), "{at}");
    assert_eq!(
        usage_of(&openai, &other).await.last_used_at,
        None,
        "joined to its own account only"
    );

    let secret = SecretString::from(other_secret);
    openai
        .verify_key(&secret, &VerifyMode::Models)
        .await
        .unwrap();
    assert!(usage_of(&openai, &other).await.last_used_at.is_some());

    let got = openai.get_key(&created.id).await.unwrap().expect("exists");
    assert_eq!(got.usage, None, "the account alone does not show its key");
}
