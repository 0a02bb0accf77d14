//! The catch-up rows: a daemon started on a fleet with no key yet, until
//! every policy has its first key. Once against a provider allowing 50
//! management calls a second with `rate_limit = "50/s"` (wall against the
//! calls it made, 429s), and without a limit (wall, peak RSS, CPU) in
//! rounds, each next to a `run --once` on a fresh fleet of the same size:
//! on a shared 2-core machine one run's CPU varies by ~20% from the next,
//! so the two are compared over the same rounds, taken in turn.

use std::time::{Duration, Instant};

use rekey::sim::Faults;

use crate::child::{self, Log, arg};
use crate::row::wait_for_address;
use crate::setup::{Fleet, fleet};

/// The provider's (and rekey's) management calls a second in the rated row.
pub const RATE: u32 = 50;

pub struct CatchUp {
    pub n: usize,
    pub wall: Duration,
    pub management_calls: u64,
    pub throttled: u64,
    pub cpu: Duration,
    pub peak_rss_mib: f64,
    pub problems: u64,
    pub first_problem: Option<String>,
}

/// `n` first keys at `RATE` calls a second, on both sides.
pub async fn rated(n: usize) -> CatchUp {
    let faults = Faults {
        management_rate_per_sec: Some(RATE),
        ..Faults::default()
    };
    let line = format!("rate_limit = \"{RATE}/s\"");
    catch_up(fleet(n, faults, &line).await, n).await
}

/// `n` first keys, no limit anywhere.
pub async fn unlimited(n: usize) -> CatchUp {
    catch_up(fleet(n, Faults::default(), "").await, n).await
}

/// `run --once` giving `n` first keys on a fresh fleet, no limit.
pub async fn once(n: usize) -> child::Reaped {
    let fleet = fleet(n, Faults::default(), "").await;
    let within = Duration::from_secs(120) + Duration::from_millis(100 * n as u64);
    let started = Instant::now();
    let (process, log) = child::spawn(&["run", "-c", arg(&fleet.config), "--once"]);
    let pid = process.id();
    let ended = child::wait_until(within, || child::exited(pid)).await;
    assert!(ended, "run --once ended within {within:?}");
    let reaped = child::reap(process, started).await;
    assert!(reaped.success, "run --once succeeded");
    assert_eq!(
        Log::get(&log.rotated),
        n as u64,
        "run --once gave every policy its key"
    );
    reaped
}

async fn catch_up(fleet: Fleet, n: usize) -> CatchUp {
    let within = Duration::from_secs(120) + Duration::from_millis(100 * n as u64);
    let started = Instant::now();
    let (process, log) = child::spawn(&["run", "-c", arg(&fleet.config)]);
    let pid = process.id();
    wait_for_address(&log, within).await;
    let done = child::wait_until(within, || Log::get(&log.rotated) >= n as u64).await;
    assert!(
        done,
        "{} of {n} first keys within {within:?}; first problem: {:?}",
        Log::get(&log.rotated),
        log.first_problem.lock().unwrap()
    );
    let wall = started.elapsed();
    let cpu = child::cpu(pid);
    let peak_rss_mib = child::status_mib(pid, "VmHWM:");
    let stopped = child::stop(process, started).await;
    assert!(stopped.success, "the daemon stopped cleanly on SIGTERM");
    CatchUp {
        n,
        wall,
        management_calls: fleet.management_calls(),
        throttled: fleet.sim.sim.throttled_count(),
        cpu,
        peak_rss_mib,
        problems: Log::get(&log.problems),
        first_problem: log.first_problem.lock().unwrap().clone(),
    }
}
