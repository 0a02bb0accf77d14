//! Typed, validated configuration. Loading and validation live in `load`;
//! the raw serde shape (unknown fields refused) in `raw`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::names::{ProviderName, StoreName};
use crate::policy::{Policy, RevokeMode, VerifyKind};

pub mod bounds;

pub use crate::credential::SecretRef;
mod document;
pub mod load;
mod origin;
mod problem;
pub mod raw;
pub mod secret_ref;
mod strict;
mod toml_tree;
mod validate;
mod warnings;

pub use load::load_file;
pub use problem::{ConfigError, ConfigProblem};
pub use warnings::warnings;

#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub providers: BTreeMap<ProviderName, ProviderConfig>,
    pub stores: BTreeMap<StoreName, StoreConfig>,
    pub policies: Vec<Policy>,
    /// `[notify.<name>]` webhooks; policies pick theirs by name.
    pub notify: BTreeMap<String, NotifierConfig>,
    /// The `members = "file:..."` files of the policy sets: the reload
    /// watcher watches them with the config file.
    pub member_files: Vec<PathBuf>,
}

impl Config {
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub state: StateLocation,
    pub admin_listen: SocketAddr,
    pub max_concurrent_rotations: usize,
    /// Delay after a failed rotation before retrying: doubles per consecutive
    /// failure from `min` up to `max`.
    pub failure_backoff: Backoff,
    /// Overdue policies found at start are spread over this window.
    pub catch_up_jitter: Duration,
    /// Append-only JSON-lines audit log; `None`: no audit log.
    pub audit_log: Option<PathBuf>,
    /// Bearer token for `POST /v1/policies/{name}/rotate`; `None`: endpoint off.
    pub admin_token: Option<SecretRef>,
    /// After SIGTERM, running rotations get this long to reach a step boundary.
    pub shutdown_timeout: Duration,
    /// How long a rotation whose create answered ambiguously keeps listing
    /// the provider for the key it may have made before it fails as
    /// `create_unconfirmed` (and the next pass sweeps again).
    pub sweep_timeout: Duration,
    /// How often usage is read: a busy old key (`revoke.wait_idle`) is
    /// re-checked at least this often.
    pub usage_poll: Duration,
    /// `[daemon.dynamodb]` as written, also with a file state (it then
    /// only says where `rekey state migrate` finds the table).
    pub dynamodb: Option<DynamoTable>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    File(PathBuf),
    /// `dynamodb:TABLE` with `[daemon.dynamodb]`.
    DynamoDb(DynamoConfig),
}

/// `[daemon.dynamodb]`: how to reach the state table, without its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoTable {
    pub region: String,
    /// Not AWS's own endpoint (moto in tests).
    pub endpoint_url: Option<String>,
    /// Create the table (on-demand billing) when it is missing.
    pub create_table: bool,
    /// How long a lease lasts unless renewed (renewed every third of it).
    pub lease: Duration,
}

impl DynamoTable {
    /// These settings for the table named `table`.
    pub fn for_table(&self, table: &str) -> DynamoConfig {
        DynamoConfig {
            table: table.to_string(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            create_table: self.create_table,
            lease: self.lease,
        }
    }
}

/// DynamoDB's rule for table names: 3-255 characters of `A-Z a-z 0-9 _ . -`.
pub fn is_table_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    (3..=255).contains(&name.len()) && name.chars().all(allowed)
}

/// A DynamoDB state table: `state = "dynamodb:TABLE"` + `[daemon.dynamodb]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoConfig {
    /// 3-255 characters of `A-Z a-z 0-9 _ . -` (checked).
    pub table: String,
    pub region: String,
    pub endpoint_url: Option<String>,
    pub create_table: bool,
    pub lease: Duration,
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: ProviderName,
    pub kind: ProviderKind,
    /// Without a trailing slash. Defaults per kind (`ProviderKind::default_base_url`).
    pub base_url: String,
    /// The management credential: OpenRouter/ARouter management key, OpenAI
    /// admin key, LiteLLM master key, Anthropic Admin API key.
    pub management_key: SecretRef,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// ARouter only: which of its documented API shapes to speak.
    pub api: ApiShape,
    /// ARouter only: overrides the shape's key-management path (e.g. `/api/v1/keys`).
    pub keys_path: Option<String>,
    /// OpenRouter only: the workspace whose keys are listed and created;
    /// `None` is the account's default workspace.
    pub workspace_id: Option<String>,
    /// `rate_limit` and `max_concurrent`: how management calls are paced.
    pub limits: ProviderLimits,
}

/// How fast and how many at once rekey makes management calls to one
/// provider entry (`providers::limited`). The default is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderLimits {
    /// `rate_limit = "R/s"` or `"R/m"`.
    pub rate: Option<Rate>,
    /// `max_concurrent = N`: calls in flight at once.
    pub max_concurrent: Option<u32>,
}

/// `count` calls per `per` (one second or one minute), burst `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    /// The time one call uses of the budget.
    pub fn interval(&self) -> Duration {
        self.per / self.count.max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    OpenRouter,
    ARouter,
    OpenAi,
    LiteLlm,
    Anthropic,
}

/// ARouter's documents disagree (PROVIDERS.md): the API reference uses
/// `/api/v1/keys`, `hash` ids and `limit`; the rotation guide `/v1/keys`,
/// `id` and `spending_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiShape {
    #[default]
    Reference,
    Guide,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 5] = [
        ProviderKind::OpenRouter,
        ProviderKind::ARouter,
        ProviderKind::OpenAi,
        ProviderKind::LiteLlm,
        ProviderKind::Anthropic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenRouter => "openrouter",
            ProviderKind::ARouter => "arouter",
            ProviderKind::OpenAi => "openai",
            ProviderKind::LiteLlm => "litellm",
            ProviderKind::Anthropic => "anthropic",
        }
    }

    pub fn parse(name: &str) -> Option<ProviderKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// `None`: there is no public default (LiteLLM is self-hosted).
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenRouter => Some("https://openrouter.ai/api/v1"),
            ProviderKind::ARouter => Some("https://api.arouter.ai"),
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::LiteLlm => None,
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
        }
    }

    /// Assisted rotation: the provider cannot mint keys; a person places the
    /// new key as the store's pending value and rekey verifies, promotes and retires.
    pub fn is_assisted(self) -> bool {
        self == ProviderKind::Anthropic
    }

    /// The `key = {...}` parameters this provider understands (besides `name`).
    pub fn key_params(self) -> &'static [&'static str] {
        match self {
            ProviderKind::OpenRouter => &[
                "limit",
                "limit_reset",
                "include_byok_in_limit",
                "expires_after",
            ],
            ProviderKind::ARouter => &[
                "limit",
                "limit_reset",
                "expires_after",
                "allowed_providers",
                "allowed_models",
            ],
            ProviderKind::LiteLlm => &["models", "max_budget", "budget_duration"],
            ProviderKind::OpenAi | ProviderKind::Anthropic => &[],
        }
    }

    pub fn revoke_modes(self) -> &'static [RevokeMode] {
        match self {
            ProviderKind::OpenRouter | ProviderKind::ARouter => {
                &[RevokeMode::Delete, RevokeMode::Disable]
            }
            ProviderKind::OpenAi | ProviderKind::LiteLlm => &[RevokeMode::Delete],
            ProviderKind::Anthropic => &[RevokeMode::Disable, RevokeMode::Archive],
        }
    }

    pub fn default_revoke_mode(self) -> RevokeMode {
        self.revoke_modes()[0]
    }

    /// Verification modes, the default first. OpenRouter's `/models` needs no
    /// key, so it proves nothing there and is not offered.
    pub fn verify_modes(self) -> &'static [VerifyKind] {
        match self {
            ProviderKind::OpenRouter => &[VerifyKind::KeyInfo, VerifyKind::Chat],
            ProviderKind::ARouter => &[VerifyKind::KeyInfo, VerifyKind::Models, VerifyKind::Chat],
            ProviderKind::OpenAi | ProviderKind::LiteLlm => &[VerifyKind::Models, VerifyKind::Chat],
            ProviderKind::Anthropic => &[VerifyKind::Models],
        }
    }
}

/// A `[notify.<name>]` webhook.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    pub name: String,
    pub format: NotifyFormat,
    pub url: SecretRef,
    pub timeout: Duration,
    /// Attempts after the first one, with exponential backoff.
    pub retries: u32,
    /// Which events this notifier receives.
    pub on: Vec<NotifyEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    /// `{"event": ..., "policy": ..., ...}`
    Json,
    /// `{"text": "..."}` (Slack incoming webhooks and compatible chat tools).
    Slack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotifyEvent {
    Failure,
    Rollback,
    RevokeFailing,
    Overdue,
    ConfigRejected,
    JournalCorrupt,
    Success,
    HookFailed,
    RevokedBusy,
    OldKeyBusy,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 10] = [
        NotifyEvent::Failure,
        NotifyEvent::Rollback,
        NotifyEvent::RevokeFailing,
        NotifyEvent::Overdue,
        NotifyEvent::ConfigRejected,
        NotifyEvent::JournalCorrupt,
        NotifyEvent::Success,
        NotifyEvent::HookFailed,
        NotifyEvent::RevokedBusy,
        NotifyEvent::OldKeyBusy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Failure => "failure",
            NotifyEvent::Rollback => "rollback",
            NotifyEvent::RevokeFailing => "revoke_failing",
            NotifyEvent::Overdue => "overdue",
            NotifyEvent::ConfigRejected => "config_rejected",
            NotifyEvent::JournalCorrupt => "journal_corrupt",
            NotifyEvent::Success => "success",
            NotifyEvent::HookFailed => "hook_failed",
            NotifyEvent::RevokedBusy => "revoked_busy",
            NotifyEvent::OldKeyBusy => "old_key_busy",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub name: StoreName,
    pub kind: StoreKind,
    /// The longest one call to the store may take (AWS: the SDK's operation
    /// timeout, retries included). A side effect starts only while the
    /// secret's lease outlives it.
    pub request_timeout: Duration,
}

/// `stores.<name>.request_timeout` when not set.
pub const DEFAULT_STORE_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What one call to a file store is allowed for (local files: not set in
/// the config).
pub const FILE_STORE_CALL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    AwsSecretsManager {
        region: String,
        endpoint_url: Option<String>,
    },
    File {
        dir: PathBuf,
    },
}

#[cfg(test)]
mod fuzz_tests;
