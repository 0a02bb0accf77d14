//! Invariant 5 across processes, with the overlap forced instead of hoped
//! for: process 1 (`rotate --now`) takes the secret's lease and pauses
//! there (failpoint `lease:held`, action `pause`); while it pauses, process
//! 2 (`rotate --now` on the same secret) is told the secret is busy and
//! changes nothing. Process 1 then finishes: exactly one key was created,
//! one rotation recorded, and the invariants hold.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{Fixture, Store};
use crate::daemon_proc::wait_until;
use crate::helpers::Case;

/// How long process 1 holds the lease without doing anything: long enough
/// for process 2 to start and be turned away on a loaded machine.
const PAUSE_MS: &str = "4000";

/// Collects a child's pipe line by line while it runs.
fn collect(pipe: impl AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}

async fn forced_overlap(store: Store) {
    let (fx, old) = Fixture::new(&Case::openrouter(), store, "0s").await;
    let when = format!("{store:?}/lease overlap");
    let config = fx.env.config_path();
    let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];
    let paused = [
        ("REKEY_FAILPOINT", "lease:held"),
        ("REKEY_FAILPOINT_ACTION", "pause"),
        ("REKEY_FAILPOINT_PAUSE_MS", PAUSE_MS),
    ];
    let mut first = fx
        .env
        .command(&args, &paused)
        .spawn()
        .expect("rekey starts");
    let stdout = collect(first.stdout.take().unwrap());
    let stderr = collect(first.stderr.take().unwrap());
    let holding = wait_until(Duration::from_secs(30), || {
        let text = stderr.lock().unwrap();
        text.contains("failpoint lease:held: pausing").then_some(())
    })
    .await;
    assert!(
        holding.is_some(),
        "{when}: process 1 took the lease and paused within 30 s; stderr:\n{}",
        stderr.lock().unwrap()
    );

    let second = fx.env.cmd("rotate", &["p", "--now"]).await;
    assert_eq!(
        second.code,
        Some(1),
        "{when}: process 2 is turned away; stderr:\n{}",
        second.stderr
    );
    assert!(
        second
            .stderr
            .contains("busy: another process is rotating this secret"),
        "{when}: process 2 says the secret is busy:\n{}",
        second.stderr
    );
    assert!(
        !stderr
            .lock()
            .unwrap()
            .contains("failpoint lease:held: resuming"),
        "{when}: process 2 ran while process 1 still paused holding the lease"
    );
    assert_eq!(
        fx.current().await,
        old,
        "{when}: nothing rotated during the pause"
    );

    let status = tokio::time::timeout(Duration::from_secs(60), first.wait())
        .await
        .expect("process 1 finished within 60 s")
        .expect("wait");
    // The readers end once the pipes close.
    let closed = wait_until(Duration::from_secs(5), || {
        (Arc::strong_count(&stderr) == 1 && Arc::strong_count(&stdout) == 1).then_some(())
    })
    .await;
    assert!(closed.is_some(), "{when}: process 1's pipes closed");
    let first = fx.env.keep(std::process::Output {
        status,
        stdout: stdout.lock().unwrap().clone().into_bytes(),
        stderr: stderr.lock().unwrap().clone().into_bytes(),
    });
    first.assert_code(0);

    assert_eq!(
        fx.env.sim.sim.call_counts().get("create").copied(),
        Some(1),
        "{when}: exactly one key was created"
    );
    let journal = fx.env.journal("p");
    let history = journal["history"].as_array().expect("a history");
    assert_eq!(history.len(), 1, "{when}: one rotation: {journal}");
    fx.assert_rotated(&old, &when).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_is_turned_away_while_the_first_holds_the_lease_on_the_file_store() {
    forced_overlap(Store::Files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_is_turned_away_while_the_first_holds_the_lease_on_secrets_manager() {
    forced_overlap(Store::Aws).await;
}
