//! The AWS Secrets Manager store, through the `SecretStore` trait, against moto.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::retry::RetryConfig;
use rekey::policy::{Format, Target};
use rekey::stores::aws::AwsSecretsManager;
use rekey::stores::{SecretStore, StoreError};
use secrecy::{ExposeSecret, SecretString};

use crate::moto::{moto_url, sm_client, unique_secret_name};

fn target(secret_id: &str, format: Format, create: bool) -> Target {
    Target {
        store: "aws".into(),
        secret_id: secret_id.into(),
        lease: rekey::names::LeaseKey::aws("test", secret_id),
        format,
        field: (format != Format::Raw).then(|| "API_KEY".to_string()),
        create,
    }
}

fn token() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn key(s: &str) -> SecretString {
    SecretString::from(s)
}

fn shown(key: Option<SecretString>) -> Option<String> {
    key.map(|k| k.expose_secret().to_string())
}

async fn setup(value: Option<&str>) -> (Client, AwsSecretsManager, String) {
    let client = sm_client().await;
    let name = unique_secret_name("rekey-test");
    if let Some(value) = value {
        client
            .create_secret()
            .name(&name)
            .secret_string(value)
            .send()
            .await
            .expect("seed secret");
    }
    let store = AwsSecretsManager::from_client("aws", client.clone());
    (client, store, name)
}

/// `VersionIdsToStages`, only versions that carry a label.
async fn stages(client: &Client, name: &str) -> HashMap<String, Vec<String>> {
    let out = client
        .describe_secret()
        .secret_id(name)
        .send()
        .await
        .expect("describe");
    let mut stages = out.version_ids_to_stages.unwrap_or_default();
    stages.retain(|_, labels| !labels.is_empty());
    stages
}

async fn raw_value(client: &Client, name: &str, stage: &str) -> String {
    let out = client
        .get_secret_value()
        .secret_id(name)
        .version_stage(stage)
        .send()
        .await
        .expect("get");
    out.secret_string.expect("a string secret")
}

async fn rotate(store: &AwsSecretsManager, t: &Target, new: &str) -> String {
    let version = store.stage(t, &token(), &key(new)).await.expect("stage");
    let pending = store
        .read_pending(t)
        .await
        .expect("read_pending")
        .expect("a pending version");
    assert_eq!(
        (pending.version_id.as_str(), pending.key.expose_secret()),
        (version.as_str(), new)
    );
    store.promote(t, &version).await.expect("promote");
    version
}

#[tokio::test]
async fn every_format_rotates_with_old_key_previous_and_no_pending_left() {
    let cases = [
        (Format::Raw, "sk-old"),
        (Format::Json, r#"{"API_KEY":"sk-old"}"#),
        (Format::Env, "API_KEY=sk-old\n"),
    ];
    for (format, old) in cases {
        let (client, store, name) = setup(Some(old)).await;
        let t = target(&name, format, false);
        let old_version = stages(&client, &name)
            .await
            .into_keys()
            .next()
            .expect("seeded version");
        let new_version = rotate(&store, &t, "sk-new").await;

        assert_eq!(
            shown(store.read_current(&t).await.expect("current")).as_deref(),
            Some("sk-new")
        );
        assert_eq!(
            shown(store.read_previous(&t).await.expect("previous")).as_deref(),
            Some("sk-old")
        );
        assert!(store.read_pending(&t).await.expect("pending").is_none());
        let want = HashMap::from([
            (new_version, vec!["AWSCURRENT".to_string()]),
            (old_version, vec!["AWSPREVIOUS".to_string()]),
        ]);
        assert_eq!(stages(&client, &name).await, want, "{format:?}");
    }
}

#[tokio::test]
async fn json_rotation_keeps_every_other_field_byte_for_byte() {
    let doc = "{\"db\": {\"host\": \"h\", \"ports\": [1, 2]}, \"API_KEY\": \"sk-old\", \"ratio\": 1.10, \"big\": 12345678901234567890, \"name\": \"héllo 🚀\"}";
    let (client, store, name) = setup(Some(doc)).await;
    rotate(&store, &target(&name, Format::Json, false), "sk-new").await;
    assert_eq!(
        raw_value(&client, &name, "AWSCURRENT").await,
        doc.replace("sk-old", "sk-new")
    );
    assert_eq!(raw_value(&client, &name, "AWSPREVIOUS").await, doc);
}

#[tokio::test]
async fn a_current_value_that_is_not_a_json_object_creates_no_version() {
    let (client, store, name) = setup(Some("[\"sk-old\"]")).await;
    let err = store
        .stage(
            &target(&name, Format::Json, false),
            &token(),
            &key("sk-new"),
        )
        .await
        .err();
    assert!(matches!(err, Some(StoreError::Shape { .. })), "{err:?}");
    let message = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains(&name) && !message.contains("sk-old"),
        "{message}"
    );
    let versions = client
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    assert_eq!(versions.version_ids_to_stages.unwrap_or_default().len(), 1);
}

#[tokio::test]
async fn a_missing_secret_is_not_found_without_create() {
    let (_client, store, name) = setup(None).await;
    let t = target(&name, Format::Raw, false);
    let missing = store.read_current(&t).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    // The operator learns where rekey looked (a wrong region is the usual
    // cause), on one line.
    let message = missing.err().unwrap().to_string();
    for part in [
        "does not exist (create it",
        "Secrets Manager in us-east-1",
        "check the secret_id and the store's region",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    assert!(!message.contains('\n'), "{message}");
    assert!(matches!(
        store.stage(&t, &token(), &key("k")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.read_pending(&t).await.expect("pending").is_none());
    store
        .drop_pending(&t)
        .await
        .expect("drop_pending on a missing secret");
}

#[tokio::test]
async fn create_builds_the_secret_from_nothing() {
    let (client, store, name) = setup(None).await;
    let t = target(&name, Format::Json, true);
    assert!(store.read_current(&t).await.expect("current").is_none());
    let version = rotate(&store, &t, "sk-first").await;
    assert_eq!(
        shown(store.read_current(&t).await.expect("current")).as_deref(),
        Some("sk-first")
    );
    assert!(store.read_previous(&t).await.expect("previous").is_none());
    assert_eq!(
        raw_value(&client, &name, "AWSCURRENT").await,
        r#"{"API_KEY":"sk-first"}"#
    );
    assert_eq!(
        stages(&client, &name).await,
        HashMap::from([(version, vec!["AWSCURRENT".to_string()])])
    );
}

#[tokio::test]
async fn drop_pending_leaves_current_untouched() {
    let (client, store, name) = setup(Some("sk-old")).await;
    let t = target(&name, Format::Raw, false);
    let before = stages(&client, &name).await;
    store
        .stage(&t, &token(), &key("sk-new"))
        .await
        .expect("stage");
    store.drop_pending(&t).await.expect("drop_pending");
    store
        .drop_pending(&t)
        .await
        .expect("drop_pending with nothing pending");
    assert!(store.read_pending(&t).await.expect("pending").is_none());
    assert_eq!(
        shown(store.read_current(&t).await.expect("current")).as_deref(),
        Some("sk-old")
    );
    assert_eq!(stages(&client, &name).await, before);
}

#[tokio::test]
async fn promoting_twice_is_a_no_op() {
    let (client, store, name) = setup(Some("sk-old")).await;
    let t = target(&name, Format::Raw, false);
    let version = rotate(&store, &t, "sk-new").await;
    let after_first = stages(&client, &name).await;
    store.promote(&t, &version).await.expect("promote again");
    assert_eq!(stages(&client, &name).await, after_first);
    assert_eq!(
        shown(store.read_previous(&t).await.expect("previous")).as_deref(),
        Some("sk-old")
    );
}

#[tokio::test]
async fn staging_twice_with_one_token_returns_the_same_version() {
    let (client, store, name) = setup(Some("sk-old")).await;
    let t = target(&name, Format::Raw, false);
    let rotation = token();
    let first = store
        .stage(&t, &rotation, &key("sk-new"))
        .await
        .expect("stage");
    let again = store
        .stage(&t, &rotation, &key("sk-new"))
        .await
        .expect("stage again");
    assert_eq!(first, again);
    assert_eq!(
        stages(&client, &name).await.len(),
        2,
        "one seeded and one staged version"
    );
    let misuse = store.stage(&t, &rotation, &key("sk-other")).await.err();
    assert!(
        matches!(misuse, Some(StoreError::Permanent { .. })),
        "{misuse:?}"
    );
}

#[tokio::test]
async fn a_new_token_moves_pending_to_the_new_version() {
    let (_client, store, name) = setup(Some("sk-old")).await;
    let t = target(&name, Format::Raw, false);
    store
        .stage(&t, &token(), &key("sk-a"))
        .await
        .expect("stage a");
    let b = store
        .stage(&t, &token(), &key("sk-b"))
        .await
        .expect("stage b");
    let pending = store
        .read_pending(&t)
        .await
        .expect("pending")
        .expect("some");
    assert_eq!(
        (pending.version_id.as_str(), pending.key.expose_secret()),
        (b.as_str(), "sk-b")
    );
}

#[tokio::test]
async fn connect_uses_the_default_credential_chain_and_endpoint() {
    let (_client, _store, name) = setup(Some("sk-old")).await;
    let store = AwsSecretsManager::connect(
        "aws",
        "us-east-1",
        Some(&moto_url()),
        Duration::from_secs(10),
    )
    .await;
    let current = store
        .read_current(&target(&name, Format::Raw, false))
        .await
        .expect("current");
    assert_eq!(shown(current).as_deref(), Some("sk-old"));
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_transient_error() {
    let config = sm_client().await.config().to_builder();
    let config = config
        .endpoint_url("http://127.0.0.1:1")
        .retry_config(RetryConfig::disabled())
        .build();
    let store = AwsSecretsManager::from_client("aws", Client::from_conf(config));
    let err = store
        .read_current(&target("any", Format::Raw, false))
        .await
        .err();
    assert!(matches!(err, Some(StoreError::Transient { .. })), "{err:?}");
    assert!(err.is_some_and(|e| e.is_retryable()));
}

mod cas;
