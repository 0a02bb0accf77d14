//! The daemon (`rekey run`, not `--once`) crashes: its key is overdue, it
//! rotates as soon as it starts and aborts at a step boundary. The
//! invariants hold right after the crash, and `run --once` finishes the
//! rotation.

use super::{Fixture, Store};
use crate::helpers::Case;

const DAEMON_POINTS: &[&str] = &["create:before-record", "stage", "promote:before-record"];

impl Fixture {
    /// The journal says the current key was made 40 days ago: past the
    /// policy's `max_age` (30d), so a starting daemon rotates at once.
    fn make_overdue(&self) {
        let mut journal = self.env.journal("p");
        let long_ago = chrono::Utc::now() - chrono::Duration::days(40);
        journal["current"]["created_at"] = serde_json::json!(long_ago);
        let path = self.env.path("state/policies/p.json");
        std::fs::write(path, serde_json::to_vec(&journal).unwrap()).unwrap();
    }
}

async fn crash_the_daemon(store: Store, point: &str) {
    let (fx, old) = Fixture::new(&Case::openrouter(), store, "0s").await;
    let when = format!("{store:?}/daemon/{point}");
    // Adopts the key a person made; nothing is due yet.
    fx.env.cmd("run", &["--once"]).await.assert_code(0);
    assert_eq!(
        fx.current().await,
        old,
        "{when}: not rotated before it is due"
    );
    fx.make_overdue();

    fx.crashing_at(&["run"], point).await;
    fx.assert_invariants_after_crash(&old, &format!("{when}, after the crash"))
        .await;
    let journal = fx.env.journal("p");
    assert!(
        journal["in_flight"]["id"].is_string(),
        "{when}: the daemon's rotation is in flight: {journal}"
    );

    fx.env.cmd("run", &["--once"]).await.assert_code(0);
    fx.assert_rotated(&old, &format!("{when}, after the restart"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_daemon_is_recovered_by_the_next_run_on_the_file_store() {
    for point in DAEMON_POINTS {
        crash_the_daemon(Store::Files, point).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_daemon_is_recovered_by_the_next_run_on_secrets_manager() {
    for point in DAEMON_POINTS {
        crash_the_daemon(Store::Aws, point).await;
    }
}
