//! The OpenRouter-style key-management API that OpenRouter and ARouter
//! share: a keys collection answering `{ "data": Key }` envelopes, the
//! secret shown once at top-level `key` or at `data.key`, paged listings
//! with `include_disabled=true`, PATCH `{disabled: true}` and DELETE with 404
//! meaning already gone. Each API says where the collection lives, which
//! field holds a key's id, how its listing pages and which workspace it
//! lists; its own create body and verification stay with it.

use std::collections::HashSet;

use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::SecretString;
use secrecy::zeroize::Zeroize;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::client::{Client, encode};
use super::http::{Caller, Quote};
use super::usage;
use super::{CreatedKey, Deleted, KeyInfo, KeyUsage, ProviderError, Spend};

/// OpenRouter's list pages hold this many keys; it is also the `page_size`
/// rekey asks ARouter for.
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

/// How a listing pages (PROVIDERS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Paging {
    /// OpenRouter: `offset`, pages of 100, a shorter page is the last one.
    Offset,
    /// ARouter: its default page size is undocumented and it may cap the
    /// one asked for, so a short page proves nothing. `page_size` is sent,
    /// `next_page_token` followed when given (else `offset` advanced), and
    /// only an empty page or a token listing without a next token ends it.
    Sized,
}

/// Where the next page of a listing starts.
enum Cursor {
    Offset(usize),
    Token(String),
}

pub(crate) struct KeysApi {
    client: Client,
    management_key: SecretString,
    /// The keys collection, relative to the base URL (`/keys`, `/api/v1/keys`).
    keys_path: String,
    id_field: IdField,
    paging: Paging,
    /// `&workspace_id=...` on listings: OpenRouter lists only the default
    /// workspace without it.
    workspace_query: String,
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
            paging: Paging::Offset,
            workspace_query: String::new(),
        }
    }

    pub(crate) fn with_paging(mut self, paging: Paging) -> Self {
        self.paging = paging;
        self
    }

    /// Lists `workspace` instead of the provider's default one.
    pub(crate) fn in_workspace(mut self, workspace: Option<&str>) -> Self {
        self.workspace_query = workspace
            .map(|w| format!("&workspace_id={}", encode(w)))
            .unwrap_or_default();
        self
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
    /// ignores the offset or token and answers the same keys again ends the
    /// paging too.
    pub(crate) async fn list(&self) -> Result<Vec<KeyInfo>, ProviderError> {
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        let mut cursor = Cursor::Offset(0);
        for _ in 0..MAX_PAGES {
            let page = self.list_page(&cursor).await?;
            let before = keys.len();
            let next = self.next_cursor(&cursor, page.keys.len(), page.next_page_token);
            keys.extend((page.keys.into_iter()).filter(|k| seen.insert(k.id.clone())));
            match next {
                Some(next) if keys.len() > before => cursor = next,
                _ => return Ok(keys),
            }
        }
        Err(self
            .client
            .malformed("list keys", 200, "paging never ended"))
    }

    /// Where the page after one of `count` keys starts; `None` at the end.
    fn next_cursor(&self, at: &Cursor, count: usize, token: Option<String>) -> Option<Cursor> {
        let offset = match at {
            Cursor::Offset(offset) => offset + count,
            Cursor::Token(_) => 0,
        };
        let token = token.filter(|t| !t.is_empty());
        match (self.paging, token) {
            (Paging::Offset, _) => (count >= PAGE_SIZE).then_some(Cursor::Offset(offset)),
            (Paging::Sized, _) if count == 0 => None,
            (Paging::Sized, Some(token)) => Some(Cursor::Token(token)),
            // A token listing's last page carries no token.
            (Paging::Sized, None) => {
                matches!(at, Cursor::Offset(_)).then_some(Cursor::Offset(offset))
            }
        }
    }

    fn list_query(&self, at: &Cursor) -> String {
        let place = match at {
            Cursor::Offset(offset) => format!("offset={offset}"),
            Cursor::Token(token) => format!("page_token={}", encode(token)),
        };
        let size = match self.paging {
            Paging::Offset => String::new(),
            Paging::Sized => format!("&page_size={PAGE_SIZE}"),
        };
        format!(
            "?{place}{size}&include_disabled=true{}",
            self.workspace_query
        )
    }

    async fn list_page(&self, at: &Cursor) -> Result<ListPage, ProviderError> {
        let op = "list keys";
        let query = self.list_query(at);
        let response = (self.client)
            .send(op, self.management(Method::GET, &query))
            .await?;
        let (status, body) = self
            .client
            .success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await?;
        let parsed: ListEnvelope = self.client.parse(op, status, &body)?;
        let keys = parsed
            .data
            .ok_or_else(|| self.client.malformed(op, status, "missing data"))?;
        let keys = (keys.into_iter())
            .map(|k| k.into_info(self.id_field))
            .collect::<Result<Vec<_>, _>>();
        let keys = keys.map_err(|what| self.client.malformed(op, status, what))?;
        Ok(ListPage {
            keys,
            next_page_token: parsed.next_page_token,
        })
    }

    /// A key found by listing, for APIs without a get-by-id (ARouter);
    /// `None` when no listed key has that id.
    pub(crate) async fn find(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        let keys = self.list().await?;
        Ok(keys.into_iter().find(|k| k.id == id))
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
    pub(crate) async fn delete(&self, id: &str) -> Result<Deleted, ProviderError> {
        let op = "delete key";
        let request = self.management(Method::DELETE, &format!("/{}", encode(id)));
        let response = self.client.send(op, request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(Deleted::AlreadyGone);
        }
        (self.client)
            .success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await?;
        Ok(Deleted::Now)
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

/// A list answer: ARouter adds `next_page_token` when it pages by token.
#[derive(Deserialize)]
struct ListEnvelope {
    data: Option<Vec<KeyObject>>,
    next_page_token: Option<String>,
}

struct ListPage {
    keys: Vec<KeyInfo>,
    next_page_token: Option<String>,
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

    fn api(paging: Paging) -> KeysApi {
        let client = Client::with_http("e", "http://sim", reqwest::Client::new());
        KeysApi::new(client, SecretString::from("m"), "/keys", IdField::Hash).with_paging(paging)
    }

    fn next(paging: Paging, at: Cursor, count: usize, token: Option<&str>) -> Option<String> {
        let next = api(paging).next_cursor(&at, count, token.map(str::to_string));
        next.map(|c| api(paging).list_query(&c))
    }

    #[test]
    fn openrouter_pages_by_offset_until_a_short_page() {
        let full = next(Paging::Offset, Cursor::Offset(100), 100, None);
        assert_eq!(full.as_deref(), Some("?offset=200&include_disabled=true"));
        assert_eq!(next(Paging::Offset, Cursor::Offset(0), 99, None), None);
    }

    #[test]
    fn arouter_pages_until_an_empty_page_or_a_token_listing_ends() {
        let short = next(Paging::Sized, Cursor::Offset(0), 20, None);
        assert_eq!(
            short.as_deref(),
            Some("?offset=20&page_size=100&include_disabled=true"),
            "a short page is not the last one"
        );
        let token = next(Paging::Sized, Cursor::Offset(0), 20, Some("a/b"));
        assert_eq!(
            token.as_deref(),
            Some("?page_token=a%2Fb&page_size=100&include_disabled=true")
        );
        let last = Cursor::Token("t".into());
        assert_eq!(next(Paging::Sized, last, 5, Some("")), None);
        assert_eq!(next(Paging::Sized, Cursor::Offset(40), 0, Some("t")), None);
    }

    #[test]
    fn a_workspace_goes_on_every_listing_encoded() {
        let api = api(Paging::Offset).in_workspace(Some("ws 1/2"));
        assert_eq!(
            api.list_query(&Cursor::Offset(0)),
            "?offset=0&include_disabled=true&workspace_id=ws%201%2F2"
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
