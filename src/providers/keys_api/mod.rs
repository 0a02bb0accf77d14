//! The OpenRouter-style key-management API that OpenRouter and ARouter
//! share: a keys collection answering `{ "data": Key }` envelopes, the
//! secret shown once at top-level `key` or at `data.key`, paged listings
//! with `include_disabled=true`, PATCH `{disabled: true}` and DELETE with 404
//! meaning already gone. Each API says where the collection lives, which
//! field holds a key's id, how its listing pages and which workspace it
//! lists; its own create body and verification stay with it.
//!
//! This module owns the calls (`KeysApi`) and the paging; `wire` owns the
//! JSON bodies they send and read.

use std::collections::HashSet;

use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::SecretString;
use secrecy::zeroize::Zeroize;
use serde::Serialize;
use serde_json::json;

use super::client::{Client, encode};
use super::http::{Caller, Quote};
use super::{CreatedKey, Deleted, KeyInfo, ProviderError};
use wire::{CreatedEnvelope, DataEnvelope, KeyObject, ListEnvelope};

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

    /// Readiness: the first page of the listing, and no further.
    pub(crate) async fn probe(&self) -> Result<(), ProviderError> {
        self.list_page(&Cursor::Offset(0)).await.map(drop)
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

struct ListPage {
    keys: Vec<KeyInfo>,
    next_page_token: Option<String>,
}

mod wire;

#[cfg(test)]
mod tests;
