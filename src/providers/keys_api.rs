//! The OpenRouter-style key-management API that OpenRouter and ARouter
//! share: a keys collection answering `{ "data": Key }` envelopes, the
//! secret shown once at top-level `key` or at `data.key`, offset paging with
//! `include_disabled=true`, PATCH `{disabled: true}` and DELETE with 404
//! meaning already gone. Each API says where the collection lives and which
//! field holds a key's id; its own create body and verification stay with it.

use std::collections::HashSet;

use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::SecretString;
use secrecy::zeroize::Zeroize;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::client::{Client, encode};
use super::http::{Caller, Quote};
use super::usage;
use super::{CreatedKey, KeyInfo, KeyUsage, ProviderError, Spend};

/// List pages hold this many keys; a shorter page is the last one.
const PAGE_SIZE: usize = 100;
/// Stops paging through a provider that never returns a short page.
const MAX_PAGES: usize = 1_000;

/// Which field of a key object is the id used in paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdField {
    /// OpenRouter and ARouter's API reference: `hash`.
    Hash,
    /// ARouter's rotation guide: `id` (`key_abc123`).
    Id,
}

impl IdField {
    fn missing(self) -> &'static str {
        match self {
            IdField::Hash => "missing data.hash",
            IdField::Id => "missing data.id",
        }
    }
}

pub(crate) struct KeysApi {
    client: Client,
    management_key: SecretString,
    /// The keys collection, relative to the base URL (`/keys`, `/api/v1/keys`).
    keys_path: String,
    id_field: IdField,
}

impl KeysApi {
    pub(crate) fn new(
        client: Client,
        management_key: SecretString,
        keys_path: &str,
        id_field: IdField,
    ) -> Self {
        Self {
            client,
            management_key,
            keys_path: keys_path.trim_end_matches('/').to_string(),
            id_field,
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    fn management(&self, method: Method, suffix: &str) -> RequestBuilder {
        let path = format!("{}{suffix}", self.keys_path);
        self.client.request(method, &path, &self.management_key)
    }

    /// POSTs `body` to the collection; the answer is read straight into a
    /// `SecretString` and never quoted, whatever goes wrong.
    pub(crate) async fn create(
        &self,
        requested_name: &str,
        body: &impl Serialize,
    ) -> Result<CreatedKey, ProviderError> {
        let op = "create key";
        let request = self.management(Method::POST, "").json(body);
        let response = self.client.send(op, request).await?;
        let (status, mut raw) = self
            .client
            .success_body(op, Caller::Management, Quote::Nothing, response)
            .await?;
        // Nothing of serde's error is kept here: it could quote the key.
        let parsed = serde_json::from_slice::<CreatedEnvelope>(&raw)
            .map_err(|_| self.client.malformed(op, status, "not the expected JSON"));
        raw.zeroize();
        let created = parsed?.into_created(requested_name, self.id_field);
        created.map_err(|what| self.client.malformed(op, status, what))
    }

    /// Every key, disabled ones included, across all pages. A provider that
    /// ignores `offset` and answers the same keys again ends the paging too.
    pub(crate) async fn list(&self) -> Result<Vec<KeyInfo>, ProviderError> {
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        let mut offset = 0;
        for _ in 0..MAX_PAGES {
            let page = self.list_page(offset).await?;
            offset += page.len();
            let full = page.len() >= PAGE_SIZE;
            let before = keys.len();
            keys.extend(page.into_iter().filter(|k| seen.insert(k.id.clone())));
            if !full || keys.len() == before {
                return Ok(keys);
            }
        }
        Err(self
            .client
            .malformed("list keys", 200, "paging never ended"))
    }

    async fn list_page(&self, offset: usize) -> Result<Vec<KeyInfo>, ProviderError> {
        let op = "list keys";
        let query = format!("?offset={offset}&include_disabled=true");
        let response = (self.client)
            .send(op, self.management(Method::GET, &query))
            .await?;
        let (status, body) = self
            .client
            .success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await?;
        let parsed: DataEnvelope<Vec<KeyObject>> = self.client.parse(op, status, &body)?;
        let keys = parsed
            .data
            .ok_or_else(|| self.client.malformed(op, status, "missing data"))?;
        let keys = (keys.into_iter())
            .map(|k| k.into_info(self.id_field))
            .collect::<Result<Vec<_>, _>>();
        keys.map_err(|what| self.client.malformed(op, status, what))
    }

    /// `Ok(None)` when the provider says 404.
    pub(crate) async fn get(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        self.key_call(
            "get key",
            self.management(Method::GET, &format!("/{}", encode(id))),
        )
        .await
    }

    pub(crate) async fn disable(&self, id: &str) -> Result<(), ProviderError> {
        let request = self
            .management(Method::PATCH, &format!("/{}", encode(id)))
            .json(&json!({ "disabled": true }));
        // A key that is already gone cannot be used either: the goal is met.
        self.key_call("disable key", request).await?;
        Ok(())
    }

    /// Any success answer will do (`{deleted: true}`, `{data: {deleted: true}}`,
    /// 204); 404 means already gone.
    pub(crate) async fn delete(&self, id: &str) -> Result<(), ProviderError> {
        let op = "delete key";
        let request = self.management(Method::DELETE, &format!("/{}", encode(id)));
        let response = self.client.send(op, request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        (self.client)
            .success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await?;
        Ok(())
    }

    /// A management call whose answer is `{ "data": Key }`; `None` on 404.
    async fn key_call(
        &self,
        op: &str,
        request: RequestBuilder,
    ) -> Result<Option<KeyInfo>, ProviderError> {
        let response = self.client.send(op, request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let (status, body) = self
            .client
            .success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await?;
        let parsed: DataEnvelope<KeyObject> = self.client.parse(op, status, &body)?;
        let key = parsed
            .data
            .ok_or_else(|| self.client.malformed(op, status, "missing data"))?;
        key.into_info(self.id_field)
            .map(Some)
            .map_err(|what| self.client.malformed(op, status, what))
    }
}

#[derive(Deserialize)]
struct DataEnvelope<T> {
    data: Option<T>,
}

#[derive(Deserialize)]
struct KeyObject {
    hash: Option<String>,
    id: Option<String>,
    name: Option<String>,
    label: Option<String>,
    disabled: Option<bool>,
    created_at: Option<String>,
    #[serde(flatten)]
    usage: UsageFields,
}

/// A key object's usage fields, read leniently (`usage::amount`): spend as
/// OpenRouter and ARouter's SDK give it (`usage`, `usage_daily/weekly/monthly`
/// numbers, `byok_usage*`), or as an ARouter docs page does (`usage` an
/// object of periods), and `last_used_at` where given.
#[derive(Deserialize)]
struct UsageFields {
    usage: Option<Value>,
    usage_daily: Option<Value>,
    usage_weekly: Option<Value>,
    usage_monthly: Option<Value>,
    byok_usage: Option<Value>,
    byok_usage_daily: Option<Value>,
    byok_usage_weekly: Option<Value>,
    byok_usage_monthly: Option<Value>,
    #[serde(default, deserialize_with = "usage::present")]
    last_used_at: Option<Value>,
}

impl UsageFields {
    fn into_usage(self) -> Option<KeyUsage> {
        let period = |name: &str| self.usage.as_ref().and_then(|u| u.get(name));
        // The object form names its periods; either form may stand beside
        // top-level `usage_*` numbers, which count when the object has none.
        let spend = Spend {
            total: usage::amount(self.usage.as_ref())
                .or_else(|| usage::amount(period("total")))
                .or_else(|| usage::amount(period("total_usage"))),
            daily: usage::amount(period("daily")).or(usage::amount(self.usage_daily.as_ref())),
            weekly: usage::amount(period("weekly")).or(usage::amount(self.usage_weekly.as_ref())),
            monthly: usage::amount(period("monthly"))
                .or(usage::amount(self.usage_monthly.as_ref())),
        };
        let byok = Spend {
            total: usage::amount(self.byok_usage.as_ref()),
            daily: usage::amount(self.byok_usage_daily.as_ref()),
            weekly: usage::amount(self.byok_usage_weekly.as_ref()),
            monthly: usage::amount(self.byok_usage_monthly.as_ref()),
        };
        KeyUsage::from_parts(spend, byok, self.last_used_at.as_ref())
    }
}

#[cfg(test)]
mod usage_tests {
    use super::*;
    use crate::providers::UsageSignal;

    fn usage_of(body: &str) -> Option<KeyUsage> {
        let key: KeyObject = serde_json::from_str(body).unwrap();
        key.into_info(IdField::Hash).unwrap().usage
    }

    #[test]
    fn openrouter_counters_and_byok_are_read_as_spend() {
        let usage = usage_of(
            r#"{"hash":"h","usage":25.5,"usage_daily":1.5,"usage_weekly":2.5,"usage_monthly":3.5,
                "byok_usage":17.38,"byok_usage_daily":0.0}"#,
        )
        .unwrap();
        assert_eq!(usage.signal, UsageSignal::Spend);
        let spend = usage.spend.unwrap();
        assert_eq!(
            (spend.total, spend.daily, spend.weekly, spend.monthly),
            (Some(25.5), Some(1.5), Some(2.5), Some(3.5))
        );
        let byok = usage.byok.unwrap();
        assert_eq!(
            (byok.total, byok.daily, byok.weekly),
            (Some(17.38), Some(0.0), None)
        );
        assert_eq!(usage.last_used_at, None);
    }

    #[test]
    fn an_arouter_usage_object_with_last_use_is_read_like_the_numbers() {
        let usage = usage_of(
            r#"{"hash":"h","usage":{"total":4.0,"daily":1.0,"weekly":2.0,"monthly":3.0},
                "last_used_at":"2026-11-30T21:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(usage.signal, UsageSignal::SpendAndLastUse);
        let spend = usage.spend.unwrap();
        assert_eq!(
            (spend.total, spend.daily, spend.weekly, spend.monthly),
            (Some(4.0), Some(1.0), Some(2.0), Some(3.0))
        );
        assert!(usage.last_used_at.is_some());
        let never = usage_of(r#"{"hash":"h","usage":0,"last_used_at":null}"#).unwrap();
        assert_eq!(
            (never.signal, never.last_used_at),
            (UsageSignal::SpendAndLastUse, None)
        );
    }

    #[test]
    fn odd_usage_values_are_left_out_and_never_fail_the_key() {
        let odd = usage_of(r#"{"hash":"h","usage":"lots","usage_daily":-1,"byok_usage":[1]}"#);
        assert_eq!(odd, None, "nothing usable: no usage, but the key is read");
        assert_eq!(usage_of(r#"{"hash":"h"}"#), None);
    }
}

impl KeyObject {
    fn into_info(self, id_field: IdField) -> Result<KeyInfo, &'static str> {
        let id = match id_field {
            IdField::Hash => self.hash,
            IdField::Id => self.id,
        };
        Ok(KeyInfo {
            id: id.ok_or(id_field.missing())?,
            name: self.name.unwrap_or_default(),
            label: self.label.unwrap_or_default(),
            disabled: self.disabled.unwrap_or(false),
            created_at: self.created_at.as_deref().and_then(super::http::parse_time),
            usage: self.usage.into_usage(),
        })
    }
}

/// The create answer. The secret goes straight into a `SecretString`
/// from wherever the provider put it: top-level `key` or `data.key`.
#[derive(Deserialize)]
struct CreatedEnvelope {
    data: Option<CreatedData>,
    key: Option<SecretString>,
}

#[derive(Deserialize)]
struct CreatedData {
    hash: Option<String>,
    id: Option<String>,
    name: Option<String>,
    label: Option<String>,
    key: Option<SecretString>,
}

impl CreatedEnvelope {
    fn into_created(
        self,
        requested_name: &str,
        id_field: IdField,
    ) -> Result<CreatedKey, &'static str> {
        let data = self.data.ok_or("missing data")?;
        let secret = self
            .key
            .or(data.key)
            .ok_or("missing key (neither key nor data.key)")?;
        let id = match id_field {
            IdField::Hash => data.hash,
            IdField::Id => data.id,
        };
        let id = id.ok_or(id_field.missing())?;
        let label = data.label.filter(|l| !l.is_empty());
        let label = label.unwrap_or_else(|| crate::secret::redacted_label(&secret));
        let name = data.name.unwrap_or_else(|| requested_name.to_string());
        Ok(CreatedKey {
            id,
            name,
            label,
            secret,
        })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn created(body: &str, id_field: IdField) -> Result<CreatedKey, &'static str> {
        let envelope: CreatedEnvelope = serde_json::from_str(body).unwrap();
        envelope.into_created("asked", id_field)
    }

    #[test]
    fn the_secret_is_found_at_the_top_level_or_under_data() {
        let top = created(
            r#"{"data":{"hash":"h"},"key":"lr_live_top"}"#,
            IdField::Hash,
        );
        assert_eq!(top.unwrap().secret.expose_secret(), "lr_live_top");
        let nested = created(r#"{"data":{"id":"key_1","key":"lr_live_in"}}"#, IdField::Id);
        let nested = nested.unwrap();
        assert_eq!(
            (nested.id.as_str(), nested.secret.expose_secret()),
            ("key_1", "lr_live_in")
        );
        assert_eq!(
            nested.name, "asked",
            "the requested name when none is echoed"
        );
    }

    #[test]
    fn the_id_comes_from_the_field_the_shape_names() {
        let body = r#"{"data":{"hash":"h","id":"key_1"},"key":"k"}"#;
        assert_eq!(created(body, IdField::Hash).unwrap().id, "h");
        assert_eq!(created(body, IdField::Id).unwrap().id, "key_1");
        let only_hash = r#"{"data":{"hash":"h"},"key":"k"}"#;
        assert_eq!(
            created(only_hash, IdField::Id).unwrap_err(),
            "missing data.id"
        );
    }

    #[test]
    fn a_listed_key_without_its_id_is_refused() {
        let key: KeyObject = serde_json::from_str(r#"{"id":"key_1","name":"n"}"#).unwrap();
        assert_eq!(
            key.into_info(IdField::Hash).unwrap_err(),
            "missing data.hash"
        );
    }
}
