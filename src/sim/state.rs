//! The simulated account: the management key, every key with its counters,
//! and who may call what. All behaviour here is synchronous and lock-scoped;
//! the HTTP layer only decodes requests and encodes these results.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::after_effect;
use super::faults::{Endpoint, Listing};
use super::record::{ApiError, KeyRecord, WORKSPACE, not_found};
use super::{Api, SimKey};

pub(crate) const PAGE_SIZE: usize = 100;
/// What one chat ping costs, in USD: enough to show up in usage counters.
const CHAT_COST: f64 = 0.00002;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CreateRequest {
    pub name: Option<String>,
    pub limit: Option<f64>,
    pub limit_reset: Option<String>,
    pub include_byok_in_limit: Option<bool>,
    pub expires_at: Option<DateTime<Utc>>,
    /// OpenRouter: the workspace the key is made in; `None` is the default one.
    pub workspace_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct UpdateRequest {
    pub name: Option<String>,
    pub disabled: Option<bool>,
    #[serde(deserialize_with = "present")]
    pub limit: Option<Option<f64>>,
    #[serde(deserialize_with = "present")]
    pub limit_reset: Option<Option<String>>,
    pub include_byok_in_limit: Option<bool>,
}

/// Tells an explicit `null` (clear the field) apart from an absent field.
fn present<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// The simulated account of one API.
pub(crate) struct State {
    pub api: Api,
    pub management_key: String,
    pub keys: Vec<KeyRecord>,
    issued: Vec<String>,
    calls: BTreeMap<String, u64>,
}

impl State {
    pub(crate) fn new(api: Api, management_key: &str) -> Self {
        let management_key = management_key.to_string();
        Self {
            api,
            management_key,
            keys: Vec::new(),
            issued: Vec::new(),
            calls: BTreeMap::new(),
        }
    }

    pub(crate) fn count_call(&mut self, endpoint: Endpoint) {
        *self.calls.entry(endpoint.as_str().to_string()).or_default() += 1;
    }

    pub(crate) fn calls(&self) -> &BTreeMap<String, u64> {
        &self.calls
    }

    pub(crate) fn issued(&self) -> &[String] {
        &self.issued
    }

    pub(crate) fn sim_keys(&self) -> Vec<SimKey> {
        self.keys.iter().map(|k| k.to_sim_key(self.api)).collect()
    }

    /// A working key made before rekey ran. OpenAI's are service accounts
    /// in a project: `Simulator::insert_key_in` seeds those (`openai::seed`).
    pub(crate) fn seed(&mut self, name: &str) -> (String, String) {
        let key = self.issue(name, Duration::ZERO, false);
        (key.hash.clone(), key.secret.clone())
    }

    /// `/keys` endpoints: only the management key gets through.
    pub(crate) fn authorize_management(&self, token: Option<&str>) -> Result<(), ApiError> {
        match token {
            None => Err(ApiError::new(401, "No auth credentials found")),
            Some(t) if t == self.management_key => Ok(()),
            Some(t) if self.authenticate_normal(t).is_ok() => Err(ApiError::new(
                403,
                "Only management keys can perform this operation",
            )),
            Some(_) => Err(ApiError::new(401, "User not found.")),
        }
    }

    /// Chat and whoami: a normal key that exists, is enabled, has propagated
    /// and has not expired.
    pub(crate) fn authenticate_normal(&self, token: &str) -> Result<usize, ApiError> {
        if token == self.management_key {
            return Err(ApiError::new(
                401,
                "Management keys cannot be used for this operation",
            ));
        }
        let unknown = || ApiError::new(401, "User not found.");
        let index = self
            .keys
            .iter()
            .position(|k| k.secret == token)
            .ok_or_else(unknown)?;
        let key = &self.keys[index];
        // A key still propagating looks exactly like an unknown one.
        if key.never_works || Instant::now() < key.ready_at {
            return Err(unknown());
        }
        if key.disabled {
            return Err(ApiError::new(401, "Key is disabled"));
        }
        if key.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(ApiError::new(401, "Key has expired"));
        }
        Ok(index)
    }

    /// Returns the key object and its secret, shown only this once.
    pub(crate) fn create(
        &mut self,
        req: CreateRequest,
        propagation: Duration,
        reject: bool,
    ) -> Result<(Value, String), ApiError> {
        let name = req.name.filter(|n| !n.trim().is_empty());
        let name = name.ok_or_else(|| ApiError::new(400, "name is required"))?;
        let limit_reset = req.limit_reset.map(check_limit_reset).transpose()?;
        let workspace = req.workspace_id.map(check_workspace).transpose()?;
        let key = self.issue(&name, propagation, reject);
        if let Some(workspace) = workspace {
            key.extra.insert(WORKSPACE.into(), Value::String(workspace));
        }
        key.limit = req.limit;
        key.limit_reset = limit_reset;
        key.include_byok_in_limit = req.include_byok_in_limit.unwrap_or(false);
        key.expires_at = req.expires_at;
        Ok((key.to_json(), key.secret.clone()))
    }

    /// One page of one workspace's keys (`None`: the default workspace's)
    /// in creation order; disabled keys only when asked for. `listing` may
    /// spoil it (`after_effect`).
    pub(crate) fn list(
        &self,
        (offset, include_disabled): (usize, bool),
        workspace: Option<&str>,
        listing: Listing,
    ) -> Value {
        let keys = (self.keys.iter())
            .filter(|k| include_disabled || !k.disabled)
            .filter(|k| k.workspace() == workspace)
            .collect();
        let phantoms = listing.phantoms.map(|n| after_effect::phantom(self.api, n));
        let page = after_effect::page(listing.answer, keys, |_| offset, PAGE_SIZE, phantoms);
        json!({ "data": page.iter().map(KeyRecord::to_json).collect::<Vec<_>>() })
    }

    pub(crate) fn get(&self, hash: &str) -> Result<Value, ApiError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.hash == hash)
            .ok_or_else(not_found)?;
        Ok(json!({ "data": key.to_json() }))
    }

    pub(crate) fn update(&mut self, hash: &str, req: UpdateRequest) -> Result<Value, ApiError> {
        let limit_reset = req
            .limit_reset
            .map(|r| r.map(check_limit_reset).transpose());
        let limit_reset = limit_reset.transpose()?;
        let key = self
            .keys
            .iter_mut()
            .find(|k| k.hash == hash)
            .ok_or_else(not_found)?;
        if let Some(name) = req.name {
            key.name = name;
        }
        if let Some(limit) = req.limit {
            key.limit = limit;
        }
        if let Some(limit_reset) = limit_reset {
            key.limit_reset = limit_reset;
        }
        key.disabled = req.disabled.unwrap_or(key.disabled);
        key.include_byok_in_limit = req
            .include_byok_in_limit
            .unwrap_or(key.include_byok_in_limit);
        key.updated_at = Some(Utc::now());
        Ok(json!({ "data": key.to_json() }))
    }

    pub(crate) fn has(&self, hash: &str) -> bool {
        self.keys.iter().any(|k| k.hash == hash)
    }

    pub(crate) fn delete(&mut self, hash: &str) -> Result<Value, ApiError> {
        let index = self
            .keys
            .iter()
            .position(|k| k.hash == hash)
            .ok_or_else(not_found)?;
        self.keys.remove(index);
        Ok(json!({ "deleted": true }))
    }

    pub(crate) fn whoami(&self, token: &str) -> Result<Value, ApiError> {
        let key = &self.keys[self.authenticate_normal(token)?];
        Ok(json!({ "data": {
            "label": key.label,
            "limit": key.limit,
            "limit_remaining": key.limit_remaining(),
            "usage": key.usage,
            "usage_daily": key.usage,
            "is_management_key": false,
            "expires_at": key.expires_at,
        }}))
    }

    /// Charges one ping to the key; 402 once its limit is spent.
    pub(crate) fn charge_chat(&mut self, token: &str) -> Result<(), ApiError> {
        let index = self.authenticate_normal(token)?;
        let key = &mut self.keys[index];
        if key.limit_remaining().is_some_and(|left| left <= 0.0) {
            return Err(ApiError::new(
                402,
                "Insufficient credits for this key's limit",
            ));
        }
        key.usage += CHAT_COST;
        self.note_use(index);
        Ok(())
    }

    /// Records that the key at `index` was just used: the last-use time
    /// the APIs that have one show (ARouter's guide, OpenAI, LiteLLM).
    pub(crate) fn note_use(&mut self, index: usize) {
        if let Some(key) = self.keys.get_mut(index) {
            key.last_used_at = Some(Utc::now());
        }
    }

    /// A new key with a secret in this API's format, recorded as issued.
    pub(crate) fn issue(
        &mut self,
        name: &str,
        propagation: Duration,
        reject: bool,
    ) -> &mut KeyRecord {
        let secret = self.api.new_secret();
        let now = Utc::now();
        self.issued.push(secret.clone());
        let hash = self.api.key_hash(&secret);
        self.keys.push(KeyRecord {
            created_at: now,
            ready_at: Instant::now() + propagation,
            never_works: reject,
            ..KeyRecord::fresh(name, hash, secret)
        });
        let last = self.keys.len() - 1;
        &mut self.keys[last]
    }
}

fn check_limit_reset(value: String) -> Result<String, ApiError> {
    match value.as_str() {
        "daily" | "weekly" | "monthly" => Ok(value),
        _ => Err(ApiError::new(
            400,
            "limit_reset must be daily, weekly or monthly",
        )),
    }
}

fn check_workspace(value: String) -> Result<String, ApiError> {
    match value.trim().is_empty() {
        true => Err(ApiError::new(400, "workspace_id must not be empty")),
        false => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(state: &mut State, hash: &str, body: &str) -> Value {
        let req: UpdateRequest = serde_json::from_str(body).unwrap();
        state.update(hash, req).unwrap()["data"].clone()
    }

    #[test]
    fn update_clears_a_limit_only_when_it_is_explicitly_null() {
        let mut state = State::new(Api::OpenRouter, "mgmt");
        let (hash, _) = state.seed("k");
        assert_eq!(
            update(&mut state, &hash, r#"{"limit": 3.0}"#)["limit"],
            json!(3.0)
        );
        assert_eq!(
            update(&mut state, &hash, r#"{"name": "n"}"#)["limit"],
            json!(3.0)
        );
        assert_eq!(
            update(&mut state, &hash, r#"{"limit": null}"#)["limit"],
            Value::Null
        );
    }

    #[test]
    fn a_key_still_propagating_or_rejected_does_not_authenticate() {
        let mut state = State::new(Api::OpenRouter, "mgmt");
        let req = || CreateRequest {
            name: Some("k".into()),
            ..CreateRequest::default()
        };
        let (_, slow) = state.create(req(), Duration::from_secs(60), false).unwrap();
        let (_, doomed) = state.create(req(), Duration::ZERO, true).unwrap();
        let (_, fine) = state.create(req(), Duration::ZERO, false).unwrap();
        assert_eq!(state.authenticate_normal(&slow).unwrap_err().status, 401);
        assert_eq!(state.authenticate_normal(&doomed).unwrap_err().status, 401);
        assert_eq!(state.authenticate_normal(&fine), Ok(2));
    }

    #[test]
    fn a_limit_reset_outside_the_three_periods_is_refused() {
        let mut state = State::new(Api::OpenRouter, "mgmt");
        let (hash, _) = state.seed("k");
        let req: UpdateRequest = serde_json::from_str(r#"{"limit_reset": "hourly"}"#).unwrap();
        assert_eq!(state.update(&hash, req).unwrap_err().status, 400);
    }
}
