//! The read before the revoke: the old key is never revoked while the
//! store's current value is that key — someone put it back after promote,
//! in the same run (no grace) or before a later run revokes (after a grace).

use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;

use crate::helpers::{TestEnv, policy};
use crate::moto::{sm_client, unique_secret_name};

async fn secret_with_old_key(revoke: &str) -> (TestEnv, Client, String, String) {
    let client = sm_client().await;
    let env = TestEnv::new().await;
    let (_, old) = env.seed_key("legacy");
    let id = unique_secret_name("it/putback");
    client
        .create_secret()
        .name(&id)
        .secret_string(&old)
        .send()
        .await
        .unwrap();
    let target = format!(r#"{{ store = "aws", secret_id = "{id}", format = "raw" }}"#);
    env.write_config(&policy("p", &target, revoke));
    (env, client, id, old)
}

async fn current(client: &Client, id: &str) -> Option<String> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .ok()?;
    out.secret_string().map(str::to_string)
}

/// A new version holding `value`, made current (as a person would). Put
/// and moved in two calls: moto's `PutSecretValue` takes `AWSCURRENT` from
/// the version it last made current itself, not from the one a stage move
/// made current, and would leave two versions labelled `AWSCURRENT`.
async fn put_back(client: &Client, id: &str, value: &str) {
    let token = uuid::Uuid::now_v7().to_string();
    client
        .put_secret_value()
        .secret_id(id)
        .secret_string(value)
        .client_request_token(&token)
        .version_stages("PUTBACK")
        .send()
        .await
        .expect("the old value is put back");
    let described = client.describe_secret().secret_id(id).send().await.unwrap();
    let stages = described
        .version_ids_to_stages()
        .cloned()
        .unwrap_or_default();
    let holder = stages
        .iter()
        .find(|(_, labels)| labels.iter().any(|l| l == "AWSCURRENT"))
        .map(|(version, _)| version.clone());
    client
        .update_secret_version_stage()
        .secret_id(id)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&token)
        .set_remove_from_version_id(holder)
        .send()
        .await
        .expect("the put-back version is made current");
}

#[tokio::test]
async fn an_old_key_put_back_during_the_grace_is_not_revoked() {
    let (env, client, id, old) = secret_with_old_key(r#"revoke = { grace = "1s" }"#).await;
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    assert_ne!(current(&client, &id).await.as_deref(), Some(old.as_str()));
    put_back(&client, &id, &old).await;
    assert_eq!(current(&client, &id).await.as_deref(), Some(old.as_str()));

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = env.cmd("run", &["--once"]).await;
        if run.stderr.contains("refusing to revoke") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no revoke was refused within 30 s:\n{}",
            run.stderr
        );
        assert!(env.live_secrets().contains(&old), "{}", run.stderr);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        env.live_secrets().contains(&old),
        "the old key, current again, still works"
    );
    assert_eq!(current(&client, &id).await.as_deref(), Some(old.as_str()));
}

#[tokio::test]
async fn an_old_key_put_back_right_after_promote_is_not_revoked() {
    let (env, client, id, old) = secret_with_old_key(r#"revoke = { grace = "0s" }"#).await;
    let config = env.config_path();
    let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];
    let paused = [
        ("REKEY_FAILPOINT", "promote"),
        ("REKEY_FAILPOINT_ACTION", "pause"),
        ("REKEY_FAILPOINT_PAUSE_MS", "3000"),
    ];
    let child = env.command(&args, &paused).spawn().expect("rekey starts");

    let deadline = Instant::now() + Duration::from_secs(30);
    while current(&client, &id).await.as_deref() == Some(old.as_str()) {
        assert!(Instant::now() < deadline, "the promote never landed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    put_back(&client, &id, &old).await;
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("rekey finishes")
        .expect("rekey output");
    let run = env.keep(out);

    assert!(
        run.stderr.contains("failpoint promote: pausing"),
        "{}",
        run.stderr
    );
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("refusing to revoke"), "{}", run.stderr);
    assert!(
        env.live_secrets().contains(&old),
        "the old key, current again, still works"
    );
}
