//! The provider creates or deletes, then answers badly (the simulator's
//! `after_effect` knobs), on both stores.

use rekey::sim::{AfterEffect, Counted, CreateAnswer, DeleteAnswer, Faults, ListAnswer};

use super::{Secret, assert_no_panic};
use crate::crash_matrix::Store;
use crate::helpers::TestEnv;

/// Every way a create that made its key can answer. `hang` outlasts the
/// test config's 5 s request timeout.
const CREATE_ANSWERS: [CreateAnswer; 6] = [
    CreateAnswer::InvalidJson,
    CreateAnswer::MissingSecret,
    CreateAnswer::MissingId,
    CreateAnswer::Html,
    CreateAnswer::Unavailable,
    CreateAnswer::Hang { hang_ms: 6_000 },
];

fn faults(after_effect: AfterEffect) -> Faults {
    Faults {
        after_effect,
        ..Faults::default()
    }
}

fn create_fault(answer: CreateAnswer, count: u32) -> AfterEffect {
    AfterEffect {
        create: Some(Counted::next(count, answer)),
        ..AfterEffect::default()
    }
}

/// The create made a key and answered `answer`: the rotation fails naming
/// the ambiguity (not "before any key was created"), the key it may have
/// made is found by the rotation id and deleted, the old key stays current
/// and alone; the next rotation succeeds with exactly one key left.
async fn an_ambiguous_create_leaves_no_orphan(store: Store, answer: CreateAnswer) {
    let env = TestEnv::with_faults(faults(create_fault(answer, 1))).await;
    let secret = Secret::new(env, store, "").await;
    let when = format!("{store:?}/{answer:?}");

    let failed = secret.rotate_now().await;
    assert_no_panic(&failed, &when);
    failed.assert_code(1);
    assert!(
        failed.stderr.contains("could not be trusted") && failed.stderr.contains("found 1 key"),
        "{when}: the failure names the ambiguous create and the key it found:\n{}",
        failed.stderr
    );
    assert!(
        !failed.stderr.contains("before any key was created"),
        "{when}: {}",
        failed.stderr
    );
    assert_eq!(secret.current().await.as_deref(), Some(secret.old.as_str()));
    assert_eq!(
        secret.env.live_secrets(),
        vec![secret.old.clone()],
        "{when}: the key the create made is deleted, the old key alone is alive"
    );
    assert_eq!(
        secret.env.sim.sim.call_counts().get("create").copied(),
        Some(1),
        "{when}: a create that may have landed is never repeated"
    );

    secret.rotate_until_ok(&when, 1).await;
}

#[tokio::test]
async fn ambiguous_creates_leave_no_orphan_on_the_file_store() {
    for answer in CREATE_ANSWERS {
        an_ambiguous_create_leaves_no_orphan(Store::Files, answer).await;
    }
}

#[tokio::test]
async fn ambiguous_creates_leave_no_orphan_on_secrets_manager() {
    for answer in CREATE_ANSWERS {
        an_ambiguous_create_leaves_no_orphan(Store::Aws, answer).await;
    }
}

/// A delete answered 404 while the key lives is not "gone": rekey reads it
/// back, and the old key is revoked for real before the rotation counts as
/// rotated (here after the lie has been told three times in a row, on the
/// next run).
async fn a_lying_delete_is_confirmed(store: Store) {
    let lie = AfterEffect {
        delete: Some(Counted::next(3, DeleteAnswer::NotFound)),
        ..AfterEffect::default()
    };
    let env = TestEnv::with_faults(faults(lie)).await;
    let secret = Secret::new(env, store, "").await;
    let when = format!("{store:?}/delete 404");

    let first = secret.rotate_now().await;
    assert_no_panic(&first, &when);
    first.assert_code(1);
    assert!(
        first.stderr.contains("delete_unconfirmed"),
        "{when}: {}",
        first.stderr
    );
    secret.assert_safe(&when).await;
    assert!(
        secret.env.live_secrets().contains(&secret.old),
        "{when}: the old key still lives, and rekey did not call it rotated"
    );
    assert_eq!(secret.env.journal("p")["in_flight"]["step"], "promoted");

    // An operator's (or the next pass's) run finishes the revoke for real.
    secret.rotate_until_ok(&when, 1).await;
}

#[tokio::test]
async fn a_404_on_delete_of_a_live_key_is_confirmed_on_the_file_store() {
    a_lying_delete_is_confirmed(Store::Files).await;
}

#[tokio::test]
async fn a_404_on_delete_of_a_live_key_is_confirmed_on_secrets_manager() {
    a_lying_delete_is_confirmed(Store::Aws).await;
}

/// The sweep after an ambiguous create meets a listing that pages forever:
/// the client stops it (bounded paging), the sweep lists again, finds the
/// key and deletes it.
#[tokio::test]
async fn a_listing_that_pages_forever_is_bounded_and_the_sweep_retries() {
    for store in [Store::Files, Store::Aws] {
        let mut after_effect = create_fault(CreateAnswer::Unavailable, 1);
        after_effect.list = Some(Counted::next(1, ListAnswer::Endless));
        let mut secret = Secret::new(TestEnv::new().await, store, "").await;
        secret.rotated_once_then(faults(after_effect)).await;
        let when = format!("{store:?}/endless listing");

        let failed = secret.rotate_now().await;
        assert_no_panic(&failed, &when);
        failed.assert_code(1);
        assert!(
            failed.stderr.contains("paging never ended"),
            "{when}: {}",
            failed.stderr
        );
        assert_eq!(secret.env.live_secrets(), vec![secret.old.clone()]);
        secret.rotate_until_ok(&when, 1).await;
    }
}

/// A sweep that cannot account for the maybe-created key within
/// `daemon.sweep_timeout` fails as `create_unconfirmed` and keeps the
/// rotation in flight; the next run sweeps again and finds the key.
#[tokio::test]
async fn a_create_that_cannot_be_accounted_for_fails_as_create_unconfirmed_and_is_swept_later() {
    let mut after_effect = create_fault(CreateAnswer::Unavailable, 1);
    after_effect.list = Some(Counted::always(ListAnswer::Endless));
    let env = TestEnv::new().await;
    let mut secret = Secret::new(env, Store::Files, "sweep_timeout = \"1s\"").await;
    secret.rotated_once_then(faults(after_effect)).await;
    let when = "create_unconfirmed";

    let failed = secret.rotate_now().await;
    assert_no_panic(&failed, when);
    failed.assert_code(1);
    assert!(
        failed.stderr.contains("create_unconfirmed"),
        "{}",
        failed.stderr
    );
    let journal = secret.env.journal("p");
    assert!(
        journal["in_flight"]["unconfirmed_create"]["since"].is_string(),
        "the rotation stays in flight until the key is accounted for: {journal}"
    );
    assert_eq!(
        secret.env.live_secrets().len(),
        2,
        "the made key still lives"
    );
    secret.assert_safe(when).await;

    secret.env.sim.sim.set_faults(Faults::default());
    let swept = secret.rotate_now().await;
    assert_no_panic(&swept, when);
    swept.assert_code(1);
    assert!(swept.stderr.contains("found 1 key"), "{}", swept.stderr);
    assert_eq!(secret.env.live_secrets(), vec![secret.old.clone()]);
    secret.rotate_until_ok(when, 1).await;
}

/// A panic inside a rotation (an injected one, standing for a bug) is a
/// failed rotation: `rotate` exits 1, the journal records it, and the next
/// run resumes from the journal (the panic message is printed by the hook).
#[tokio::test]
async fn a_panic_in_a_rotation_is_a_failed_rotation_that_resumes() {
    let env = TestEnv::new().await;
    let secret = Secret::new(env, Store::Files, "").await;
    let config = secret.env.config_path();
    let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];
    let out = secret
        .env
        .command(
            &args,
            &[
                ("REKEY_FAILPOINT", "stage"),
                ("REKEY_FAILPOINT_ACTION", "panic"),
            ],
        )
        .output()
        .await
        .unwrap();
    let run = secret.env.keep(out);
    run.assert_code(1);
    assert!(run.stderr.contains("panic"), "{}", run.stderr);
    let journal = secret.env.journal("p");
    assert_eq!(journal["last_result"]["kind"], "failed", "{journal}");
    assert_eq!(journal["failures"], 1, "{journal}");
    secret.assert_safe("after the panic").await;

    secret.rotate_until_ok("after the panic", 1).await;
}
