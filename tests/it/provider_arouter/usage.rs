//! ARouter usage in both documented shapes: the API reference's `usage*`
//! numbers, and the rotation guide's `usage` object with `last_used_at`.
//! Each moves when the key is used: any call with it sets the last use, a
//! chat ping adds to the spend.

use chrono::Utc;
use rekey::config::ApiShape;
use rekey::policy::VerifyMode;
use rekey::providers::{KeyInfo, KeySpec, KeyUsage, Provider, UsageSignal};
use rekey::sim::Faults;

use super::{client, spawn_sim};

fn spec(name: &str) -> KeySpec {
    KeySpec {
        name: name.to_string(),
        ..KeySpec::default()
    }
}

fn chat() -> VerifyMode {
    VerifyMode::Chat {
        model: "openai/gpt-4o-mini".into(),
    }
}

async fn usage_of(ar: &impl Provider, id: &str) -> KeyUsage {
    let keys: Vec<KeyInfo> = ar.list_keys().await.unwrap();
    let key = keys.into_iter().find(|k| k.id == id).expect("key listed");
    key.usage.expect("ARouter reports usage")
}

fn total(usage: &KeyUsage) -> f64 {
    let spend = usage.spend.as_ref().expect("spend reported");
    spend.total.expect("a total")
}

#[tokio::test]
async fn the_reference_shapes_usage_numbers_move_with_a_chat_ping() {
    let sim = spawn_sim(Faults::default()).await;
    let ar = client(&sim, ApiShape::Reference);
    let created = ar.create_key(&spec("usage-ref")).await.unwrap();

    let fresh = usage_of(&ar, &created.id).await;
    assert_eq!(fresh.signal, UsageSignal::Spend);
    assert_eq!(total(&fresh), 0.0);

    ar.verify_key(&created.secret, &chat()).await.unwrap();
    let used = usage_of(&ar, &created.id).await;
    assert!(total(&used) > 0.0, "{used:?}");
    let spend = used.spend.unwrap();
    assert!(spend.daily.is_some_and(|d| d > 0.0));
    assert!(spend.monthly.is_some_and(|m| m > 0.0));
}

#[tokio::test]
async fn the_guides_usage_object_and_last_use_move_when_the_key_is_used() {
    let sim = spawn_sim(Faults::default()).await;
    let ar = client(&sim, ApiShape::Guide);
    let created = ar.create_key(&spec("usage-guide")).await.unwrap();

    let fresh = usage_of(&ar, &created.id).await;
    assert_eq!(fresh.signal, UsageSignal::SpendAndLastUse);
    assert_eq!(
        (total(&fresh), fresh.last_used_at),
        (0.0, None),
        "never used"
    );

    let before = Utc::now();
    ar.verify_key(&created.secret, &VerifyMode::Models)
        .await
        .unwrap();
    let listed = usage_of(&ar, &created.id).await;
    let first = listed.last_used_at.expect("the model list used the key");
    assert!(first >= before && first <= Utc::now(), "{first}");
    assert_eq!(total(&listed), 0.0, "the model list is free");

    ar.verify_key(&created.secret, &chat()).await.unwrap();
    let pinged = usage_of(&ar, &created.id).await;
    assert!(total(&pinged) > 0.0, "{pinged:?}");
    let spend = pinged.spend.as_ref().unwrap();
    assert!(
        spend.daily.is_some_and(|d| d > 0.0),
        "periods of the object"
    );
    assert!(pinged.last_used_at.expect("still used") >= first);
}
