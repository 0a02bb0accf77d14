//! `rekey run` as a long-lived child process: started with JSON logs, its
//! admin address read from the "admin API listening" line, its stderr
//! collected while it runs (and handed to the `TestEnv` at the end, so
//! `assert_no_secret_leaked` sees it), signals sent to it by pid.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::helpers::TestEnv;

pub const TOKEN_ENV: &str = "REKEY_IT_ADMIN_TOKEN";

/// Writes the test config with extra `[daemon]` lines (e.g. `admin_token`).
pub fn write_config_with_daemon(env: &TestEnv, daemon_lines: &str, policies: &str) {
    env.write_config(policies);
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let text = text.replacen("[daemon]\n", &format!("[daemon]\n{daemon_lines}\n"), 1);
    std::fs::write(env.config_path(), text).unwrap();
}

/// The `[daemon]` line pointing the admin token at [`TOKEN_ENV`].
pub fn token_line() -> String {
    format!("admin_token = \"env:{TOKEN_ENV}\"")
}

pub struct RunningDaemon<'a> {
    env: &'a TestEnv,
    child: tokio::process::Child,
    pub pid: i32,
    pub addr: SocketAddr,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    http: reqwest::Client,
}

impl<'a> RunningDaemon<'a> {
    /// Starts `rekey run` on the env's config, with `envs` set, and waits
    /// for its admin API to listen.
    pub async fn start(env: &'a TestEnv, envs: &[(&str, &str)]) -> RunningDaemon<'a> {
        let config = env.config_path();
        let args = [
            "--log-format",
            "json",
            "run",
            "-c",
            config.to_str().unwrap(),
        ];
        let mut child = env.command(&args, envs).spawn().expect("rekey run starts");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let pid = child.id().expect("running") as i32;
        let mut daemon = RunningDaemon {
            env,
            child,
            pid,
            addr: "0.0.0.0:0".parse().unwrap(),
            stdout,
            stderr,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        };
        let line = daemon.wait_for_log("admin API listening").await;
        daemon.addr = line["fields"]["address"].as_str().unwrap().parse().unwrap();
        daemon
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("GET")
    }

    /// `POST path` with an optional bearer token and JSON body.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        request.send().await.expect("POST")
    }

    /// Everything logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Every JSON log line so far.
    pub fn log_lines(&self) -> Vec<Value> {
        let text = self.stderr.lock().unwrap().clone();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Log lines whose message is `message`.
    pub fn logs_with(&self, message: &str) -> Vec<Value> {
        let lines = self.log_lines().into_iter();
        lines
            .filter(|l| l["fields"]["message"] == message)
            .collect()
    }

    /// Waits (up to 30 s) for a log line with this message; returns it.
    pub async fn wait_for_log(&self, message: &str) -> Value {
        self.wait_for_log_where(message, |_| true).await
    }

    pub async fn wait_for_log_where(&self, message: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let found = wait_until(Duration::from_secs(30), || {
            self.logs_with(message).into_iter().find(|l| pred(l))
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "no log line {message:?} within 30 s; stderr:\n{}",
                self.stderr.lock().unwrap()
            )
        })
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.pid, signal) };
    }

    /// Whether the process is still the one we started (no restart, no exit).
    pub fn is_alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits for the process to exit (up to `within`) and hands its output
    /// to the env.
    pub async fn wait_exit(mut self, within: Duration) -> Exited {
        let started = Instant::now();
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("rekey run did not exit within {within:?}"))
            .expect("wait");
        let elapsed = started.elapsed();
        // The readers finish once the pipes close.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stderr = self.stderr();
        self.env.keep(std::process::Output {
            status,
            stdout: self.stdout.lock().unwrap().clone().into_bytes(),
            stderr: stderr.clone().into_bytes(),
        });
        Exited {
            code: status.code(),
            elapsed,
            stderr,
        }
    }

    /// SIGTERM, then [`RunningDaemon::wait_exit`]; asserts a clean exit.
    pub async fn stop(self) {
        self.signal(libc::SIGTERM);
        let exited = self.wait_exit(Duration::from_secs(20)).await;
        assert_eq!(exited.code, Some(0), "rekey run exits 0 after SIGTERM");
    }
}

pub struct Exited {
    pub code: Option<i32>,
    /// From the wait's start to the exit.
    pub elapsed: Duration,
    pub stderr: String,
}

pub fn collect(pipe: impl AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<String>> {
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

/// Polls `check` every 100 ms until it returns `Some` or `within` passes.
pub async fn wait_until<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The journal of `policy`, or `Null` while it does not exist yet.
pub fn journal(env: &TestEnv, policy: &str) -> Value {
    let path = env.path(&format!("state/policies/{policy}.json"));
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// Finished rotations of `policy` (0 while there is no journal).
pub fn history_len(env: &TestEnv, policy: &str) -> usize {
    journal(env, policy)["history"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Waits until `policy` has at least `n` finished rotations and none in flight.
pub async fn wait_for_history(env: &TestEnv, policy: &str, n: usize) -> Value {
    let settled = wait_until(Duration::from_secs(30), || {
        let j = journal(env, policy);
        (history_len(env, policy) >= n && j["in_flight"].is_null()).then_some(j)
    })
    .await;
    settled.unwrap_or_else(|| {
        panic!(
            "{policy}: no {n} finished rotations within 30 s; journal: {}",
            journal(env, policy)
        )
    })
}
