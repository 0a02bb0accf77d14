//! How many Secrets Manager calls one rotation makes, counted by operation
//! (`X-Amz-Target`) at a proxy in front of moto that the real SDK client
//! talks to. The normal path makes at most 6: read current, put pending,
//! read pending, move current, drop pending, read current before revoking.

use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;

use crate::fault_proxy::{FaultProxy, Seen, route_aws_store_through};
use crate::helpers::{TestEnv, policy};
use crate::moto::{moto_url, sm_client, unique_secret_name};

/// The issue's bound on the normal path.
const MAX_CALLS: usize = 6;

/// A secret in moto holding a live key, a policy `p` on it with `revoke`,
/// and the store routed through a counting proxy.
async fn rotation_through_proxy(revoke: &str) -> (TestEnv, Client, String, String, FaultProxy) {
    let client = sm_client().await;
    let env = TestEnv::new().await;
    let (_, old) = env.seed_key("legacy");
    let id = unique_secret_name("it/calls");
    client
        .create_secret()
        .name(&id)
        .secret_string(&old)
        .send()
        .await
        .unwrap();
    let target = format!(r#"{{ store = "aws", secret_id = "{id}", format = "raw" }}"#);
    env.write_config(&policy("p", &target, revoke));
    let proxy = FaultProxy::start(&moto_url()).await;
    route_aws_store_through(&env.config_path(), &proxy);
    (env, client, id, old, proxy)
}

/// The operations seen, in order, for failure messages.
fn names(seen: &[Seen]) -> String {
    let names: Vec<&str> = seen.iter().map(|s| s.operation.as_str()).collect();
    names.join(", ")
}

/// The calls of a whole rotation: at most [`MAX_CALLS`], all answered by
/// moto, and each of the operations the protocol needs.
#[track_caller]
fn assert_normal_path(seen: &[Seen], what: &str) {
    assert!(
        seen.len() <= MAX_CALLS,
        "{what}: {} Secrets Manager calls, more than {MAX_CALLS}: {}",
        seen.len(),
        names(seen)
    );
    assert!(
        seen.iter().all(|s| s.forwarded),
        "{what}: every call reached moto: {}",
        names(seen)
    );
    let count = |op: &str| seen.iter().filter(|s| s.operation == op).count();
    assert_eq!(count("PutSecretValue"), 1, "{what}: {}", names(seen));
    assert_eq!(
        count("UpdateSecretVersionStage"),
        2,
        "{what}: move AWSCURRENT, drop AWSPENDING: {}",
        names(seen)
    );
    assert_eq!(count("DescribeSecret"), 0, "{what}: {}", names(seen));
}

async fn stage_value(client: &Client, id: &str, stage: &str) -> Option<String> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .version_stage(stage)
        .send()
        .await
        .ok()?;
    out.secret_string().map(str::to_string)
}

#[tokio::test]
async fn a_rotation_with_no_grace_makes_at_most_six_secrets_manager_calls() {
    let (env, client, id, old, proxy) =
        rotation_through_proxy(r#"revoke = { grace = "0s" }"#).await;

    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);

    assert_normal_path(&proxy.all_seen(), "rotate --now, grace 0");
    let current = stage_value(&client, &id, "AWSCURRENT").await.unwrap();
    assert_ne!(current, old, "the new key is current");
    assert_eq!(
        stage_value(&client, &id, "AWSPREVIOUS").await.as_deref(),
        Some(old.as_str())
    );
    assert!(
        stage_value(&client, &id, "AWSPENDING").await.is_none(),
        "no AWSPENDING left"
    );
    env.assert_settled(&current, &[]);
}

/// With a grace, the revoke is a later run: it reads the current version
/// once more, which the count of the whole rotation includes.
#[tokio::test]
async fn a_rotation_revoked_after_its_grace_makes_at_most_six_secrets_manager_calls() {
    let (env, client, id, old, proxy) =
        rotation_through_proxy(r#"revoke = { grace = "1s" }"#).await;

    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    let promoted = proxy.all_seen();
    let current = stage_value(&client, &id, "AWSCURRENT").await.unwrap();
    assert_ne!(current, old, "the new key is current");
    assert!(
        env.live_secrets().contains(&old),
        "the old key lives in its grace"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    while env.live_secrets().contains(&old) {
        assert!(
            Instant::now() < deadline,
            "the old key was not revoked within 30 s after its grace"
        );
        env.cmd("run", &["--once"]).await.assert_code(0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let all = proxy.all_seen();
    assert_normal_path(&all, "rotate --now, then run --once after a 1 s grace");
    assert!(
        all.len() > promoted.len(),
        "the revoke read the store before revoking: {}",
        names(&all)
    );
    env.assert_settled(&current, &[]);
}
