//! The release `rekey` binary as a child process: its JSON log lines
//! counted as they arrive (journal reads, passes, rotations, reloads,
//! warnings), its CPU and memory read from `/proc`, and a one-shot run
//! reaped with `wait4` for the CPU and peak memory the kernel accounted.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The daemon's log filter: rekey's info lines plus the two trace events
/// the bench counts (`journal read`, `pass`).
pub const RUST_LOG: &str =
    "info,hyper=warn,reqwest=warn,rekey::state::journal=trace,rekey::daemon::pass=trace";

/// What the log lines said so far.
#[derive(Default)]
pub struct Log {
    pub journal_reads: AtomicU64,
    pub passes: AtomicU64,
    pub rotated: AtomicU64,
    pub reloads: AtomicU64,
    pub problems: AtomicU64,
    pub first_problem: Mutex<Option<String>>,
    pub address: Mutex<Option<String>>,
}

impl Log {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }

    fn line(&self, line: &str) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            return;
        };
        let fields = &value["fields"];
        match fields["message"].as_str().unwrap_or_default() {
            "journal read" => bump(&self.journal_reads),
            "pass" => bump(&self.passes),
            "rotated" | "promoted; old key revoked after the grace" => bump(&self.rotated),
            "config reloaded" => bump(&self.reloads),
            "admin API listening" => {
                let address = fields["address"].as_str().map(str::to_string);
                *self.address.lock().unwrap() = address;
            }
            _ => {}
        }
        if matches!(value["level"].as_str(), Some("WARN" | "ERROR")) {
            bump(&self.problems);
            let mut first = self.first_problem.lock().unwrap();
            first.get_or_insert_with(|| line.chars().take(400).collect());
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::SeqCst);
}

/// Reads `stream` line by line into `log` on its own thread.
fn collect(stream: impl Read + Send + 'static, log: Arc<Log>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            log.line(&line);
        }
    });
}

/// A running child; killed if the bench panics before it was reaped.
pub struct Proc(Option<Child>);

impl Proc {
    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("not reaped yet").id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `rekey --log-format json <args>` with the management key on file and
/// stderr counted into the returned log.
pub fn spawn(args: &[&str]) -> (Proc, Arc<Log>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rekey"))
        .args(["--log-format", "json"])
        .args(args)
        .env("RUST_LOG", RUST_LOG)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the rekey binary starts");
    let log = Arc::new(Log::default());
    collect(child.stderr.take().expect("piped"), log.clone());
    (Proc(Some(child)), log)
}

/// What the kernel accounted for a process that exited.
pub struct Reaped {
    pub wall: Duration,
    pub cpu: Duration,
    pub max_rss_mib: f64,
    pub success: bool,
}

/// SIGTERM, then SIGKILL if it has not exited within a minute; reaped.
pub async fn stop(process: Proc, started: Instant) -> Reaped {
    let pid = process.id();
    // SAFETY: signalling our own child, not reaped yet.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    if !wait_until(Duration::from_secs(60), || exited(pid)).await {
        // SAFETY: as above.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    reap(process, started).await
}

/// Whether the (unreaped) child has exited: a zombie.
pub fn exited(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .is_some_and(|at| stat[at + 1..].trim_start().starts_with('Z'))
}

/// Waits for `process` (started at `started`) with `wait4`, off the async workers.
pub async fn reap(mut process: Proc, started: Instant) -> Reaped {
    let child = process.0.take().expect("not reaped yet");
    let pid = child.id() as libc::pid_t;
    tokio::task::spawn_blocking(move || {
        let mut status = 0;
        // SAFETY: plain struct the kernel fills in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waiting for our own child; `child` is never waited through std.
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        assert_eq!(got, pid, "wait4 on the rekey child");
        drop(child);
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        Reaped {
            wall: started.elapsed(),
            cpu: time(usage.ru_utime) + time(usage.ru_stime),
            max_rss_mib: usage.ru_maxrss as f64 / 1024.0,
            success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        }
    })
    .await
    .expect("wait4 thread")
}

/// CPU time (user + system) the process has used so far.
pub fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / per_sec)
}

/// A `VmRSS`/`VmHWM`-style line of `/proc/PID/status`, in MiB.
pub fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let line = (status.lines())
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number of kB");
    kib / 1024.0
}

/// Polls `done` every 10 ms until it holds or `within` passes.
pub async fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `rekey <args>` to the end; its wall time. Panics with its output if it fails.
pub async fn timed(args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rekey"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the rekey binary runs");
    let wall = started.elapsed();
    assert!(
        out.status.success(),
        "rekey {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout)
            .chars()
            .take(2000)
            .collect::<String>(),
        String::from_utf8_lossy(&out.stderr)
            .chars()
            .take(2000)
            .collect::<String>()
    );
    wall
}

/// A path as the argument the binary takes.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}
