//! One row of the fleet table: `check`, `run --once` (every policy's first
//! key), `rotate` of one policy, then the daemon: start to ready, an idle
//! window of whole passes (RSS, CPU, journal reads), and a reload while
//! `/healthz` is polled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rekey::sim::Faults;

use crate::child::{self, Log, Reaped, arg};
use crate::setup::{fleet, policy_name};

pub struct Row {
    pub n: usize,
    pub check: Duration,
    pub once: Reaped,
    pub rotate_one: Duration,
    pub ready: Duration,
    pub idle: Idle,
    pub healthz_worst: Duration,
    pub reload: Duration,
    pub problems: u64,
    pub first_problem: Option<String>,
}

pub struct Idle {
    pub window: Duration,
    pub passes: u64,
    pub journal_reads: u64,
    pub rss_mib: f64,
    pub cpu_percent: f64,
}

/// Generous bounds on how long each phase may take before the bench gives up.
fn deadline(n: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(20 * n as u64)
}

pub async fn row(n: usize, idle_for: Duration) -> Row {
    let fleet = fleet(n, Faults::default(), "").await;
    let config = arg(&fleet.config);
    let check = child::timed(&["check", "-c", config]).await;

    let started = Instant::now();
    let (process, log) = child::spawn(&["run", "-c", config, "--once"]);
    let pid = process.id();
    let ended = child::wait_until(deadline(n), || child::exited(pid)).await;
    assert!(ended, "run --once ended within {:?}", deadline(n));
    let once = child::reap(process, started).await;
    let rotated = Log::get(&log.rotated);
    assert!(once.success, "run --once failed ({rotated} of {n} rotated)");
    assert_eq!(rotated, n as u64, "run --once gave every policy its key");
    let once_problems = Log::get(&log.problems);
    let once_first = log.first_problem.lock().unwrap().clone();

    let first = policy_name(0);
    let rotate_one = child::timed(&["rotate", "-c", config, &first, "--now"]).await;

    let started = Instant::now();
    let (process, log) = child::spawn(&["run", "-c", config]);
    let pid = process.id();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client");
    let address = wait_for_address(&log, deadline(n)).await;
    let ready = loop {
        let answer = http.get(format!("http://{address}/readyz")).send().await;
        if answer.is_ok_and(|a| a.status().is_success()) {
            break started.elapsed();
        }
        assert!(started.elapsed() < deadline(n), "ready within the deadline");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    let idle = idle_window(pid, &log, idle_for).await;
    let (healthz_worst, reload) = reload_under_probe(&fleet, pid, &log, &http, &address).await;

    let stopped = child::stop(process, started).await;
    assert!(stopped.success, "the daemon stopped cleanly on SIGTERM");
    let problems = once_problems + Log::get(&log.problems);
    Row {
        n,
        check,
        once,
        rotate_one,
        ready,
        idle,
        healthz_worst,
        reload,
        problems,
        first_problem: once_first.or_else(|| log.first_problem.lock().unwrap().clone()),
    }
}

pub async fn wait_for_address(log: &Log, within: Duration) -> String {
    let found = child::wait_until(within, || log.address.lock().unwrap().is_some()).await;
    assert!(found, "the daemon logged its admin address");
    log.address.lock().unwrap().clone().expect("address")
}

/// From the end of the first pass (which reads every journal once) over at
/// least `idle_for`, ending at a pass too: whole idle passes only.
async fn idle_window(pid: u32, log: &Log, idle_for: Duration) -> Idle {
    let passed = child::wait_until(Duration::from_secs(600), || Log::get(&log.passes) >= 1).await;
    assert!(passed, "the first pass ended");
    let (passes, reads) = (Log::get(&log.passes), Log::get(&log.journal_reads));
    let (cpu, at) = (child::cpu(pid), Instant::now());
    tokio::time::sleep(idle_for).await;
    let last = Log::get(&log.passes);
    let next = child::wait_until(Duration::from_secs(60), || Log::get(&log.passes) > last).await;
    assert!(next, "the loop passes at least every 30 s");
    let window = at.elapsed();
    let used = child::cpu(pid).saturating_sub(cpu);
    Idle {
        window,
        passes: Log::get(&log.passes) - passes,
        journal_reads: Log::get(&log.journal_reads) - reads,
        rss_mib: child::status_mib(pid, "VmRSS:"),
        cpu_percent: 100.0 * used.as_secs_f64() / window.as_secs_f64(),
    }
}

/// Edits one policy and sends SIGHUP while `/healthz` is asked back to back;
/// the slowest answer, and how long the reload took to be logged.
async fn reload_under_probe(
    fleet: &crate::setup::Fleet,
    pid: u32,
    log: &Log,
    http: &reqwest::Client,
    address: &str,
) -> (Duration, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let (stop, http, url) = (
            stop.clone(),
            http.clone(),
            format!("http://{address}/healthz"),
        );
        tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            while !stop.load(Ordering::SeqCst) {
                let asked = Instant::now();
                let answer = http.get(&url).send().await;
                assert!(
                    answer.is_ok_and(|a| a.status().is_success()),
                    "/healthz answered 200"
                );
                worst = worst.max(asked.elapsed());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            worst
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = Log::get(&log.reloads);
    fleet.edit_one();
    let signalled = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGHUP) };
    let reloaded =
        child::wait_until(Duration::from_secs(120), || Log::get(&log.reloads) > before).await;
    assert!(reloaded, "the config was reloaded");
    let reload = signalled.elapsed();
    // The pass the reload wakes looks at the changed policy: keep probing through it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    (probe.await.expect("probe task"), reload)
}
