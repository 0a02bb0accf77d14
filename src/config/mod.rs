//! Typed, validated configuration. Loading and validation live in `load`;
//! the raw serde shape (unknown fields refused) in `raw`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::policy::Policy;

pub mod load;
pub mod raw;
mod validate;

pub use load::{ConfigError, ConfigProblem, load_file};

#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub stores: BTreeMap<String, StoreConfig>,
    pub policies: Vec<Policy>,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub management_key: SecretRef,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    OpenRouter,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenRouter => "openrouter",
        }
    }
}

/// Where a credential is read from. Never a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
    AwsSm {
        secret_id: String,
        field: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub name: String,
    pub kind: StoreKind,
}

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
