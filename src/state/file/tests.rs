//! Journals round-trip with their format; leases by the secret's identity
//! and the older lock name; corrupt and newer journals are named.

use super::*;
use crate::names::RotationId;
use crate::state::{HISTORY_LEN, HistoryEntry, JOURNAL_FORMAT, OutcomeKind, Trigger};

fn p(name: &str) -> PolicyName {
    PolicyName::parse(name).unwrap()
}

fn key(secret: &str) -> LeaseKey {
    LeaseKey::aws("eu-central-1", secret)
}

async fn lease(store: &FileStateStore) -> Box<dyn Lease> {
    store.try_lease(&key("any"), "any").await.unwrap().unwrap()
}

#[tokio::test]
async fn a_saved_journal_loads_back_identical() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStateStore::open(dir.path()).unwrap();
    let mut state = store.load(&p("p1")).await.unwrap();
    assert_eq!(state, PolicyState::new(&p("p1")));
    state.failures = 3;
    store.save(&state, &*lease(&store).await).await.unwrap();
    assert_eq!(store.load(&p("p1")).await.unwrap(), state);
    assert_eq!(store.policies().await.unwrap(), vec![p("p1")]);
}

#[tokio::test]
async fn a_held_lease_is_refused_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStateStore::open(dir.path()).unwrap();
    let lease = store
        .try_lease(&key("prod/llm"), "aws/prod/llm")
        .await
        .unwrap();
    assert!(lease.is_some());
    assert_eq!(
        store.held_leases().await.unwrap().len(),
        2,
        "key and legacy lock"
    );
    let arn = "arn:aws:secretsmanager:eu-central-1:1:secret:prod/llm-AbCdEf";
    assert!(
        store
            .try_lease(&key(arn), "aws2/arn")
            .await
            .unwrap()
            .is_none(),
        "another entry naming the same secret shares the lease"
    );
    assert!(
        store
            .try_lease(&key("other"), "aws/prod/llm")
            .await
            .unwrap()
            .is_none(),
        "an older rekey's lock name is taken too"
    );
    assert!(
        store
            .try_lease(&key("prod_llm"), "aws/prod_llm")
            .await
            .unwrap()
            .is_some(),
        "distinct secret"
    );
    drop(lease);
    assert!(store.held_leases().await.unwrap().is_empty());
    assert!(
        store
            .try_lease(&key("prod/llm"), "aws/prod/llm")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_corrupt_journal_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStateStore::open(dir.path()).unwrap();
    std::fs::write(store.journal_path("p1"), b"{not json").unwrap();
    let err = store.load(&p("p1")).await.unwrap_err();
    assert!(err.to_string().contains("p1.json"), "{err}");
}

#[tokio::test]
async fn a_journal_names_its_format_and_one_without_it_loads_as_format_1() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStateStore::open(dir.path()).unwrap();
    let mut state = PolicyState::new(&p("p1"));
    state.failures = 2;
    store.save(&state, &*lease(&store).await).await.unwrap();
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.journal_path("p1")).unwrap()).unwrap();
    assert_eq!(
        raw["format"], 1,
        "nothing in it needs format {JOURNAL_FORMAT}"
    );
    let mut older = raw.clone();
    older.as_object_mut().unwrap().remove("format");
    std::fs::write(store.journal_path("p1"), older.to_string()).unwrap();
    assert_eq!(store.load(&p("p1")).await.unwrap(), state);
}

#[tokio::test]
async fn a_newer_format_is_refused_as_such_not_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStateStore::open(dir.path()).unwrap();
    let newer = br#"{"format": 3, "policy": "p1", "shape": "unknown to us"}"#;
    std::fs::write(store.journal_path("p1"), newer).unwrap();
    let err = store.load(&p("p1")).await.unwrap_err();
    assert_eq!(err.kind(), "newer_format", "{err}");
    let text = err.to_string();
    assert!(
        text.contains("p1.json has format 3, written by a newer rekey"),
        "{text}"
    );
    assert!(text.contains("reads formats up to 2"), "{text}");
    assert_eq!(std::fs::read(store.journal_path("p1")).unwrap(), newer);
}

#[test]
fn history_keeps_the_newest_twenty() {
    let mut state = PolicyState::new(&p("p"));
    for i in 0..25 {
        state.push_history(HistoryEntry {
            rotation_id: RotationId::parse(i.to_string()).unwrap(),
            trigger: Trigger::Schedule,
            started_at: chrono::Utc::now(),
            finished_at: chrono::Utc::now(),
            kind: OutcomeKind::Rotated,
            old_key: None,
            new_key: None,
            error: None,
        });
    }
    assert_eq!(state.history.len(), HISTORY_LEN);
    assert_eq!(state.history.first().unwrap().rotation_id, "5");
    assert_eq!(state.history.last().unwrap().rotation_id, "24");
}
