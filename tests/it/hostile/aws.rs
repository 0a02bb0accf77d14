//! Secrets Manager calls that fail, or land and then fail, through the real
//! `aws-sdk-secretsmanager` client and a fault proxy in front of moto.

use super::{Secret, assert_no_panic};
use crate::crash_matrix::Store;
use crate::fault_proxy::{Action, FaultProxy, Rule, route_aws_store_through};
use crate::helpers::TestEnv;
use crate::moto::moto_url;

/// What each case does to its call: refused outright (nothing lands), or
/// carried out and answered with a 4xx, a 5xx on every SDK retry, an
/// unreadable 200, or a dropped connection.
fn actions() -> [(Action, usize); 5] {
    [
        (Action::FailBefore(400, "InvalidRequestException"), 1),
        (Action::FailAfter(400, "InvalidParameterException"), 1),
        (Action::FailAfter(500, "InternalServiceError"), 3),
        (Action::GarbageAfter, 1),
        (Action::DropAfter, 3),
    ]
}

/// One rotation whose `nth` call of `op` meets each action in turn (a fresh
/// secret each time): right after it the invariants hold, and rotating
/// again (the faults gone) ends with one live key, the current one.
async fn rotate_through_faults(op: &str, nth: usize) {
    rotate_through_faults_after(None, op, nth).await;
}

/// [`rotate_through_faults`], with `first` added before each case's rule
/// (a fault that leads the rotation to the call under test).
async fn rotate_through_faults_after(first: Option<Rule>, op: &str, nth: usize) {
    for (action, count) in actions() {
        let env = TestEnv::new().await;
        let secret = Secret::new(env, Store::Aws, "").await;
        let proxy = FaultProxy::start(&moto_url()).await;
        route_aws_store_through(&secret.env.config_path(), &proxy);
        let when = format!("{op}#{nth} {action:?}");
        if let Some(first) = &first {
            proxy.add(first.clone());
        }
        proxy.add(Rule::op(op).nth(nth).count(count).action(action));

        let run = secret.rotate_now().await;
        assert_no_panic(&run, &when);
        secret.assert_safe(&when).await;
        if run.code != Some(0) {
            assert!(
                secret.env.live_secrets().contains(&secret.old),
                "{when}: a failed rotation left the old key alive:\n{}",
                run.stderr
            );
        }
        assert!(
            proxy.seen(op) >= nth,
            "{when}: the rotation never made that call (the case tests nothing)"
        );
        proxy.clear();
        secret.rotate_until_ok(&when, 2).await;
    }
}

#[tokio::test]
async fn put_secret_value_failing_or_landing_then_failing() {
    rotate_through_faults("PutSecretValue", 1).await;
}

#[tokio::test]
async fn the_move_of_awscurrent_failing_or_landing_then_failing() {
    rotate_through_faults("UpdateSecretVersionStage", 1).await;
}

#[tokio::test]
async fn the_drop_of_awspending_failing_or_landing_then_failing() {
    rotate_through_faults("UpdateSecretVersionStage", 2).await;
}

/// The normal path reads three times: AWSCURRENT (the base), AWSPENDING
/// (verify), AWSCURRENT (before the revoke).
#[tokio::test]
async fn get_secret_value_failing_at_each_read() {
    for nth in 1..=3 {
        rotate_through_faults("GetSecretValue", nth).await;
    }
}

/// The normal path never describes the secret: the stages are read back
/// when an answer went wrong. Here the move of AWSCURRENT lands and answers
/// 500 (every SDK attempt), and the read back meets each fault (the SDK's
/// retries of it, and the promote's own read back after it, included).
#[tokio::test]
async fn describe_secret_failing_at_the_read_back_of_a_promote() {
    let landed = Action::FailAfter(500, "InternalServiceError");
    let promote = Rule::op("UpdateSecretVersionStage").nth(1).count(3);
    rotate_through_faults_after(Some(promote.action(landed)), "DescribeSecret", 1).await;
}

/// The move of AWSCURRENT lands and answers 500; the SDK's retry is then
/// refused (the version no longer holds AWSCURRENT): the promote is settled
/// by reading the stages back, and the new key (current) is never deleted.
#[tokio::test]
async fn a_promote_that_landed_and_answered_500_then_400_is_finished_not_rolled_back() {
    let env = TestEnv::new().await;
    let secret = Secret::new(env, Store::Aws, "").await;
    let proxy = FaultProxy::start(&moto_url()).await;
    route_aws_store_through(&secret.env.config_path(), &proxy);
    let op = "UpdateSecretVersionStage";
    let landed = Action::FailAfter(500, "InternalServiceError");
    proxy.add(Rule::op(op).nth(1).count(1).action(landed));
    let refused = Action::FailBefore(400, "InvalidParameterException");
    proxy.add(Rule::op(op).nth(2).count(1).action(refused));

    let run = secret.rotate_now().await;
    assert_no_panic(&run, "promote 500 then 400");
    secret.assert_safe("promote 500 then 400").await;
    let current = secret.current().await.unwrap();
    assert_ne!(
        current, secret.old,
        "the move landed: the new key is current"
    );
    assert!(
        !run.stderr.contains("rolling back"),
        "a promote that landed is not rolled back:\n{}",
        run.stderr
    );
    proxy.clear();
    secret.rotate_until_ok("promote 500 then 400", 2).await;
}
