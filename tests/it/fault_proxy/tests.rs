//! The fault proxy with the real `aws-sdk-secretsmanager` client against
//! moto: what each action lets land, what the SDK makes of it (it retries
//! 5xx answers and dropped connections, 3 attempts in all), and a whole
//! rekey rotation through the proxy with no rule set.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

use super::{Action, FaultProxy, Rule, route_aws_store_through};
use crate::helpers::{TestEnv, policy};
use crate::moto::{moto_url, sm_client, unique_secret_name};

/// A client like the suite's moto client, talking to `endpoint`.
fn client_via(endpoint: &str) -> Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "proxy"))
        .build();
    Client::from_conf(config)
}

/// A proxy in front of moto, a client through it, and a fresh secret
/// (made straight at moto) holding `old`.
async fn setup() -> (FaultProxy, Client, String) {
    let proxy = FaultProxy::start(&moto_url()).await;
    let client = client_via(&proxy.url());
    let name = unique_secret_name("fault-proxy");
    let direct = sm_client().await;
    let made = direct.create_secret().name(&name).secret_string("old");
    made.send().await.expect("secret created at moto");
    (proxy, client, name)
}

/// The value at `stage`, read straight from moto; `None` if there is none.
async fn at_moto(name: &str, stage: &str) -> Option<String> {
    let read = sm_client().await.get_secret_value().secret_id(name);
    let out = read.version_stage(stage).send().await.ok()?;
    out.secret_string().map(str::to_string)
}

async fn put_pending(client: &Client, name: &str, token: &str) -> Result<(), String> {
    let put = client
        .put_secret_value()
        .secret_id(name)
        .secret_string("new");
    let put = put.client_request_token(token).version_stages("AWSPENDING");
    put.send().await.map(drop).map_err(|err| match err {
        SdkError::DispatchFailure(_) => "dispatch failure".to_string(),
        SdkError::ResponseError(_) => "unparsable response".to_string(),
        other => other.code().unwrap_or("no error code").to_string(),
    })
}

fn token() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[tokio::test]
async fn without_rules_every_call_is_forwarded_and_recorded() {
    let (proxy, client, name) = setup().await;
    put_pending(&client, &name, &token())
        .await
        .expect("put through the proxy");
    let read = client
        .get_secret_value()
        .secret_id(&name)
        .version_stage("AWSPENDING");
    let out = read.send().await.expect("get through the proxy");
    assert_eq!(out.secret_string(), Some("new"));
    assert_eq!(
        (proxy.seen("PutSecretValue"), proxy.landed("PutSecretValue")),
        (1, 1)
    );
    assert_eq!(proxy.seen("secretsmanager.GetSecretValue"), 1);
    assert_eq!(proxy.all_seen().len(), 2);
}

#[tokio::test]
async fn fail_after_lands_the_put_though_every_attempt_errors() {
    let (proxy, client, name) = setup().await;
    let rule = Rule::op("PutSecretValue").action(Action::FailAfter(500, "InternalServiceError"));
    proxy.add(rule);
    let err = put_pending(&client, &name, &token()).await.unwrap_err();
    assert_eq!(err, "InternalServiceError");
    assert_eq!(proxy.seen("PutSecretValue"), 3, "the SDK tried three times");
    assert_eq!(proxy.landed("PutSecretValue"), 3);
    assert_eq!(at_moto(&name, "AWSPENDING").await.as_deref(), Some("new"));
}

#[tokio::test]
async fn a_counted_fail_after_lets_the_sdk_retry_succeed() {
    let (proxy, client, name) = setup().await;
    let rule = Rule::op("PutSecretValue").count(1);
    proxy.add(rule.action(Action::FailAfter(503, "ServiceUnavailable")));
    put_pending(&client, &name, &token())
        .await
        .expect("the retry succeeds");
    let actions: Vec<_> = proxy
        .requests("PutSecretValue")
        .into_iter()
        .map(|s| s.action)
        .collect();
    assert_eq!(
        actions,
        [Some(Action::FailAfter(503, "ServiceUnavailable")), None]
    );
    assert_eq!(proxy.landed("PutSecretValue"), 2, "both attempts landed");
}

#[tokio::test]
async fn drop_after_lands_the_put_and_the_sdk_sees_no_answer() {
    let (proxy, client, name) = setup().await;
    proxy.add(Rule::op("PutSecretValue").action(Action::DropAfter));
    let err = put_pending(&client, &name, &token()).await.unwrap_err();
    assert_eq!(err, "dispatch failure");
    // A dropped connection is retried too: each attempt landed again.
    let counts = (proxy.seen("PutSecretValue"), proxy.landed("PutSecretValue"));
    assert_eq!(counts, (3, 3));
    assert_eq!(at_moto(&name, "AWSPENDING").await.as_deref(), Some("new"));
}

#[tokio::test]
async fn fail_before_lands_nothing() {
    let (proxy, client, name) = setup().await;
    proxy.add(Rule::op("PutSecretValue").action(Action::FailBefore(500, "InternalServiceError")));
    let err = put_pending(&client, &name, &token()).await.unwrap_err();
    assert_eq!(err, "InternalServiceError");
    assert_eq!(
        (proxy.seen("PutSecretValue"), proxy.landed("PutSecretValue")),
        (3, 0)
    );
    assert_eq!(at_moto(&name, "AWSPENDING").await, None);
    assert_eq!(at_moto(&name, "AWSCURRENT").await.as_deref(), Some("old"));
}

#[tokio::test]
async fn garbage_after_moves_the_stage_and_the_sdk_cannot_read_the_answer() {
    let (proxy, client, name) = setup().await;
    let current = sm_client()
        .await
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    let current = (current.version_ids_to_stages().unwrap().iter())
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(id, _)| id.clone())
        .unwrap();
    let pending = token();
    put_pending(&client, &name, &pending).await.unwrap();
    proxy.add(Rule::op("UpdateSecretVersionStage").action(Action::GarbageAfter));

    let promote = client.update_secret_version_stage().secret_id(&name);
    let promote = promote
        .version_stage("AWSCURRENT")
        .move_to_version_id(&pending);
    let err = promote
        .remove_from_version_id(current)
        .send()
        .await
        .unwrap_err();
    // The SDK calls a 200 it cannot parse an unhandled service error without a code.
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!((status, err.code()), (Some(200), None), "{err:?}");
    assert!(proxy.landed("UpdateSecretVersionStage") >= 1);
    assert_eq!(at_moto(&name, "AWSCURRENT").await.as_deref(), Some("new"));
}

#[tokio::test]
async fn nth_and_count_select_exactly_those_calls_and_clear_removes_the_rule() {
    let (proxy, client, name) = setup().await;
    let rule = Rule::op("GetSecretValue").nth(2).count(1);
    proxy.add(rule.action(Action::FailBefore(400, "ResourceNotFoundException")));
    let mut answers = Vec::new();
    for _ in 0..3 {
        let got = client.get_secret_value().secret_id(&name).send().await;
        answers.push(match got {
            Ok(_) => "ok".to_string(),
            Err(err) => err.code().unwrap_or("no error code").to_string(),
        });
    }
    assert_eq!(answers, ["ok", "ResourceNotFoundException", "ok"]);
    assert_eq!(proxy.landed("GetSecretValue"), 2);

    proxy.add(
        Rule::op("GetSecretValue").action(Action::FailBefore(400, "ResourceNotFoundException")),
    );
    proxy.clear();
    assert!(
        client
            .get_secret_value()
            .secret_id(&name)
            .send()
            .await
            .is_ok()
    );
    assert_eq!(
        proxy.seen("GetSecretValue"),
        1,
        "clear forgot the earlier calls"
    );
}

#[tokio::test]
async fn a_rekey_rotation_through_the_proxy_with_no_rule_lands_every_call() {
    let proxy = FaultProxy::start(&moto_url()).await;
    let env = TestEnv::new().await;
    let (_, old) = env.seed_key("legacy");
    let id = unique_secret_name("fault-proxy/rotate");
    let direct = sm_client().await;
    direct
        .create_secret()
        .name(&id)
        .secret_string(&old)
        .send()
        .await
        .unwrap();
    let target = format!(r#"{{ store = "aws", secret_id = "{id}", format = "raw" }}"#);
    env.write_config(&policy("p", &target, ""));
    route_aws_store_through(&env.config_path(), &proxy);

    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);

    let current = at_moto(&id, "AWSCURRENT").await.expect("a current value");
    assert_ne!(current, old);
    assert_eq!(
        at_moto(&id, "AWSPREVIOUS").await.as_deref(),
        Some(old.as_str())
    );
    env.assert_settled(&current, &[&old]);
    for operation in ["PutSecretValue", "UpdateSecretVersionStage"] {
        assert!(
            proxy.seen(operation) >= 1,
            "{operation} went through the proxy"
        );
    }
    let seen = proxy.all_seen();
    assert!(
        seen.iter().all(|s| s.forwarded && s.action.is_none()),
        "{seen:?}"
    );
}
