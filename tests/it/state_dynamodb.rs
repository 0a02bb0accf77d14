//! The DynamoDB state store against moto with the real `aws-sdk-dynamodb`:
//! journals round trip byte for byte as the file store writes them, a held
//! lease keeps other replicas out (renewed past its length) until released
//! or expired, a holder whose lease was taken over has its write refused,
//! an acquire whose answer is lost ends held by us or free, and the table
//! is checked, created or refused at start. Each test has its own table.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use rekey::config::DynamoConfig;
use rekey::names::{LeaseKey, PolicyName, RotationId};
use rekey::state::dynamodb::DynamoStateStore;
use rekey::state::{
    KeyRecord, Outcome, OutcomeKind, PolicyState, StateStore, Step, Trigger, codec,
};

use crate::fault_proxy::{Action, FaultProxy, Rule};
use crate::helpers::{TestEnv, policy};
use crate::moto::moto_url;

const LEASE: Duration = Duration::from_secs(2);

fn table_config(endpoint: &str, create_table: bool) -> DynamoConfig {
    DynamoConfig {
        table: format!("it-{}", uuid::Uuid::now_v7()),
        region: "us-east-1".into(),
        endpoint_url: Some(endpoint.to_string()),
        create_table,
        lease: LEASE,
    }
}

/// A fresh table (created by the store) and a store on it.
async fn fresh() -> (DynamoConfig, DynamoStateStore) {
    let config = table_config(&moto_url(), true);
    let store = DynamoStateStore::open(&config)
        .await
        .expect("the table is created");
    (config, store)
}

fn client() -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto_url())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "it"))
        .build();
    Client::from_conf(config)
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

/// The item `pk` of `table`, as moto holds it.
async fn item(table: &str, pk: &str) -> Option<std::collections::HashMap<String, AttributeValue>> {
    let out = (client().get_item())
        .table_name(table)
        .key("pk", s(pk))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem");
    out.item().cloned()
}

fn text(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> String {
    item[name].as_s().expect("a string attribute").clone()
}

fn p(name: &str) -> PolicyName {
    PolicyName::parse(name).unwrap()
}

fn key(secret: &str) -> LeaseKey {
    LeaseKey::aws("us-east-1", secret)
}

/// A state with a rotation in flight, so every part of the journal is used.
fn busy_state(policy: &str) -> PolicyState {
    let mut state = PolicyState::new(&p(policy));
    let id = RotationId::parse("r-1").unwrap();
    state.current = Some(KeyRecord {
        id: Some("hash-1".into()),
        label: "sk-or-v1-abc...xyz".into(),
        created_at: chrono::Utc::now(),
        adopted: false,
    });
    state.in_flight = Some(rekey::state::Rotation {
        id: id.clone(),
        trigger: Trigger::Schedule,
        started_at: chrono::Utc::now(),
        step: Step::Staged,
        grace: Duration::from_secs(3600),
        old_key: None,
        new_key: None,
        version_id: Some("r-1".into()),
        verified_at: None,
        revoke_after: None,
        revoke_failures: 0,
        rollback: None,
        unconfirmed_create: None,
        restages: 0,
    });
    state.last_result = Some(Outcome {
        kind: OutcomeKind::Rotated,
        rotation_id: id,
        at: chrono::Utc::now(),
        error: None,
    });
    state
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_journal_round_trips_with_the_file_stores_body_and_is_found_by_the_scans() {
    let (config, store) = fresh().await;
    assert_eq!(
        store.load(&p("p1")).await.unwrap(),
        PolicyState::new(&p("p1"))
    );
    let lease = store
        .try_lease(&key("prod/llm"), "unused")
        .await
        .unwrap()
        .unwrap();
    let state = busy_state("p1");
    store.save(&state, &*lease).await.unwrap();
    store
        .save(&PolicyState::new(&p("p0")), &*lease)
        .await
        .unwrap();
    assert_eq!(store.load(&p("p1")).await.unwrap(), state);

    let stored = item(&config.table, "journal#p1").await.unwrap();
    let body = codec::encode("x", &state).unwrap();
    assert_eq!(
        text(&stored, "body").as_bytes(),
        body,
        "the file store's bytes"
    );
    assert!(text(&stored, "body").starts_with("{\n  \"format\": 1,"));
    assert_eq!(stored["format"].as_n().unwrap(), "1");
    assert_eq!(stored["in_flight"].as_bool().unwrap(), &true);
    assert_eq!(text(&stored, "lease"), "aws-sm:us-east-1/prod/llm");
    assert!(chrono::DateTime::parse_from_rfc3339(&text(&stored, "updated_at")).is_ok());

    assert_eq!(store.policies().await.unwrap(), vec![p("p0"), p("p1")]);
    assert_eq!(store.in_flight().await.unwrap(), vec![p("p1")]);
    assert!(store.unavailable().is_none());
}

#[tokio::test]
async fn a_newer_format_in_the_table_is_refused_and_import_never_overwrites() {
    let (config, store) = fresh().await;
    assert!(store.import(&busy_state("p1")).await.unwrap());
    assert!(!store.import(&PolicyState::new(&p("p1"))).await.unwrap());
    assert_eq!(
        store.load(&p("p1")).await.unwrap(),
        busy_state_like(&store).await
    );

    let newer = r#"{"format": 2, "policy": "p2", "shape": "unknown to us"}"#;
    (client().put_item())
        .table_name(&config.table)
        .item("pk", s("journal#p2"))
        .item("body", s(newer))
        .send()
        .await
        .unwrap();
    let err = store.load(&p("p2")).await.unwrap_err();
    assert_eq!(err.kind(), "newer_format", "{err}");
    assert!(err.to_string().contains("journal#p2 has format 2"), "{err}");
}

/// What the import wrote (its timestamps are the test's own).
async fn busy_state_like(store: &DynamoStateStore) -> PolicyState {
    store.load(&p("p1")).await.unwrap()
}

#[tokio::test]
async fn a_journal_too_large_for_an_item_is_refused_and_not_written() {
    let (config, store) = fresh().await;
    let lease = store
        .try_lease(&key("big"), "unused")
        .await
        .unwrap()
        .unwrap();
    let mut state = PolicyState::new(&p("big"));
    state.last_result = Some(Outcome {
        kind: OutcomeKind::Failed,
        rotation_id: RotationId::parse("r").unwrap(),
        at: chrono::Utc::now(),
        error: Some("e".repeat(360 * 1024)),
    });
    let err = store.save(&state, &*lease).await.unwrap_err();
    assert!(err.to_string().contains("more than the 350 KB"), "{err}");
    assert!(item(&config.table, "journal#big").await.is_none());
}

#[tokio::test]
async fn a_held_lease_keeps_other_replicas_out_past_its_length_until_released() {
    let (config, a) = fresh().await;
    let b = DynamoStateStore::open(&config).await.unwrap();
    let held = a
        .try_lease(&key("prod/llm"), "x")
        .await
        .unwrap()
        .expect("free");
    assert!(b.try_lease(&key("prod/llm"), "x").await.unwrap().is_none());
    assert!(
        a.try_lease(&key("prod/llm"), "x").await.unwrap().is_none(),
        "not twice"
    );
    let token = held.fence().unwrap().token.clone();
    assert!(token.starts_with("1-"), "{token}");

    // Renewed every lease/3: still ours after twice its length.
    tokio::time::sleep(LEASE * 2).await;
    assert!(b.try_lease(&key("prod/llm"), "x").await.unwrap().is_none());
    held.ensure(Duration::from_millis(200)).expect("renewed");
    assert!(
        held.ensure(LEASE).is_err(),
        "never promised past its length"
    );
    let listed = b.held_leases().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].starts_with(&format!("aws-sm:us-east-1/prod/llm held by {}", a.owner())));

    drop(held);
    eventually(Duration::from_secs(5), "released on drop", || async {
        item(&config.table, "lease#aws-sm:us-east-1/prod/llm")
            .await
            .is_some_and(|i| text(&i, "owner").is_empty())
    })
    .await;
    let next = b
        .try_lease(&key("prod/llm"), "x")
        .await
        .unwrap()
        .expect("free again");
    assert!(
        next.fence().unwrap().token.starts_with("2-"),
        "counter incremented"
    );
    assert!(b.held_leases().await.unwrap().len() == 1);
}

#[tokio::test]
async fn a_crashed_holders_lease_is_taken_once_it_expires() {
    let (config, store) = fresh().await;
    let expires = chrono::Utc::now().timestamp_millis() + 2000;
    (client().put_item())
        .table_name(&config.table)
        .item("pk", s("lease#aws-sm:us-east-1/orphan"))
        .item("owner", s("crashed-host/1/deadbeef"))
        .item("expires_at_ms", AttributeValue::N(expires.to_string()))
        .item("counter", AttributeValue::N("7".into()))
        .item("nonce", s("abc"))
        .item("token", s("7-abc"))
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        store
            .try_lease(&key("orphan"), "x")
            .await
            .unwrap()
            .is_none()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let lease = loop {
        if let Some(lease) = store.try_lease(&key("orphan"), "x").await.unwrap() {
            break lease;
        }
        assert!(
            Instant::now() < deadline,
            "the expired lease is taken within 10s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before it expired"
    );
    assert!(lease.fence().unwrap().token.starts_with("8-"));
    let stored = item(&config.table, "lease#aws-sm:us-east-1/orphan")
        .await
        .unwrap();
    assert_eq!(text(&stored, "owner"), store.owner());
}

#[tokio::test]
async fn a_holder_whose_lease_was_taken_over_has_its_write_refused_and_the_journal_kept() {
    let (config, store) = fresh().await;
    let lease = store
        .try_lease(&key("prod/llm"), "x")
        .await
        .unwrap()
        .unwrap();
    let before = busy_state("p1");
    store.save(&before, &*lease).await.unwrap();

    // Another replica takes the item over (as after a pause past expiry).
    let expires = chrono::Utc::now().timestamp_millis() + 60_000;
    (client().put_item())
        .table_name(&config.table)
        .item("pk", s("lease#aws-sm:us-east-1/prod/llm"))
        .item("owner", s("other-host/2/cafe"))
        .item("expires_at_ms", AttributeValue::N(expires.to_string()))
        .item("counter", AttributeValue::N("2".into()))
        .item("nonce", s("cafe"))
        .item("token", s("2-cafe"))
        .send()
        .await
        .unwrap();
    let mut after = before.clone();
    after.failures = 9;
    // Straight after the takeover this process still believes it holds the
    // lease: the table's condition is what refuses the write.
    let err = store.save(&after, &*lease).await.unwrap_err();
    assert_eq!(err.kind(), "lease_lost", "{err}");
    let text_err = err.to_string();
    assert!(
        text_err.contains("lease on aws-sm:us-east-1/prod/llm lost"),
        "{text_err}"
    );
    assert!(
        text_err.contains("the table refused the journal write"),
        "{text_err}"
    );
    assert_eq!(store.load(&p("p1")).await.unwrap(), before, "unchanged");

    // The next renewal is refused: the lease is lost for good.
    eventually(Duration::from_secs(5), "the renewal notices", || async {
        lease.ensure(Duration::ZERO).is_err()
    })
    .await;
    let err = store.save(&after, &*lease).await.unwrap_err();
    assert!(err.to_string().contains("another replica took it"), "{err}");
    drop(lease);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stored = item(&config.table, "lease#aws-sm:us-east-1/prod/llm")
        .await
        .unwrap();
    assert_eq!(
        text(&stored, "owner"),
        "other-host/2/cafe",
        "release left it alone"
    );
}

/// The acquire's UpdateItem lands at moto and its answer is lost (`action`
/// on the first `count` attempts; the SDK makes 3): the lease ends held by
/// this store (the item says so) or free, never owned by a ghost of it.
async fn lost_acquire_answer(action: Action, count: usize) {
    let proxy = FaultProxy::start(&moto_url()).await;
    // Long enough for the SDK's retries (with their backoff) to fit in it.
    let config = DynamoConfig {
        lease: Duration::from_secs(10),
        ..table_config(&proxy.url(), true)
    };
    let store = DynamoStateStore::open(&config).await.unwrap();
    proxy.add(
        Rule::op("UpdateItem")
            .nth(1)
            .count(count)
            .action(action.clone()),
    );
    let got = store.try_lease(&key("lost"), "x").await;
    assert!(
        proxy.landed("UpdateItem") >= 1,
        "{action:?}: the acquire landed"
    );
    // Attempts the SDK did not make are not left for the renewals.
    proxy.clear();
    let stored = item(&config.table, "lease#aws-sm:us-east-1/lost")
        .await
        .unwrap();
    match got {
        Ok(Some(lease)) => {
            assert_eq!(text(&stored, "owner"), store.owner(), "{action:?}");
            assert_eq!(text(&stored, "token"), lease.fence().unwrap().token);
            // The retries took time: the first renewal restores the promise.
            eventually(Duration::from_secs(3), "the lease is renewed", || async {
                lease.ensure(Duration::from_millis(100)).is_ok()
            })
            .await;
        }
        other => panic!(
            "{action:?}: the read-back finds the lease ours, got {other:?}",
            other = other.map(|l| l.is_some())
        ),
    }
}

#[tokio::test]
async fn an_acquire_whose_answer_is_dropped_after_it_landed_is_read_back_as_held() {
    lost_acquire_answer(Action::DropAfter, 1).await;
    lost_acquire_answer(Action::DropAfter, 3).await;
}

#[tokio::test]
async fn an_acquire_answered_with_garbage_or_a_5xx_after_it_landed_is_read_back_as_held() {
    lost_acquire_answer(Action::GarbageAfter, 3).await;
    lost_acquire_answer(Action::FailAfter(500, "InternalServerError"), 3).await;
}

#[tokio::test]
async fn an_acquire_that_cannot_be_read_back_either_is_released_not_left_to_a_ghost() {
    let proxy = FaultProxy::start(&moto_url()).await;
    let config = table_config(&proxy.url(), true);
    let store = DynamoStateStore::open(&config).await.unwrap();
    proxy.add(
        Rule::op("UpdateItem")
            .nth(1)
            .count(3)
            .action(Action::DropAfter),
    );
    // GetItem #1 is the read before the acquire; every attempt of the read-back fails.
    proxy.add(
        Rule::op("GetItem")
            .nth(2)
            .count(3)
            .action(Action::FailBefore(500, "InternalServerError")),
    );
    let err = store
        .try_lease(&key("ghost"), "x")
        .await
        .map(|l| l.is_some())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("reading the lease back failed too"),
        "{err}"
    );
    assert!(
        store.unavailable().is_some(),
        "the table trouble is reported for /readyz"
    );
    let stored = item(&config.table, "lease#aws-sm:us-east-1/ghost")
        .await
        .unwrap();
    assert_eq!(text(&stored, "owner"), "", "released, not held by a ghost");
    let again = store.try_lease(&key("ghost"), "x").await.unwrap();
    assert!(again.is_some(), "free for the next attempt");
    assert!(store.unavailable().is_none(), "a call that works clears it");
}

mod opening;
