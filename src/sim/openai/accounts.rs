//! Service accounts in the shared `State`: one `KeyRecord` per service
//! account, `hash` being its id (`svc_acct_...`) and `extra` holding
//! `project_id`, `service_account_id` and the id of its one key (`key_id`).
//! Deleting the account deletes its key, as at OpenAI.
//!
//! The key listing filters by `owner_project_access` (`active`, `inactive`,
//! `any`); without it OpenAI applies "membership-based visibility rules"
//! that "may exclude some enabled keys". The simulator's stand-in for those
//! unpublished rules: the keys of accounts a person made in the dashboard
//! (`seed`) are left out, so a client that omits the filter misses them.

use std::time::Duration;

use serde_json::{Value, json};

use super::{SIM_OPENAI_DEFAULT_PROJECT, SIM_OPENAI_PROJECT};
use crate::sim::Api;
use crate::sim::after_effect::{self, ListAnswer};
use crate::sim::faults::Listing;
use crate::sim::record::{ApiError, KeyRecord, random_hex};
use crate::sim::state::State;

/// A working service account key in the tests' project, as a person would
/// have made it in the dashboard; returns (service account id, secret).
pub(in crate::sim) fn seed(state: &mut State, name: &str) -> (String, String) {
    let record = issue(state, SIM_OPENAI_PROJECT, name, Duration::ZERO, false);
    record
        .extra
        .insert(HIDDEN_BY_MEMBERSHIP.into(), true.into());
    (record.hash.clone(), record.secret.clone())
}

/// Marks a key the unfiltered listing leaves out (see the module docs).
const HIDDEN_BY_MEMBERSHIP: &str = "hidden_by_membership";

/// `owner_project_access` of the key listing; `Membership` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OwnerAccess {
    Membership,
    Active,
    Inactive,
    Any,
}

impl OwnerAccess {
    pub(super) fn parse(value: Option<&str>) -> Result<OwnerAccess, ApiError> {
        match value {
            None => Ok(OwnerAccess::Membership),
            Some("active") => Ok(OwnerAccess::Active),
            Some("inactive") => Ok(OwnerAccess::Inactive),
            Some("any") => Ok(OwnerAccess::Any),
            Some(other) => Err(ApiError::new(
                400,
                format!(
                    "Invalid value for 'owner_project_access': '{other}'. Expected one of 'active', 'inactive' or 'any'."
                ),
            )
            .with_code("invalid_value")),
        }
    }

    /// Every simulated service account has access to its project.
    fn shows(self, record: &KeyRecord) -> bool {
        match self {
            OwnerAccess::Active | OwnerAccess::Any => true,
            OwnerAccess::Inactive => false,
            OwnerAccess::Membership => !record
                .extra
                .get(HIDDEN_BY_MEMBERSHIP)
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
}

/// `POST .../service_accounts`: the account with its key, whose value is
/// shown only in this answer.
pub(super) fn create(
    state: &mut State,
    project: &str,
    name: &str,
    propagation: Duration,
    reject: bool,
) -> Result<Value, ApiError> {
    check_project(project)?;
    if project == SIM_OPENAI_DEFAULT_PROJECT {
        return Err(ApiError::new(
            400,
            "Service accounts cannot be created in the Default project. Create a new project to use service accounts.",
        ));
    }
    let record = issue(state, project, name, propagation, reject);
    let mut body = account_json(record);
    body["api_key"] = json!({
        "object": "organization.project.service_account.api_key",
        "value": record.secret,
        "name": "Secret Key",
        "created_at": record.created_at.timestamp(),
        "id": extra(record, "key_id"),
    });
    Ok(body)
}

pub(super) fn list_accounts(
    state: &State,
    project: &str,
    limit: usize,
    after: Option<&str>,
    listing: Listing,
) -> Result<Value, ApiError> {
    check_project(project)?;
    let accounts = in_project(state, project).collect();
    Ok(page(accounts, (limit, after), listing, account_json))
}

/// `GET .../api_keys`: the project's keys as `ProjectApiKey`s, each owned
/// by its service account, with only a redacted value; `access` filters.
pub(super) fn list_keys(
    state: &State,
    project: &str,
    (limit, after, access): (usize, Option<&str>, OwnerAccess),
    listing: Listing,
) -> Result<Value, ApiError> {
    check_project(project)?;
    let keys = in_project(state, project).filter(|k| access.shows(k));
    Ok(page(keys.collect(), (limit, after), listing, key_json))
}

pub(super) fn get(state: &State, project: &str, id: &str) -> Result<Value, ApiError> {
    check_project(project)?;
    let mut found = in_project(state, project).filter(|k| k.hash == id);
    found.next().map(account_json).ok_or_else(|| no_account(id))
}

pub(super) fn delete(state: &mut State, project: &str, id: &str) -> Result<Value, ApiError> {
    check_project(project)?;
    let index = (state.keys.iter())
        .position(|k| k.hash == id && extra(k, "project_id") == project)
        .ok_or_else(|| no_account(id))?;
    state.keys.remove(index);
    Ok(json!({
        "object": "organization.project.service_account.deleted",
        "id": id,
        "deleted": true,
    }))
}

fn issue<'s>(
    state: &'s mut State,
    project: &str,
    name: &str,
    propagation: Duration,
    reject: bool,
) -> &'s mut KeyRecord {
    let record = state.issue(name, propagation, reject);
    record.hash = format!("svc_acct_{}", &random_hex()[..24]);
    let key_id = format!("key_{}", &random_hex()[..16]);
    let hash = record.hash.clone();
    record.extra.insert("project_id".into(), project.into());
    record
        .extra
        .insert("service_account_id".into(), hash.into());
    record.extra.insert("key_id".into(), key_id.into());
    record
}

/// Any `proj_...` id is a project of the organization; anything else is not.
fn check_project(project: &str) -> Result<(), ApiError> {
    match project.strip_prefix("proj_") {
        Some(rest) if !rest.is_empty() => Ok(()),
        _ => Err(ApiError::new(404, format!("No such project: '{project}'."))),
    }
}

pub(super) fn no_account(id: &str) -> ApiError {
    ApiError::new(404, format!("No such service account: '{id}'."))
}

fn in_project<'s>(state: &'s State, project: &'s str) -> impl Iterator<Item = &'s KeyRecord> {
    (state.keys.iter()).filter(move |k| extra(k, "project_id") == project)
}

fn extra<'k>(record: &'k KeyRecord, field: &str) -> &'k str {
    record
        .extra
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn account_json(record: &KeyRecord) -> Value {
    json!({
        "object": "organization.project.service_account",
        "id": record.hash,
        "name": record.name,
        "role": "member",
        "created_at": record.created_at.timestamp(),
    })
}

fn key_json(record: &KeyRecord) -> Value {
    json!({
        "object": "organization.project.api_key",
        "id": extra(record, "key_id"),
        "name": "Secret Key",
        "redacted_value": record.label,
        "created_at": record.created_at.timestamp(),
        "last_used_at": record.last_used_at.map(|t| t.timestamp()),
        "owner": {
            "type": "service_account",
            "service_account": account_json(record),
        },
    })
}

/// One page of a cursor-paged list of `keys`: the items after `after`, at
/// most `limit`, as `listing` may spoil it (`after_effect`).
fn page(
    keys: Vec<&KeyRecord>,
    (limit, after): (usize, Option<&str>),
    listing: Listing,
    render: fn(&KeyRecord) -> Value,
) -> Value {
    let mut total = 0;
    let mut start = 0;
    let at = |keys: &[&KeyRecord]| {
        total = keys.len();
        start = match after {
            None => 0,
            // A cursor that is gone (deleted meanwhile) ends the listing.
            Some(id) => (keys.iter())
                .position(|k| render(k)["id"] == id)
                .map_or(keys.len(), |i| i + 1),
        };
        start
    };
    let phantoms = listing
        .phantoms
        .map(|n| after_effect::phantom(Api::OpenAi, n));
    let records = after_effect::page(listing.answer, keys, at, limit, phantoms);
    let data: Vec<Value> = records.iter().map(render).collect();
    let has_more = match listing.answer {
        Some(ListAnswer::Endless) => true,
        Some(ListAnswer::Repeating) => !data.is_empty(),
        _ => start + data.len() < total,
    };
    json!({
        "object": "list",
        "first_id": data.first().map(|v| v["id"].clone()),
        "last_id": data.last().map(|v| v["id"].clone()),
        "has_more": has_more,
        "data": data,
    })
}
