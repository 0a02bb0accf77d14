//! `on_promote` hooks: telling consumers that a new key is current. An
//! `exec` hook runs its argv directly (no shell) with a clean environment
//! — `PATH` and the `REKEY_*` fields only, never rekey's own environment,
//! which holds credentials. An `http` hook sends the same fields as a JSON
//! object to a URL read from a credential reference. Neither ever carries
//! the key: consumers read it from the store.

use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::policy::{Hook, HookAction, HookMethod};

/// How much of a hook's stdout and stderr (each) reaches the log.
const OUTPUT_LIMIT: usize = 2048;
/// How long the output of a process that exited is still read: a child it
/// left behind may hold the pipes open.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);
/// `PATH` when rekey's own environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a hook is told about the rotation (the new key by id and label).
#[derive(Debug, Clone, Serialize)]
pub struct HookFields {
    pub policy: String,
    pub rotation_id: String,
    pub provider: String,
    pub store: String,
    pub secret_id: String,
    pub key_id: String,
    pub key_label: String,
}

impl HookFields {
    /// The exec hook's environment variables, `REKEY_` + the upper-case name.
    pub fn env(&self) -> [(&'static str, &str); 7] {
        [
            ("REKEY_POLICY", &self.policy),
            ("REKEY_ROTATION_ID", &self.rotation_id),
            ("REKEY_PROVIDER", &self.provider),
            ("REKEY_STORE", &self.store),
            ("REKEY_SECRET_ID", &self.secret_id),
            ("REKEY_KEY_ID", &self.key_id),
            ("REKEY_KEY_LABEL", &self.key_label),
        ]
    }
}

/// A hook that did not succeed, and why (never key material, never the URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

/// Runs one hook to its end or its timeout. `Ok` carries what it printed
/// (exec; truncated and scrubbed) or its status (http), for the log.
pub async fn run(
    hook: &Hook,
    fields: &HookFields,
    http: &reqwest::Client,
) -> Result<String, HookError> {
    match &hook.action {
        HookAction::Exec(argv) => exec(argv, hook.timeout, fields).await,
        HookAction::Http {
            url,
            method,
            expect,
        } => {
            let url = crate::config::secret_ref::resolve(url)
                .await
                .map_err(|e| HookError(format!("cannot read the hook's URL: {e}")))?;
            send(http, &url, *method, *expect, hook.timeout, fields).await
        }
    }
}

async fn exec(
    argv: &[String],
    timeout: Duration,
    fields: &HookFields,
) -> Result<String, HookError> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| HookError("empty argv".into()))?;
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string());
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", path)
        .envs(fields.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group: a timeout kills what it started too.
        .process_group(0)
        .spawn()
        .map_err(|e| HookError(format!("cannot start {program:?}: {e}")))?;
    let stdout = tokio::spawn(capture(child.stdout.take()));
    let stderr = tokio::spawn(capture(child.stderr.take()));
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(HookError(format!("waiting for {program:?}: {e}"))),
        Err(_) => {
            if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
                // SAFETY: a plain signal to the group the child leads.
                unsafe { libc::killpg(pid, libc::SIGKILL) };
            }
            let _ = child.kill().await;
            stdout.abort();
            stderr.abort();
            return Err(HookError(format!(
                "{program:?} did not finish within its timeout ({}s) and was killed",
                timeout.as_secs_f64()
            )));
        }
    };
    let output = format!(
        "stdout: {:?}; stderr: {:?}",
        collected(stdout).await,
        collected(stderr).await
    );
    if status.success() {
        Ok(output)
    } else {
        Err(HookError(format!(
            "{program:?} exited with {status}; {output}"
        )))
    }
}

/// The first [`OUTPUT_LIMIT`] bytes of a pipe; the rest is read and dropped
/// so the process never blocks on a full pipe.
async fn capture(pipe: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let (mut kept, mut buf) = (Vec::new(), [0u8; 4096]);
    let mut truncated = false;
    while let Ok(n @ 1..) = pipe.read(&mut buf).await {
        let room = OUTPUT_LIMIT.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        truncated |= n > room;
    }
    let mut text = crate::secret::scrub(String::from_utf8_lossy(&kept).trim());
    if truncated {
        text.push_str(" [truncated]");
    }
    text
}

async fn collected(task: tokio::task::JoinHandle<String>) -> String {
    let abort = task.abort_handle();
    match tokio::time::timeout(OUTPUT_GRACE, task).await {
        Ok(Ok(text)) => text,
        _ => {
            abort.abort();
            "(still open after the process exited: a child holds it)".to_string()
        }
    }
}

async fn send(
    http: &reqwest::Client,
    url: &secrecy::SecretString,
    method: HookMethod,
    expect: Option<u16>,
    timeout: Duration,
    fields: &HookFields,
) -> Result<String, HookError> {
    use secrecy::ExposeSecret;
    let method = match method {
        HookMethod::Get => reqwest::Method::GET,
        HookMethod::Post => reqwest::Method::POST,
        HookMethod::Put => reqwest::Method::PUT,
        HookMethod::Patch => reqwest::Method::PATCH,
    };
    let request = http
        .request(method, url.expose_secret())
        .timeout(timeout)
        .json(fields);
    // The URL may carry a token: no message names it.
    let response = request.send().await.map_err(|e| {
        let why = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "failed"
        };
        HookError(format!("request {why}: {}", e.without_url()))
    })?;
    let status = response.status();
    let ok = match expect {
        Some(code) => status.as_u16() == code,
        None => status.is_success(),
    };
    if ok {
        return Ok(format!("HTTP {}", status.as_u16()));
    }
    let want = expect.map_or("any 2xx".to_string(), |c| c.to_string());
    Err(HookError(format!(
        "answered HTTP {} (expected {want})",
        status.as_u16()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> HookFields {
        HookFields {
            policy: "p".into(),
            rotation_id: "r".into(),
            provider: "or".into(),
            store: "s".into(),
            secret_id: "x".into(),
            key_id: "k".into(),
            key_label: "sk-or-v1-abc...xyz".into(),
        }
    }

    fn exec_hook(argv: &[&str], timeout: Duration) -> Hook {
        Hook {
            action: HookAction::Exec(argv.iter().map(|s| s.to_string()).collect()),
            timeout,
        }
    }

    #[tokio::test]
    async fn an_exec_hook_sees_path_and_the_fields_and_nothing_else() {
        // cargo sets this for the test process: it stands for rekey's own environment.
        assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
        let hook = exec_hook(&["env"], Duration::from_secs(10));
        let http = reqwest::Client::new();
        let out = run(&hook, &fields(), &http).await.unwrap();
        for want in [
            "PATH=",
            "REKEY_POLICY=p",
            "REKEY_KEY_ID=k",
            "REKEY_ROTATION_ID=r",
        ] {
            assert!(out.contains(want), "{want} in {out}");
        }
        assert!(!out.contains("CARGO_MANIFEST_DIR"), "{out}");
        let names: Vec<&str> = out
            .trim_start_matches("stdout: \"")
            .split("\\n")
            .filter_map(|line| line.split_once('=').map(|(k, _)| k))
            .collect();
        assert_eq!(names.len(), 8, "PATH and seven fields: {out}");
    }

    #[tokio::test]
    async fn a_failing_slow_or_missing_program_is_an_error_that_says_why() {
        let http = reqwest::Client::new();
        let sh = |script: &str, secs| exec_hook(&["sh", "-c", script], Duration::from_secs(secs));
        let err = run(&sh("echo oops >&2; exit 3", 10), &fields(), &http)
            .await
            .unwrap_err();
        assert!(
            err.0.contains("exit status: 3") && err.0.contains("oops"),
            "{err}"
        );
        let started = std::time::Instant::now();
        let err = run(&sh("sleep 30", 1), &fields(), &http).await.unwrap_err();
        assert!(err.0.contains("timeout"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
        let missing = exec_hook(&["/nonexistent/rekey-hook"], Duration::from_secs(1));
        let err = run(&missing, &fields(), &http).await.unwrap_err();
        assert!(err.0.contains("cannot start"), "{err}");
        // A child left behind holding stdout does not hold the hook up.
        let started = std::time::Instant::now();
        let out = run(&sh("sleep 20 & echo started", 10), &fields(), &http).await;
        assert!(out.is_ok(), "{out:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn output_is_truncated() {
        let http = reqwest::Client::new();
        let hook = exec_hook(
            &["sh", "-c", "yes x | head -c 100000"],
            Duration::from_secs(10),
        );
        let out = run(&hook, &fields(), &http).await.unwrap();
        assert!(out.len() < 2 * OUTPUT_LIMIT + 200, "{}", out.len());
        assert!(out.contains("[truncated]"));
    }
}
