//! Promote's compare-and-swap on the normal path: staged from a base read
//! once, promoted by one move whose `RemoveFromVersionId` is the base.

use rekey::policy::Format;
use rekey::stores::{Promoted, SecretStore};
use secrecy::ExposeSecret;

use super::{key, raw_value, setup, stages, target, token};

#[tokio::test]
async fn a_promote_from_the_base_moves_current_and_leaves_no_pending() {
    let (client, store, name) = setup(Some("sk-old")).await;
    let t = target(&name, Format::Raw, false);
    let base = store.base(&t).await.expect("base");
    let version = store
        .stage_from(&t, &token(), &key("sk-new"), &base)
        .await
        .expect("stage_from");
    let pending = store
        .read_pending(&t)
        .await
        .expect("pending")
        .expect("some");
    assert_eq!(pending.key.expose_secret(), "sk-new");

    let promoted = store
        .promote_if(&t, &version, &base)
        .await
        .expect("promote");

    assert_eq!(promoted, Promoted::Done);
    assert_eq!(raw_value(&client, &name, "AWSCURRENT").await, "sk-new");
    assert_eq!(raw_value(&client, &name, "AWSPREVIOUS").await, "sk-old");
    let labels = stages(&client, &name).await;
    assert!(
        labels.values().flatten().all(|l| l != "AWSPENDING"),
        "{labels:?}"
    );
}

/// Someone puts a new current value after the base was read: AWS refuses
/// the move (its `RemoveFromVersionId` no longer holds `AWSCURRENT`), the
/// read back says so, and nothing of theirs is undone.
#[tokio::test]
async fn a_current_value_put_after_the_base_is_not_replaced() {
    let (client, store, name) = setup(Some("sk-old")).await;
    let t = target(&name, Format::Raw, false);
    let base = store.base(&t).await.expect("base");
    let version = store
        .stage_from(&t, &token(), &key("sk-new"), &base)
        .await
        .expect("stage_from");
    client
        .put_secret_value()
        .secret_id(&name)
        .secret_string("sk-theirs")
        .send()
        .await
        .expect("someone else's put");

    let promoted = store
        .promote_if(&t, &version, &base)
        .await
        .expect("promote");

    assert_eq!(promoted, Promoted::CurrentMoved);
    assert_eq!(raw_value(&client, &name, "AWSCURRENT").await, "sk-theirs");
    let labels = stages(&client, &name).await;
    assert!(
        !labels[&version].iter().any(|l| l == "AWSCURRENT"),
        "{labels:?}"
    );
}

/// A JSON value is built from the base's document: the other fields stay.
#[tokio::test]
async fn stage_from_builds_the_value_from_the_base() {
    let (client, store, name) = setup(Some(r#"{"OTHER": "x", "API_KEY": "sk-old"}"#)).await;
    let t = target(&name, Format::Json, false);
    let base = store.base(&t).await.expect("base");
    let version = store
        .stage_from(&t, &token(), &key("sk-new"), &base)
        .await
        .expect("stage_from");
    store
        .promote_if(&t, &version, &base)
        .await
        .expect("promote");
    assert_eq!(
        raw_value(&client, &name, "AWSCURRENT").await,
        r#"{"OTHER": "x", "API_KEY": "sk-new"}"#
    );
}
