//! LiteLLM usage: `spend` and `last_active` from `/key/list` are read into
//! `KeyInfo::usage`, and move when the key is used.

use chrono::Utc;
use rekey::policy::VerifyMode;
use rekey::providers::{KeySpec, KeyUsage, Provider, UsageSignal};
use rekey::sim::Faults;

use super::{client, spawn_sim};

async fn usage_of(llm: &impl Provider, id: &str) -> KeyUsage {
    let keys = llm.list_keys().await.unwrap();
    let key = keys.into_iter().find(|k| k.id == id).expect("key listed");
    key.usage.expect("LiteLLM reports usage")
}

fn spent(usage: &KeyUsage) -> f64 {
    let spend = usage.spend.as_ref().expect("spend reported");
    spend.total.expect("a total")
}

#[tokio::test]
async fn spend_and_last_active_move_when_the_key_is_used() {
    let sim = spawn_sim(Faults::default()).await;
    let llm = client(&sim);
    let spec = KeySpec {
        name: "usage-llm".into(),
        ..KeySpec::default()
    };
    let created = llm.create_key(&spec).await.unwrap();

    let fresh = usage_of(&llm, &created.id).await;
    assert_eq!(fresh.signal, UsageSignal::SpendAndLastUse);
    assert_eq!((spent(&fresh), fresh.last_used_at), (0.0, None));

    let before = Utc::now();
    llm.verify_key(&created.secret, &VerifyMode::Models)
        .await
        .unwrap();
    let listed = usage_of(&llm, &created.id).await;
    let first = listed.last_used_at.expect("last_active set");
    assert!(first >= before && first <= Utc::now(), "{first}");
    assert_eq!(spent(&listed), 0.0, "the model list is free");

    let ping = VerifyMode::Chat {
        model: "gpt-4o-mini".into(),
    };
    llm.verify_key(&created.secret, &ping).await.unwrap();
    let pinged = usage_of(&llm, &created.id).await;
    assert!(spent(&pinged) > 0.0, "{pinged:?}");
    assert!(pinged.last_used_at.expect("still set") >= first);
    let got = llm.get_key(&created.id).await.unwrap().expect("key exists");
    assert_eq!(got.usage, Some(pinged));
}
