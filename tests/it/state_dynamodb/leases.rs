//! Leases in the table: held (and renewed past their length) until
//! released, taken once a crashed holder's expire, refused writes after a
//! takeover, and acquires whose answer is lost (through the fault proxy)
//! read back as held by us or left free, never to a ghost.

use super::*;
use crate::fault_proxy::{Action, FaultProxy, Rule};

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
