//! One key of one simulated API (`KeyRecord`) and the error every API
//! renders in its own shape (`ApiError`): the records `state`, the
//! after-effects and every API's HTTP surface share, so they depend on
//! nothing but the simulator's `Api`.

use std::time::Instant;

use chrono::{DateTime, Utc};
use rand::Rng;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::{Api, SimKey};

/// An API error: HTTP status plus a message (and `Retry-After` for 429s).
/// Each API module renders it in its provider's error shape.
#[derive(Debug, PartialEq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub message: String,
    /// Provider-specific error code/type (OpenAI `code`, Anthropic `error.type`).
    pub code: Option<String>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            code: None,
            retry_after_secs: None,
        }
    }

    pub(crate) fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
}

/// One key of one API. The OpenRouter fields are shared by the
/// OpenRouter-like APIs; anything else an API needs lives in `extra`.
#[derive(Clone)]
pub(crate) struct KeyRecord {
    pub hash: String,
    pub name: String,
    pub secret: String,
    pub label: String,
    pub disabled: bool,
    pub limit: Option<f64>,
    pub limit_reset: Option<String>,
    pub include_byok_in_limit: bool,
    /// USD spent through the key (chat pings); every period's counter.
    pub usage: f64,
    /// The last call the key authenticated (`State::note_use`).
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Answers 401 on chat/whoami until then (propagation delay).
    pub ready_at: Instant,
    /// Created under `reject_new_keys`: never starts working.
    pub never_works: bool,
    /// API-specific fields (OpenAI project and service account, LiteLLM
    /// models and budget, ARouter allow-lists, Anthropic status...).
    pub extra: serde_json::Map<String, Value>,
}

impl KeyRecord {
    /// An enabled key with no limits, usage or API-specific fields, made now.
    pub(crate) fn fresh(name: &str, hash: String, secret: String) -> KeyRecord {
        KeyRecord {
            hash,
            name: name.to_string(),
            label: crate::secret::redacted_label(&SecretString::from(secret.clone())),
            secret,
            disabled: false,
            limit: None,
            limit_reset: None,
            include_byok_in_limit: false,
            usage: 0.0,
            last_used_at: None,
            created_at: Utc::now(),
            updated_at: None,
            expires_at: None,
            ready_at: Instant::now(),
            never_works: false,
            extra: serde_json::Map::new(),
        }
    }

    /// The OpenRouter workspace the key was made in; `None` is the default one.
    pub(crate) fn workspace(&self) -> Option<&str> {
        self.extra.get(WORKSPACE).and_then(Value::as_str)
    }

    pub(crate) fn limit_remaining(&self) -> Option<f64> {
        self.limit.map(|limit| (limit - self.usage).max(0.0))
    }

    /// The OpenRouter key object; the secret is never part of it.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "hash": self.hash,
            "name": self.name,
            "label": self.label,
            "disabled": self.disabled,
            "limit": self.limit,
            "limit_remaining": self.limit_remaining(),
            "limit_reset": self.limit_reset,
            "include_byok_in_limit": self.include_byok_in_limit,
            "usage": self.usage,
            "usage_daily": self.usage,
            "usage_weekly": self.usage,
            "usage_monthly": self.usage,
            "byok_usage": 0.0,
            "byok_usage_daily": 0.0,
            "byok_usage_weekly": 0.0,
            "byok_usage_monthly": 0.0,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "expires_at": self.expires_at,
        })
    }

    pub(super) fn to_sim_key(&self, api: Api) -> SimKey {
        SimKey {
            api: api.as_str(),
            extra: self.extra.clone(),
            hash: self.hash.clone(),
            name: self.name.clone(),
            label: self.label.clone(),
            disabled: self.disabled,
            secret: self.secret.clone(),
            usage: self.usage,
            last_used_at: self.last_used_at,
            created_at: self.created_at,
        }
    }
}

/// Where a key's OpenRouter workspace is kept in `KeyRecord::extra`.
pub(crate) const WORKSPACE: &str = "workspace_id";

pub(crate) fn not_found() -> ApiError {
    ApiError::new(404, "Key not found")
}

pub(crate) fn random_hex() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
