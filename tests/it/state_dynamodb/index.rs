//! The table's index at work: created with the table, its absence on an
//! existing table refused with the command that adds it; the expired-lease
//! look (one Query, no journal read) finds a crashed holder's lease and
//! not a live or released one; heartbeats count the replicas alive.

use aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate;
use aws_sdk_dynamodb::types::{CreateGlobalSecondaryIndexAction, ProjectionType};
use rekey::state::dynamodb::released;

use super::*;
use crate::fault_proxy::FaultProxy;
use crate::ha::rekey_index;

/// A table made as an older rekey made it: `pk` only, no index.
async fn table_without_index(name: &str) {
    (client().create_table())
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn create_table_creates_the_sparse_index_on_idx_and_pk() {
    let (config, _store) = fresh().await;
    let out = (client().describe_table())
        .table_name(&config.table)
        .send()
        .await
        .unwrap();
    let table = out.table().unwrap();
    let [index] = table.global_secondary_indexes() else {
        panic!("one index: {table:?}");
    };
    assert_eq!(index.index_name(), Some("rekey-index"));
    let keys: Vec<(&str, &str)> = (index.key_schema().iter())
        .map(|k| (k.attribute_name(), k.key_type().as_str()))
        .collect();
    assert_eq!(keys, [("idx", "HASH"), ("pk", "RANGE")]);
    let projection = index.projection().unwrap();
    assert_eq!(projection.projection_type(), Some(&ProjectionType::Include));
    assert_eq!(projection.non_key_attributes(), ["owner", "expires_at_ms"]);
    let said = DynamoStateStore::check(&config).await.unwrap();
    assert!(said.contains("index rekey-index ACTIVE"), "{said}");
}

#[tokio::test]
async fn a_table_without_the_index_is_refused_with_the_command_that_adds_it() {
    let config = table_config(&moto_url(), true);
    table_without_index(&config.table).await;
    let err = DynamoStateStore::open(&config)
        .await
        .map(|_| ())
        .unwrap_err()
        .to_string();
    for part in [
        &format!("DynamoDB table {} in us-east-1", config.table),
        "has no global secondary index rekey-index",
        &format!(
            "aws dynamodb update-table --table-name {} --region us-east-1 --endpoint-url {}",
            config.table,
            moto_url()
        ),
        "--attribute-definitions AttributeName=pk,AttributeType=S AttributeName=idx,AttributeType=S",
        "\"IndexName\":\"rekey-index\"",
        "deploy/aws/dynamodb-table.yaml",
    ] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    let checked = DynamoStateStore::check(&config).await.unwrap_err();
    assert!(checked.contains("no global secondary index"), "{checked}");
    let untouched = (client().describe_table())
        .table_name(&config.table)
        .send()
        .await
        .unwrap();
    assert!(
        (untouched.table().unwrap())
            .global_secondary_indexes()
            .is_empty(),
        "create_table = true does not add the index itself"
    );

    // What the printed command does: then the table opens.
    // (moto's UpdateTable replaces the attribute definitions: both go.)
    let (idx, index) = rekey_index();
    let create = CreateGlobalSecondaryIndexAction::builder()
        .index_name(index.index_name())
        .set_key_schema(Some(index.key_schema().to_vec()))
        .set_projection(index.projection().cloned())
        .build()
        .unwrap();
    (client().update_table())
        .table_name(&config.table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(idx)
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder().create(create).build(),
        )
        .send()
        .await
        .unwrap();
    DynamoStateStore::open(&config)
        .await
        .expect("opens once the index is there");
}

/// Waits for `thread` without blocking this runtime (the proxy runs on it).
async fn joined(thread: std::thread::JoinHandle<()>) {
    let done = tokio::task::spawn_blocking(move || thread.join());
    done.await.unwrap().unwrap();
}

/// Takes the lease on `secret` in a runtime of its own and then ends that
/// runtime without releasing it: what a replica killed while holding it
/// leaves in the table.
async fn crash_holding(config: &DynamoConfig, secret: &str) {
    let (config, secret) = (config.clone(), secret.to_string());
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let store = DynamoStateStore::open(&config).await.unwrap();
            let lease = store.try_lease(&key(&secret), "unused").await.unwrap();
            std::mem::forget(lease.expect("taken"));
            std::mem::forget(store);
        });
        // The renewal task dies with the runtime, unreleased.
        drop(runtime);
    });
    joined(thread).await;
}

#[tokio::test]
async fn the_expired_lease_query_finds_a_dead_holders_lease_in_one_query_and_reads_no_journal() {
    let proxy = FaultProxy::start(&moto_url()).await;
    let config = table_config(&proxy.url(), true);
    let store = DynamoStateStore::open(&config).await.unwrap();
    let live = store.try_lease(&key("live"), "-").await.unwrap().unwrap();
    store
        .save(&PolicyState::new(&p("p-live")), &*live)
        .await
        .unwrap();
    let released = store.try_lease(&key("released"), "-").await.unwrap();
    released.unwrap().release().await;
    crash_holding(&config, "crashed").await;
    // A crashed holder's item, written as it would have left it.
    (client().put_item())
        .table_name(&config.table)
        .item("pk", s(&format!("lease#{}", key("written"))))
        .item("idx", s("lease"))
        .item("owner", s("gone-host/1/0000abcd"))
        .item("counter", AttributeValue::N("3".into()))
        .item("token", s("3-deadbeef"))
        .item(
            "expires_at_ms",
            AttributeValue::N((chrono::Utc::now().timestamp_millis() - 1000).to_string()),
        )
        .send()
        .await
        .unwrap();

    let expired = [key("crashed"), key("written")];
    eventually(LEASE * 3, "the crashed holder's lease expires", || async {
        store.expired_leases().await.unwrap() == expired
    })
    .await;

    proxy.clear();
    assert_eq!(store.expired_leases().await.unwrap(), expired);
    assert_eq!(proxy.seen("Query"), 1, "one Query");
    for none in ["GetItem", "Scan", "BatchGetItem", "TransactGetItems"] {
        assert_eq!(proxy.seen(none), 0, "{none}");
    }

    let held = store.held_leases().await.unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].starts_with(&format!("{} held by {}", key("live"), store.owner())));

    // Taken over and released: out of the index, no longer expired.
    let taken = store.try_lease(&key("crashed"), "-").await.unwrap();
    taken
        .expect("an expired lease can be taken")
        .release()
        .await;
    assert_eq!(store.expired_leases().await.unwrap(), [key("written")]);
    let item = item(&config.table, &format!("lease#{}", key("crashed"))).await;
    assert!(
        !item.unwrap().contains_key("idx"),
        "a released lease leaves the index"
    );
    drop(live);
}

#[tokio::test]
async fn heartbeats_count_the_replicas_alive_and_one_fewer_after_an_exit_or_a_crash() {
    let proxy = FaultProxy::start(&moto_url()).await;
    let config = table_config(&proxy.url(), true);
    let one = DynamoStateStore::open(&config).await.unwrap();
    let two = DynamoStateStore::open(&config).await.unwrap();
    assert_eq!(one.heartbeat().await.unwrap(), Some(1));
    proxy.clear();
    assert_eq!(two.heartbeat().await.unwrap(), Some(2));
    assert_eq!(proxy.seen("PutItem"), 1, "one heartbeat");
    assert_eq!(proxy.seen("Query"), 1, "one Query");
    assert_eq!(proxy.seen("Scan"), 0);
    assert_eq!(one.heartbeat().await.unwrap(), Some(2));

    // A clean exit: the others count one fewer at once.
    drop(two);
    released(Duration::from_secs(5)).await;
    assert_eq!(one.heartbeat().await.unwrap(), Some(1));

    // A crash: counted until its heartbeat expires (3 lease periods).
    let crashed = config.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let store = DynamoStateStore::open(&crashed).await.unwrap();
            assert_eq!(store.heartbeat().await.unwrap(), Some(2));
            std::mem::forget(store);
        });
    });
    joined(thread).await;
    assert_eq!(one.heartbeat().await.unwrap(), Some(2));
    eventually(LEASE * 5, "the crashed replica stops counting", || async {
        one.heartbeat().await.unwrap() == Some(1)
    })
    .await;
    // Its heartbeat has been taken out of the index; the item stays.
    let mut dead = 0;
    let scanned = (client().scan()).table_name(&config.table).send().await;
    for item in scanned.unwrap().items() {
        let pk = item["pk"].as_s().unwrap();
        if pk.starts_with("replica#") && pk != &format!("replica#{}", one.owner()) {
            assert!(!item.contains_key("idx"), "{pk} left the index");
            dead += 1;
        }
    }
    assert_eq!(dead, 2, "the exited and the crashed replica");
}
