//! The moto harness: a Secrets Manager client pointed at the moto server that
//! `./scripts/test` starts, and unique secret names so tests run in parallel.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};

/// The moto endpoint from `REKEY_TEST_MOTO_URL`.
pub fn moto_url() -> String {
    std::env::var("REKEY_TEST_MOTO_URL")
        .expect("REKEY_TEST_MOTO_URL is not set: run ./scripts/test, which starts moto")
}

/// A client with static test credentials, talking to moto.
pub async fn sm_client() -> Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto_url())
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "rekey-tests",
        ))
        .build();
    Client::from_conf(config)
}

/// A secret name no other test uses.
pub fn unique_secret_name(prefix: &str) -> String {
    format!("{prefix}/{}", uuid::Uuid::now_v7())
}
