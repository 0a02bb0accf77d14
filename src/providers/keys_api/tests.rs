//! Tests of the key-management API: where the created secret and its id are
//! read from, how each listing pages, and the workspace on every listing.

use secrecy::ExposeSecret;

use super::wire::{CreatedEnvelope, KeyObject};
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
