//! The DynamoDB state store against moto with the real `aws-sdk-dynamodb`:
//! journals round trip byte for byte as the file store writes them, are
//! found by the scans, never overwritten by an import, refused when too
//! large or of a newer format. Leases are in `leases`, opening the table and
//! the binary in `opening`, the index (expired leases, heartbeats) in
//! `index`. Each test has its own table.

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
        after_promote: Default::default(),
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

    let newer = r#"{"format": 3, "policy": "p2", "shape": "unknown to us"}"#;
    (client().put_item())
        .table_name(&config.table)
        .item("pk", s("journal#p2"))
        .item("body", s(newer))
        .send()
        .await
        .unwrap();
    let err = store.load(&p("p2")).await.unwrap_err();
    assert_eq!(err.kind(), "newer_format", "{err}");
    assert!(err.to_string().contains("journal#p2 has format 3"), "{err}");
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

mod daemon;
mod index;
mod leases;
mod opening;
