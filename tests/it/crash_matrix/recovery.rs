//! Crashes during the orphan sweep and during recovery itself. The sweep
//! runs after a create whose answer could not be trusted (the simulator
//! makes the key, then answers 503) and when a restart finds a create that
//! may have landed unrecorded; a second crash hits the recovering run at
//! `resume` (its start), `sweep`, `begin` (a lost key's restart), `restage`
//! (the new staging, before its record) or `promote`. The invariants hold
//! after every crash, and the third run finishes the rotation.

use rekey::sim::{AfterEffect, Counted, CreateAnswer, Faults};

use super::{Fixture, Store};
use crate::helpers::Case;

/// (where `rotate` crashes, where the recovering `run --once` crashes).
const TWICE: &[(&str, &str)] = &[
    // An unrecorded create: the restart sweeps by rotation id.
    ("create:before-record", "resume"),
    ("create:before-record", "sweep"),
    // A key never stored: the restart deletes it and begins anew.
    ("create", "begin"),
    // Staged or verified: the restart stages again from the current value.
    ("stage", "restage"),
    ("verify", "restage"),
    // A promote that landed unrecorded: the restart records it.
    ("promote:before-record", "promote"),
    // Revoked, unrecorded: the restart confirms the revoke.
    ("revoke:before-record", "resume"),
];

/// Crashes `rotate` at `first`, the recovering `run --once` at `second`,
/// then recovers for real; the invariants after each.
async fn crash_twice(store: Store, first: &str, second: &str) {
    let (fx, old) = Fixture::new(&Case::openrouter(), store, "0s").await;
    let when = format!("{store:?}/{first} then {second}");

    fx.rotate_crashing_at(first).await;
    fx.assert_invariants_after_crash(&old, &format!("{when}, after the first crash"))
        .await;
    fx.crashing_at(&["run", "--once"], second).await;
    fx.assert_invariants_after_crash(&old, &format!("{when}, after the second crash"))
        .await;

    fx.env.cmd("run", &["--once"]).await.assert_code(0);
    fx.assert_rotated(&old, &format!("{when}, after the restart"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_crash_during_recovery_is_recovered_on_the_file_store() {
    for (first, second) in TWICE {
        crash_twice(Store::Files, first, second).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_crash_during_recovery_is_recovered_on_secrets_manager() {
    for (first, second) in TWICE {
        crash_twice(Store::Aws, first, second).await;
    }
}

/// The create made its key and answered 503, once.
fn ambiguous_create() -> Faults {
    Faults {
        after_effect: AfterEffect {
            create: Some(Counted::next(1, CreateAnswer::Unavailable)),
            ..AfterEffect::default()
        },
        ..Faults::default()
    }
}

/// The sweep after an ambiguous create dies after its first listing (which
/// found and deleted the key): the journal still marks the create
/// unconfirmed, so the restart sweeps again before it closes the rotation;
/// the create is never repeated blind, and the next rotation succeeds.
async fn crash_in_sweep(store: Store) {
    let (fx, old) = Fixture::new(&Case::openrouter(), store, "0s").await;
    fx.env.sim.sim.set_faults(ambiguous_create());
    let when = format!("{store:?}/sweep");

    fx.rotate_crashing_at("sweep").await;
    fx.assert_invariants_after_crash(&old, &format!("{when}, after the crash"))
        .await;
    let journal = fx.env.journal("p");
    assert!(
        journal["in_flight"]["unconfirmed_create"]["since"].is_string(),
        "{when}: the journal still marks the create unconfirmed: {journal}"
    );

    let recovered = fx.env.cmd("run", &["--once"]).await;
    assert_eq!(recovered.code, Some(1), "{when}: {}", recovered.stderr);
    assert!(
        recovered.stderr.contains("create_ambiguous"),
        "{when}: the restart closes the rotation as an ambiguous create:\n{}",
        recovered.stderr
    );
    let journal = fx.env.journal("p");
    assert!(journal["in_flight"].is_null(), "{when}: {journal}");
    assert_eq!(fx.current().await, old, "{when}: the old key stays current");
    assert_eq!(
        fx.env.live_secrets(),
        vec![old.clone()],
        "{when}: the old key alone is alive"
    );
    assert_eq!(
        fx.env.sim.sim.call_counts().get("create").copied(),
        Some(1),
        "{when}: a create that may have landed is never repeated blind"
    );

    fx.env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    fx.assert_rotated(&old, &format!("{when}, after the next rotation"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_the_sweep_of_an_ambiguous_create_is_swept_again_on_the_file_store() {
    crash_in_sweep(Store::Files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_the_sweep_of_an_ambiguous_create_is_swept_again_on_secrets_manager() {
    crash_in_sweep(Store::Aws).await;
}
