//! A fleet-sized reload (3,000 policies) runs its parse and validation off
//! the async workers: `/healthz`, polled every 50 ms throughout, keeps
//! answering promptly, and the reload is applied.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::daemon_proc::{
    RunningDaemon, TOKEN_ENV, token_line, wait_for_history, write_config_with_daemon,
};
use crate::helpers::{TestEnv, policy};

const TOKEN: &str = "it-fleet-reload-token-7d41";
const WATCHING: &str = "reloading the config on SIGHUP or when the file changes";
/// Policies added by the reload.
const FLEET: usize = 3_000;
/// Generous for a loaded 2-core machine; a reload that holds the worker
/// for its whole validation takes seconds.
const SLOWEST_POLL: Duration = Duration::from_secs(1);

fn policies(fleet: usize) -> String {
    let first = policy(
        "p",
        r#"{ store = "files", secret_id = "p", create = true }"#,
        "",
    );
    let rest = (0..fleet).map(|i| {
        policy(
            &format!("f{i}"),
            &format!(r#"{{ store = "files", secret_id = "fleet/f{i}", create = true }}"#),
            "schedule = \"0 3 * * *\"\ntimezone = \"Europe/Berlin\"\n",
        )
    });
    std::iter::once(first).chain(rest).collect()
}

fn write(env: &TestEnv, fleet: usize) {
    // One rotation at a time: the fleet's first keys after the reload must
    // not crowd the machine while the daemon shuts down.
    let daemon = format!("{}\nmax_concurrent_rotations = 1", token_line());
    write_config_with_daemon(env, &daemon, &policies(fleet));
}

/// Polls `/healthz` every 50 ms until `stop`; each poll's latency.
fn poll_healthz(url: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<Duration>> {
    tokio::spawn(async move {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut took = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            let answer = http.get(&url).timeout(Duration::from_secs(10)).send().await;
            took.push(started.elapsed());
            let status = answer.map(|r| r.status().as_u16());
            assert_eq!(status.ok(), Some(200), "/healthz answers 200 throughout");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        took
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_reload_is_validated_off_the_workers_and_healthz_keeps_answering() {
    let env = TestEnv::new().await;
    write(&env, 0);
    // One async worker: a reload that parsed on it would stall every request.
    let envs = [(TOKEN_ENV, TOKEN), ("TOKIO_WORKER_THREADS", "1")];
    let daemon = RunningDaemon::start(&env, &envs).await;
    wait_for_history(&env, "p", 1).await;
    daemon.wait_for_log(WATCHING).await;

    let stop = Arc::new(AtomicBool::new(false));
    let polls = poll_healthz(daemon.url("/healthz"), stop.clone());
    write(&env, FLEET);
    daemon.signal(libc::SIGHUP);
    let reloaded = daemon
        .wait_for_log_where("config reloaded", |l| l["fields"]["cause"] == "SIGHUP")
        .await;
    stop.store(true, Ordering::SeqCst);
    let took = polls.await.expect("the poller ran to the end");

    assert_eq!(
        reloaded["fields"]["policies"].as_u64(),
        Some(FLEET as u64 + 1),
        "{reloaded}"
    );
    let slowest = took.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < SLOWEST_POLL,
        "a /healthz poll took {slowest:?} during the reload ({} polls)",
        took.len()
    );
    assert!(!took.is_empty(), "/healthz was polled during the reload");
    daemon.stop().await;
}
