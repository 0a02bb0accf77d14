//! A policy, fully parsed and validated: what to rotate, when, where to store
//! it, how to verify it and how to retire the old key.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::fleet::SetMember;
use crate::names::{LeaseKey, PolicyName, ProviderName, SecretId, StoreName};
use crate::schedule::Schedule;

#[derive(Debug, Clone)]
pub struct Policy {
    pub name: PolicyName,
    /// Name of the `[providers.<name>]` entry.
    pub provider: ProviderName,
    /// Boxed: a parsed schedule is ~340 bytes, and a fleet's policies often have none.
    pub schedule: Option<Box<Schedule>>,
    pub max_age: Option<Duration>,
    pub key: KeyTemplate,
    pub target: Target,
    pub verify: VerifySpec,
    pub revoke: RevokeSpec,
    pub adopt: AdoptSpec,
    /// OpenAI only: the project whose service accounts carry the keys.
    pub project_id: Option<String>,
    /// Names of `[notify.<name>]` entries alerted for this policy.
    pub notify: Vec<String>,
    /// Run in order after promote; the old key is revoked only once all succeeded.
    pub on_promote: std::sync::Arc<[Hook]>,
    /// The `[[policy_set]]` this policy is a member of; `None` for a `[[policy]]`.
    pub set: Option<SetMember>,
}

impl Policy {
    /// The first schedule tick after `after`, moved by the member's spread
    /// offset: the schedule shifted as a whole, so a key made between a
    /// tick and its member's offset still falls due at that offset.
    pub fn next_tick(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let schedule = self.schedule.as_ref()?;
        let offset = self.spread_offset();
        if offset.is_zero() {
            return schedule.next_after(after);
        }
        let offset = chrono::Duration::from_std(offset).ok()?;
        Some(schedule.next_after(after - offset)? + offset)
    }

    /// Zero outside a set or without `spread`.
    pub fn spread_offset(&self) -> Duration {
        self.set.as_ref().map_or(Duration::ZERO, |m| m.offset)
    }

    /// The `policy_set` label of this policy's histograms, if it is a member.
    pub fn set_name(&self) -> Option<&str> {
        self.set.as_ref().map(|m| m.set.as_str())
    }
}

/// How new keys are named and limited at the provider.
#[derive(Debug, Clone, Default)]
pub struct KeyTemplate {
    /// Name template; always contains `{rotation}`. Also `{policy}`, `{date}`.
    pub name: String,
    pub limit: Option<f64>,
    pub limit_reset: Option<LimitReset>,
    pub include_byok_in_limit: Option<bool>,
    /// New keys expire this long after creation.
    pub expires_after: Option<Duration>,
    /// ARouter: providers the key may reach.
    pub allowed_providers: Option<Vec<String>>,
    /// ARouter: models the key may call.
    pub allowed_models: Option<Vec<String>>,
    /// LiteLLM: models the key may call.
    pub models: Option<Vec<String>>,
    /// LiteLLM: budget in USD.
    pub max_budget: Option<f64>,
    /// LiteLLM: budget period as LiteLLM writes it ("30d", "1h").
    pub budget_duration: Option<String>,
}

impl KeyTemplate {
    pub fn render_name(&self, policy: &str, rotation: &str, now: DateTime<Utc>) -> String {
        self.name
            .replace("{policy}", policy)
            .replace("{date}", &now.format("%Y%m%d").to_string())
            .replace("{rotation}", rotation)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitReset {
    Daily,
    Weekly,
    Monthly,
}

impl LimitReset {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitReset::Daily => "daily",
            LimitReset::Weekly => "weekly",
            LimitReset::Monthly => "monthly",
        }
    }
}

/// Where the key lives in a secret store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Name of the `[stores.<name>]` entry.
    pub store: StoreName,
    pub secret_id: SecretId,
    /// The secret's identity, which names its lease (see [`LeaseKey`]).
    pub lease: LeaseKey,
    pub format: Format,
    /// The field holding the key, for `json` and `env` formats.
    pub field: Option<String>,
    /// Create the secret if it does not exist (otherwise a missing secret is an error).
    pub create: bool,
}

impl Target {
    /// The lock name rekey used before leases were keyed on the secret's
    /// identity (`<store entry>/<secret_id>`). The file state store takes
    /// this lock as well, so a daemon of an older version on the same state
    /// directory is still kept out during an upgrade.
    pub fn legacy_lock_name(&self) -> String {
        format!("{}/{}", self.store, self.secret_id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The key is the whole secret string.
    Raw,
    /// One field of a JSON object; all other fields are kept.
    Json,
    /// `NAME=value` lines (systemd `EnvironmentFile=`, `docker --env-file`).
    Env,
}

#[derive(Debug, Clone)]
pub struct VerifySpec {
    pub mode: VerifyMode,
    pub timeout: Duration,
    /// Verify through this OpenAI-compatible inference URL instead of the
    /// provider's own (`{base_url}/models`, `{base_url}/chat/completions`).
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyMode {
    /// `POST /chat/completions` with `max_tokens: 1` against this model.
    Chat { model: String },
    /// `GET /key` (OpenRouter, ARouter): free, proves the key authenticates.
    KeyInfo,
    /// `GET /models` with the key: free where the provider requires auth for it.
    Models,
}

impl VerifyMode {
    pub fn kind(&self) -> VerifyKind {
        match self {
            VerifyMode::Chat { .. } => VerifyKind::Chat,
            VerifyMode::KeyInfo => VerifyKind::KeyInfo,
            VerifyMode::Models => VerifyKind::Models,
        }
    }
}

/// The names of verification modes, as written in `verify.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyKind {
    Chat,
    KeyInfo,
    Models,
}

impl VerifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyKind::Chat => "chat",
            VerifyKind::KeyInfo => "key-info",
            VerifyKind::Models => "models",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RevokeSpec {
    pub grace: Duration,
    pub mode: RevokeMode,
    /// How often the policy's consumers re-read the store (`None`: not said).
    pub consumer_refresh: Option<Duration>,
    /// Revoke only once the old key has been unused this long (`None`: no check).
    pub wait_idle: Option<Duration>,
    /// How long after the grace a busy old key (or a failing hook) is waited for.
    pub max_wait: Duration,
    /// What happens to an old key still busy after `max_wait`.
    pub on_busy: OnBusy,
}

/// `revoke.on_busy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnBusy {
    /// Revoke it anyway, and alert `revoked_busy`.
    #[default]
    Revoke,
    /// Keep the rotation in flight, re-check, alert `old_key_busy`.
    Keep,
}

impl OnBusy {
    pub fn as_str(self) -> &'static str {
        match self {
            OnBusy::Revoke => "revoke",
            OnBusy::Keep => "keep",
        }
    }
}

/// One `on_promote` entry: what tells consumers that a new key is current.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    pub action: HookAction,
    /// The longest one run may take (the process is killed, the request dropped).
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HookAction {
    /// argv run directly (no shell) with a clean environment.
    Exec(Vec<String>),
    /// A request to a URL read from a credential reference.
    Http {
        url: crate::credential::SecretRef,
        method: HookMethod,
        /// The status that counts as success; `None`: any 2xx.
        expect: Option<u16>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookMethod {
    Get,
    Post,
    Put,
    Patch,
}

impl HookMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HookMethod::Get => "GET",
            HookMethod::Post => "POST",
            HookMethod::Put => "PUT",
            HookMethod::Patch => "PATCH",
        }
    }
}

impl Hook {
    /// How logs, audit and alerts name the hook: its position and program
    /// or method (never the URL, which may carry a token).
    pub fn describe(&self, index: usize) -> String {
        match &self.action {
            HookAction::Exec(argv) => {
                let program = argv.first().map(String::as_str).unwrap_or("");
                let base = program.rsplit('/').next().unwrap_or(program);
                format!("on_promote[{index}] (exec {base})")
            }
            HookAction::Http { method, .. } => {
                format!("on_promote[{index}] (http {})", method.as_str())
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeMode {
    Delete,
    /// Disabled at the provider (Anthropic: status `inactive`).
    Disable,
    /// Anthropic: status `archived`.
    Archive,
}

impl RevokeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeMode::Delete => "delete",
            RevokeMode::Disable => "disable",
            RevokeMode::Archive => "archive",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AdoptSpec {
    /// Provider id of the pre-existing key, when it cannot be found by label.
    pub key_id: Option<String>,
}

/// Config enums print as their TOML spelling (`revoke.mode = "delete"`),
/// never as Rust names, wherever they reach a log line or a message.
macro_rules! display_as_config_word {
    ($($ty:ty),*) => {$(
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

display_as_config_word!(RevokeMode, LimitReset, VerifyKind, OnBusy);

#[cfg(test)]
mod display_tests {
    use super::*;

    #[test]
    fn config_enums_display_as_their_toml_words() {
        assert_eq!(RevokeMode::Delete.to_string(), "delete");
        assert_eq!(RevokeMode::Disable.to_string(), "disable");
        assert_eq!(LimitReset::Daily.to_string(), "daily");
        assert_eq!(VerifyKind::KeyInfo.to_string(), "key-info");
    }
}
