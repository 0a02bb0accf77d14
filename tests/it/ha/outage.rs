//! The state table fails (throttled, 500s, dropped connections) behind the
//! fault proxy; only the table's endpoint goes through it, the secret is at
//! moto directly. While every table call fails no key is made and
//! `/readyz` answers 503 naming the state; once calls get through again,
//! readiness returns and the rotation that fell due meanwhile happens.

use std::time::{Duration, Instant};

use super::Ha;
use crate::daemon_proc::RunningDaemon;
use crate::fault_proxy::{Action, FaultProxy, Rule};
use crate::moto::moto_url;

/// Every table call the daemon makes after it opened the table.
const TABLE_CALLS: &[&str] = &[
    "GetItem",
    "PutItem",
    "UpdateItem",
    "TransactWriteItems",
    "Scan",
    "Query",
];

/// How long the outage lasts once readiness says so: a schedule tick at least.
const OUTAGE: Duration = Duration::from_secs(6);

async fn readyz(replica: &RunningDaemon<'_>) -> (u16, String) {
    let answer = replica.get("/readyz").await;
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}

async fn outage(action: Action) {
    let when = format!("{action:?}");
    let ha = Ha::new().await;
    let proxy = FaultProxy::start(&moto_url()).await;
    for operation in TABLE_CALLS {
        proxy.add(Rule::op(operation).action(action.clone()));
    }
    ha.write_config_at(
        &proxy.url(),
        "",
        "schedule = \"*/5 * * * * *\"\nrevoke = { grace = \"0s\" }",
    );
    let replica = RunningDaemon::start(&ha.env, &[]).await;

    let named = format!("state dynamodb:{}", ha.table);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = readyz(&replica).await;
        if status == 503 && body.contains(&named) && body.contains("unavailable") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{when}: /readyz names the unavailable state within 30 s: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let until = Instant::now() + OUTAGE;
    while Instant::now() < until {
        assert_eq!(
            ha.creates(),
            0,
            "{when}: no key is made while the table fails"
        );
        let (status, body) = readyz(&replica).await;
        assert_eq!(
            status, 503,
            "{when}: not ready while the table fails: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        proxy.seen("UpdateItem") + proxy.seen("GetItem") > 0,
        "{when}: the daemon tried"
    );

    proxy.clear();
    let deadline = Instant::now() + Duration::from_secs(30);
    while readyz(&replica).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "{when}: ready again within 30 s of the table answering"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ha.wait_for_rotated(Duration::from_secs(30)).await;
    replica.stop().await;

    ha.write_config("revoke = { grace = \"0s\" }");
    ha.finish_graces(1).await;
    let current = ha.assert_settled(&[], &when).await;
    assert_ne!(current, ha.old, "{when}: the due rotation happened");
    assert_eq!(ha.env.live_secrets(), vec![current], "{when}: one live key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_state_table_makes_no_key_and_unready_until_it_answers_again() {
    tokio::join!(
        outage(Action::FailBefore(400, "ThrottlingException")),
        outage(Action::FailBefore(500, "InternalServerError")),
        outage(Action::DropAfter),
    );
}
