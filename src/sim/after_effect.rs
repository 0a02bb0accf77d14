//! "Lands, then answers badly": fault knobs under `after_effect` for calls
//! whose effect is real but whose answer lies or never comes. A create makes
//! the key and then answers with a broken body, an HTML page, a 503 or only
//! after a hang; a delete answers 404 while the key lives on; a listing pages
//! forever, repeats itself or lags behind. These are the outcomes a client
//! cannot tell apart from failure, which rekey must settle by reading the
//! world back (DESIGN.md, "Ambiguous outcomes"). Which call meets a fault is
//! decided in `faults`; this module owns the knobs and how a spoiled answer
//! looks.

mod knob;

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Api;
use super::record::{ApiError, KeyRecord};

/// The `after_effect` knobs, one per endpoint that has an effect worth lying about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AfterEffect {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create: Option<CreateFault>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete: Option<DeleteFault>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<ListFault>,
}

/// How a create that made its key answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateAnswer {
    /// The success status with the success body cut in half.
    InvalidJson,
    /// The success answer without the secret field.
    MissingSecret,
    /// The success answer without the key's id field.
    MissingId,
    /// 200 with an HTML page (`text/html`), as a proxy or CDN in the way would send.
    Html,
    /// 503 in the provider's error shape.
    Unavailable,
    /// The success answer, after `hang_ms` (past the client's timeout).
    Hang { hang_ms: u64 },
}

/// How a delete of a key that exists answers: the delete does not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteAnswer {
    /// 404 in the provider's not-found shape, the key still alive.
    NotFound,
}

/// How a listing (its first page and every page after it) answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListAnswer {
    /// Every page is full and says there is more: the account's keys, then
    /// phantom keys with fresh ids (never the same twice), so the cursor or
    /// offset always advances and a client that does not bound its paging
    /// never stops. Phantoms exist only in listings (get and delete: 404).
    Endless,
    /// Every page is full of the account's keys over and over (offsets and
    /// cursors ignored); an empty account answers empty pages.
    Repeating,
    /// Keys made less than `lag_ms` ago are left out, as an eventually
    /// consistent listing does.
    Lagging { lag_ms: u64 },
}

/// A fault with how many of the next matching calls meet it (`None`: all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted<A> {
    pub answer: A,
    pub count: Option<u32>,
}

impl<A> Counted<A> {
    /// Every matching call meets it until the knobs change.
    pub fn always(answer: A) -> Self {
        Self {
            answer,
            count: None,
        }
    }

    /// Only the next `count` matching calls meet it.
    pub fn next(count: u32, answer: A) -> Self {
        Self {
            answer,
            count: Some(count),
        }
    }
}

pub type CreateFault = Counted<CreateAnswer>;
pub type DeleteFault = Counted<DeleteAnswer>;
pub type ListFault = Counted<ListAnswer>;

/// Where a create's success answer keeps the new key's secret and its id
/// (JSON pointers), and its success status.
pub(crate) struct CreatedShape {
    pub status: StatusCode,
    pub secret: &'static str,
    pub id: &'static str,
}

/// The answer to a create that made its key: `body` as `fault` spoils it,
/// or as is. `failure` renders an error in the provider's shape.
pub(crate) async fn created(
    fault: Option<CreateAnswer>,
    shape: &CreatedShape,
    mut body: Value,
    failure: impl FnOnce(ApiError) -> Response,
) -> Response {
    match fault {
        None => {}
        Some(CreateAnswer::InvalidJson) => return truncated(shape.status, &body),
        Some(CreateAnswer::MissingSecret) => remove(&mut body, shape.secret),
        Some(CreateAnswer::MissingId) => remove(&mut body, shape.id),
        Some(CreateAnswer::Html) => return html(),
        Some(CreateAnswer::Unavailable) => {
            return failure(ApiError::new(503, "Service temporarily unavailable"));
        }
        Some(CreateAnswer::Hang { hang_ms }) => {
            tokio::time::sleep(Duration::from_millis(hang_ms)).await;
        }
    }
    (shape.status, Json(body)).into_response()
}

/// Removes the field a JSON pointer names, if it is there.
fn remove(body: &mut Value, pointer: &str) {
    let Some((parent, field)) = pointer.rsplit_once('/') else {
        return;
    };
    if let Some(object) = body.pointer_mut(parent).and_then(Value::as_object_mut) {
        object.remove(field);
    }
}

/// The first half of the body's JSON, labelled as JSON.
fn truncated(status: StatusCode, body: &Value) -> Response {
    let mut text = body.to_string();
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    let json = HeaderValue::from_static("application/json");
    (status, [(header::CONTENT_TYPE, json)], text).into_response()
}

/// A CDN's interstitial page, answered with 200 in place of the API's JSON.
fn html() -> Response {
    let page = "<!DOCTYPE html><html><head><title>Just a moment...</title></head>\
                <body><h1>Checking your browser before accessing the site.</h1></body></html>";
    let html = HeaderValue::from_static("text/html; charset=utf-8");
    (StatusCode::OK, [(header::CONTENT_TYPE, html)], page).into_response()
}

/// One page of a listing as `answer` (if any) spoils it. `keys` are the
/// keys the listing covers, in order; `at` says where the page starts among
/// those it shows (an offset, or the place after a cursor); `phantoms` are
/// the endless listing's fillers (numbers reserved in `faults`).
pub(crate) fn page(
    answer: Option<ListAnswer>,
    keys: Vec<&KeyRecord>,
    at: impl FnOnce(&[&KeyRecord]) -> usize,
    size: usize,
    phantoms: impl Iterator<Item = KeyRecord>,
) -> Vec<KeyRecord> {
    let keys = match answer {
        Some(ListAnswer::Lagging { lag_ms }) => settled(keys, lag_ms),
        _ => keys,
    };
    if answer == Some(ListAnswer::Repeating) {
        return (keys.into_iter().cycle().take(size)).cloned().collect();
    }
    let start = at(&keys);
    let mut page: Vec<KeyRecord> = (keys.into_iter().skip(start).take(size)).cloned().collect();
    if answer == Some(ListAnswer::Endless) {
        let missing = size.saturating_sub(page.len());
        page.extend(phantoms.take(missing));
    }
    page
}

/// The keys made at least `lag_ms` ago.
fn settled(keys: Vec<&KeyRecord>, lag_ms: u64) -> Vec<&KeyRecord> {
    let lag = chrono::Duration::milliseconds(i64::try_from(lag_ms).unwrap_or(i64::MAX));
    // A lag reaching before the calendar's start hides every key.
    let Some(cutoff) = chrono::Utc::now().checked_sub_signed(lag) else {
        return Vec::new();
    };
    keys.into_iter()
        .filter(|k| k.created_at <= cutoff)
        .collect()
}

/// The n-th phantom key of an endless listing, shaped like a key of `api`
/// (OpenAI: a service account with its key id). Never stored, never works.
pub(crate) fn phantom(api: Api, n: u64) -> KeyRecord {
    let secret = api.new_secret();
    let hash = match api {
        Api::OpenAi => format!("svc_acct_{n:024x}"),
        _ => format!("{n:064x}"),
    };
    let mut extra = serde_json::Map::new();
    if api == Api::OpenAi {
        extra.insert("service_account_id".into(), hash.clone().into());
        extra.insert("key_id".into(), format!("key_{n:016x}").into());
    }
    KeyRecord {
        never_works: true,
        extra,
        ..KeyRecord::fresh(&format!("sim-phantom-{n}"), hash, secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    #[test]
    fn every_mode_reads_and_writes_the_same_json() {
        let knobs = json!({
            "create": { "mode": "hang", "count": 2, "hang_ms": 1500 },
            "delete": { "mode": "not_found" },
            "list": { "mode": "lagging", "count": 1, "lag_ms": 800 },
        });
        let parsed: AfterEffect = read(knobs.clone()).unwrap();
        assert_eq!(
            parsed.create,
            Some(Counted::next(2, CreateAnswer::Hang { hang_ms: 1500 }))
        );
        assert_eq!(parsed.delete, Some(Counted::always(DeleteAnswer::NotFound)));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), knobs);
    }

    #[test]
    fn a_mode_of_another_endpoint_or_without_its_duration_is_refused_by_name() {
        let refused = [
            json!({ "create": { "mode": "not_found" } }),
            json!({ "create": { "mode": "hang" } }),
            json!({ "create": { "mode": "html", "hang_ms": 5 } }),
            json!({ "delete": { "mode": "endless" } }),
            json!({ "list": { "mode": "lagging" } }),
            json!({ "list": { "mode": "endless", "lag_ms": 5 } }),
            json!({ "list": { "mode": "endless", "pages": 5 } }),
        ];
        for knobs in refused {
            let err = read::<AfterEffect>(knobs.clone()).unwrap_err();
            assert!(
                err.contains("after_effect") || err.contains("pages"),
                "{knobs}: {err}"
            );
        }
    }

    #[test]
    fn removing_a_field_by_pointer_leaves_the_rest() {
        let mut body = json!({ "data": { "hash": "h", "name": "n" }, "key": "s" });
        remove(&mut body, "/data/hash");
        remove(&mut body, "/absent/field");
        assert_eq!(body, json!({ "data": { "name": "n" }, "key": "s" }));
    }
}
