//! OpenRouter usage: the spend counters (and BYOK counters) the key object
//! carries are read into `KeyInfo::usage`, and they move when the key is
//! used for a chat ping. OpenRouter shows no last-use time.

use rekey::policy::VerifyMode;
use rekey::providers::{KeyInfo, KeySpec, Provider, UsageSignal};
use rekey::sim::Faults;

use super::{client, spawn_sim};

fn spec(name: &str) -> KeySpec {
    KeySpec {
        name: name.to_string(),
        ..KeySpec::default()
    }
}

fn listed(keys: Vec<KeyInfo>, id: &str) -> KeyInfo {
    let found = keys.into_iter().find(|k| k.id == id);
    found.expect("the key is listed")
}

#[tokio::test]
async fn a_chat_ping_moves_the_spend_counters_that_list_and_get_report() {
    let sim = spawn_sim(Faults::default()).await;
    let or = client(&sim);
    let created = or.create_key(&spec("usage-1")).await.unwrap();

    let fresh = listed(or.list_keys().await.unwrap(), &created.id);
    let usage = fresh.usage.expect("OpenRouter reports usage");
    assert_eq!(usage.signal, UsageSignal::Spend);
    assert_eq!(usage.last_used_at, None, "OpenRouter has no last-use time");
    let spend = usage.spend.expect("spend counters");
    assert_eq!(
        (spend.total, spend.daily, spend.weekly, spend.monthly),
        (Some(0.0), Some(0.0), Some(0.0), Some(0.0))
    );
    assert_eq!(usage.byok.and_then(|b| b.total), Some(0.0));

    let ping = VerifyMode::Chat {
        model: "openai/gpt-4o-mini".into(),
    };
    or.verify_key(&created.secret, &ping).await.unwrap();

    let used = listed(or.list_keys().await.unwrap(), &created.id);
    let spend = used.usage.and_then(|u| u.spend).expect("spend counters");
    for (period, value) in [
        ("total", spend.total),
        ("daily", spend.daily),
        ("weekly", spend.weekly),
        ("monthly", spend.monthly),
    ] {
        assert!(value.is_some_and(|v| v > 0.0), "{period}: {value:?}");
    }
    let got = or.get_key(&created.id).await.unwrap().expect("key exists");
    assert_eq!(got.usage.and_then(|u| u.spend), Some(spend));
}
