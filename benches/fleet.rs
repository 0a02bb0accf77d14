//! Fleet benchmark (issue 13): the release `rekey` binary as a child process
//! against the in-process provider simulator, on the file store and the
//! file state, with N = 10, 1,000 and 10,000 policies. Per N: `rekey check`,
//! `rotate` of one policy, start to ready, the slowest `/healthz` answer
//! during a reload, and over an idle window of whole passes the RSS, the CPU
//! and the journal reads per pass (counted from two trace events the binary
//! logs: `journal read` and `pass`). Then the catch-up rows: 1,000 first
//! keys against a provider allowing 50 management calls a second with
//! `rate_limit = "50/s"`, and N first keys without a limit against
//! `run --once` on the same fresh config.
//!
//! Run with `cargo bench --bench fleet`. `FLEET_N=10,1000` picks the rows
//! (the largest is the unlimited catch-up; the rated one is at most 1,000),
//! `FLEET_IDLE_SECS` the idle window (default 65: at least two passes).
//! No assertions on time: it prints the measurements next to the targets.

use std::time::Duration;

#[path = "fleet/catch_up.rs"]
mod catch_up;
#[path = "fleet/child.rs"]
mod child;
#[path = "fleet/row.rs"]
mod row;
#[path = "fleet/setup.rs"]
mod setup;

use catch_up::{CatchUp, RATE};
use child::Reaped;
use row::Row;

fn sizes() -> Vec<usize> {
    let text = std::env::var("FLEET_N").unwrap_or_else(|_| "10,1000,10000".to_string());
    let mut sizes: Vec<usize> = (text.split(','))
        .map(|n| {
            n.trim()
                .parse()
                .expect("FLEET_N: whole numbers separated by commas")
        })
        .collect();
    sizes.sort_unstable();
    assert!(
        sizes.first().is_some_and(|n| *n >= 1),
        "FLEET_N: at least one size >= 1"
    );
    assert!(
        sizes.last().is_some_and(|n| *n <= 100_000),
        "FLEET_N: at most 100000"
    );
    sizes
}

fn idle_for() -> Duration {
    let secs: u64 = std::env::var("FLEET_IDLE_SECS")
        .map(|s| s.parse().expect("FLEET_IDLE_SECS: whole seconds"))
        .unwrap_or(65);
    Duration::from_secs(secs.clamp(1, 3600))
}

#[tokio::main]
async fn main() {
    let sizes = sizes();
    let idle_for = idle_for();
    let mut rows = Vec::new();
    for &n in &sizes {
        eprintln!("fleet: {n} policies...");
        rows.push(row::row(n, idle_for).await);
    }
    print_rows(&rows);

    let rated_n = sizes.last().copied().unwrap_or(1).min(1000);
    eprintln!("fleet: catch-up of {rated_n} first keys at {RATE}/s...");
    let rated = catch_up::rated(rated_n).await;
    let n = rows.last().expect("at least one row").n;
    let mut rounds = Vec::new();
    for round in 1..=ROUNDS {
        eprintln!("fleet: catch-up of {n} first keys, no limit, round {round} of {ROUNDS}...");
        let once = catch_up::once(n).await;
        rounds.push((catch_up::unlimited(n).await, once));
    }
    print_catch_up(&rated, &rounds);
}

/// Unlimited catch-ups, each with a `run --once` next to it.
const ROUNDS: usize = 2;

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn print_rows(rows: &[Row]) {
    println!(
        "\nfleet: release binary, simulator, file store and state; idle window of whole passes\n"
    );
    println!(
        "{:>7} {:>8} {:>9} {:>8} {:>10} {:>10} {:>9} {:>7} {:>14} {:>9}",
        "N",
        "check s",
        "rotate1 s",
        "ready s",
        "healthz s",
        "reload s",
        "idle MiB",
        "idle %",
        "reads/pass",
        "problems"
    );
    for row in rows {
        let idle = &row.idle;
        let per_pass = idle.journal_reads as f64 / idle.passes.max(1) as f64;
        println!(
            "{:>7} {:>8} {:>9} {:>8} {:>10} {:>10} {:>9.1} {:>7.2} {:>14} {:>9}",
            row.n,
            secs(row.check),
            secs(row.rotate_one),
            secs(row.ready),
            secs(row.healthz_worst),
            secs(row.reload),
            idle.rss_mib,
            idle.cpu_percent,
            format!("{per_pass:.1} ({}/{})", idle.journal_reads, idle.passes),
            row.problems,
        );
    }
    println!(
        "{:>7} {:>8} {:>9} {:>8} {:>10} {:>10} {:>9} {:>7} {:>14}",
        "target", "< 1", "< 1", "< 2", "< 1", "-", "<= 64", "< 1", "0"
    );
    println!("\nidle windows (s): {}", {
        let windows: Vec<String> = rows.iter().map(|r| secs(r.idle.window)).collect();
        windows.join(", ")
    });
    println!("run --once, every policy's first key (the rows' set-up):");
    for row in rows {
        println!(
            "  N={:>6}: wall {} s, CPU {} s ({:.2} ms/rotation), peak RSS {:.1} MiB",
            row.n,
            secs(row.once.wall),
            secs(row.once.cpu),
            row.once.cpu.as_secs_f64() * 1000.0 / row.n as f64,
            row.once.max_rss_mib,
        );
    }
    for row in rows.iter().filter(|r| r.first_problem.is_some()) {
        println!(
            "  N={}: first warning/error: {:?}",
            row.n, row.first_problem
        );
    }
}

fn print_catch_up(rated: &CatchUp, rounds: &[(CatchUp, Reaped)]) {
    let ideal = rated.management_calls as f64 / f64::from(RATE);
    let ratio = rated.wall.as_secs_f64() / ideal.max(f64::MIN_POSITIVE);
    let throttled_pct = 100.0 * rated.throttled as f64 / rated.management_calls.max(1) as f64;
    println!(
        "\ncatch-up of {} first keys at {RATE}/s (provider and rate_limit):",
        rated.n
    );
    println!(
        "  wall {} s, management calls {}, calls/{RATE} = {ideal:.2} s, wall/(calls/{RATE}) = {ratio:.3} \
         (target <= 1.1), 429s {} = {throttled_pct:.2}% (target < 1%), warnings/errors {}",
        secs(rated.wall),
        rated.management_calls,
        rated.throttled,
        rated.problems,
    );
    let per_rotation = |cpu: Duration, n: usize| cpu.as_secs_f64() * 1000.0 / n as f64;
    let n = rounds[0].0.n;
    println!("catch-up of {n} first keys, no limit (daemon, and `run --once` on a fresh fleet):");
    for (i, (daemon, once)) in rounds.iter().enumerate() {
        println!(
            "  round {}: wall {} s, peak RSS {:.1} MiB, daemon CPU {:.2} ms/rotation; \
             run --once wall {} s, CPU {:.2} ms/rotation, peak RSS {:.1} MiB; warnings/errors {}",
            i + 1,
            secs(daemon.wall),
            daemon.peak_rss_mib,
            per_rotation(daemon.cpu, n),
            secs(once.wall),
            per_rotation(once.cpu, n),
            once.max_rss_mib,
            daemon.problems,
        );
    }
    let total = |cpu: fn(&(CatchUp, Reaped)) -> Duration| {
        per_rotation(rounds.iter().map(cpu).sum(), n * rounds.len())
    };
    let peak = rounds.iter().map(|r| r.0.peak_rss_mib).fold(0.0, f64::max);
    println!(
        "  over the rounds: peak RSS {peak:.1} MiB (target <= 96), daemon CPU {:.2} ms/rotation \
         vs run --once {:.2} ms/rotation (target: daemon <= once)",
        total(|r| r.0.cpu),
        total(|r| r.1.cpu),
    );
    for c in std::iter::once(rated).chain(rounds.iter().map(|r| &r.0)) {
        if let Some(problem) = &c.first_problem {
            println!("  N={}: first warning/error: {problem}", c.n);
        }
    }
    println!("store calls per rotation: see `cargo bench --bench rotation`");
}
