//! The config file as written: serde structs that refuse unknown fields.
//!
//! Almost every field is optional and every value that needs parsing
//! (durations, kinds, secret references, cron) stays a string here, so serde
//! only stops on unknown fields and wrong types; everything else is checked by
//! `validate`, which reports all problems at once with their field paths.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub daemon: Option<RawDaemon>,
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub stores: BTreeMap<String, RawStore>,
    #[serde(default)]
    pub policy: Vec<RawPolicy>,
    #[serde(default)]
    pub notify: BTreeMap<String, RawNotify>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub state: Option<String>,
    pub admin_listen: Option<String>,
    pub max_concurrent_rotations: Option<i64>,
    pub failure_backoff: Option<RawBackoff>,
    pub catch_up_jitter: Option<String>,
    pub audit_log: Option<String>,
    pub admin_token: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub sweep_timeout: Option<String>,
    pub dynamodb: Option<RawDynamo>,
}

/// `[daemon.dynamodb]`: where the state table is (with `state =
/// "dynamodb:TABLE"`, or for `rekey state migrate` with a file state).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDynamo {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub create_table: Option<bool>,
    pub lease: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackoff {
    pub min: Option<String>,
    pub max: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub kind: Option<String>,
    pub management_key: Option<String>,
    pub base_url: Option<String>,
    pub request_timeout: Option<String>,
    pub api: Option<String>,
    pub keys_path: Option<String>,
    pub workspace_id: Option<String>,
    pub rate_limit: Option<String>,
    pub max_concurrent: Option<i64>,
}

/// Fields of every store kind; `validate` refuses the ones the kind does not use.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub kind: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub request_timeout: Option<String>,
    pub dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub name: Option<String>,
    pub provider: Option<String>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub max_age: Option<String>,
    pub key: Option<RawKey>,
    pub target: Option<RawTarget>,
    pub verify: Option<RawVerify>,
    pub revoke: Option<RawRevoke>,
    pub adopt: Option<RawAdopt>,
    pub project_id: Option<String>,
    pub notify: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub name: Option<String>,
    pub limit: Option<f64>,
    pub limit_reset: Option<String>,
    pub include_byok_in_limit: Option<bool>,
    pub expires_after: Option<String>,
    pub allowed_providers: Option<Vec<String>>,
    pub allowed_models: Option<Vec<String>>,
    pub models: Option<Vec<String>>,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub store: Option<String>,
    pub secret_id: Option<String>,
    pub format: Option<String>,
    pub field: Option<String>,
    pub create: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    pub mode: Option<String>,
    pub model: Option<String>,
    pub timeout: Option<String>,
    pub base_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRevoke {
    pub grace: Option<String>,
    pub mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdopt {
    pub key_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub format: Option<String>,
    pub url: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<i64>,
    pub on: Option<Vec<String>>,
}
