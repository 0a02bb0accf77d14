//! Issue 14, "zero downtime proven, not hoped": real consumers against the
//! real daemon (`rekey run`), moto as the store and the simulator as the
//! provider. A consumer is `tests/resources/consumer.py`, calling the
//! simulator's chat endpoint every 50 ms with the key it reads from moto —
//! through the AWS caching library (`aws_secretsmanager_caching`, asking for
//! `AWSCURRENT` explicitly) or, restart-only, once at its start — and
//! writing a JSON summary (calls, failures, status codes of failures, how
//! many distinct keys it used; never a key).
//!
//! Timing. Every policy rotates on `*/3 * * * * *` (P = 3 s: the daemon
//! rotates at the first tick after the current key was created; a grace
//! must be shorter than P). The caching library refreshes lazily: the first
//! get after its refresh time calls DescribeSecret, and it draws the next
//! refresh time as `randint(round(R/2), R)` seconds later (whole seconds
//! only). So after a promote at t0, a consumer with refresh R has the new
//! key by t0 + R + one call interval + a moto round trip.
//!
//! - Grace longer than the refresh: R = 1 s (refresh after 0 or 1 s),
//!   G = 2 s. The old key is revoked at t0 + 2 s at the earliest, about
//!   0.9 s (18 call intervals) after the consumer last used it at worst.
//!   20 rotations take about 60–65 s.
//! - Grace shorter than the refresh, with wait_idle: R = 4 s (refresh every
//!   2–4 s), G = 1 s, wait_idle W = 2 s, max_wait 30 s. The consumer may use
//!   the old key until t0 + 4 s; the daemon reads its spend at t0 + 1 s and
//!   every W after while it moves, and revokes at the first read that finds
//!   it unchanged since the one W before (so by about t0 + 7 s). A rotation
//!   takes 3–8 s; the test runs until 5 old keys are revoked and at least
//!   one of them was still in use after its grace (spend moved: wait_idle,
//!   not luck, kept it), which the 2–4 s refresh makes happen in about two
//!   rotations out of three.
//! - Grace shorter than the refresh, no wait_idle: the same consumer, G =
//!   1 s: the old key goes at t0 + 1 s while the consumer may keep it up to
//!   4 s, so a rotation passes without a failure only when the consumer
//!   happened to refresh within 1 s of the promote (about one in three).
//!   The test stops at the first failure (typically within one or two
//!   rotations, well under 15 s).
//! - Restart-only: an `exec` hook starts a new consumer (which reads
//!   `AWSCURRENT` once, at its start), then stops the old one and waits
//!   until it has written its final summary; revoke waits for the hook, so
//!   G = 1 s is enough. 5 rotations take about 15–20 s.
//!
//! The tests run in parallel with each other and the suite (about 70 s wall
//! together). Deadlines are generous for a loaded 2-core machine, but every
//! wait ends as soon as its condition holds, and a failed call ends it at
//! once. Every consumer summary and log, every hook environment dump and
//! the daemon's log are in the test's directory or captured, so the closing
//! `assert_no_secret_leaked` greps them all for every key the simulator
//! issued.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use rekey::sim::Api;

use crate::daemon_proc::RunningDaemon;
use crate::helpers::{TestEnv, policy};
use crate::moto::{moto_url, sm_client, unique_secret_name};

/// Every 3 seconds (6 fields, seconds first).
const SCHEDULE: &str = "*/3 * * * * *";
const MODEL: &str = "openai/gpt-4o-mini";
const CONSUMER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/resources/consumer.py");
/// How long a consumer may take to start calling (Python and boto3 load).
const STARTUP: Duration = Duration::from_secs(60);

/// The venv's Python, where `./scripts/test` installed moto and the caching
/// library (`REKEY_TEST_PYTHON`, which it exports).
fn python() -> String {
    std::env::var("REKEY_TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python3").to_string())
}

/// A consumer's summary as it last wrote it.
#[derive(Debug, Clone, Default)]
struct Summary {
    calls: u64,
    failures: u64,
    failure_samples: Vec<Value>,
    store_errors: u64,
    keys_seen: u64,
    elapsed: f64,
    done: bool,
}

fn read_summary(path: &Path) -> Option<Summary> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: Value = serde_json::from_str(&text).ok()?;
    Some(Summary {
        calls: doc["calls"].as_u64()?,
        failures: doc["failures"].as_u64()?,
        failure_samples: doc["failure_samples"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        store_errors: doc["store_errors"].as_u64().unwrap_or(0),
        keys_seen: doc["keys_seen"].as_u64()?,
        elapsed: doc["elapsed"].as_f64().unwrap_or(0.0),
        done: doc["final"].as_bool().unwrap_or(false),
    })
}

/// At least a fifth of the nominal 20 calls a second, start-up aside.
fn min_calls(elapsed: f64) -> u64 {
    (((elapsed - 5.0).max(0.0) * 4.0) as u64).max(50)
}

/// A seeded key, current in a new moto secret (`raw`), that policy `p`
/// rotates on [`SCHEDULE`].
struct Scenario {
    env: TestEnv,
    secret_id: String,
}

impl Scenario {
    async fn new() -> Scenario {
        let python = python();
        assert!(
            Path::new(&python).exists(),
            "{python} is missing: run ./scripts/test, which installs moto and aws-secretsmanager-caching into .venv"
        );
        let env = TestEnv::new().await;
        let (_, seeded) = env.seed_key("legacy");
        let secret_id = unique_secret_name("it/consumer");
        sm_client()
            .await
            .create_secret()
            .name(&secret_id)
            .secret_string(&seeded)
            .send()
            .await
            .expect("the secret is created in moto");
        Scenario { env, secret_id }
    }

    /// Writes the config: policy `p` with `lines` (revoke, on_promote).
    fn write_config(&self, lines: &str) {
        let target = format!(
            r#"{{ store = "aws", secret_id = "{}", format = "raw" }}"#,
            self.secret_id
        );
        let extra = format!("schedule = \"{SCHEDULE}\"\n{lines}");
        let text = policy("p", &target, &extra).replace("max_age = \"30d\"\n", "");
        self.env.write_config(&text);
    }

    fn chat_url(&self) -> String {
        format!("{}/chat/completions", self.env.sim.url(Api::OpenRouter))
    }

    /// The consumer's arguments but `--mode`, `--refresh`, `--out` and `--stop-file`.
    fn consumer_args(&self) -> Vec<String> {
        let (moto, chat) = (moto_url(), self.chat_url());
        let args: [&str; 14] = [
            "--region",
            "us-east-1",
            "--endpoint",
            moto.as_str(),
            "--secret-id",
            self.secret_id.as_str(),
            "--chat-url",
            chat.as_str(),
            "--model",
            MODEL,
            "--interval",
            "0.05",
            "--duration",
            "300",
        ];
        args.iter().map(|s| s.to_string()).collect()
    }
}

/// A caching consumer started by the test.
struct Consumer {
    child: tokio::process::Child,
    out: PathBuf,
    log: PathBuf,
}

impl Consumer {
    /// Starts a consumer reading the key through the caching library with
    /// `secret_refresh_interval = refresh` seconds.
    fn caching(s: &Scenario, refresh: u64) -> Consumer {
        let out = s.env.path("consumer.json");
        let log = s.env.path("consumer.log");
        let log_file = std::fs::File::create(&log).expect("consumer log file");
        let child = tokio::process::Command::new(python())
            .arg(CONSUMER)
            .args(s.consumer_args())
            .args(["--mode", "cache", "--refresh"])
            .arg(refresh.to_string())
            .arg("--out")
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file handle"))
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", python()));
        Consumer { child, out, log }
    }

    fn summary(&self) -> Summary {
        read_summary(&self.out).unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until it has made calls (with the seeded key).
    async fn wait_calling(&self) {
        wait_calling(&self.out, &self.log).await;
    }

    /// SIGTERM, then its final summary.
    async fn stop(mut self) -> Summary {
        if let Some(pid) = self.child.id() {
            // SAFETY: a signal to our own child process.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the consumer exits within 20 s of SIGTERM")
            .expect("wait for the consumer");
        let summary = self.summary();
        assert!(
            status.success() && summary.done,
            "the consumer exits 0 with a final summary ({status}): {summary:?}\nlog:\n{}",
            self.log()
        );
        summary
    }
}

/// Waits until the consumer writing `out` has made calls.
async fn wait_calling(out: &Path, log: &Path) {
    let deadline = Instant::now() + STARTUP;
    loop {
        let summary = read_summary(out);
        if summary.as_ref().is_some_and(|s| s.calls > 0) {
            return;
        }
        if Instant::now() >= deadline || summary.as_ref().is_some_and(|s| s.done) {
            panic!(
                "the consumer made no call within {STARTUP:?}: {summary:?}\nlog:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` every 200 ms until it gives `Some`; panics, with
/// `context` and the daemon's log, when the daemon exits or `within` passes.
async fn wait_for<T>(
    daemon: &mut RunningDaemon<'_>,
    within: Duration,
    what: &str,
    mut check: impl FnMut(&RunningDaemon<'_>) -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check(&*daemon) {
            return found;
        }
        let why = if !daemon.is_alive() {
            "the daemon exited"
        } else if Instant::now() >= deadline {
            "deadline passed"
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        panic!(
            "waiting for {what}: {why} ({within:?}); {}\ndaemon log:\n{}",
            context(),
            daemon.stderr()
        );
    }
}

/// Old keys the daemon revoked at the simulator so far.
fn revoked(daemon: &RunningDaemon<'_>) -> usize {
    daemon.logs_with("revoked old key").len()
}

/// Rotations where the old key's spend moved after the grace (still in use)
/// and `revoke.wait_idle` kept it.
fn busy_after_grace(daemon: &RunningDaemon<'_>) -> usize {
    let busy = daemon.logs_with("the old key is still in use; not revoked yet (revoke.wait_idle)");
    let moved = busy.iter().filter(|l| {
        (l["fields"]["why"].as_str()).is_some_and(|why| why.starts_with("spend moved"))
    });
    moved.count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caching_consumer_never_fails_in_twenty_rotations_with_a_grace_over_its_refresh() {
    let s = Scenario::new().await;
    s.write_config(r#"revoke = { grace = "2s", consumer_refresh = "1s" }"#);
    let consumer = Consumer::caching(&s, 1);
    consumer.wait_calling().await;
    let mut daemon = RunningDaemon::start(&s.env, &[]).await;

    wait_for(
        &mut daemon,
        Duration::from_secs(180),
        "20 old keys revoked",
        |d| (revoked(d) >= 20 || consumer.summary().failures > 0).then_some(()),
        || format!("consumer: {:?}", consumer.summary()),
    )
    .await;
    let revocations = revoked(&daemon);
    daemon.stop().await;
    let summary = consumer.stop().await;

    eprintln!(
        "continuity G>R: {} calls, {revocations} rotations, {} failures",
        summary.calls, summary.failures
    );
    assert_eq!(
        summary.failures, 0,
        "no call failed across {revocations} revocations (grace 2s > refresh 1s): {summary:?}"
    );
    assert!(revocations >= 20, "{revocations} old keys revoked");
    assert!(
        summary.calls >= min_calls(summary.elapsed),
        "the consumer kept calling every 50 ms: {summary:?}"
    );
    assert!(
        summary.keys_seen as usize >= revocations / 2,
        "the consumer picked up the new keys as they became current: {summary:?}"
    );
    assert_eq!(summary.store_errors, 0, "{summary:?}");
    s.env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grace_shorter_than_the_refresh_loses_no_call_when_wait_idle_holds_the_revoke() {
    let s = Scenario::new().await;
    s.write_config(
        r#"revoke = { grace = "1s", wait_idle = "2s", max_wait = "30s", consumer_refresh = "4s" }"#,
    );
    let consumer = Consumer::caching(&s, 4);
    consumer.wait_calling().await;
    let mut daemon = RunningDaemon::start(&s.env, &[]).await;

    wait_for(
        &mut daemon,
        Duration::from_secs(150),
        "5 old keys revoked, one of them still in use after its grace",
        |d| {
            let done = revoked(d) >= 5 && busy_after_grace(d) >= 1;
            (done || consumer.summary().failures > 0).then_some(())
        },
        || format!("consumer: {:?}", consumer.summary()),
    )
    .await;
    let (revocations, held) = (revoked(&daemon), busy_after_grace(&daemon));
    let forced = daemon.logs_with("revoking a busy old key: revoke.max_wait has passed");
    daemon.stop().await;
    let summary = consumer.stop().await;

    eprintln!(
        "continuity G<R with wait_idle: {} calls, {revocations} rotations ({held} held by wait_idle), {} failures",
        summary.calls, summary.failures
    );
    assert_eq!(
        summary.failures, 0,
        "no call failed across {revocations} revocations (grace 1s < refresh 4s, wait_idle 2s): {summary:?}"
    );
    assert!(
        revocations >= 5 && held >= 1,
        "{revocations} revoked, {held} held by wait_idle"
    );
    assert!(forced.is_empty(), "no old key was revoked busy: {forced:?}");
    assert!(
        summary.calls >= min_calls(summary.elapsed),
        "the consumer kept calling every 50 ms: {summary:?}"
    );
    assert!(summary.keys_seen >= 2, "{summary:?}");
    s.env.assert_no_secret_leaked();
}

/// The control: the same consumer and grace without `wait_idle` fails,
/// so the two tests above could have failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grace_shorter_than_the_refresh_without_wait_idle_fails_calls() {
    let s = Scenario::new().await;
    s.write_config(r#"revoke = { grace = "1s", consumer_refresh = "4s" }"#);
    let consumer = Consumer::caching(&s, 4);
    consumer.wait_calling().await;
    let mut daemon = RunningDaemon::start(&s.env, &[]).await;

    wait_for(
        &mut daemon,
        Duration::from_secs(90),
        "a failed call",
        |_| (consumer.summary().failures > 0).then_some(()),
        || format!("consumer: {:?}", consumer.summary()),
    )
    .await;
    let revocations = revoked(&daemon);
    let warned = daemon
        .stderr()
        .contains("is shorter than revoke.consumer_refresh");
    daemon.stop().await;
    let summary = consumer.stop().await;

    eprintln!(
        "continuity G<R without wait_idle: {} calls, {revocations} rotations, {} failures",
        summary.calls, summary.failures
    );
    assert!(summary.failures > 0, "{summary:?}");
    assert!(
        summary.failure_samples.contains(&Value::from(401)),
        "a revoked key is refused with 401: {summary:?}"
    );
    assert!(revocations >= 1, "the failures follow a revoke");
    assert!(warned, "the daemon warned of the gap at start");
    s.env.assert_no_secret_leaked();
}

/// `'...'` for sh.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The restart hook: dumps the environment rekey gave it, starts a new
/// restart-only consumer (it reads `AWSCURRENT` once, at its start; its
/// output goes to files, so it holds none of the hook's pipes), then stops
/// the old one and waits until it has written its final summary (it no
/// longer calls) or is gone. `dir/current` names the running instance
/// (pid, summary file); `dir/started` lists every instance.
fn restart_script(s: &Scenario, dir: &Path) -> String {
    let consumer: Vec<String> = [python(), CONSUMER.to_string()]
        .into_iter()
        .chain(s.consumer_args())
        .chain(["--mode".to_string(), "env".to_string()])
        .map(|arg| sh_quote(&arg))
        .collect();
    let text = format!(
        r#"#!/bin/sh
# Written by tests/it/consumers.rs: restarts the restart-only consumer.
dir={dir}
if [ -n "$REKEY_ROTATION_ID" ]; then
    tr '\0' '\n' < /proc/$$/environ > "$dir/hook-env-$REKEY_ROTATION_ID.txt"
fi
old_pid=
old_out=
if [ -f "$dir/current" ]; then
    read -r old_pid old_out < "$dir/current"
fi
n="$$-$(date +%s%N)"
out="$dir/consumer-$n.json"
{consumer} --stop-file "$dir/stop" --out "$out" < /dev/null > "$dir/consumer-$n.log" 2>&1 &
echo "$! $out" > "$dir/current.tmp"
mv "$dir/current.tmp" "$dir/current"
echo "$! $out" >> "$dir/started"
if [ -n "$old_pid" ]; then
    kill -TERM "$old_pid" 2>/dev/null
    i=0
    while [ "$i" -lt 200 ]; do
        grep -q '"final": true' "$old_out" 2>/dev/null && break
        state=$(cut -d ' ' -f 3 "/proc/$old_pid/stat" 2>/dev/null)
        if [ -z "$state" ] || [ "$state" = Z ]; then break; fi
        sleep 0.05
        i=$((i + 1))
    done
fi
exit 0
"#,
        dir = sh_quote(&dir.display().to_string()),
        consumer = consumer.join(" "),
    );
    let script = dir.join("restart.sh");
    std::fs::write(&script, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

/// The running instance's summary file and log.
fn current_instance(dir: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(dir.join("current")).expect("dir/current is written");
    let out = text
        .split_whitespace()
        .nth(1)
        .expect("pid and summary file");
    (
        PathBuf::from(out),
        PathBuf::from(out.replace(".json", ".log")),
    )
}

/// Every instance's summary so far, by file.
fn instances(dir: &Path) -> Vec<(PathBuf, Option<Summary>)> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|p| {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        name.starts_with("consumer-") && name.ends_with(".json")
    });
    found.sort();
    found
        .into_iter()
        .map(|p| (p.clone(), read_summary(&p)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_reading_the_key_at_start_restarted_by_an_exec_hook_never_fails() {
    let s = Scenario::new().await;
    let dir = s.env.path("restart");
    std::fs::create_dir_all(&dir).unwrap();
    let script = restart_script(&s, &dir);
    s.write_config(&format!(
        "revoke = {{ grace = \"1s\" }}\non_promote = [{{ exec = [{script:?}], timeout = \"30s\" }}]"
    ));
    // The first instance, started the way the hook starts the others.
    let path = std::env::var("PATH").unwrap_or_default();
    let first = tokio::process::Command::new(&script)
        .env_clear()
        .env("PATH", &path)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the restart script runs");
    assert!(first.status.success(), "{first:?}");
    let (out, log) = current_instance(&dir);
    wait_calling(&out, &log).await;
    let mut daemon = RunningDaemon::start(&s.env, &[]).await;

    let failing = || {
        let all = instances(&dir);
        all.iter()
            .any(|(_, sum)| sum.as_ref().is_some_and(|sum| sum.failures > 0))
    };
    wait_for(
        &mut daemon,
        Duration::from_secs(120),
        "5 old keys revoked",
        |d| (revoked(d) >= 5 || failing()).then_some(()),
        || format!("instances: {:?}", instances(&dir)),
    )
    .await;
    let revocations = revoked(&daemon);
    let hooks_ok = daemon.logs_with("on_promote hook succeeded").len();
    daemon.stop().await;

    // The instance the last hook started works with the key current now.
    let (out, log) = current_instance(&dir);
    wait_calling(&out, &log).await;
    std::fs::write(dir.join("stop"), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let all = loop {
        let all = instances(&dir);
        if all
            .iter()
            .all(|(_, sum)| sum.as_ref().is_some_and(|sum| sum.done))
        {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "every consumer stops within 30 s of the stop file: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let summaries: Vec<&Summary> = all.iter().filter_map(|(_, sum)| sum.as_ref()).collect();
    let failures: u64 = summaries.iter().map(|s| s.failures).sum();
    let calls: u64 = summaries.iter().map(|s| s.calls).sum();
    eprintln!(
        "continuity restart-only via exec hook: {calls} calls, {revocations} rotations, {} instances, {failures} failures",
        summaries.len()
    );
    assert_eq!(
        failures, 0,
        "no call failed across {revocations} revocations and restarts: {all:?}"
    );
    assert!(revocations >= 5, "{revocations} old keys revoked");
    assert!(
        hooks_ok >= revocations,
        "{hooks_ok} hooks for {revocations} revocations"
    );
    let started = std::fs::read_to_string(dir.join("started")).unwrap();
    assert!(
        started.lines().count() > revocations,
        "an instance per promote, and the first: {started}"
    );
    assert!(
        summaries.iter().all(|s| s.keys_seen <= 1),
        "a restart-only consumer uses one key: {all:?}"
    );
    let working = summaries.iter().filter(|s| s.calls > 0).count();
    assert!(
        working >= 2 && calls >= 20,
        "restarted instances called: {all:?}"
    );

    // What rekey gave the hook: PATH and the seven fields, nothing else.
    let dumps: Vec<PathBuf> = (crate::helpers::files_under(&dir).into_iter())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("hook-env-")
        })
        .collect();
    assert!(
        dumps.len() >= revocations,
        "{} hook runs dumped",
        dumps.len()
    );
    let want: BTreeSet<&str> = [
        "PATH",
        "REKEY_POLICY",
        "REKEY_ROTATION_ID",
        "REKEY_PROVIDER",
        "REKEY_STORE",
        "REKEY_SECRET_ID",
        "REKEY_KEY_ID",
        "REKEY_KEY_LABEL",
    ]
    .into();
    for dump in &dumps {
        let text = std::fs::read_to_string(dump).unwrap();
        let vars: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let names: BTreeSet<&str> = vars.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, want, "{}:\n{text}", dump.display());
        let value = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        assert_eq!(value("REKEY_POLICY"), Some("p"));
        assert_eq!(value("REKEY_STORE"), Some("aws"));
        assert_eq!(value("REKEY_PROVIDER"), Some("sim"));
        assert_eq!(value("REKEY_SECRET_ID"), Some(s.secret_id.as_str()));
        assert!(
            value("REKEY_KEY_ID").is_some_and(|id| !id.is_empty()),
            "{text}"
        );
    }
    s.env.assert_no_secret_leaked();
}
