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
    pub policy_set: Vec<RawPolicySet>,
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
    pub usage_poll: Option<String>,
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
    pub on_promote: Option<Vec<RawHook>>,
}

/// `[[policy_set]]`: a policy's fields (the template) plus the members.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicySet {
    pub name: Option<String>,
    pub members: Option<RawMembers>,
    pub spread: Option<String>,
    pub on_remove: Option<String>,
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
    pub on_promote: Option<Vec<RawHook>>,
}

impl RawPolicySet {
    /// The template as a `[[policy]]`, with `name` given (the set's own
    /// name holds `{member}`, which no policy name may).
    pub fn template(self, name: String) -> (RawPolicy, Option<RawMembers>) {
        let policy = RawPolicy {
            name: Some(name),
            provider: self.provider,
            schedule: self.schedule,
            timezone: self.timezone,
            max_age: self.max_age,
            key: self.key,
            target: self.target,
            verify: self.verify,
            revoke: self.revoke,
            adopt: self.adopt,
            project_id: self.project_id,
            notify: self.notify,
            on_promote: self.on_promote,
        };
        (policy, self.members)
    }
}

/// `members = "file:PATH"` or `members = ["a", "b"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawMembers {
    File(String),
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for RawMembers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = RawMembers;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a \"file:PATH\" string or a list of member ids")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawMembers, E> {
                Ok(RawMembers::File(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawMembers, A::Error> {
                let mut ids = Vec::new();
                while let Some(id) = seq.next_element::<String>()? {
                    ids.push(id);
                }
                Ok(RawMembers::List(ids))
            }
        }
        d.deserialize_any(Members)
    }
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
    pub consumer_refresh: Option<String>,
    pub wait_idle: Option<String>,
    pub max_wait: Option<String>,
    pub on_busy: Option<String>,
}

/// One `on_promote` entry: `exec = [argv...]` or `http = "<secret ref>"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHook {
    pub exec: Option<Vec<String>>,
    pub http: Option<String>,
    pub method: Option<String>,
    pub timeout: Option<String>,
    pub expect: Option<i64>,
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
