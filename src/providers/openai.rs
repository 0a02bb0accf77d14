//! OpenAI keys by service account (PROVIDERS.md "OpenAI"): no API mints a
//! plain project key, so each rotation creates a new service account in the
//! policy's project (its key comes back once, in that answer) and revoking
//! deletes the old account, which invalidates its key. Management calls
//! carry the admin key and name a project, hence one client per policy
//! (`for_policy`); verification calls `/models` or a chat ping with the key
//! itself. Owns these wire shapes and what OpenAI's errors mean.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::SecretString;
use secrecy::zeroize::Zeroize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::client::{self, Client};
use super::http::{self, Caller, Quote};
use super::{CreatedKey, Deleted, KeyInfo, KeySpec, Provider, ProviderError};
use crate::config::ProviderConfig;
use crate::policy::{Policy, VerifyMode};

mod failed;
mod wire;

use failed::Failed;
use wire::{CreatedAccount, Page, ProjectApiKey, ServiceAccount};

/// OpenAI's largest page for the admin list endpoints.
const PAGE_SIZE: usize = 100;
/// Stops paging through a provider that always says `has_more`.
const MAX_PAGES: usize = 10_000;
/// The key listing's documented filter for "every enabled key": without it
/// OpenAI applies membership-based visibility, which may leave keys out.
const ALL_ENABLED_KEYS: &str = "&owner_project_access=any";
/// The `error.code` of a 429 that waiting will not fix.
const QUOTA_EXHAUSTED: &str = "insufficient_quota";

/// What every client of one `[providers.<name>]` entry shares.
struct Shared {
    http: Client,
    admin_key: SecretString,
}

pub struct OpenAi {
    client: Arc<Shared>,
    /// `None` on the entry's shared instance, which cannot manage keys.
    project: Option<String>,
}

impl OpenAi {
    pub fn new(config: &ProviderConfig, admin_key: SecretString) -> Result<Self, ProviderError> {
        let client = Shared {
            http: Client::new(config)?,
            admin_key,
        };
        Ok(Self {
            client: Arc::new(client),
            project: None,
        })
    }

    /// This client, managing service accounts of `project`.
    pub fn in_project(&self, project: &str) -> OpenAi {
        OpenAi {
            client: self.client.clone(),
            project: Some(project.to_string()),
        }
    }

    fn entry_name(&self) -> &str {
        self.client.http.entry()
    }

    /// `/organization/projects/{project}/service_accounts`, or why there is none.
    fn accounts_path(&self, op: &str) -> Result<String, ProviderError> {
        Ok(format!("{}/service_accounts", self.project_path(op)?))
    }

    fn project_path(&self, op: &str) -> Result<String, ProviderError> {
        let project = self.project.as_deref().ok_or_else(|| ProviderError::Permanent {
            provider: self.entry_name().to_string(),
            status: None,
            message: format!(
                "{op}: OpenAI keys are service accounts inside a project; the policy needs a project_id"
            ),
        })?;
        Ok(format!("/organization/projects/{project}"))
    }

    fn request(&self, method: Method, path: &str, key: &SecretString) -> RequestBuilder {
        self.client.http.request(method, path, key)
    }

    fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path, &self.client.admin_key)
    }

    async fn send(&self, op: &str, request: RequestBuilder) -> Result<Response, ProviderError> {
        self.client.http.send(op, request).await
    }

    /// The body of a successful response; any other status becomes an error.
    async fn success_body(
        &self,
        op: &str,
        caller: Caller,
        quote: Quote,
        response: Response,
    ) -> Result<(u16, Vec<u8>), ProviderError> {
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(self.failure(op, caller, quote, response).await);
        }
        let body = response.bytes().await;
        let body = body.map_err(|err| http::transport(self.entry_name(), op, &err))?;
        Ok((status, body.into()))
    }

    /// OpenAI's meanings on top of the shared classification: a 429 for an
    /// exhausted quota is permanent, and the management failures a person
    /// must fix say what to fix.
    async fn failure(
        &self,
        op: &str,
        caller: Caller,
        quote: Quote,
        response: Response,
    ) -> ProviderError {
        let failed = Failed::read(quote, response).await;
        let (status, detail) = (failed.status, failed.detail());
        let project = self.project.as_deref().unwrap_or("-");
        let message = match (status, caller) {
            (429, _) if failed.code.as_deref() == Some(QUOTA_EXHAUSTED) => format!(
                "{op}: HTTP 429 {QUOTA_EXHAUSTED}: the OpenAI organization's quota is exhausted; add credits (platform.openai.com, Settings, Billing) — not retried"
            ),
            (400, Caller::Management) if op == CREATE => format!(
                "{op}: HTTP 400 ({detail}): OpenAI refused a service account in project {project}; the Default project cannot hold service accounts, so project_id must name a project of its own"
            ),
            (404, Caller::Management) => format!(
                "{op}: HTTP 404 ({detail}): no project {project} in this organization; check the policy's project_id"
            ),
            (401 | 403, Caller::Management) => {
                let hint =
                    format!("{detail}; OpenAI management calls need an admin key (sk-admin-...)");
                return http::classify(
                    self.entry_name(),
                    op,
                    caller,
                    status,
                    failed.retry_after,
                    Some(hint),
                );
            }
            _ => {
                return http::classify(
                    self.entry_name(),
                    op,
                    caller,
                    status,
                    failed.retry_after,
                    Some(detail),
                );
            }
        };
        ProviderError::Permanent {
            provider: self.entry_name().to_string(),
            status: Some(status),
            message,
        }
    }

    /// A management GET whose answer is JSON of type `T`.
    async fn get_json<T: DeserializeOwned>(
        &self,
        op: &str,
        path: &str,
    ) -> Result<T, ProviderError> {
        let response = self.send(op, self.admin(Method::GET, path)).await?;
        let (status, body) = self
            .success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await?;
        http::parse(self.entry_name(), op, status, &body)
    }

    /// Every item of a cursor-paged admin list (`limit`, `after`, `has_more`);
    /// `filters` (`&name=value...`) go on every page.
    async fn list_all<T: DeserializeOwned>(
        &self,
        op: &str,
        path: &str,
        filters: &str,
    ) -> Result<Vec<T>, ProviderError> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let cursor = after
                .as_deref()
                .map(|a| format!("&after={a}"))
                .unwrap_or_default();
            let url = format!("{path}?limit={PAGE_SIZE}{filters}{cursor}");
            let page: Page<T> = self.get_json(op, &url).await?;
            items.extend(page.data);
            if !page.has_more {
                return Ok(items);
            }
            let next = page.last_id.filter(|id| wire::is_id(id));
            if next.is_none() || next == after {
                return Err(http::malformed(
                    self.entry_name(),
                    op,
                    200,
                    "has_more without a new last_id",
                ));
            }
            after = next;
        }
        Err(http::malformed(
            self.entry_name(),
            op,
            200,
            "paging never ended",
        ))
    }

    /// An account whose key shows no usable redacted value has an unknown
    /// label (empty in `KeyInfo`): adoption by label can neither pick it nor
    /// rule it out, so the operator hears which account that is.
    fn warn_unknown_label(&self, account: &str) {
        tracing::warn!(
            provider = self.entry_name(),
            project = self.project.as_deref().unwrap_or("-"),
            service_account = account,
            "the key listing shows no redacted value for this service account's key: its label is unknown, \
             so adoption by label can neither match nor exclude it (set adopt.key_id to name it)"
        );
    }

    /// A service account id as a path segment, refused when it could change the path.
    fn account_id<'a>(&self, op: &str, id: &'a str) -> Result<&'a str, ProviderError> {
        if wire::is_id(id) {
            return Ok(id);
        }
        Err(ProviderError::Permanent {
            provider: self.entry_name().to_string(),
            status: None,
            message: format!("{op}: {id:?} is not a service account id (svc_acct_...)"),
        })
    }
}

/// The one call whose 400 means "this project cannot hold service accounts".
const CREATE: &str = "create service account";

#[async_trait]
impl Provider for OpenAi {
    fn entry(&self) -> &str {
        self.entry_name()
    }

    fn for_policy(&self, policy: &Policy) -> Option<Arc<dyn Provider>> {
        // Validation requires project_id for openai; without one the
        // unscoped instance's management calls say what is missing.
        let project = policy.project_id.as_deref()?;
        Some(Arc::new(self.in_project(project)))
    }

    async fn create_key(&self, spec: &KeySpec) -> Result<CreatedKey, ProviderError> {
        let path = self.accounts_path(CREATE)?;
        let request = self
            .admin(Method::POST, &path)
            .json(&json!({ "name": spec.name }));
        let response = self.send(CREATE, request).await?;
        let (status, mut raw) = self
            .success_body(CREATE, Caller::Management, Quote::Nothing, response)
            .await?;
        // Nothing of serde's error is kept: it could quote the key.
        let parsed = serde_json::from_slice::<CreatedAccount>(&raw);
        raw.zeroize();
        let malformed = |what| http::malformed(self.entry_name(), CREATE, status, what);
        let created = parsed.map_err(|_| malformed("not the expected JSON"))?;
        created.into_created(&spec.name).map_err(malformed)
    }

    /// The first page of the project's service accounts only.
    async fn probe(&self) -> Result<(), ProviderError> {
        let op = "list service accounts";
        let url = format!("{}?limit={PAGE_SIZE}", self.accounts_path(op)?);
        let _: Page<ServiceAccount> = self.get_json(op, &url).await?;
        Ok(())
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, ProviderError> {
        let accounts_path = self.accounts_path("list service accounts")?;
        let accounts: Vec<ServiceAccount> = self
            .list_all("list service accounts", &accounts_path, "")
            .await?;
        let keys_path = format!("{}/api_keys", self.project_path("list project keys")?);
        let keys: Vec<ProjectApiKey> = self
            .list_all("list project keys", &keys_path, ALL_ENABLED_KEYS)
            .await?;
        Ok(accounts
            .into_iter()
            .map(|account| {
                let label = wire::label_of(&account.id, &keys);
                if label.is_none() {
                    self.warn_unknown_label(&account.id);
                }
                let usage = wire::usage_of(&account.id, &keys);
                KeyInfo {
                    usage,
                    ..account.into_info(label.unwrap_or_default())
                }
            })
            .collect())
    }

    /// The account alone (label empty): its key's redacted value is only in the key list.
    async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        let op = "get service account";
        let path = format!("{}/{}", self.accounts_path(op)?, self.account_id(op, id)?);
        let response = self.send(op, self.admin(Method::GET, &path)).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let (status, body) = self
            .success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await?;
        let account: ServiceAccount = http::parse(self.entry_name(), op, status, &body)?;
        Ok(Some(account.into_info(String::new())))
    }

    async fn disable_key(&self, id: &str) -> Result<(), ProviderError> {
        Err(self.unsupported("disable a service account", id))
    }

    /// Deleting the service account invalidates its key; 404 = already gone.
    async fn delete_key(&self, id: &str) -> Result<Deleted, ProviderError> {
        let op = "delete service account";
        let path = format!("{}/{}", self.accounts_path(op)?, self.account_id(op, id)?);
        let response = self.send(op, self.admin(Method::DELETE, &path)).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(Deleted::AlreadyGone);
        }
        self.success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await?;
        Ok(Deleted::Now)
    }

    async fn verify_key(&self, key: &SecretString, mode: &VerifyMode) -> Result<(), ProviderError> {
        let (op, request) = match mode {
            // `max_completion_tokens`: reasoning models refuse `max_tokens` with a 400.
            VerifyMode::Chat { model } => {
                let request = self.request(Method::POST, "/chat/completions", key);
                (
                    "verify key (chat)",
                    request.json(&client::completion_ping(model)),
                )
            }
            // Validation offers only models and chat here; /models needs a working key.
            VerifyMode::Models | VerifyMode::KeyInfo => (
                "verify key (GET /models)",
                self.request(Method::GET, "/models", key),
            ),
        };
        let response = self.send(op, request).await?;
        self.success_body(op, Caller::KeyUnderTest, Quote::ProviderMessage, response)
            .await?;
        Ok(())
    }
}
