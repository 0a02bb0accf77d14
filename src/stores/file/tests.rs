use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use tempfile::TempDir;

use super::FileStore;
use crate::policy::{Format, Target};
use crate::stores::{SecretStore, StoreError};

const ROTATION: &str = "0190f0c2-7b7e-7a6c-9d3e-4c1d2b3a4f5e";

fn target(format: Format, create: bool) -> Target {
    Target {
        store: "local".into(),
        secret_id: "prod/llm".into(),
        lease: crate::names::LeaseKey::aws("test", "prod/llm"),
        format,
        field: (format != Format::Raw).then(|| "API_KEY".to_string()),
        create,
    }
}

fn setup(current: Option<&str>) -> (TempDir, FileStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    if let Some(value) = current {
        fs::create_dir_all(dir.path().join("prod")).expect("mkdir");
        fs::write(dir.path().join("prod/llm"), value).expect("write");
    }
    let store = FileStore::new("local", dir.path());
    (dir, store)
}

fn key(s: &str) -> SecretString {
    SecretString::from(s)
}

fn shown(key: Option<SecretString>) -> Option<String> {
    key.map(|k| k.expose_secret().to_string())
}

fn file(dir: &TempDir, name: &str) -> Option<String> {
    fs::read_to_string(dir.path().join(name)).ok()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

async fn rotate(store: &FileStore, t: &Target, new: &str) {
    let version = store.stage(t, ROTATION, &key(new)).await.expect("stage");
    let pending = store
        .read_pending(t)
        .await
        .expect("read_pending")
        .expect("a pending version");
    assert_eq!(pending.version_id, version);
    assert_eq!(pending.key.expose_secret(), new);
    store.promote(t, &version).await.expect("promote");
}

#[tokio::test]
async fn every_format_round_trips_through_stage_and_promote() {
    let cases = [
        (Format::Raw, "sk-old"),
        (Format::Json, r#"{"API_KEY":"sk-old","x":1.10}"#),
        (Format::Env, "# app\nAPI_KEY=sk-old\nOTHER=1\n"),
    ];
    for (format, old) in cases {
        let (dir, store) = setup(Some(old));
        let t = target(format, false);
        assert_eq!(
            shown(store.read_current(&t).await.expect("current")).as_deref(),
            Some("sk-old")
        );
        rotate(&store, &t, "sk-new").await;
        assert_eq!(
            shown(store.read_current(&t).await.expect("current")).as_deref(),
            Some("sk-new")
        );
        assert_eq!(
            shown(store.read_previous(&t).await.expect("previous")).as_deref(),
            Some("sk-old")
        );
        assert!(store.read_pending(&t).await.expect("pending").is_none());
        assert!(file(&dir, "prod/llm.pending").is_none(), "{format:?}");
    }
}

#[tokio::test]
async fn json_keeps_other_fields_and_env_keeps_other_lines() {
    let json = "{\"a\": {\"b\": [1]}, \"API_KEY\": \"sk-old\", \"big\": 12345678901234567890}";
    let (dir, store) = setup(Some(json));
    rotate(&store, &target(Format::Json, false), "sk-new").await;
    assert_eq!(
        file(&dir, "prod/llm"),
        Some(json.replace("sk-old", "sk-new"))
    );

    let env = "# comment\nA=1\nAPI_KEY=sk-old\nB=\"two words\"\n";
    let (dir, store) = setup(Some(env));
    rotate(&store, &target(Format::Env, false), "sk-new").await;
    assert_eq!(
        file(&dir, "prod/llm"),
        Some(env.replace("sk-old", "sk-new"))
    );
}

#[tokio::test]
async fn files_are_0600_and_created_directories_0700() {
    let (dir, store) = setup(None);
    let t = target(Format::Raw, true);
    rotate(&store, &t, "sk-1").await;
    store
        .stage(&t, "0190f0c2-0000-7000-8000-000000000002", &key("sk-2"))
        .await
        .expect("stage");
    assert_eq!(mode(&dir.path().join("prod")), 0o700);
    for name in ["prod/llm", "prod/llm.pending", "prod/llm.versions.json"] {
        assert_eq!(mode(&dir.path().join(name)), 0o600, "{name}");
    }
    store
        .promote(&t, "0190f0c2-0000-7000-8000-000000000002")
        .await
        .expect("promote");
    assert_eq!(mode(&dir.path().join("prod/llm.previous")), 0o600);
}

#[tokio::test]
async fn a_current_value_that_is_not_a_json_object_stages_nothing() {
    let (dir, store) = setup(Some("[\"sk-old\"]"));
    let err = store
        .stage(&target(Format::Json, false), ROTATION, &key("sk-new"))
        .await
        .err();
    assert!(matches!(err, Some(StoreError::Shape { .. })), "{err:?}");
    assert!(file(&dir, "prod/llm.pending").is_none());
    assert!(file(&dir, "prod/llm.versions.json").is_none());
    assert_eq!(file(&dir, "prod/llm").as_deref(), Some("[\"sk-old\"]"));
}

#[tokio::test]
async fn a_missing_secret_is_not_found_unless_create_is_set() {
    let (dir, store) = setup(None);
    let t = target(Format::Json, false);
    assert!(matches!(
        store.read_current(&t).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.stage(&t, ROTATION, &key("k")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(file(&dir, "prod/llm.pending").is_none());

    let t = target(Format::Json, true);
    assert!(store.read_current(&t).await.expect("current").is_none());
    rotate(&store, &t, "sk-first").await;
    assert_eq!(
        file(&dir, "prod/llm").as_deref(),
        Some(r#"{"API_KEY":"sk-first"}"#)
    );
    assert!(store.read_previous(&t).await.expect("previous").is_none());
}

#[tokio::test]
async fn drop_pending_leaves_current_untouched() {
    let (dir, store) = setup(Some("sk-old"));
    let t = target(Format::Raw, false);
    store
        .drop_pending(&t)
        .await
        .expect("drop with nothing pending");
    store
        .stage(&t, ROTATION, &key("sk-new"))
        .await
        .expect("stage");
    store.drop_pending(&t).await.expect("drop");
    assert!(store.read_pending(&t).await.expect("pending").is_none());
    assert!(file(&dir, "prod/llm.pending").is_none());
    assert_eq!(
        shown(store.read_current(&t).await.expect("current")).as_deref(),
        Some("sk-old")
    );
    let err = store.promote(&t, ROTATION).await.err();
    assert!(matches!(err, Some(StoreError::Permanent { .. })), "{err:?}");
}

#[tokio::test]
async fn staging_twice_with_one_token_is_a_no_op_and_promoting_twice_too() {
    let (_dir, store) = setup(Some("sk-old"));
    let t = target(Format::Raw, false);
    let first = store
        .stage(&t, ROTATION, &key("sk-new"))
        .await
        .expect("stage");
    let again = store
        .stage(&t, ROTATION, &key("sk-new"))
        .await
        .expect("stage again");
    assert_eq!(first, again);
    let other = store.stage(&t, ROTATION, &key("sk-other")).await.err();
    assert!(
        matches!(other, Some(StoreError::Permanent { .. })),
        "token reuse must be refused"
    );

    store.promote(&t, &first).await.expect("promote");
    store.promote(&t, &first).await.expect("promote again");
    assert_eq!(
        store
            .stage(&t, ROTATION, &key("sk-new"))
            .await
            .expect("stage after"),
        first
    );
    assert_eq!(
        shown(store.read_current(&t).await.expect("current")).as_deref(),
        Some("sk-new")
    );
    assert_eq!(
        shown(store.read_previous(&t).await.expect("previous")).as_deref(),
        Some("sk-old")
    );
}

#[tokio::test]
async fn a_new_token_replaces_an_older_pending_version() {
    let (_dir, store) = setup(Some("sk-old"));
    let t = target(Format::Raw, false);
    store
        .stage(&t, ROTATION, &key("sk-a"))
        .await
        .expect("stage a");
    let b = store
        .stage(&t, "0190f0c2-0000-7000-8000-00000000000b", &key("sk-b"))
        .await
        .expect("stage b");
    let pending = store
        .read_pending(&t)
        .await
        .expect("pending")
        .expect("some");
    assert_eq!(
        (pending.version_id.as_str(), pending.key.expose_secret()),
        (b.as_str(), "sk-b")
    );
}

#[tokio::test]
async fn promote_resumes_after_a_crash_between_rename_and_bookkeeping() {
    let (dir, store) = setup(Some("sk-old"));
    let t = target(Format::Raw, false);
    let version = store
        .stage(&t, ROTATION, &key("sk-new"))
        .await
        .expect("stage");
    // Simulate the crash: steps (1) and (2) of promote done, (3) not.
    fs::write(dir.path().join("prod/llm.previous"), "sk-old").expect("previous");
    fs::rename(
        dir.path().join("prod/llm.pending"),
        dir.path().join("prod/llm"),
    )
    .expect("rename");
    store.promote(&t, &version).await.expect("promote resumes");
    assert_eq!(
        shown(store.read_current(&t).await.expect("current")).as_deref(),
        Some("sk-new")
    );
    assert_eq!(
        shown(store.read_previous(&t).await.expect("previous")).as_deref(),
        Some("sk-old")
    );
    assert!(store.read_pending(&t).await.expect("pending").is_none());
}

#[tokio::test]
async fn secret_ids_that_escape_the_directory_are_refused() {
    let (_dir, store) = setup(None);
    for id in [
        "../etc/passwd",
        "/etc/passwd",
        "prod/../../x",
        "",
        "prod/llm.pending",
        "./x",
    ] {
        let t = Target {
            secret_id: id.into(),
            lease: crate::names::LeaseKey::aws("test", id),
            ..target(Format::Raw, true)
        };
        let err = store.stage(&t, ROTATION, &key("k")).await.err();
        assert!(
            matches!(err, Some(StoreError::Permanent { .. })),
            "{id:?}: {err:?}"
        );
    }
}
